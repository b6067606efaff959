// Separation of duties: each role is refused what it may not do, nobody can
// alter or delete audit records, and administrative actions land in the
// system log the auditor reads.
import test from 'ava';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/index.js';
import { AccessControl, ROUTE_ROLES, SystemLog, createApiServer, hashToken, parseApiUsers, type ApiRole } from '../src/http/index.js';
import { failWith, loadServerConfig } from '../src/index.js';
import { makeLog, tempDir } from './store-helpers.js';
import { request, type HttpResult } from './http-helpers.js';

const tmp = tempDir('dbtap-roles-');
const store = new SqliteStore(join(tmp.dir, 'audit.db'));
const logFile = join(tmp.dir, 'system.log');
const TOKENS: Record<ApiRole, string> = { sysadmin: 'sys-token-0123456789abcdef', secadmin: 'sec-token-0123456789abcdef', auditor: 'aud-token-0123456789abcdef' };
const users = parseApiUsers(
  [
    { name: 'ops', role: 'sysadmin', token: TOKENS.sysadmin },
    { name: 'sec', role: 'secadmin', tokenSha256: hashToken(TOKENS.secadmin) },
    { name: 'alice', role: 'auditor', token: TOKENS.auditor },
  ],
  'api.users',
  failWith('DBTAP_E_CONFIG'),
);
let server: Server;
let base: string;
const log = makeLog(4, 3);

test.before(async () => {
  await store.append(log);
  server = createApiServer({ store, access: new AccessControl(users), systemLog: new SystemLog(logFile) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await store.close();
  tmp.cleanup();
});

function call(method: string, path: string, token?: string, body?: unknown): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return request(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

const alertId = (): string => log.find((e) => e.kind === 'alert')!.id;
// A concrete request for every guarded route and method (bodies valid, so only the role decides).
const REQUESTS: [method: string, template: string, path: string, body?: unknown][] = [
  ['GET', '/api/records', '/api/records?limit=1'],
  ['GET', '/api/sessions', '/api/sessions?limit=1'],
  ['GET', '/api/sessions/{id}', `/api/sessions/${encodeURIComponent(log[0]!.flowId)}`],
  ['GET', '/api/alerts', '/api/alerts'],
  ['POST', '/api/alerts/{id}/ack', `/api/alerts/${encodeURIComponent(alertId())}/ack`, {}],
  ['GET', '/api/reports/{kind}', '/api/reports/summary'],
  ['GET', '/api/stats', '/api/stats'],
  ['GET', '/api/objects', '/api/objects'],
  ['PUT', '/api/objects', '/api/objects', { objects: [{ id: 'db1', dbType: 'mysql', ports: [3306] }] }],
  ['GET', '/api/rule-groups', '/api/rule-groups'],
  ['PUT', '/api/rule-groups', '/api/rule-groups', { ruleGroups: [{ id: 'g1', enabled: true }] }],
  ['GET', '/api/system-log', '/api/system-log'],
  ['GET', '/metrics', '/metrics'],
];

test.serial('every guarded route and method is in the role table', (t) => {
  const listed = Object.entries(ROUTE_ROLES).flatMap(([tpl, m]) => Object.keys(m).map((k) => `${k} ${tpl}`)).sort();
  t.deepEqual(REQUESTS.map(([m, tpl]) => `${m} ${tpl}`).sort(), listed);
});

test.serial('each role may do exactly what the role table says, nothing else', async (t) => {
  for (const [method, template, path, body] of REQUESTS) {
    for (const role of ['sysadmin', 'secadmin', 'auditor'] as const) {
      const allowed = ROUTE_ROLES[template]![method]!.includes(role);
      const r = await call(method, path, TOKENS[role], body);
      if (allowed) t.true(r.status >= 200 && r.status < 300, `${role} ${method} ${path}: ${r.status} ${r.text}`);
      else {
        t.is(r.status, 403, `${role} ${method} ${path}`);
        t.is(r.body.error.code, 'DBTAP_E_FORBIDDEN');
      }
    }
  }
  // the separation the regulations ask for, spelled out
  t.is((await call('PUT', '/api/objects', TOKENS.secadmin, { objects: [] })).status, 403, 'security admin cannot change objects');
  t.is((await call('PUT', '/api/rule-groups', TOKENS.sysadmin, { ruleGroups: [] })).status, 403, 'system admin cannot change rules');
  t.is((await call('GET', '/api/records', TOKENS.sysadmin)).status, 403, 'system admin cannot read audit records');
  t.is((await call('GET', '/api/records', TOKENS.secadmin)).status, 403, 'security admin cannot read audit records');
  t.is((await call('PUT', '/api/objects', TOKENS.auditor, { objects: [] })).status, 403, 'auditor cannot change objects');
});

test.serial('no token or an unknown token is 401; public routes need none', async (t) => {
  const none = await call('GET', '/api/records');
  t.is(none.status, 401);
  t.is(none.body.error.code, 'DBTAP_E_UNAUTHENTICATED');
  t.regex(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  t.is((await call('GET', '/api/records', 'not-a-token-of-anybody')).status, 401);
  t.is((await call('GET', '/healthz')).status, 200);
  t.is((await call('GET', '/api/openapi.json')).status, 200);
});

test.serial('no role can alter or delete audit records: there is no route for it', async (t) => {
  const record = log[0]!;
  for (const role of ['sysadmin', 'secadmin', 'auditor'] as const) {
    for (const method of ['PUT', 'POST', 'PATCH', 'DELETE']) {
      for (const path of ['/api/records', `/api/records/${encodeURIComponent(record.id)}`, `/api/sessions/${encodeURIComponent(record.flowId)}`, '/api/alerts']) {
        const r = await call(method, path, TOKENS[role], { sql: 'tampered' });
        t.true(r.status === 404 || r.status === 405, `${role} ${method} ${path}: ${r.status}`);
      }
    }
  }
  const after = await store.search({ limit: 1000 });
  t.is(after.records.length, log.length);
  t.false(after.records.some((e) => e.sql === 'tampered'));
});

test.serial('administrative actions and refusals are in the system log, which only the auditor reads', async (t) => {
  t.is((await call('PUT', '/api/objects', TOKENS.sysadmin, { objects: [{ id: 'shop', dbType: 'mysql', ports: [3306] }] })).status, 200);
  t.is((await call('PUT', '/api/rule-groups', TOKENS.auditor, { ruleGroups: [] })).status, 403);
  const ack = await call('POST', `/api/alerts/${encodeURIComponent(alertId())}/ack`, TOKENS.auditor, { by: 'someone-else' });
  t.is(ack.status, 200);
  t.is(ack.body.acknowledged.by, 'alice', 'the acknowledging user is the caller');
  t.is((await call('GET', '/api/system-log', TOKENS.sysadmin)).status, 403);
  const r = await call('GET', '/api/system-log?limit=1000', TOKENS.auditor);
  t.is(r.status, 200);
  const entries = r.body.entries as Array<{ actor: string; role?: string; action: string; ok: boolean; detail?: Record<string, unknown> }>;
  const put = entries.filter((e) => e.action === 'objects.replace' && e.actor === 'ops');
  t.true(put.length > 0);
  t.deepEqual(put.at(-1)!.detail!.after, ['shop']);
  t.is(put.at(-1)!.role, 'sysadmin');
  t.true(entries.some((e) => e.action === 'access.denied' && e.actor === 'alice' && !e.ok && (e.detail as { path?: string }).path === '/api/rule-groups'));
  t.true(entries.some((e) => e.action === 'alert.ack' && e.actor === 'alice'));
  // the file is plain NDJSON, one entry per line
  const lines = readFileSync(logFile, 'utf8').trim().split('\n');
  t.is(lines.length, entries.length);
  t.is(JSON.parse(lines.at(-1)!).action, entries.at(-1)!.action);
});

test.serial('users in the config file; an API off loopback needs users', (t) => {
  const f = join(tmp.dir, 'cfg.yaml');
  writeFileSync(f, `api:\n  host: 0.0.0.0\n  users:\n    - { name: ops, role: sysadmin, token: ${TOKENS.sysadmin} }\n`);
  const cfg = loadServerConfig(f, {});
  t.is(cfg.api.users[0]!.tokenSha256, hashToken(TOKENS.sysadmin));
  writeFileSync(f, 'api:\n  host: 0.0.0.0\n');
  const open = t.throws(() => loadServerConfig(f, {}));
  t.regex(open!.message, /not a loopback address: configure api\.users/);
  for (const [users, path] of [
    ['[{ name: x, role: root, token: 0123456789abcdef0 }]', /api\.users\[0\]\.role/],
    ['[{ name: x, role: auditor, token: short }]', /api\.users\[0\]\.token/],
    [`[{ name: x, role: auditor, token: ${TOKENS.auditor} }, { name: x, role: sysadmin, token: ${TOKENS.sysadmin} }]`, /api\.users\[1\]\.name/],
    [`[{ name: x, role: auditor, token: ${TOKENS.auditor} }, { name: y, role: sysadmin, token: ${TOKENS.auditor} }]`, /api\.users\[1\]: two users share a token/],
  ] as const) {
    writeFileSync(f, `api:\n  users: ${users}\n`);
    const err = t.throws(() => loadServerConfig(f, {}));
    t.is((err as { code?: string }).code, 'DBTAP_E_CONFIG');
    t.regex(err!.message, path);
  }
});

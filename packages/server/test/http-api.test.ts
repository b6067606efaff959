import test from 'ava';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { SqliteStore } from '../src/store/index.js';
import { createApiServer, MemoryListProvider } from '../src/http/index.js';
import type { AuditObjectDef } from '../src/objects.js';
import { MIN, T0, makeLog, oracle, tempDir } from './store-helpers.js';
import { parseCsv, request, type HttpResult } from './http-helpers.js';

const log = makeLog(30, 11);
const tmp = tempDir('dbtap-http-');
const store = new SqliteStore(join(tmp.dir, 'audit.db'));
const replaced: AuditObjectDef[][] = [];
const objectProvider = new (class extends MemoryListProvider<AuditObjectDef> {
  override replace(items: readonly AuditObjectDef[]): void {
    replaced.push([...items]);
    super.replace(items);
  }
})();
let server: Server;
let base: string;

test.before(async () => {
  await store.append(log);
  server = createApiServer({
    store,
    objects: objectProvider,
    exportPageSize: 16, // so that exports span many store pages
    metrics: () => [
      { name: 'dbtap_events_total', help: 'Records decoded.', type: 'counter', value: 1234 },
      { name: 'dbtap_flows_open', type: 'gauge', value: 7, labels: { protocol: 'my"sql' } },
    ],
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await store.close();
  tmp.cleanup();
});

const get = (path: string): Promise<HttpResult> => request(base + path);

async function send(method: string, path: string, body: unknown, raw?: string): Promise<{ status: number; body: any }> {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

const ids = (l: AuditEvent[]): string[] => l.map((e) => e.id);

test('the OpenAPI document parses, is 3.1, lists every path, and its refs resolve', async (t) => {
  const { status, body: doc } = await get('/api/openapi.json');
  t.is(status, 200);
  t.is(doc.openapi, '3.1.0');
  t.deepEqual(Object.keys(doc.paths).sort(), [
    '/api/alerts', '/api/alerts/{id}/ack', '/api/objects', '/api/openapi.json', '/api/records', '/api/reports/{kind}', '/api/rule-groups',
    '/api/sessions', '/api/sessions/{id}', '/api/stats', '/api/system-log', '/healthz', '/metrics',
  ]);
  const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[^"]+"/g) ?? [];
  t.true(refs.length > 20);
  for (const r of refs) t.truthy(doc.components.schemas[r.slice(22, -1)], `unresolved ${r}`);
  // Every documented operation is served (never a "no such path" 404 or a 405).
  for (const [path, ops] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const url = path.replace('{id}', encodeURIComponent(log[0]!.flowId)).replace('{kind}', 'summary');
      const r = await fetch(base + url, { method: method.toUpperCase(), ...(method === 'get' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } }) });
      const b = r.headers.get('content-type')?.includes('json') ? ((await r.json()) as any) : await r.text();
      t.not(r.status, 405, `${method} ${path}`);
      t.false(r.status === 404 && /no such path/.test(b?.error?.message ?? ''), `${method} ${path}`);
    }
  }
  // Every documented query parameter of /api/records is accepted.
  const samples: Record<string, string> = { from: '2024-03-01T00:00:00Z', to: String(T0 + 600 * MIN), kind: 'statement,alert', statementType: 'select', minRisk: 'low', status: 'ok', order: 'asc', limit: '5', format: 'json', text: 'orders' };
  for (const p of doc.paths['/api/records'].get.parameters) {
    if (p.name === 'cursor') continue;
    const r = await get(`/api/records?${p.name}=${encodeURIComponent(samples[p.name] ?? 'x')}`);
    t.is(r.status, 200, `parameter ${p.name}: ${r.text}`);
  }
});

test('records: filters over HTTP match the reference and cursors chain pages', async (t) => {
  const r = await get(`/api/records?user=alice&statementType=select,update&from=${encodeURIComponent('2024-03-01T01:00:00+01:00')}&order=asc&limit=1000`);
  t.is(r.status, 200);
  t.deepEqual(ids(r.body.records), ids(oracle(log, { user: 'alice', statementType: ['select', 'update'], from: T0, order: 'asc' })));
  t.true(r.body.records.length > 0);
  t.is(r.body.nextCursor, undefined);

  const all: string[] = [];
  let cursor = '';
  for (let i = 0; i < 1000; i++) {
    const p = await get(`/api/records?limit=13&minRisk=info${cursor ? `&cursor=${cursor}` : ''}`);
    t.is(p.status, 200);
    all.push(...ids(p.body.records));
    if (p.body.nextCursor === undefined) break;
    cursor = encodeURIComponent(p.body.nextCursor);
  }
  t.deepEqual(all, ids(oracle(log, { minRisk: 'info' })));
  const text = await get('/api/records?text=customer_accounts&limit=1000');
  t.deepEqual(ids(text.body.records), ids(oracle(log, { text: 'customer_accounts' })));
});

test('records: bad parameters are 400 with stable codes', async (t) => {
  const cases: [string, string, string?][] = [
    ['/api/records?usr=alice', 'DBTAP_E_BAD_REQUEST', 'usr'],
    ['/api/records?user=a&user=b', 'DBTAP_E_BAD_REQUEST', 'user'],
    ['/api/records?from=last%20tuesday', 'DBTAP_E_BAD_QUERY', 'from'],
    ['/api/records?limit=0', 'DBTAP_E_BAD_REQUEST', 'limit'],
    ['/api/records?limit=20000', 'DBTAP_E_BAD_QUERY', 'limit'],
    ['/api/records?limit=ten', 'DBTAP_E_BAD_REQUEST', 'limit'],
    ['/api/records?kind=query', 'DBTAP_E_BAD_REQUEST', 'kind'],
    ['/api/records?cursor=zzz', 'DBTAP_E_BAD_CURSOR'],
    ['/api/records?format=xml', 'DBTAP_E_BAD_REQUEST', 'format'],
    ['/api/records?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z', 'DBTAP_E_BAD_QUERY', 'to'],
    ['/api/sessions?hasErrors=maybe', 'DBTAP_E_BAD_REQUEST', 'hasErrors'],
    ['/api/alerts?acknowledged=1', 'DBTAP_E_BAD_REQUEST', 'acknowledged'],
    ['/api/reports/summary?top=5000', 'DBTAP_E_BAD_REQUEST', 'top'],
  ];
  for (const [path, code, parameter] of cases) {
    const r = await get(path);
    t.is(r.status, 400, path);
    t.is(r.body.error.code, code, path);
    if (parameter !== undefined) t.is(r.body.error.parameter, parameter, path);
    t.is(typeof r.body.error.message, 'string');
  }
  const csv = await get('/api/records?format=csv&from=nope');
  t.is(csv.status, 400, 'an export with a bad query fails before streaming');
});

test('records: CSV and NDJSON exports hold every match', async (t) => {
  const want = oracle(log, { dbType: 'mysql', order: 'asc' });
  t.true(want.length > 16 * 5);
  const nd = await get('/api/records?dbType=mysql&order=asc&format=ndjson');
  t.is(nd.status, 200);
  t.regex(nd.headers.get('content-type')!, /application\/x-ndjson/);
  t.regex(nd.headers.get('content-disposition')!, /attachment; filename="dbtap-records-.*\.ndjson"/);
  const lines = nd.text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent);
  t.deepEqual(ids(lines), ids(want));

  const csv = await get('/api/records?dbType=mysql&order=asc&format=csv');
  t.regex(csv.headers.get('content-type')!, /text\/csv/);
  const rows = parseCsv(csv.text);
  const header = rows[0]!;
  t.deepEqual(header.slice(0, 3), ['id', 'kind', 'time']);
  t.is(rows.length - 1, want.length);
  const col = (name: string): number => header.indexOf(name);
  rows.slice(1).forEach((row, i) => {
    t.is(row.length, header.length);
    t.is(row[col('id')], want[i]!.id);
    t.is(row[col('user')], want[i]!.user ?? '');
    const sql = want[i]!.sql ?? want[i]!.alert?.reason ?? '';
    t.is(row[col('sql')], /^[=+\-@]/.test(sql) ? `'${sql}` : sql);
  });
  const capped = await get('/api/records?format=ndjson&limit=25');
  t.is(capped.text.trimEnd().split('\n').length, 25);
});

test('sessions: list, timeline and 404', async (t) => {
  const list = await get('/api/sessions?user=bob&limit=1000');
  t.is(list.status, 200);
  const bobFlows = new Set(log.filter((e) => e.user === 'bob').map((e) => e.flowId));
  t.is(list.body.sessions.length, bobFlows.size);
  const id = list.body.sessions[0].id as string;
  const one = await get(`/api/sessions/${encodeURIComponent(id)}`);
  t.is(one.status, 200);
  t.deepEqual(ids(one.body.entries.map((x: { record: AuditEvent }) => x.record)), ids(log.filter((e) => e.flowId === id)));
  t.is(one.body.session.id, id);
  t.is(one.body.entries[0].offsetUs, 0);
  const missing = await get('/api/sessions/no%3Asuch');
  t.is(missing.status, 404);
  t.is(missing.body.error.code, 'DBTAP_E_NOT_FOUND');
});

test('alerts: list and acknowledge', async (t) => {
  const alerts = log.filter((e) => e.kind === 'alert');
  t.true(alerts.length > 1);
  const open = await get('/api/alerts?acknowledged=false&limit=1000');
  t.is(open.body.alerts.length, alerts.length);
  const id = alerts[0]!.id;
  const ack = await send('POST', `/api/alerts/${encodeURIComponent(id)}/ack`, { by: 'analyst' });
  t.is(ack.status, 200);
  t.is(ack.body.id, id);
  t.is(ack.body.acknowledged.by, 'analyst');
  const acked = await get('/api/alerts?acknowledged=true');
  t.deepEqual(acked.body.alerts.map((a: { record: AuditEvent }) => a.record.id), [id]);
  t.is((await send('POST', '/api/alerts/nope/ack', { by: 'x' })).status, 404);
  const noBy = await send('POST', `/api/alerts/${encodeURIComponent(id)}/ack`, {});
  t.is(noBy.status, 400);
  t.is(noBy.body.error.parameter, 'by');
  const badJson = await send('POST', `/api/alerts/${encodeURIComponent(id)}/ack`, undefined, '{"by": ');
  t.is(badJson.status, 400);
  t.is(badJson.body.error.code, 'DBTAP_E_BAD_JSON');
  const big = await send('POST', `/api/alerts/${encodeURIComponent(id)}/ack`, { by: 'x'.repeat(2 << 20) });
  t.is(big.status, 413);
  t.is(big.body.error.code, 'DBTAP_E_PAYLOAD_TOO_LARGE');
});

test('objects and rule groups: GET/PUT through providers with validation', async (t) => {
  t.deepEqual((await get('/api/objects')).body, { objects: [] });
  const objects = [
    { id: 'db-shop', name: 'Shop', enabled: true, dbType: 'mysql', ports: [3306], addresses: ['127.0.0.1'], charset: 'gbk', owner: 'shop team', related: ['db-hr'] },
    { id: 'db-hr', enabled: false, dbType: 'postgres', ports: [5432, 5433], addresses: ['10.0.0.0/8', '::1'] },
  ];
  // the host/port shorthand is folded into the lists
  const shorthand = await send('PUT', '/api/objects', { objects: [{ id: 'x', dbType: 'mysql', host: '127.0.0.1', port: 3306 }] });
  t.deepEqual(shorthand.body.objects, [{ id: 'x', enabled: true, dbType: 'mysql', ports: [3306], addresses: ['127.0.0.1'] }]);
  const put = await send('PUT', '/api/objects', { objects });
  t.is(put.status, 200);
  t.deepEqual(put.body.objects, objects);
  t.deepEqual(replaced.at(-1), objects);
  t.deepEqual((await get('/api/objects')).body.objects, objects);
  const bads: [unknown, string][] = [
    [{ objects: [{ ...objects[0], ports: [70000] }] }, 'objects[0].ports[0]'],
    [{ objects: [{ ...objects[0], addresses: ['10.0.0.0/33'] }] }, 'objects[0].addresses[0]'],
    [{ objects: [{ ...objects[0], charset: 'klingon' }] }, 'objects[0].charset'],
    [{ objects: [{ ...objects[0], related: ['nobody'] }] }, 'objects[0].related[0]'],
    [{ objects: [objects[0], { ...objects[1], id: 'dup-endpoint', enabled: true, ports: [3306], addresses: ['127.0.0.1'] }] }, 'objects[1]'],
    [{ objects: [objects[0], objects[0]] }, 'objects[1].id'],
    [{ objects: [{ ...objects[0], id: 'has space' }] }, 'objects[0].id'],
    [{ objects: [{ ...objects[0], colour: 'red' }] }, 'objects[0].colour'],
    [[objects[0]], 'objects'],
  ];
  for (const [body, parameter] of bads) {
    const r = await send('PUT', '/api/objects', body);
    t.is(r.status, 400, parameter);
    t.is(r.body.error.parameter, parameter);
  }
  t.is(replaced.length, 2, 'invalid lists never reach the provider');

  const groups = [{ id: 'pci', name: 'PCI DSS', enabled: true, ruleIds: ['sensitive-object'], risk: 'high' }, { id: 'noise', enabled: false }];
  t.deepEqual((await send('PUT', '/api/rule-groups', { ruleGroups: groups })).body.ruleGroups, groups);
  t.deepEqual((await get('/api/rule-groups')).body.ruleGroups, groups);
  const bad = await send('PUT', '/api/rule-groups', { ruleGroups: [{ id: 'x', enabled: true, risk: 'extreme' }] });
  t.is(bad.status, 400);
  t.is(bad.body.error.parameter, 'ruleGroups[0].risk');
});

test('reports: summary over a range, unknown kinds are 404', async (t) => {
  const r = await get(`/api/reports/summary?from=${encodeURIComponent('2024-03-01T00:30:00Z')}&to=${T0 + 180 * MIN}&top=100`);
  t.is(r.status, 200);
  t.deepEqual(r.body, await store.summary({ from: T0 + 30 * MIN, to: T0 + 180 * MIN, top: 100 }));
  t.is(r.body.total, log.filter((e) => e.ts >= T0 + 30 * MIN && e.ts < T0 + 180 * MIN).length);
  t.true(r.body.byObject.length > 0);
  const unknown = await get('/api/reports/weekly');
  t.is(unknown.status, 404);
  t.is(unknown.body.error.code, 'DBTAP_E_UNKNOWN_REPORT');
  t.regex(unknown.body.error.message, /known: summary/);
});

test('health, stats and Prometheus metrics', async (t) => {
  const h = await get('/healthz');
  t.is(h.status, 200);
  t.is(h.body.status, 'ok');
  const s = await get('/api/stats');
  t.is(s.body.records, log.length);
  await get('/api/records?limit=1');
  const m = await get('/metrics');
  t.is(m.status, 200);
  t.regex(m.headers.get('content-type')!, /text\/plain; version=0\.0\.4/);
  t.regex(m.text, /^# HELP dbtap_events_total Records decoded\.\n# TYPE dbtap_events_total counter\ndbtap_events_total 1234$/m);
  t.regex(m.text, /^dbtap_flows_open\{protocol="my\\"sql"\} 7$/m);
  t.regex(m.text, /^dbtap_http_requests_total\{route="\/api\/records",code="200"\} [1-9]\d*$/m);
  for (const line of m.text.trimEnd().split('\n')) t.regex(line, /^(# (HELP|TYPE) \w+ .+|[a-zA-Z_:][\w:]*(\{.*\})? [-+\w.]+)$/);
});

test('unknown paths are 404, wrong methods 405 with Allow', async (t) => {
  const r = await get('/api/nothing');
  t.is(r.status, 404);
  t.is(r.body.error.code, 'DBTAP_E_NOT_FOUND');
  const m = await send('DELETE', '/api/objects', {});
  t.is(m.status, 405);
  t.is(m.body.error.code, 'DBTAP_E_METHOD_NOT_ALLOWED');
  const allow = await fetch(`${base}/api/records`, { method: 'POST', body: '{}' });
  t.is(allow.headers.get('allow'), 'GET');
  const enc = await get('/api/sessions/%E0%A4%A');
  t.is(enc.status, 400);
});

test('a closed store answers 503', async (t) => {
  const dir = tempDir('dbtap-http-closed-');
  const s = new SqliteStore(join(dir.dir, 'a.db'));
  await s.close();
  const srv = createApiServer({ store: s });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const r = await fetch(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/api/records`);
    t.is(r.status, 503);
    t.is(((await r.json()) as any).error.code, 'DBTAP_E_STORE_CLOSED');
  } finally {
    await new Promise((resolve) => srv.close(resolve));
    dir.cleanup();
  }
});

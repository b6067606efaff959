// What a web page in the operator's browser can make the browser send to an
// API on loopback: a request under a re-bound DNS name (DNS rebinding), a
// cross-site form or fetch that acknowledges an alert or replaces the audit
// objects, and JSON sent as text/plain (a CORS "simple request", no
// preflight). Each is sent here as the browser would send it.
import test from 'ava';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/index.js';
import { AccessControl, createApiServer, hashToken, MemoryListProvider, ServerErrorCodes, type ApiServerOptions } from '../src/index.js';
import type { AuditObjectDef } from '../src/objects.js';
import { makeLog, tempDir } from './store-helpers.js';

const log = makeLog(10, 3);
const tmp = tempDir('dbtap-http-browser-');
const store = new SqliteStore(join(tmp.dir, 'audit.db'));
const servers: Server[] = [];

test.before(async () => {
  await store.append(log);
});
test.after.always(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await store.close();
  tmp.cleanup();
});

async function api(options: Partial<ApiServerOptions> = {}): Promise<{ port: number; objects: MemoryListProvider<AuditObjectDef> }> {
  const objects = new MemoryListProvider<AuditObjectDef>();
  const server = createApiServer({ store, objects, ...options });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, objects };
}

interface Answer {
  status: number;
  body: any;
}

/** One request with exactly these headers (fetch would not send a Host of our choosing). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
        resolve({ status: res.statusCode!, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const alertId = (): string => log.find((e) => e.kind === 'alert')!.id;

async function acknowledged(id: string): Promise<boolean> {
  const page = await store.alerts({ acknowledged: true, limit: 1000 });
  return page.alerts.some((a) => a.record.id === id);
}

test('DNS rebinding: without users, a Host other than localhost, the listen address or api.hosts is refused', async (t) => {
  const { port } = await api();
  const rebound = await send(port, 'GET', '/api/records', { host: `attacker.example:${port}` });
  t.is(rebound.status, 403);
  t.is(rebound.body.error.code, ServerErrorCodes.BAD_HOST);
  t.false(JSON.stringify(rebound.body).includes(log[0]!.id), 'no record leaks to the re-bound page');
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST.:${port}`]) {
    t.is((await send(port, 'GET', '/api/records', { host })).status, 200, host);
  }
  // names the operator uses for the server are configured
  const named = await api({ hosts: ['dbtap.internal'] });
  t.is((await send(named.port, 'GET', '/api/stats', { host: `dbtap.internal:${named.port}` })).status, 200);
  t.is((await send(named.port, 'GET', '/api/stats', { host: `other.internal:${named.port}` })).status, 403);
});

test('with users the Host is not checked (a token is needed anyway) unless api.hosts is set', async (t) => {
  const token = 'browser-test-token-0123456789';
  const { port } = await api({ access: new AccessControl([{ name: 'alice', role: 'auditor', tokenSha256: hashToken(token) }]) });
  const r = await send(port, 'GET', '/api/records', { host: `audit.example.com:${port}`, authorization: `Bearer ${token}` });
  t.is(r.status, 200);
  t.is((await send(port, 'GET', '/api/records', { host: `audit.example.com:${port}` })).status, 401);
});

test('cross-site acknowledgement: a POST from another Origin is refused and changes nothing', async (t) => {
  const { port } = await api();
  const id = alertId();
  const path = `/api/alerts/${encodeURIComponent(id)}/ack`;
  const body = JSON.stringify({ by: 'attacker' });
  const json = { host: `127.0.0.1:${port}`, 'content-type': 'application/json' };
  for (const origin of ['https://attacker.example', 'null', `http://127.0.0.1:${port + 1}`]) {
    const r = await send(port, 'POST', path, { ...json, origin }, body);
    t.is(r.status, 403, origin);
    t.is(r.body.error.code, ServerErrorCodes.CROSS_ORIGIN);
  }
  const fetchMeta = await send(port, 'POST', path, { ...json, 'sec-fetch-site': 'cross-site' }, body);
  t.is(fetchMeta.body.error.code, ServerErrorCodes.CROSS_ORIGIN);
  t.false(await acknowledged(id));
  // the API's own page (same origin), and clients that send no Origin (curl, scripts), may
  const same = await send(port, 'POST', path, { ...json, origin: `http://127.0.0.1:${port}` }, body);
  t.is(same.status, 200);
  t.true(await acknowledged(id));
  // reading stays possible cross-origin: the browser's same-origin policy keeps the answer from the page
  t.is((await send(port, 'GET', '/api/stats', { host: `127.0.0.1:${port}`, origin: 'https://attacker.example' })).status, 200);
});

test('JSON sent as text/plain (or a form type, or no type) is 415 and changes nothing', async (t) => {
  const { port, objects } = await api();
  const list = JSON.stringify({ objects: [{ id: 'planted', dbType: 'mysql', ports: [3306] }] });
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
    const r = await send(port, 'PUT', '/api/objects', { host: `127.0.0.1:${port}`, ...(type !== undefined ? { 'content-type': type } : {}) }, list);
    t.is(r.status, 415, String(type));
    t.is(r.body.error.code, ServerErrorCodes.UNSUPPORTED_MEDIA_TYPE);
  }
  t.deepEqual(objects.list(), []);
  const ok = await send(port, 'PUT', '/api/objects', { host: `127.0.0.1:${port}`, 'content-type': 'application/json; charset=utf-8' }, list);
  t.is(ok.status, 200);
  t.deepEqual((objects.list() as AuditObjectDef[]).map((o) => o.id), ['planted']);
  // and the OpenAPI document says so for every route with a body
  const doc = (await send(port, 'GET', '/api/openapi.json', { host: `127.0.0.1:${port}` })).body;
  for (const [path, method] of [['/api/objects', 'put'], ['/api/rule-groups', 'put'], ['/api/alerts/{id}/ack', 'post']] as const) {
    t.truthy(doc.paths[path][method].responses['415'], `${method} ${path}`);
    t.truthy(doc.paths[path][method].responses['403'], `${method} ${path}`);
  }
});

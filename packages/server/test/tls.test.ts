// TLS of dbtap-server from server.yaml: the agent listener and the HTTP API,
// with certificates made here by openssl.
import test from 'ava';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { ErrorCodes, isDbtapError, openCapture } from '@dbtap/core';
import { TransportClient, type TransportClientOptions } from '@dbtap/agent';
import { AuditServer, createApiServer, listenerTlsOptions, loadServerConfig, ServerErrorCodes, SqliteStore, type ServerConfig } from '@dbtap/server';
import { repoRoot } from '../../../test-support/corpus.js';
import { makeTestPki } from '../../../test-support/tls-recorder.js';
import { startProcess, waitFor } from '../../../test-support/process.js';

const pki = makeTestPki();
test.after.always(() => pki.remove());
const TOKEN = 'tls-test-token-0123456789';

/** Writes server.yaml (and the PKI's files beside it, in `certs/`) and loads it. */
function configWith(name: string, yaml: string): ServerConfig {
  const dir = join(pki.dir, name);
  mkdirSync(join(dir, 'certs'), { recursive: true });
  for (const f of ['ca.crt', 'server.crt', 'server.key', 'client.key']) copyFileSync(join(pki.dir, f), join(dir, 'certs', f));
  writeFileSync(join(dir, 'server.yaml'), yaml);
  return loadServerConfig(join(dir, 'server.yaml'), {});
}

function configError(name: string, yaml: string): { code: string; message: string } {
  try {
    configWith(name, yaml);
  } catch (err) {
    if (isDbtapError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('config was accepted');
}

test('agents.tls and api.tls: paths relative to the config file, checked at load', (t) => {
  const cfg = configWith('ok', `agents:\n  token: ${TOKEN}\n  tls: { cert: certs/server.crt, key: certs/server.key, ca: certs/ca.crt, requireClientCert: true }\napi:\n  tls: { cert: certs/server.crt, key: certs/server.key }\n`);
  t.is(cfg.agents.tls!.cert, join(pki.dir, 'ok', 'certs', 'server.crt'));
  t.is(cfg.agents.tls!.ca, join(pki.dir, 'ok', 'certs', 'ca.crt'));
  t.true(cfg.agents.tls!.requireClientCert);
  t.is(cfg.api.tls!.key, join(pki.dir, 'ok', 'certs', 'server.key'));
  const o = listenerTlsOptions(cfg.agents.tls!, 'agents.tls');
  t.true(o.requestCert);
  t.true(o.rejectUnauthorized);
});

test('agents.tls / api.tls: unknown keys and missing settings are DBTAP_E_CONFIG', (t) => {
  let e = configError('typo', 'agents:\n  tls: { cert: certs/server.crt, key: certs/server.key, requireClientCerts: true }\n');
  t.is(e.code, ErrorCodes.CONFIG);
  t.regex(e.message, /agents\.tls\.requireClientCerts must be one of cert, key, ca, requireClientCert \(unknown key; did you mean 'requireClientCert'\?\)/);
  e = configError('noca', 'api:\n  tls: { cert: certs/server.crt, key: certs/server.key, requireClientCert: true }\n');
  t.is(e.code, ErrorCodes.CONFIG);
  t.regex(e.message, /api\.tls\.ca must be set when requireClientCert is true/);
});

test('agents.tls / api.tls: unreadable or unusable files are DBTAP_E_TLS_FILE, naming key and file but not their content', (t) => {
  let e = configError('missing', 'agents:\n  tls: { cert: certs/nope.crt, key: certs/server.key }\n');
  t.is(e.code, ServerErrorCodes.TLS_FILE);
  t.regex(e.message, /agents\.tls\.cert: cannot read .*certs\/nope\.crt: ENOENT/);
  // a key that is not the certificate's
  e = configError('mismatch', 'api:\n  tls: { cert: certs/server.crt, key: certs/client.key }\n');
  t.is(e.code, ServerErrorCodes.TLS_FILE);
  t.regex(e.message, /^api\.tls: the certificate .*server\.crt, key .*client\.key cannot be used: .*mismatch/i);
  t.false(e.message.includes('PRIVATE KEY'));
  // not PEM at all
  writeFileSync(join(pki.dir, 'garbage.pem'), 'not a certificate\n');
  e = configError('garbage', `api:\n  tls: { cert: ../garbage.pem, key: certs/server.key }\n`);
  t.is(e.code, ServerErrorCodes.TLS_FILE);
});

const fast = { reconnectMinMs: 20, reconnectMaxMs: 100, batchMaxDelayMs: 5 };

async function tlsAuditServer(name: string, requireClientCert: boolean) {
  const cfg = configWith(name, `agents:\n  token: ${TOKEN}\n  tls: { cert: certs/server.crt, key: certs/server.key, ca: certs/ca.crt, requireClientCert: ${requireClientCert} }\n`);
  const store = new SqliteStore({ path: ':memory:' });
  const refusals: string[] = [];
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], agentToken: cfg.agents.token!, agentTls: listenerTlsOptions(cfg.agents.tls!, 'agents.tls'), log: (line) => refusals.push(line) });
  const { agents } = await server.start();
  return { server, store, refusals, port: Number(agents[0]!.split(':').pop()) };
}

function sendCapture(client: TransportClient): number {
  const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  let sent = 0;
  for (let f = reader.next(); f !== undefined; f = reader.next()) {
    client.send({ ...f, data: f.data.slice() });
    sent++;
  }
  reader.close();
  return sent;
}

test('an agent delivers a capture over TLS with its client certificate; records are stored', async (t) => {
  const s = await tlsAuditServer('deliver', true);
  const client = new TransportClient({ host: '127.0.0.1', port: s.port, token: TOKEN, agentId: 'db1', tls: { ca: pki.pem('ca.crt'), cert: pki.pem('client.crt'), key: pki.pem('client.key') }, ...fast }).start();
  const sent = sendCapture(client);
  t.true(await client.drain(20_000));
  t.is((await client.stop()).ackedPackets, sent);
  const page = await s.store.search({ order: 'asc', limit: 100 });
  t.true(page.records.some((r) => r.sql === 'DROP TABLE customers'));
  t.true(s.refusals.some((l) => /agent db1 connected/.test(l)));
  await s.server.stop();
});

async function refused(s: { port: number; refusals: string[]; store: SqliteStore }, tls: TransportClientOptions['tls']): Promise<string[]> {
  const client = new TransportClient({ host: '127.0.0.1', port: s.port, token: TOKEN, agentId: 'intruder', tls, ...fast });
  const errors: string[] = [];
  client.on('disconnect', (e) => errors.push(e.code));
  client.start();
  client.send({ ts: 1_700_000_000_000_000, linkType: 1, data: new Uint8Array(60), origLen: 60, interfaceId: 0 });
  await waitFor(() => errors.length > 0 && s.refusals.some((l) => l.startsWith('refused')), 'refusal');
  await client.stop(0);
  return errors;
}

test('client certificates required: an agent with none, or one from another CA, is refused in the handshake', async (t) => {
  const s = await tlsAuditServer('refuse', true);
  await refused(s, { ca: pki.pem('ca.crt') });
  t.regex(s.refusals.find((l) => l.startsWith('refused'))!, /DBTAP_E_AUTH: TLS handshake failed/);
  s.refusals.length = 0;
  await refused(s, { ca: pki.pem('ca.crt'), cert: pki.pem('other.crt'), key: pki.pem('other.key') });
  t.regex(s.refusals.find((l) => l.startsWith('refused'))!, /DBTAP_E_AUTH: TLS handshake failed/);
  t.is(s.server.stats().batches, 0);
  t.is((await s.store.search({ limit: 10 })).records.length, 0);
  await s.server.stop();
});

test('an agent speaking plain TCP to the TLS listener delivers nothing', async (t) => {
  const s = await tlsAuditServer('plain', false);
  const client = new TransportClient({ host: '127.0.0.1', port: s.port, token: TOKEN, agentId: 'plain', ...fast }).start();
  client.send({ ts: 1_700_000_000_000_000, linkType: 1, data: new Uint8Array(60), origLen: 60, interfaceId: 0 });
  t.false(await client.drain(1500));
  await client.stop(0);
  t.is(s.server.stats().batches, 0);
  await s.server.stop();
});

interface Answer {
  status?: number;
  body?: string;
  error?: string;
}

function get(https: boolean, port: number, path: string, extra: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)({ host: '127.0.0.1', port, path, ...extra }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function httpsApi(name: string, tlsYaml: string) {
  const cfg = configWith(name, `api:\n  tls: ${tlsYaml}\n`);
  const store = new SqliteStore({ path: ':memory:' });
  await store.append([{ id: 'r1', kind: 'statement', flowId: 'f', ts: 1_700_000_000_000_000, client: { ip: '127.0.0.1', port: 5 }, server: { ip: '127.0.0.1', port: 3306 }, dbType: 'mysql', status: 'ok', sql: 'SELECT secret_column FROM t' }]);
  const server = createApiServer({ store, tls: listenerTlsOptions(cfg.api.tls!, 'api.tls') });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise<void>((r) => server.close(() => r())).then(() => store.close()) };
}

test('api.tls: the API answers over HTTPS and not over plain HTTP', async (t) => {
  const api = await httpsApi('https', '{ cert: certs/server.crt, key: certs/server.key }');
  const ok = await get(true, api.port, '/api/records', { ca: pki.pem('ca.crt') });
  t.is(ok.status, 200);
  t.true(ok.body!.includes('SELECT secret_column FROM t'));
  const plain = await get(false, api.port, '/api/records');
  t.is(plain.status, undefined, `plain HTTP was answered: ${plain.status} ${plain.body}`);
  t.truthy(plain.error);
  // a client that does not trust the certificate does not talk to it
  t.is((await get(true, api.port, '/api/records')).error, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  await api.close();
});

test('api.tls with requireClientCert: no certificate, or a foreign one, is refused; the CA-signed one is served', async (t) => {
  const api = await httpsApi('mtls', '{ cert: certs/server.crt, key: certs/server.key, ca: certs/ca.crt, requireClientCert: true }');
  const none = await get(true, api.port, '/api/records', { ca: pki.pem('ca.crt') });
  t.is(none.status, undefined);
  t.truthy(none.error);
  const foreign = await get(true, api.port, '/api/records', { ca: pki.pem('ca.crt'), cert: pki.pem('other.crt'), key: pki.pem('other.key') });
  t.is(foreign.status, undefined);
  const signed = await get(true, api.port, '/api/records', { ca: pki.pem('ca.crt'), cert: pki.pem('client.crt'), key: pki.pem('client.key') });
  t.is(signed.status, 200);
  await api.close();
});

test('dbtap serve and dbtap-agent from their configuration files: a replayed capture crosses TLS with client certificates and is served over HTTPS', async (t) => {
  const d = join(pki.dir, 'daemons');
  mkdirSync(d, { recursive: true });
  const serverYaml = join(pki.dir, 'daemons.yaml');
  writeFileSync(serverYaml, [
    `dataDir: ${join(d, 'data')}`,
    'agents:',
    '  listen: [{ host: 127.0.0.1, port: 0 }]',
    `  token: ${TOKEN}`,
    '  tls: { cert: server.crt, key: server.key, ca: ca.crt, requireClientCert: true }',
    'api:',
    '  port: 0',
    '  tls: { cert: server.crt, key: server.key }',
    '',
  ].join('\n'));
  const server = startProcess(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--config', serverYaml], repoRoot);
  t.teardown(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });
  await waitFor(() => / info store /.test(server.out()), 'the server start line', 60_000);
  const started = /agents on 127\.0\.0\.1:(\d+) \(TLS\); API on https:\/\/127\.0\.0\.1:(\d+)/.exec(server.out());
  t.truthy(started, server.out());
  const agentYaml = join(d, 'agent.yaml');
  writeFileSync(agentYaml, [
    'agentId: tls-agent',
    `replay: { path: ${join(repoRoot, 'examples/captures/mariadb-session.pcap')}, pace: fast }`,
    `server: { host: 127.0.0.1, port: ${started![1]}, token: ${TOKEN}, tls: { ca: ../ca.crt, cert: ../client.crt, key: ../client.key } }`,
    `statusSocket: ${join(d, 'agent.sock')}`,
    '',
  ].join('\n'));
  const agent = startProcess(process.execPath, ['--import=tsx', join(repoRoot, 'packages/agent/src/cli.ts'), '--config', agentYaml], repoRoot);
  t.teardown(() => {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
  });
  const api = Number(started![2]);
  let body = '';
  await waitFor(async () => {
    body = (await get(true, api, '/api/records?limit=1000', { ca: pki.pem('ca.crt') })).body ?? '';
    return body.includes('DROP TABLE customers');
  }, 'the replayed records in the API', 60_000, 200);
  t.regex(server.out(), /agent tls-agent connected/);
  t.true(body.includes('"user":"intruder"'), 'the failed login of the capture is there too');
  agent.child.kill('SIGTERM');
  await agent.exited;
  server.child.kill('SIGTERM');
  t.is(await server.exited, 0, server.out());
});

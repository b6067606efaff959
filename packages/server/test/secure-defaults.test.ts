// Safe defaults of dbtap-server and dbtap-agent: files created for the owner
// only, agent tokens long enough not to be guessed, and a warning when the
// agent listener is reachable from other hosts without a token.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, isDbtapError, openCapture, type Frame } from '@dbtap/core';
import { AgentLogger, loadAgentConfig, MIN_AGENT_TOKEN_LENGTH } from '@dbtap/agent';
import { AuditServer, loadServerConfig } from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';
import { startProcess, waitFor } from '../../../test-support/process.js';
import { makeTestPki } from '../../../test-support/tls-recorder.js';

const dir = mkdtempSync(join(tmpdir(), 'dbtap-secure-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const mode = (f: string): string => (statSync(f).mode & 0o777).toString(8);

test('the store file (and its WAL) and the agent log are created 0600 whatever the umask allows', async (t) => {
  const old = process.umask(0o022);
  try {
    const data = join(dir, 'data');
    const server = new AuditServer({ dataDir: data, agentListen: [] });
    const frames: Frame[] = [];
    const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
    for (let f = reader.next(); f !== undefined; f = reader.next()) frames.push({ ...f, data: f.data.slice() });
    reader.close();
    await server.ingest('file', frames);
    await server.endSource('file');
    t.is(mode(join(data, 'audit.db')), '600');
    t.is(mode(join(data, 'audit.db-wal')), '600');
    await server.stop();
    const log = join(dir, 'agent', 'agent.log');
    new AgentLogger(log).log('info', 'started');
    t.is(mode(log), '600');
  } finally {
    process.umask(old);
  }
});

test(`agent tokens shorter than ${MIN_AGENT_TOKEN_LENGTH} characters are refused by server and agent configuration`, (t) => {
  const serverYaml = join(dir, 'short.yaml');
  writeFileSync(serverYaml, 'agents:\n  token: [long-enough-token-0001, s3cret]\n');
  const e1 = t.throws(() => loadServerConfig(serverYaml, {}));
  t.true(isDbtapError(e1) && e1.code === ErrorCodes.CONFIG);
  t.regex(e1!.message, /agents\.token must be at least 16 characters/);
  t.false(e1!.message.includes('s3cret'), 'the refused token is not echoed');
  const e2 = t.throws(() => loadServerConfig(undefined, { DBTAP_AGENT_TOKEN: 'tok' }));
  t.regex(e2!.message, /^environment: DBTAP_AGENT_TOKEN must be at least 16/);
  writeFileSync(serverYaml, 'agents:\n  token: long-enough-token-0001\n');
  t.is(loadServerConfig(serverYaml, {}).agents.token, 'long-enough-token-0001');

  const agentYaml = join(dir, 'agent.yaml');
  writeFileSync(agentYaml, 'capture:\n  device: lo\nserver:\n  host: 127.0.0.1\n  port: 9999\n  token: tiny-tok\n');
  const e3 = t.throws(() => loadAgentConfig(agentYaml, { env: {} }));
  t.true(isDbtapError(e3) && e3.code === ErrorCodes.CONFIG, String(e3));
  t.regex(e3!.message, /token.*at least 16 characters/);
  t.false(e3!.message.includes('tiny-tok'));
  const e4 = t.throws(() => loadAgentConfig(agentYaml, { env: { DBTAP_AGENT_TOKEN: 'also-short' } }));
  t.regex(e4!.message, /DBTAP_AGENT_TOKEN.*at least 16 characters/);
});

test('dbtap serve: an agent listener off loopback without a token is warned about (log and system log); the API serves HTTPS', async (t) => {
  const pki = makeTestPki();
  t.teardown(() => pki.remove());
  const d = join(dir, 'serve');
  const cfg = join(pki.dir, 'server.yaml');
  writeFileSync(cfg, `dataDir: ${d}\nagents:\n  listen: [{ host: 0.0.0.0, port: 0 }]\napi:\n  port: 0\n  tls: { cert: server.crt, key: server.key }\n`);
  const server = startProcess(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--config', cfg], repoRoot);
  t.teardown(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });
  await waitFor(() => / info store /.test(server.out()), 'the start line', 60_000);
  t.regex(server.out(), / warn agents\.token is not set and the agent listener on 0\.0\.0\.0:\d+ is not loopback/);
  const api = /API on https:\/\/127\.0\.0\.1:(\d+)/.exec(server.out());
  t.truthy(api, server.out());
  const status = await new Promise<number | string>((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port: Number(api![1]), path: '/healthz', ca: pki.pem('ca.crt') }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
  t.is(status, 200);
  server.child.kill('SIGTERM');
  t.is(await server.exited, 0, server.out());
  const entries = readFileSync(join(d, 'system.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; detail?: { warning?: string } });
  t.true(entries.some((e) => e.action === 'config.warning' && e.detail?.warning === 'agent-listener-without-token'));
  t.is(mode(join(d, 'audit.db')), '600');
});

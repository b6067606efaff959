// The audit server end to end: an agent replays a real capture over the
// transport, the server decodes it and stores the records before it acks.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, isDbtapError, openCapture, type AuditEvent, type Frame } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { AuditServer, auditCaptureFile, loadServerConfig, SqliteStore } from '@dbtap/server';
import { repoRoot } from '../../../test-support/corpus.js';

test('agent batches become stored records, acknowledged only once stored', async (t) => {
  const store = new SqliteStore({ path: ':memory:' });
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], agentToken: 's3cret' });
  const { agents } = await server.start();
  const port = Number(agents[0]!.split(':').pop());
  const client = new TransportClient({ host: '127.0.0.1', port, token: 's3cret', agentId: 'db1', batchMaxPackets: 7 }).start();
  const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  let sent = 0;
  for (let f = reader.next(); f !== undefined; f = reader.next()) {
    t.true(client.send({ ...f, data: f.data.slice() }));
    sent++;
  }
  reader.close();
  t.true(await client.drain(20_000));
  const cs = await client.stop();
  t.is(cs.ackedPackets, sent);
  // Every connection in the capture ended with FIN: its records are stored by the time of the ack.
  const page = await store.search({ order: 'asc', limit: 100 });
  const kinds = page.records.map((r) => r.kind);
  t.is(kinds.filter((k) => k === 'login').length, 4);
  t.true(page.records.some((r) => r.sql === 'DROP TABLE customers' && r.user === 'root'));
  t.true(page.records.some((r) => r.kind === 'login' && r.status === 'error' && r.user === 'intruder'));
  t.is(server.stats().frames, sent);
  await server.stop();
});

test('a corrupt or invalid config file is refused with DBTAP_E_CONFIG', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cfg-'));
  try {
    const cases: Array<[string, RegExp]> = [
      ['agents: [unclosed', /not valid YAML/],
      ['api:\n  port: 99999\n', /api.port must be a port number/],
      ['nonsense: 1\n', /nonsense must be one of/],
      ['ports: [3306, "x"]\n', /ports\[1\]/],
      // a typo must not leave the agents port open to anyone
      ['agents:\n  tokens: [s3cret]\n', /server\.yaml: agents\.tokens must be one of listen, token, helloTimeoutMs, maxHelloBytes, maxConnections, maxConnectionsPerAddress, tls, maxSeqJump, credentials \(unknown key; did you mean 'token'\?\)/],
      ['agents:\n  tls: { cert: a.pem }\n', /agents\.tls\.key must be a non-empty string/],
      ['api:\n  tls: { cert: a.pem, key: a.key, requireClientCert: yes-please }\n', /api\.tls\.requireClientCert must be true or false/],
      ['api:\n  tls: { cert: a.pem, key: a.key, crt: b.pem }\n', /api\.tls\.crt must be one of cert, key, ca, requireClientCert \(unknown key; did you mean 'cert'\?\)/],
      ['agents:\n  credentials:\n    - { name: db1, tokne: x, agentIds: [db1] }\n', /agents\.credentials\[0\]\.tokne must be .*did you mean 'token'/],
      ['agents:\n  credentials:\n    - { name: db1, token: a-token-of-16-chars }\n', /agents\.credentials\[0\]\.agentIds must be a list/],
      ['agents:\n  credentials:\n    - { name: db1, token: a-token-of-16-chars, agentIds: [db1] }\n    - { name: db2, token: another-token-16-chars, agentIds: [db1] }\n', /agents\.credentials: \[1\] \(db2\): agent id "db1" is already bound to db1/],
      ['agents:\n  credentials:\n    - { name: db1, agentIds: [db1] }\n', /needs token, tokenSha256 or certificateSubject/],
      ['agents:\n  maxSeqJump: 0\n', /agents\.maxSeqJump must be a whole number from 1/],
      ['agents:\n  listen:\n    - { host: 0.0.0.0, prot: 9999 }\n', /agents\.listen\[0\]\.prot must be .*did you mean 'port'/],
      ['agents:\n  listen:\n    - { host: 0.0.0.0 }\n', /agents\.listen\[0\]\.port must be a port number/],
      ['rules:\n  bultin: true\n', /rules\.bultin must be .*did you mean 'builtin'/],
      ['reports:\n  timezone: UTC\n', /reports\.timezone must be .*did you mean 'timeZone'/],
      ['reports:\n  minRisk: severe\n', /reports\.minRisk must be one of none, info, low, medium, high/],
      ['api:\n  users:\n    - { name: a, role: auditor, tokenSha: x }\n', /api\.users\[0\]\.tokenSha: unknown field \(did you mean 'tokenSha256'/],
      ['objects:\n  - { id: a, dbType: mysql, ports: [3306], charest: gbk }\n', /objects\[0\]\.charest: unknown field \(did you mean 'charset'/],
      ['[1, 2]\n', /\(top level\) must be a mapping/],
    ];
    for (const [text, msg] of cases) {
      const f = join(dir, 'server.yaml');
      writeFileSync(f, text);
      const err = t.throws(() => loadServerConfig(f, {}));
      t.true(isDbtapError(err) && err.code === ErrorCodes.CONFIG, text);
      t.regex(err!.message, msg);
      if (!/YAML/.test(msg.source)) t.is((err as { details?: { file?: string } }).details?.file, f, text);
    }
    const missing = t.throws(() => loadServerConfig(join(dir, 'nope.yaml'), {}));
    t.regex(missing!.message, /cannot read config/);
    writeFileSync(join(dir, 'ok.yaml'), 'dataDir: /tmp/x\napi: { port: 8181 }\nports: [3306, 5432]\n');
    const cfg = loadServerConfig(join(dir, 'ok.yaml'), { DBTAP_API: '127.0.0.1:9090' });
    t.is(cfg.dataDir, '/tmp/x');
    t.deepEqual(cfg.ports, [3306, 5432]);
    t.is(cfg.api.port, 9090);
    t.is(cfg.agents.listen[0]!.port, 9999);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('several agents at once: each has its own flows, even with the same addresses and ports', async (t) => {
  const store = new SqliteStore({ path: ':memory:' });
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }] });
  const { agents } = await server.start();
  const port = Number(agents[0]!.split(':').pop());
  const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  const frames = [];
  for (let f = reader.next(); f !== undefined; f = reader.next()) frames.push({ ...f, data: f.data.slice() });
  reader.close();
  // two database hosts whose traffic looks the same (same private addresses, same ports, same times)
  const clients = ['db-a', 'db-b'].map((agentId) => new TransportClient({ host: '127.0.0.1', port, agentId, batchMaxPackets: 5 }).start());
  for (let i = 0; i < frames.length; i++) for (const c of clients) c.send(frames[i]!);
  for (const c of clients) t.true(await c.drain(20_000));
  for (const c of clients) await c.stop();
  // every connection of the capture ends with FIN: its records are stored by the time of the ack
  const page = await store.search({ limit: 1000 });
  t.is(page.records.length, 28, 'both agents are audited in full');
  const byAgent = new Map<string, number>();
  for (const r of page.records) byAgent.set(r.flowId.split('.')[0]!, (byAgent.get(r.flowId.split('.')[0]!) ?? 0) + 1);
  t.deepEqual([...byAgent].sort(), [['db-a', 14], ['db-b', 14]]);
  const sessions = await store.sessions({ limit: 100 });
  t.is(sessions.sessions.length, 8);
  await server.stop();
});

test('report defaults in the config file, with errors naming the key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cfg-'));
  try {
    const f = join(dir, 'server.yaml');
    writeFileSync(f, 'reports:\n  timeZone: Europe/Paris\n  workHours: "08:00-18:00"\n  workDays: mon-fri\n  sensitive: [hr.salaries, customers]\n');
    t.deepEqual(loadServerConfig(f, {}).reports, { workingHours: { timeZone: 'Europe/Paris', start: '08:00', end: '18:00', days: [1, 2, 3, 4, 5] }, sensitiveTables: ['hr.salaries', 'customers'] });
    for (const [text, msg] of [
      ['reports:\n  workHours: "8-18"\n', /reports\.workHours/],
      ['reports:\n  timeZone: Mars/Olympus\n', /reports\.timeZone/],
      ['reports:\n  colour: red\n', /reports\.colour/],
    ] as const) {
      writeFileSync(f, text);
      const err = t.throws(() => loadServerConfig(f, {}));
      t.true(isDbtapError(err) && err.code === ErrorCodes.CONFIG);
      t.regex(err!.message, msg);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the configuration example of docs/server.md loads as documented', (t) => {
  const doc = readFileSync(join(repoRoot, 'docs/server.md'), 'utf8');
  const block = /## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  t.truthy(block, 'docs/server.md has a configuration example');
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cfg-doc-'));
  try {
    // placeholders of the example: a key file, token digests, a rule file
    writeFileSync(join(dir, 'chain.key'), `${'k'.repeat(32)}\n`);
    const text = block!
      .replace('/etc/dbtap/chain.key', join(dir, 'chain.key'))
      .replace('<64 hex digits printed by dbtap token>', 'a'.repeat(64))
      .replace('tokenSha256: ... }', `tokenSha256: ${'b'.repeat(64)} }`)
      .replace('/etc/dbtap/rules/site.yaml', '/dev/null');
    writeFileSync(join(dir, 'server.yaml'), text);
    const cfg = loadServerConfig(join(dir, 'server.yaml'), {});
    t.deepEqual(cfg.api.users.map((u) => `${u.name}:${u.role}`), ['ops:sysadmin', 'sec:secadmin', 'alice:auditor']);
    t.deepEqual(cfg.agents.credentials?.map((c) => `${c.name}:${c.agentIds.join(',')}`), ['db1:db1']);
    t.is(cfg.agents.maxSeqJump, 1_000_000);
    t.deepEqual(cfg.objects.map((o) => o.id), ['erp-prod', 'erp-replica']);
    t.deepEqual(cfg.ruleGroups.map((g) => g.id), ['pci', 'quiet-reporting']);
    t.is(cfg.notifications.length, 2);
    t.truthy(cfg.reports?.workingHours);
    t.truthy(cfg.masking);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with workers two batches are in flight, yet with a slow store and records written one at a time, records and positions commit in batch order', async (t) => {
  // A store whose appends take a while and record what they were given.
  const inner = new SqliteStore({ path: ':memory:' });
  const appends: { ids: string[]; seq: number | undefined }[] = [];
  const store = Object.create(inner) as SqliteStore;
  store.append = async (events, options) => {
    appends.push({ ids: events.map((e) => e.id), seq: options?.position?.seq });
    await new Promise((r) => setTimeout(r, 10));
    return inner.append(events, options);
  };
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], workers: { count: 1 }, maxBatch: 1 });
  const { agents } = await server.start();
  const port = Number(agents[0]!.split(':').pop());
  const client = new TransportClient({ host: '127.0.0.1', port, agentId: 'db1', batchMaxPackets: 12 }).start();
  const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  for (let f = reader.next(); f !== undefined; f = reader.next()) client.send({ ...f, data: f.data.slice() });
  reader.close();
  t.true(await client.drain(20_000));
  await client.stop();
  await server.stop();
  const positions = appends.map((a) => a.seq).filter((s): s is number => s !== undefined);
  t.true(positions.length >= 5, `${positions.length} positions`);
  t.deepEqual(positions, [...positions].sort((a, b) => a - b), 'positions commit in batch order');
  t.is(new Set(positions).size, positions.length);
  // a batch's records all come before the append that carries its position
  const order = appends.flatMap((a) => a.ids);
  t.is(new Set(order).size, order.length, 'no record appended twice');
  const offline = await auditCaptureFile(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  t.is(order.length, offline.events.length, 'every record of an offline audit');
});

for (const workers of [0, 1]) {
  test(`idle flows close by the source's own clock: a capture from the past, fed across a tick of this host's clock, keeps its connections (workers ${workers})`, async (t) => {
    const frames: Frame[] = [];
    const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
    for (let f = reader.next(); f !== undefined; f = reader.next()) frames.push({ ...f, data: f.data.slice() });
    reader.close();
    const store = new SqliteStore({ path: ':memory:' });
    const server = new AuditServer({ store, agentListen: [], ...(workers > 0 ? { workers: { count: workers } } : {}) });
    await server.start();
    const half = Math.floor(frames.length / 2);
    await server.ingest('import:a', frames.slice(0, half));
    // the server's idle check runs every 5 s: the capture's flows are years old by this host's clock
    await new Promise((r) => setTimeout(r, 5600));
    await server.ingest('import:a', frames.slice(half));
    await server.endSource('import:a');
    const stored = (await store.search({ order: 'asc', limit: 1000 })).records;
    await server.stop();
    const offline = (await auditCaptureFile(join(repoRoot, 'examples/captures/mariadb-session.pcap'))).events;
    const key = (e: AuditEvent): string => `${e.kind} ${e.user ?? ''} ${e.sql ?? ''} ${e.midSession === true ? 'mid' : ''}`;
    t.deepEqual(stored.map(key).sort(), offline.map(key).sort());
    t.false(stored.some((e) => e.midSession === true));
  });
}

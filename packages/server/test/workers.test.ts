// Pipelines in worker threads give the records an in-process pipeline gives
// (ids included), keep each connection on one worker, and a worker that dies
// fails only the batch it held.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePacket, type AuditEvent, type Frame } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { corpusFiles, corpusTest, repoRoot } from '../../../test-support/corpus.js';
import { captureFrames } from '../../../test-support/frames.js';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';
import { AuditServer, RecordMasker, SqliteStore, auditFrames, loadRuleSelection, rulesProcessor, type MaskingConfig } from '../src/index.js';
import { toNdjson } from '../src/format.js';
import { loadServerConfig } from '../src/config.js';
import { shardOf, WorkerBatchError, WorkerPool } from '../src/workers.js';

const selection = { builtin: true, files: [] } as const;

function inProcess(frames: Frame[], prefix?: string): string[] {
  const rules = rulesProcessor(loadRuleSelection(selection));
  const { events } = auditFrames(frames, { judge: rules.process, ...(prefix !== undefined ? { flowIdPrefix: prefix } : {}) });
  return events.map((e) => toNdjson(e)).sort();
}

async function throughPool(frames: Frame[], workers: number, batch: number, prefix?: string): Promise<string[]> {
  const pool = new WorkerPool(workers, { rules: selection });
  try {
    const out: AuditEvent[] = [];
    for (let i = 0; i < frames.length; i += batch) out.push(...(await pool.push('src', frames.slice(i, i + batch), prefix)).records);
    out.push(...(await pool.finish('src')).records);
    return out.map((e) => toNdjson(e)).sort();
  } finally {
    await pool.close();
  }
}

test('every frame of a connection goes to one worker, whichever direction', (t) => {
  const frames = repeatMariadbSession(50, 30000, 1000);
  const workerOf = new Map<string, Set<number>>();
  for (const f of frames) {
    const p = decodePacket(f);
    if (p.tcp === undefined) continue;
    const a = `${p.srcIp.join('.')}:${p.tcp.srcPort}`;
    const b = `${p.dstIp.join('.')}:${p.tcp.dstPort}`;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (!workerOf.has(key)) workerOf.set(key, new Set());
    workerOf.get(key)!.add(shardOf(f, 3));
  }
  t.true(workerOf.size >= 200);
  for (const [flow, ws] of workerOf) t.is(ws.size, 1, flow);
  // and the connections spread over the workers
  const used = new Set([...workerOf.values()].map((s) => [...s][0]));
  t.deepEqual([...used].sort(), [0, 1, 2]);
});

test('two workers give the records, ids included, that one in-process pipeline gives', async (t) => {
  const frames = repeatMariadbSession(60, 30000, 1000);
  const expected = inProcess(frames, 'agent.1/');
  t.true(expected.length > 800);
  t.deepEqual(await throughPool(frames, 2, 97, 'agent.1/'), expected);
  for (const f of ['mariadb-session.pcap', 'postgres-session.pcap']) {
    const fr = captureFrames(join(repoRoot, 'examples/captures', f));
    t.deepEqual(await throughPool(fr, 2, 7), inProcess(fr), f);
  }
});

corpusTest('two workers give the in-process records for corpus captures', async (t) => {
  for (const [dir, name] of [['mysql', 'pcap2mysqllog_type-error.pcap'], ['postgresql', 'deepflow_pgsql-all.pcap'], ['mssql-tds', 'ndpi_mssql_tds.pcap']] as const) {
    const file = corpusFiles(dir).find((f) => f.endsWith(`/${name}`));
    if (file === undefined) {
      t.fail(`${dir}/${name} is not in the corpus`);
      continue;
    }
    const frames = captureFrames(file);
    t.deepEqual(await throughPool(frames, 2, 50), inProcess(frames), name);
  }
});

corpusTest('password guessing over several connections from one client: two and three workers raise the in-process alerts, in the same order', async (t) => {
  // Nmap oracle-brute: one client, 11 to 12 connections, ORA-01017 after ORA-01017
  for (const name of ['johnsamples_try-2.pcap', 'johnsamples_11gR2-Nmap-sys-good.pcap', 'johnsamples_Oracle-bunch-Nmap-11gR2.pcap']) {
    const file = corpusFiles('oracle').find((f) => f.endsWith(`/${name}`));
    if (file === undefined) {
      t.fail(`oracle/${name} is not in the corpus`);
      continue;
    }
    const frames = captureFrames(file);
    const { events } = auditFrames(frames, { judge: rulesProcessor(loadRuleSelection(selection)).process });
    const guessing = events.filter((e) => e.alert?.ruleId === 'bruteforce.per-client');
    t.true(guessing.length > 0, name);
    // the alerts name records of several connections: a per-connection count would miss some
    t.true(new Set(guessing.map((e) => e.flowId)).size > 1, name);
    const expected = events.map((e) => toNdjson(e));
    for (const workers of [2, 3]) {
      const pool = new WorkerPool(workers, { rules: selection });
      try {
        const out: AuditEvent[] = [];
        for (let i = 0; i < frames.length; i += 50) out.push(...(await pool.push('src', frames.slice(i, i + 50))).records);
        out.push(...(await pool.finish('src')).records);
        t.deepEqual(out.map((e) => toNdjson(e)), expected, `${name} through ${workers} workers`);
      } finally {
        await pool.close();
      }
    }
  }
});

// Splits the IPv4 packet of an Ethernet frame into fragments of `size` payload bytes (a multiple of 8), IP id `id`.
function fragmentFrame(f: Frame, size: number, id: number): Frame[] {
  const d = f.data;
  const ip = 14;
  const ihl = (d[ip]! & 0x0f) * 4;
  const total = (d[ip + 2]! << 8) | d[ip + 3]!;
  const payload = d.subarray(ip + ihl, ip + total);
  const out: Frame[] = [];
  for (let off = 0; off < payload.length; off += size) {
    const part = payload.subarray(off, Math.min(payload.length, off + size));
    const data = new Uint8Array(ip + ihl + part.length);
    data.set(d.subarray(0, ip + ihl));
    data.set(part, ip + ihl);
    const len = ihl + part.length;
    data[ip + 2] = len >> 8;
    data[ip + 3] = len & 0xff;
    const flags = (off + size < payload.length ? 0x2000 : 0) | (off / 8);
    data[ip + 4] = (id >> 8) & 0xff;
    data[ip + 5] = id & 0xff;
    data[ip + 6] = flags >> 8;
    data[ip + 7] = flags & 0xff;
    out.push({ ...f, data, origLen: data.length });
  }
  return out;
}

test('the IP fragments of a connection\'s TCP segments reach its worker, in whatever order they come', async (t) => {
  const plain = repeatMariadbSession(30, 30000, 1000);
  // every TCP segment with data that fits in fragments is fragmented; every other one sends its fragments last-first
  let n = 0;
  const frames = plain.flatMap((f) => {
    const p = decodePacket(f);
    if (p.tcp === undefined || p.ipVersion !== 4 || p.payload.length < 16) return [f];
    const parts = fragmentFrame(f, 16, n + 1);
    return n++ % 2 === 0 ? parts : parts.reverse();
  });
  t.true(n > 500);
  const expected = inProcess(frames);
  // reassembled in process, the fragments give the records of the unfragmented capture
  t.deepEqual(expected, inProcess(plain));
  t.deepEqual(await throughPool(frames, 2, 61), expected);
  t.deepEqual(await throughPool(frames, 3, 7), expected);
});

test('with masking, the detectors in the main thread judge statements as sent, as in process, and their alerts are masked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-workers-'));
  try {
    // a detector on a value the masking replaces: it only counts if it sees the statement unmasked
    const file = join(dir, 'cards.yaml');
    writeFileSync(file, ['rules:', '  - id: test.card-reads', '    name: Card number in statements', '    risk: high', '    condition: sql contains "4111111111111111"', '    detector:', '      groupBy: [client.ip]', '      window: 10m', '      threshold: 3', ''].join('\n'));
    const rules = { builtin: true, files: [file] };
    const masking: MaskingConfig = { rules: [{ type: 'pattern', builtin: 'card' }] };
    const frames = repeatMariadbSession(20, 30000, 1000);
    const { events } = auditFrames(frames, { judge: rulesProcessor(loadRuleSelection(rules)).process, mask: new RecordMasker(masking).mask });
    const expected = events.map((e) => toNdjson(e));
    t.true(events.filter((e) => e.alert?.ruleId === 'test.card-reads').length >= 5);
    t.false(expected.some((l) => l.includes('4111111111111111')));
    const pool = new WorkerPool(2, { rules, masking });
    try {
      const out: AuditEvent[] = [];
      for (let i = 0; i < frames.length; i += 41) out.push(...(await pool.push('src', frames.slice(i, i + 41))).records);
      out.push(...(await pool.finish('src')).records);
      t.deepEqual(out.map((e) => toNdjson(e)), expected);
    } finally {
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker that dies fails the batch it held, is reported and restarted; the other workers keep their records', async (t) => {
  const frames = repeatMariadbSession(20, 30000, 1000);
  const crashes: Error[] = [];
  const pool = new WorkerPool(2, { rules: selection }, (err) => crashes.push(err));
  try {
    const first = await pool.push('src', frames.slice(0, 400));
    t.true(first.records.length > 0);
    // kill worker 0 while it holds the next batch
    const slot0 = (pool as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots[0]!;
    const pending = pool.push('src', frames.slice(400, 800));
    void slot0.worker.terminate();
    const err = await t.throwsAsync(pending, { instanceOf: WorkerBatchError });
    t.is(err?.code, 'DBTAP_E_WORKER_FAILED');
    t.is(crashes.length, 1);
    t.regex(crashes[0]!.message, /worker 0/);
    // the restarted worker takes the next batches
    const again = await pool.push('src', frames.slice(400));
    const end = await pool.finish('src');
    t.true(again.records.length + end.records.length > 0);
  } finally {
    await pool.close();
  }
});

test('the server with two workers stores the records of an in-process audit, ids included', async (t) => {
  // stamped now: the server's clock closes flows idle for 10 minutes
  const recorded = repeatMariadbSession(40, 30000, 1000);
  const shift = Date.now() * 1000 - recorded[0]!.ts;
  const frames = recorded.map((f) => ({ ...f, ts: f.ts + shift }));
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-workers-'));
  try {
    const store = new SqliteStore({ path: join(dir, 'audit.db') });
    const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], workers: { count: 2, rules: selection } });
    const { agents } = await server.start();
    const port = Number(agents[0]!.split(':').pop());
    const client = new TransportClient({ host: '127.0.0.1', port, agentId: 'w', batchMaxPackets: 64 }).start();
    for (const f of frames) client.send(f);
    t.true(await client.drain(60_000));
    await client.stop();
    await server.stop();
    const reopened = new SqliteStore({ path: join(dir, 'audit.db') });
    const stored = (await reopened.search({ limit: 10_000, order: 'asc' })).records;
    await reopened.close();
    const flowPrefix = `${stored[0]!.flowId.split('/')[0]}/`;
    const expected = inProcess(frames, flowPrefix).map((l) => JSON.parse(l) as AuditEvent);
    t.true(expected.length > 500);
    t.deepEqual(stored.map((e) => `${e.id} ${e.kind} ${e.sql ?? ''} ${e.risk ?? ''}`).sort(), expected.map((e) => `${e.id} ${e.kind} ${e.sql ?? ''} ${e.risk ?? ''}`).sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a server with workers refuses a record processor, mask or decoder registry it could not run, naming them', async (t) => {
  const store = new SqliteStore({ path: ':memory:' });
  const rules = rulesProcessor(loadRuleSelection(selection));
  const err = t.throws(() => new AuditServer({ store, agentListen: [], processRecord: rules.process, mask: (e) => e, workers: { count: 2, rules: selection } }));
  t.is((err as { code?: string }).code, 'DBTAP_E_INVALID_ARGUMENT');
  t.regex(err!.message, /processRecord, mask cannot be used with worker threads/);
  // in the main thread they are used
  t.notThrows(() => new AuditServer({ store, agentListen: [], processRecord: rules.process, workers: { count: 0 } }));
  await store.close();
});

test('the workers key: a whole number from 0, default at least 1, anything else refused with DBTAP_E_CONFIG naming it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-workers-cfg-'));
  try {
    const load = (text: string) => {
      const file = join(dir, 'server.yaml');
      writeFileSync(file, text);
      return loadServerConfig(file);
    };
    t.true(load('dataDir: ./d\n').workers >= 1);
    t.is(load('workers: 0\n').workers, 0);
    t.is(load('workers: 3\n').workers, 3);
    for (const bad of ['workers: -1', 'workers: 1.5', 'workers: two', 'workers: 100000']) {
      const err = t.throws(() => load(`${bad}\n`));
      t.is((err as { code?: string }).code, 'DBTAP_E_CONFIG', bad);
      t.regex(err!.message, /workers/, bad);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Session state kept across a restart of an AuditServer, in process and
// with worker threads: a first server stores batches with their positions
// (and the state of the sessions open after each), then stores the records
// of one more batch but not its position, and stops as a killed server does
// (no flow is closed). A second server on the same store gets the batches
// from that one on, as an agent sends them again. With 0 and 2 workers the
// stored records must be the same, ids included; the re-sent batch is
// stored once; and the records equal one pipeline's over the whole capture.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePacket, ipToString, type AuditEvent, type Frame } from '@dbtap/core';
import { createDefaultRegistry } from '@dbtap/protocols';
import { AuditPipeline, AuditServer, auditFrames, type PipelineStats } from '../src/index.js';
import { shardOf, shardOfKey, type WorkerPool } from '../src/workers.js';
import { corpusDir, corpusTest } from '../../../test-support/corpus.js';
import { captureFrames, exampleFrames } from '../../../test-support/frames.js';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';
import { readAll } from './store-records.js';

const PREFIX = 'a.1/';
const SOURCE = 'agent:a/1';
const ports = [3306, 5432];

// Flows opened after the restart are numbered anew: compare with the whole capture without the flow number.
const view = (e: AuditEvent): string => JSON.stringify({ id: e.id.replace(/#\d+:/, ':'), kind: e.kind, sql: e.sql, params: e.params, user: e.user, database: e.database, status: e.status, midSession: e.midSession });

interface Run {
  records: AuditEvent[];
  resumed: number;
}

/**
 * Batches of `size` frames; the first server commits batches before `cut`
 * with their positions and batch `cut` without; the second resumes at
 * `cut` (reading the kept state at `position`, default the one written).
 */
async function restartAt(frames: readonly Frame[], size: number, cut: number, workers: number, position = SOURCE): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-resume-workers-'));
  try {
    const batches: Frame[][] = [];
    for (let i = 0; i < frames.length; i += size) batches.push(frames.slice(i, i + size));
    const options = { dataDir: dir, agentListen: [], ports, workers: { count: workers } };
    const first = new AuditServer(options);
    await first.start();
    for (let b = 0; b < cut; b++) await first.ingest(SOURCE, batches[b]!, { source: SOURCE, seq: b + 1 }, PREFIX);
    await first.ingest(SOURCE, batches[cut]!, undefined, PREFIX);
    // killed: nothing is finished or flushed; the store and the threads just stop
    await first.store.close();
    await (first as unknown as { pool?: WorkerPool }).pool?.close();

    const second = new AuditServer(options);
    await second.start();
    let stats: PipelineStats | undefined;
    for (let b = cut; b < batches.length; b++) {
      await second.ingest(SOURCE, batches[b]!, { source: position, seq: b + 1 }, PREFIX);
      stats = second.stats().pipelines[0];
    }
    await second.stop();
    return { records: await readAll(join(dir, 'audit.db')), resumed: stats?.resumedSessions ?? 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// PostgreSQL requests still waiting for their responses are not kept (docs/security.md): a cut between a request and
// its response may lose that record, so those captures are judged by the context of the statements stored.
const lostContext = (e: AuditEvent): boolean => e.kind === 'statement' && (e.user === undefined || e.midSession === true || (e.sql ?? '') === '');

const byId = (records: readonly AuditEvent[]): AuditEvent[] => [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/**
 * Restarts at several batches with 0 and 2 workers; returns the sessions
 * resumed in process and the cuts whose records (or resumed sessions)
 * differ between them, or from the whole capture's.
 */
async function compareRestarts(frames: readonly Frame[], size: number, cuts: readonly number[], exact = true): Promise<{ resumed: number; differ: number[]; wrong: number[]; whole: AuditEvent[] }> {
  const whole = auditFrames([...frames], { ports, flowIdPrefix: PREFIX }).events;
  const expected = whole.map(view).sort();
  let resumed = 0;
  const differ: number[] = [];
  const wrong: number[] = [];
  for (const cut of cuts) {
    const inProcess = await restartAt(frames, size, cut, 0);
    const pooled = await restartAt(frames, size, cut, 2);
    if (pooled.resumed !== inProcess.resumed) differ.push(cut);
    resumed += inProcess.resumed;
    if (JSON.stringify(byId(pooled.records)) !== JSON.stringify(byId(inProcess.records))) differ.push(cut);
    for (const run of [inProcess, pooled]) {
      const ids = run.records.map((e) => e.id);
      const same = exact ? JSON.stringify(run.records.map(view).sort()) === JSON.stringify(expected) : !run.records.some(lostContext);
      if (new Set(ids).size !== ids.length || !same) wrong.push(cut);
    }
  }
  return { resumed, differ, wrong, whole };
}

/** Up to `n` batch indexes, spread out, after which one pipeline has session state to keep. */
function cutsOf(frames: readonly Frame[], size: number, n: number): number[] {
  const withState: number[] = [];
  const p = new AuditPipeline({ registry: createDefaultRegistry(), ports: new Map(ports.map((q) => [q, undefined])), onEvent: () => {} });
  for (let b = 0; b * size < frames.length; b++) {
    if (b > 0 && p.sessionStates().sessions > 0) withState.push(b);
    for (const f of frames.slice(b * size, (b + 1) * size)) p.push(f);
  }
  // the batch after the cut is re-sent, so it must exist
  const usable = withState.filter((b) => (b + 1) * size < frames.length);
  return Array.from(new Set(Array.from({ length: Math.min(n, usable.length) }, (_, i) => usable[Math.floor((usable.length * i) / Math.min(n, usable.length))]!)));
}

test('with 0 and 2 workers a restarted server resumes the MySQL and PostgreSQL sessions alike: same records and ids, the re-sent batch stored once (MySQL: the whole capture\'s records)', async (t) => {
  t.timeout(300_000);
  for (const [frames, exact] of [[exampleFrames(), true], [exampleFrames('postgres-session.pcap'), false]] as const) {
    const size = Math.max(2, Math.floor(frames.length / 12));
    const cuts = cutsOf(frames, size, 5);
    const r = await compareRestarts(frames, size, cuts, exact);
    t.true(cuts.length >= 3);
    t.true(r.resumed >= 3, `sessions resumed: ${r.resumed}`);
    t.deepEqual(r.differ, [], 'cuts at which 2 workers stored other records than in process');
    t.deepEqual(r.wrong, [], 'cuts at which the stored records are not the whole capture\'s once each');
  }
});

test('without the kept state the restarted records lose their context (the comparison can fail)', async (t) => {
  t.timeout(120_000);
  const frames = exampleFrames();
  const size = Math.max(2, Math.floor(frames.length / 12));
  const whole = JSON.stringify(auditFrames([...frames], { ports, flowIdPrefix: PREFIX }).events.map(view).sort());
  const lost: number[] = [];
  for (const cut of cutsOf(frames, size, 5)) {
    // the second server's positions are another source's: it finds no kept state
    const r = await restartAt(frames, size, cut, 2, 'agent:other/1');
    t.is(r.resumed, 0);
    if (JSON.stringify(r.records.map(view).sort()) !== whole) lost.push(cut);
  }
  t.true(lost.length >= 2, `cuts that lost context: ${lost.length}`);
});

corpusTest('with 2 workers MySQL prepared statements keep their texts and parameters across a restart, as in process', async (t) => {
  t.timeout(300_000);
  const frames = captureFrames(join(corpusDir, 'mysql/pcap2mysqllog_execute.pcap'));
  const size = Math.max(2, Math.floor(frames.length / 10));
  const cuts = cutsOf(frames, size, 4);
  const r = await compareRestarts(frames, size, cuts);
  t.true(r.whole.some((e) => e.params !== undefined), 'the capture executes prepared statements');
  t.true(cuts.length >= 2);
  t.true(r.resumed >= 2, `sessions resumed: ${r.resumed}`);
  t.deepEqual(r.differ, []);
  t.deepEqual(r.wrong, []);
});

test('a kept session goes to the worker its connection\'s frames go to, whichever end is the client', (t) => {
  let checked = 0;
  const workers = new Set<number>();
  for (const f of repeatMariadbSession(50, 30000, 1000)) {
    const p = decodePacket(f);
    if (p.tcp === undefined) continue;
    const src = `${ipToString(p.srcIp)}:${p.tcp.srcPort}`;
    const dst = `${ipToString(p.dstIp)}:${p.tcp.dstPort}`;
    for (const count of [2, 3]) {
      t.is(shardOfKey(`${src}>${dst}`, count), shardOf(f, count));
      t.is(shardOfKey(`${dst}>${src}`, count), shardOf(f, count));
    }
    workers.add(shardOfKey(`${src}>${dst}`, 3));
    checked++;
  }
  t.true(checked > 1000);
  t.deepEqual([...workers].sort(), [0, 1, 2]);
  t.is(shardOfKey('::1:5000>::1:5432', 3), shardOfKey('::1:5432>::1:5000', 3));
  t.is(shardOfKey('not a key', 3), 0);
});

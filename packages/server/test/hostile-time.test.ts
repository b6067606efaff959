// Absurd timestamps in a legal capture, or already in a store, freeze no
// report: ingest refuses the frames, every report loop is bounded; absurd
// UTC offsets are refused; a truncated capture fails audit as it fails import.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDbtapError, type Frame } from '@dbtap/core';
import { buildReport, parseTime, SqliteStore } from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';
import { exampleFrames } from '../../../test-support/frames.js';
import { reportLog } from './reports-helpers.js';

function dbtap(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), ...args], { encoding: 'utf8', cwd: repoRoot, timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

// A legal pcapng (SHB, one IDB, EPBs with microsecond timestamps) whose
// 64-bit timestamps start at 0xffffffff_00000000 us: the year ~584,000.
function farFuturePcapng(frames: readonly Frame[]): Buffer {
  const blocks: Buffer[] = [];
  const shb = Buffer.alloc(28);
  shb.writeUInt32LE(0x0a0d0d0a, 0); shb.writeUInt32LE(28, 4); shb.writeUInt32LE(0x1a2b3c4d, 8);
  shb.writeUInt16LE(1, 12); shb.writeUInt16LE(0, 14); shb.writeBigInt64LE(-1n, 16); shb.writeUInt32LE(28, 24);
  const idb = Buffer.alloc(20);
  idb.writeUInt32LE(1, 0); idb.writeUInt32LE(20, 4); idb.writeUInt16LE(frames[0]!.linkType, 8); idb.writeUInt32LE(65535, 12); idb.writeUInt32LE(20, 16);
  blocks.push(shb, idb);
  frames.forEach((f, i) => {
    const padded = (f.data.length + 3) & ~3;
    const len = 32 + padded;
    const b = Buffer.alloc(len);
    b.writeUInt32LE(6, 0); b.writeUInt32LE(len, 4); b.writeUInt32LE(0, 8);
    b.writeUInt32LE(0xffffffff, 12); b.writeUInt32LE(i * 1000, 16);
    b.writeUInt32LE(f.data.length, 20); b.writeUInt32LE(f.origLen, 24);
    b.set(f.data, 28); b.writeUInt32LE(len, len - 4);
    blocks.push(b);
  });
  return Buffer.concat(blocks);
}

test('regression: import refuses frames from the year ~584,000 and the compliance report afterwards returns', (t) => {
  t.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-future-'));
  try {
    const frames = exampleFrames();
    writeFileSync(join(dir, 'future.pcapng'), farFuturePcapng(frames));
    const imp = dbtap('import', '--data-dir', dir, join(dir, 'future.pcapng'));
    t.is(imp.code, 0, imp.err);
    t.regex(imp.err, new RegExp(`0 records, ${frames.length} frames refused`));
    const rep = dbtap('report', 'compliance', '--data-dir', dir);
    t.is(rep.code, 0, rep.err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reports over a store already holding absurd timestamps are refused with DBTAP_E_REPORT_RANGE, not looped over', async (t) => {
  t.timeout(60_000);
  const log = reportLog(10);
  for (const far of [1.8e19, 1e300]) {
    const store = new SqliteStore({ path: ':memory:' });
    try {
      await store.append([...log, { ...log[0]!, id: `${log[0]!.id}-far`, ts: far }]);
      for (const kind of ['compliance', 'server'] as const) {
        const err = await t.throwsAsync(buildReport(store, kind, {}));
        t.true(isDbtapError(err, 'DBTAP_E_REPORT_RANGE'), `${kind} ${far}: ${(err as Error).message}`);
      }
      // a range the caller narrows still reports
      const times = log.map((e) => e.ts);
      const ok = await buildReport(store, 'compliance', { from: Math.min(...times), to: Math.max(...times) + 1 });
      t.is(ok.kind, 'compliance');
    } finally {
      await store.close();
    }
  }
});

test('regression: a UTC offset beyond ±14:00 such as +99:00 is refused with DBTAP_E_BAD_QUERY', (t) => {
  for (const bad of ['2024-03-29T10:00:00+99:00', '2024-03-29T10:00:00-14:01', '2024-03-29T10:00+1460', '2024-03-29T10:00:00+05:60']) {
    const err = t.throws(() => parseTime(bad, 'from'));
    t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'), bad);
    t.is((err as { details?: { parameter?: string } }).details?.parameter, 'from', bad);
  }
  t.is(parseTime('2024-03-29T14:00:00+14:00'), Date.UTC(2024, 2, 29) * 1000);
  t.is(parseTime('2024-03-28T10:00:00-14:00'), Date.UTC(2024, 2, 29) * 1000);
  t.is(parseTime('2024-03-29T05:30:00+0530'), Date.UTC(2024, 2, 29) * 1000);
});

test('regression: audit exits 1 on a truncated capture, as import does, and says the capture was truncated', (t) => {
  t.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-trunc-'));
  try {
    const whole = readFileSync(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
    const cut = join(dir, 'cut.pcap');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2))); // ends inside a packet record
    const audit = dbtap('audit', cut);
    t.is(audit.code, 1, audit.err);
    t.regex(audit.err, /capture truncated/);
    t.regex(audit.out, /^\{"/, 'the records before the cut are printed');
    const imp = dbtap('import', '--data-dir', dir, cut);
    t.is(imp.code, 1, imp.err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Sustained ingest: an agent (TransportClient) streams real MariaDB traffic
// over loopback to an AuditServer that decodes it, runs the built-in rules
// and commits the records to SQLite (synchronous=FULL) before acknowledging
// each batch. Reported beside an offline audit of the same frames in the same
// process (decode + rules, no transport, no store), so the ratio is the cost
// of delivery and durable storage.
//
//   node --import=tsx packages/server/bench/ingest.bench.ts
//   DBTAP_BENCH_COPIES=5000   copies of the example session (default 2000: 37,200 frames)
//   DBTAP_BENCH_WORKERS=0,2   pipeline worker counts to run (default: 0 and the server's default)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';
import { AuditServer, SqliteStore, auditFrames, loadRuleSelection, rulesProcessor } from '../src/index.js';
import { defaultWorkerCount } from '../src/workers.js';

const COPIES = Number(process.env.DBTAP_BENCH_COPIES ?? 2000);
const WORKERS = (process.env.DBTAP_BENCH_WORKERS ?? `0,${defaultWorkerCount()}`).split(',').map(Number);

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

async function main(): Promise<void> {
  const frames = repeatMariadbSession(COPIES, 1024, 100_000);
  const bytes = frames.reduce((a, f) => a + f.data.length, 0);

  // baseline: decode + rules in this process (the second of two runs, so both sides are warmed up)
  let offline = 0;
  let baseS = 0;
  let t0 = 0n;
  for (let run = 0; run < 2; run++) {
    const rules = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
    offline = 0;
    t0 = process.hrtime.bigint();
    auditFrames(frames, { collect: false, onEvent: (e) => void (offline += rules.process(e).length) });
    baseS = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  emit({ bench: 'ingest.offline', frames: frames.length, records: offline, seconds: +baseS.toFixed(3), recordsPerSec: Math.round(offline / baseS), framesPerSec: Math.round(frames.length / baseS) });

  let inProcess: number | undefined;
  for (const workers of WORKERS) {
    // beside the in-process rate (workers 0) of the same run, when it ran first
    const rate = await agentToStore(frames, bytes, workers, offline / baseS, inProcess);
    if (workers === 0) inProcess = rate;
  }
}

async function agentToStore(frames: Frame[], bytes: number, workers: number, offlineRate: number, inProcess?: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-ingest-'));
  try {
    const store = new SqliteStore({ path: join(dir, 'audit.db'), synchronous: 'full' });
    const selection = { builtin: true, files: [] };
    const live = rulesProcessor(loadRuleSelection(selection));
    const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], ...(workers === 0 ? { processRecord: live.process } : {}), workers: { count: workers, rules: selection } });
    const { agents } = await server.start();
    const port = Number(agents[0]!.split(':').pop());
    const client = new TransportClient({ host: '127.0.0.1', port, agentId: 'bench', queueMaxPackets: frames.length + 1, queueMaxBytes: bytes * 2 + (1 << 20) }).start();
    const t0 = process.hrtime.bigint();
    for (const f of frames) client.send(f);
    if (!(await client.drain(600_000))) throw new Error('not every batch was acknowledged');
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const st = server.stats();
    const records = st.records + st.alerts;
    const rate = records / s;
    emit({
      bench: 'ingest.agent-to-store', store: 'sqlite', synchronous: 'full', workers, frames: frames.length, mb: +(bytes / 1e6).toFixed(1), batches: st.batches,
      records, seconds: +s.toFixed(3), recordsPerSec: Math.round(rate), framesPerSec: Math.round(frames.length / s), vsOffline: +(rate / offlineRate).toFixed(3),
      ...(inProcess !== undefined ? { vsInProcess: +(rate / inProcess).toFixed(3) } : {}),
    });
    await client.stop();
    await server.stop();
    return rate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

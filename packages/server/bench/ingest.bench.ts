// Sustained ingest: an agent (TransportClient) streams real MariaDB traffic
// over loopback to an AuditServer that decodes it, runs the built-in rules
// and commits the records to SQLite (synchronous=FULL) before acknowledging
// each batch. Reported beside an offline audit of the same frames in the same
// process (decode + rules, no transport, no store), so the ratio is the cost
// of delivery and durable storage.
//
//   node --import=tsx packages/server/bench/ingest.bench.ts
//   DBTAP_BENCH_COPIES=5000   copies of the example session (default 2000: 37,200 frames)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TransportClient } from '@dbtap/agent';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';
import { AuditServer, SqliteStore, auditFrames, loadRuleSelection, rulesProcessor } from '../src/index.js';

const COPIES = Number(process.env.DBTAP_BENCH_COPIES ?? 2000);

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

  const dir = mkdtempSync(join(tmpdir(), 'dbtap-ingest-'));
  try {
    const store = new SqliteStore({ path: join(dir, 'audit.db'), synchronous: 'full' });
    const live = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
    const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], processRecord: live.process });
    const { agents } = await server.start();
    const port = Number(agents[0]!.split(':').pop());
    const client = new TransportClient({ host: '127.0.0.1', port, agentId: 'bench', queueMaxPackets: frames.length + 1, queueMaxBytes: bytes * 2 + (1 << 20) }).start();
    t0 = process.hrtime.bigint();
    for (const f of frames) client.send(f);
    if (!(await client.drain(600_000))) throw new Error('not every batch was acknowledged');
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const st = server.stats();
    const records = st.records + st.alerts;
    emit({
      bench: 'ingest.agent-to-store', store: 'sqlite', synchronous: 'full', frames: frames.length, mb: +(bytes / 1e6).toFixed(1), batches: st.batches,
      records, seconds: +s.toFixed(3), recordsPerSec: Math.round(records / s), framesPerSec: Math.round(frames.length / s), vsOffline: +(records / s / (offline / baseS)).toFixed(3),
    });
    await client.stop();
    await server.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

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
import { openCapture, type Frame } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { AuditServer, SqliteStore, auditFrames, loadRuleSelection, rulesProcessor } from '../src/index.js';

const COPIES = Number(process.env.DBTAP_BENCH_COPIES ?? 2000);

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** The example MariaDB capture repeated with fresh client ports and times (Ethernet, IPv4). */
function workload(): Frame[] {
  const r = openCapture(new URL('../../../examples/captures/mariadb-session.pcap', import.meta.url).pathname);
  const base: Frame[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) base.push({ ...f, data: f.data.slice() });
  r.close();
  const port = (d: Uint8Array, at: number): number => (d[at]! << 8) | d[at + 1]!;
  const client = (d: Uint8Array): number => (port(d, 34) === 3306 ? port(d, 36) : port(d, 34));
  const ports = [...new Set(base.map((f) => client(f.data)))];
  const out: Frame[] = [];
  for (let i = 0; i < COPIES; i++) {
    for (const f of base) {
      const data = f.data.slice();
      const p = 1024 + ((i * ports.length + ports.indexOf(client(data))) % 60000);
      const at = port(data, 34) === 3306 ? 36 : 34;
      data[at] = p >> 8;
      data[at + 1] = p & 0xff;
      out.push({ ...f, data, ts: f.ts + i * 100_000 });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const frames = workload();
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

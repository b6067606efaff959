// End to end: a real agent process (dbtap-agent, replay source) replays a
// sysbench OLTP capture of the local MariaDB at increasing speeds to an
// AuditServer in this process (pipelines in worker threads, built-in rules,
// SQLite store); each run's stored records are compared with an offline
// audit of the same capture. Prints one line per run (rate, loss, server and
// agent CPU and peak memory) and the highest rate with zero loss.
//
//   node --import=tsx packages/server/bench/e2e.bench.ts
//   DBTAP_BENCH_WORKERS=2      pipeline workers (default: the server's default, cores - 1)
//   DBTAP_BENCH_WRITER_THREAD=0  appends in the main thread (default with workers: in the store's writer thread, as the daemon does)
//   DBTAP_BENCH_SPEEDS=1,2,0   replay speeds, times the recorded pace; 0 = as fast as acknowledged
//   DBTAP_BENCH_FRAMES=0       frames of the capture replayed (its first ones; 0 = all of its 8 s,
//                              about 140,000 records: enough for the store to reach its steady rate)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openCapture, PcapWriter } from '@dbtap/core';
import { sysbenchCapture } from '../../../test-support/bench-capture.js';
import { AuditServer, SqliteStore, auditCaptureFile, loadRuleSelection, rulesProcessor } from '../src/index.js';
import { readAll } from '../test/store-records.js';
import { defaultWorkerCount } from '../src/workers.js';

const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const WORKERS = Number(process.env.DBTAP_BENCH_WORKERS ?? defaultWorkerCount());
const WRITER_THREAD = WORKERS > 0 && process.env.DBTAP_BENCH_WRITER_THREAD !== '0';
const SPEEDS = (process.env.DBTAP_BENCH_SPEEDS ?? '1,2,0').split(',').map(Number);
const FRAMES = Number(process.env.DBTAP_BENCH_FRAMES ?? 0) || Infinity;
const selection = { builtin: true, files: [] };

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

// Alerts of windowed detectors are counted per worker (see docs/server.md); the rest must all arrive.
const comparable = (e: { alert?: { group?: unknown } }): boolean => e.alert?.group === undefined;

/** Ids of the comparable records stored, without the agent prefix of their flow ids. */
async function storedIds(path: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const r of await readAll(path)) if (comparable(r)) ids.add(r.id.slice(r.id.indexOf('/') + 1));
  return ids;
}

// The first `FRAMES` frames, stamped now: the server's clock closes flows idle for 10 minutes.
function shiftToNow(from: string, to: string): void {
  const r = openCapture(from);
  let w: PcapWriter | undefined;
  let shift = 0;
  try {
    let n = 0;
    for (let f = r.next(); f !== undefined && n < FRAMES; f = r.next(), n++) {
      if (w === undefined) {
        w = PcapWriter.open(to, { linkType: f.linkType });
        shift = Date.now() * 1000 - f.ts;
      }
      w.write({ ...f, ts: f.ts + shift });
    }
  } finally {
    r.close();
    w?.close();
  }
}

interface AgentRun {
  code: number | null;
  cpuSeconds: number;
  maxRssMb: number;
}

// GNU time reports the agent's CPU and peak memory when it exits.
function runAgent(config: string): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-f', 'dbtap-bench-time %U %S %M', process.execPath, join(repoRoot, 'packages/agent/bin/dbtap-agent.js'), 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const m = /dbtap-bench-time ([\d.]+) ([\d.]+) (\d+)/.exec(err);
      if (!m) return reject(new Error(`agent gave no figures (exit ${code}): ${err.slice(-300)}`));
      resolve({ code, cpuSeconds: Number(m[1]) + Number(m[2]), maxRssMb: Math.round(Number(m[3]) / 1024) });
    });
  });
}

async function run(replay: string, speed: number, expected: ReadonlySet<string>): Promise<{ recordsPerSec: number; lost: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-e2e-'));
  try {
    const dbPath = join(dir, 'audit.db');
    const rules = rulesProcessor(loadRuleSelection(selection));
    const server = new AuditServer({ store: new SqliteStore({ path: dbPath, writerThread: WRITER_THREAD }), agentListen: [{ host: '127.0.0.1', port: 0 }], ...(WORKERS === 0 ? { processRecord: rules.process } : {}), workers: { count: WORKERS, rules: selection } });
    const { agents } = await server.start();
    const port = Number(agents[0]!.split(':').pop());
    const config = join(dir, 'agent.json');
    writeFileSync(config, JSON.stringify({ agentId: 'e2e', replay: { path: replay, pace: speed > 0 ? 'recorded' : 'fast', ...(speed > 0 ? { speed } : {}) }, server: { host: '127.0.0.1', port }, statusSocket: join(dir, 'agent.sock'), logFile: join(dir, 'agent.log') }));
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    const cpu0 = process.cpuUsage();
    // how long the main thread (agents, stateful rules, the API) was held up at a time
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const t0 = process.hrtime.bigint();
    const agent = await runAgent(config);
    loop.disable();
    await server.stop();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    const stored = await storedIds(dbPath);
    let lost = 0;
    for (const id of expected) if (!stored.has(id)) lost++;
    const recordsPerSec = Math.round(stored.size / seconds);
    emit({
      bench: 'e2e.agent-server-sqlite', workers: WORKERS, writerThread: WRITER_THREAD, speed: speed > 0 ? speed : 'fast', agentExit: agent.code, expected: expected.size, stored: stored.size, lost,
      seconds: +seconds.toFixed(2), recordsPerSec, serverCpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2), serverPeakRssMb: Math.round(peakRss / 1e6),
      mainThreadDelayP99Ms: +(loop.percentile(99) / 1e6).toFixed(1), mainThreadDelayMaxMs: +(loop.max / 1e6).toFixed(1),
      agentCpuSeconds: +agent.cpuSeconds.toFixed(2), agentMaxRssMb: agent.maxRssMb,
    });
    return { recordsPerSec, lost };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-e2e-replay-'));
  let best: { speed: number; recordsPerSec: number } | undefined;
  try {
    const replay = join(dir, 'replay.pcap');
    shiftToNow(await sysbenchCapture(), replay);
    const rules = rulesProcessor(loadRuleSelection(selection));
    const expected = new Set<string>();
    await auditCaptureFile(replay, { collect: false, judge: rules.process, onEvent: (e) => void (comparable(e) && expected.add(e.id)) });
    for (const speed of SPEEDS) {
      const r = await run(replay, speed, expected);
      if (r.lost === 0 && (best === undefined || r.recordsPerSec > best.recordsPerSec)) best = { speed, recordsPerSec: r.recordsPerSec };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  emit({ bench: 'e2e.best-without-loss', workers: WORKERS, speed: best === undefined ? null : best.speed > 0 ? best.speed : 'fast', recordsPerSec: best?.recordsPerSec ?? 0 });
}

await main();

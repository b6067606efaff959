// Live, as deployed: sysbench drives the local MariaDB at fixed rates while a
// real dbtap-agent captures `lo` and forwards to an AuditServer in this
// process (pipelines in worker threads, built-in rules, SQLite store). Each
// run is checked three ways:
//   - against MariaDB's general log: every statement the server logged for
//     the run's connections must be stored, with its text;
//   - against tcpdump, capturing the same port beside the agent: an offline
//     audit of its file must equal what was stored;
//   - the agent's own kernel counters: the frames tcpdump saw that the agent
//     did not deliver must equal the drops the agent reports.
// Prints one line per rate and the highest rate with no lost statement.
//
//   node --import=tsx packages/server/bench/live.bench.ts
//   DBTAP_BENCH_LIVE_RATES=100,300,600,0   sysbench events/s (oltp_read_write, about 18 statements each; 0 = flat out)
//   DBTAP_BENCH_LIVE_SECONDS=15            seconds per rate
//   DBTAP_BENCH_LIVE_UNLOGGED=1            then one flat-out run with the general log off (it halves
//                                          MariaDB's rate here), checked against tcpdump only; 0 skips it
//   DBTAP_BENCH_WORKERS=1                  pipeline workers (default: the server's default, cores - 1)
//
// Needs root (capture on lo), tcpdump, sysbench and MariaDB on 127.0.0.1:3306;
// prints why and exits 0 when one is missing. The general log is switched on
// for each run and restored after it, also on failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '@dbtap/core';
import { readAgentStatus, type AgentStatus } from '@dbtap/agent';
import { canCapture } from '../../../test-support/live-capture.js';
import { withDbLogLock } from '../../../test-support/db-lock.js';
import { admin, enableGeneralLog, mysqlAvailable, serverText } from '../../protocols/test/helpers/mysql-log.js';
import { AuditServer, SqliteStore, auditCaptureFile, loadRuleSelection, rulesProcessor } from '../src/index.js';
import { readAll } from '../test/store-records.js';
import { cpuSeconds, peakRssMb } from '../../../test-support/proc.js';
import { defaultWorkerCount } from '../src/workers.js';

const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const RATES = (process.env.DBTAP_BENCH_LIVE_RATES ?? '100,300,600,0').split(',').map(Number);
const SECONDS = Number(process.env.DBTAP_BENCH_LIVE_SECONDS ?? 15);
const UNLOGGED = process.env.DBTAP_BENCH_LIVE_UNLOGGED !== '0';
const WORKERS = Number(process.env.DBTAP_BENCH_WORKERS ?? defaultWorkerCount());
const USER = 'dbtap_live';
const DB = 'dbtap_live';
const selection = { builtin: true, files: [] };
const sysbenchArgs = ['--db-driver=mysql', '--mysql-host=127.0.0.1', '--mysql-port=3306', `--mysql-user=${USER}`, `--mysql-db=${DB}`, '--tables=4', '--table-size=10000'];

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const exited = (p: ChildProcess): Promise<void> => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.on('exit', () => r())));

/** Why the bench cannot run here, or undefined. */
async function missing(): Promise<string | undefined> {
  if (!canCapture()) return 'needs capture rights on lo (root)';
  for (const tool of ['tcpdump', 'sysbench']) if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) return `needs ${tool}`;
  if (!(await mysqlAvailable())) return 'needs MariaDB on 127.0.0.1:3306';
  return undefined;
}

/** Multiset of statement texts. */
function bag(texts: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of texts) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
}

/** How many of `want` are not in `have` (counting repeats). */
function missingFrom(want: ReadonlyMap<string, number>, have: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const [t, c] of want) n += Math.max(0, c - (have.get(t) ?? 0));
  return n;
}

const statementText = (e: AuditEvent): string | undefined => (e.kind === 'statement' && e.user === USER && e.sql !== undefined ? serverText(e.sql) : undefined);

interface Tcpdump {
  captured: number;
  receivedByFilter: number;
  droppedByKernel: number;
}

/** Starts tcpdump on lo; `stop` ends it and returns its own counters. */
async function startTcpdump(file: string): Promise<{ stop(): Promise<Tcpdump> }> {
  const p = spawn('tcpdump', ['-i', 'lo', '-s', '0', '-B', '65536', '-n', '-w', file, 'tcp port 3306'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!/listening on/.test(err)) {
    if (p.exitCode !== null || Date.now() > deadline) throw new Error(`tcpdump did not start: ${err.slice(-300)}`);
    await sleep(20);
  }
  return {
    async stop(): Promise<Tcpdump> {
      p.kill('SIGINT');
      await exited(p);
      const n = (what: string): number => Number(new RegExp(`(\\d+) packets? ${what}`).exec(err)?.[1] ?? NaN);
      return { captured: n('captured'), receivedByFilter: n('received by filter'), droppedByKernel: n('dropped by kernel') };
    },
  };
}

/** Runs sysbench oltp_read_write for {@link SECONDS} at `rate` events/s (0 = flat out); queries/s it reports. */
async function sysbench(rate: number): Promise<{ queries: number; queriesPerSec: number }> {
  const p = spawn('sysbench', ['oltp_read_write', ...sysbenchArgs, '--threads=4', `--time=${SECONDS}`, `--rate=${rate}`, '--db-ps-mode=disable', 'run'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await exited(p);
  const m = /queries:\s+(\d+)\s+\(([\d.]+) per sec/.exec(out);
  if (p.exitCode !== 0 || !m) throw new Error(`sysbench failed (${p.exitCode}): ${out.slice(-400)}`);
  return { queries: Number(m[1]), queriesPerSec: Math.round(Number(m[2])) };
}

interface RunResult {
  rate: number;
  lost: number;
}

async function run(rate: number, withLog: boolean): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-live-'));
  const rules = rulesProcessor(loadRuleSelection(selection));
  const dbPath = join(dir, 'audit.db');
  const pcap = join(dir, 'tcpdump.pcap');
  const server = new AuditServer({ store: new SqliteStore({ path: dbPath, writerThread: WORKERS > 0 }), agentListen: [{ host: '127.0.0.1', port: 0 }], ...(WORKERS === 0 ? { processRecord: rules.process } : {}), workers: { count: WORKERS, rules: selection } });
  let agent: ChildProcess | undefined;
  let serverStopped = false;
  try {
    const { agents } = await server.start();
    const port = Number(agents[0]!.split(':').pop());
    const socket = join(dir, 'agent.sock');
    const config = join(dir, 'agent.json');
    writeFileSync(config, JSON.stringify({ agentId: 'live', capture: { device: 'lo', filter: 'tcp port 3306' }, server: { host: '127.0.0.1', port }, statusSocket: socket, logFile: join(dir, 'agent.log') }));
    agent = spawn(process.execPath, [join(repoRoot, 'packages/agent/bin/dbtap-agent.js'), 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let agentErr = '';
    agent.stderr!.on('data', (d: Buffer) => (agentErr += d.toString()));
    let status: AgentStatus | undefined;
    for (let i = 0; i < 200 && !(status?.connected && status.source.running); i++) {
      await sleep(50);
      status = await readAgentStatus(socket).catch(() => undefined);
    }
    if (!status?.connected) throw new Error(`the agent did not start: ${agentErr.slice(-300)}`);
    const tcpdump = await startTcpdump(pcap);
    const log = withLog ? await enableGeneralLog() : undefined;
    let sb: { queries: number; queriesPerSec: number };
    let logged: string[] | undefined;
    let logins: number | undefined;
    try {
      const cpu0 = process.cpuUsage();
      const agent0 = cpuSeconds(agent.pid);
      let peakRss = process.memoryUsage().rss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
      const t0 = Date.now();
      sb = await sysbench(rate);
      const trafficEnd = Date.now();
      // caught up: nothing left in the agent's queue, and nothing new captured for a while
      let last = -1;
      for (;;) {
        await sleep(500);
        status = await readAgentStatus(socket);
        if (status.transport.queuedPackets === 0 && status.source.frames === last) break;
        last = status.source.frames;
      }
      const caughtUp = Date.now();
      clearInterval(sampler);
      // before the log is read: that connection is port 3306 traffic too
      const dump = await tcpdump.stop();
      if (log !== undefined) {
        const entries = await log.read(USER);
        logged = entries.filter((e) => e.command === 'Query').map((e) => serverText(e.argument.toString('utf8')));
        logins = entries.filter((e) => e.command === 'Connect').length;
      }
      const finalStatus = status;
      const agentCpu = cpuSeconds(agent.pid);
      const agentPeakRssMb = peakRssMb(agent.pid!);
      agent.kill('SIGTERM');
      await exited(agent);
      await server.stop();
      serverStopped = true;
      const cpu = process.cpuUsage(cpu0);
      const stored = (await readAll(dbPath)).map(statementText).filter((t): t is string => t !== undefined);
      const offline: string[] = [];
      await auditCaptureFile(pcap, {
        collect: false,
        judge: rules.process,
        onEvent: (e) => {
          const t = statementText(e);
          if (t !== undefined) offline.push(t);
        },
      });
      const logBag = logged === undefined ? undefined : bag(logged);
      const storedBag = bag(stored);
      const offlineBag = bag(offline);
      const src = finalStatus.source;
      const lost = logBag === undefined ? 0 : missingFrom(logBag, storedBag);
      emit({
        bench: 'live.sysbench-agent-server-sqlite', workers: WORKERS, targetEventsPerSec: rate > 0 ? rate : 'flat out', seconds: SECONDS,
        sysbenchQueries: sb.queries, queriesPerSec: sb.queriesPerSec, generalLog: withLog, logLogins: logins ?? null, logStatements: logged?.length ?? null,
        stored: stored.length, lostVsLog: logBag === undefined ? null : lost, extraVsLog: logBag === undefined ? null : missingFrom(storedBag, logBag),
        offline: offline.length, lostVsTcpdump: missingFrom(offlineBag, storedBag), extraVsTcpdump: missingFrom(storedBag, offlineBag),
        agentFrames: src.frames, agentKernelReceived: src.kernelReceived ?? null, agentKernelDrops: src.kernelDrops ?? null, agentInterfaceDrops: src.interfaceDrops ?? null,
        agentQueueDrops: finalStatus.transport.droppedPackets, tcpdumpCaptured: dump.captured, tcpdumpKernelDrops: dump.droppedByKernel,
        framesAgentMissed: dump.captured - src.frames,
        catchUpSeconds: +((caughtUp - trafficEnd) / 1000).toFixed(1), serverCpuPerSec: +((cpu.user + cpu.system) / 1e6 / ((caughtUp - t0) / 1000)).toFixed(2),
        serverPeakRssMb: Math.round(peakRss / 1e6),
        agentCpuPerSec: +((agentCpu - agent0) / ((caughtUp - t0) / 1000)).toFixed(3), agentPeakRssMb,
      });
      return { rate, lost: lost + missingFrom(offlineBag, storedBag) };
    } finally {
      await log?.restore(USER);
    }
  } finally {
    if (agent !== undefined && agent.exitCode === null) agent.kill('SIGKILL');
    if (!serverStopped) await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  }
}

const sql = (statements: string[]): Promise<void> =>
  admin(async (c) => {
    for (const s of statements) await c.query(s);
  });

async function main(): Promise<void> {
  const why = await missing();
  if (why !== undefined) {
    console.error(`live bench skipped: ${why}`);
    return;
  }
  await sql([
    `DROP DATABASE IF EXISTS ${DB}`, `CREATE DATABASE ${DB}`,
    `CREATE USER IF NOT EXISTS '${USER}'@'localhost'`, `CREATE USER IF NOT EXISTS '${USER}'@'127.0.0.1'`,
    `GRANT ALL ON ${DB}.* TO '${USER}'@'localhost'`, `GRANT ALL ON ${DB}.* TO '${USER}'@'127.0.0.1'`,
  ]);
  let best: number | undefined;
  try {
    const prep = spawnSync('sysbench', ['oltp_read_write', ...sysbenchArgs, 'prepare'], { encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr}`);
    for (const rate of RATES) {
      const r = await withDbLogLock(() => run(rate, true));
      if (r.lost === 0 && (best === undefined || best !== 0)) best = rate;
    }
    if (UNLOGGED) await run(0, false);
  } finally {
    await sql([`DROP DATABASE IF EXISTS ${DB}`, `DROP USER IF EXISTS '${USER}'@'localhost'`, `DROP USER IF EXISTS '${USER}'@'127.0.0.1'`]);
  }
  emit({ bench: 'live.best-without-loss', workers: WORKERS, targetEventsPerSec: best === undefined ? null : best > 0 ? best : 'flat out' });
}

await main();

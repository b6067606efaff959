// DRDA decoder throughput on real traffic, beside tshark on the same file: a
// capture recorded once against Derby's Network Server (DrdaBench.java:
// prepared inserts, point queries with rows, updates, one full scan; about
// 60,000 DRDA commands over one connection), kept in .bench/. Prints one
// JSON line per case:
//   framer-only  - baseline: cutting the streams into DSSs and DDM objects, no records
//   session      - the decoder alone: a session fed the reassembled streams held in memory
//   pipeline     - the whole audit path: read the file, decode frames, reassemble, detect, decode
//   tshark       - `tshark --enable-heuristic drda_tcp -Y drda.sqlstatement -T fields -e drda.sqlstatement`
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drda } from '@dbtap/protocols';
import { best, bestAudit, bestTshark, loadStreams, mbPerSec as mb, runSessions, type Stream } from '../../../test-support/bench-streams.js';
import { startDerby } from '../../../test-support/derby.js';
import { DssAssembler } from '../src/drda/framer.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const benchDir = join(here, '..', '..', '..', '.bench');
const COMMANDS = 60_000;

/** Records the capture once with dumpcap (needs root, java and the Derby packages). */
async function derbyCapture(): Promise<{ file: string; port: number }> {
  const file = join(benchDir, 'drda-derby.pcap');
  const portFile = `${file}.port`;
  if (existsSync(file) && existsSync(portFile) && statSync(file).size > 1_000_000) return { file, port: Number(readFileSync(portFile, 'utf8')) };
  mkdirSync(benchDir, { recursive: true });
  const derby = await startDerby();
  try {
    const cap = spawn('dumpcap', ['-q', '-i', 'lo', '-f', `tcp port ${derby.port}`, '-s', '262144', '-B', '64', '-P', '-w', file], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    await derby.java('DrdaBench', readFileSync(join(here, 'DrdaBench.java'), 'utf8'), [String(derby.port), String(COMMANDS / 3)]);
    await new Promise((r) => setTimeout(r, 1000));
    const done = new Promise((r) => cap.once('exit', r));
    cap.kill('SIGTERM');
    await done;
    spawnSync('sh', ['-c', `echo ${derby.port} > '${portFile}'`]);
    return { file, port: derby.port };
  } finally {
    await derby.stop();
  }
}

function runFramers(streams: Stream[]): number {
  let objects = 0;
  for (const s of streams) {
    const f = [0, 1].map(() => new DssAssembler((d) => (objects += d.objects.length), 64 << 20, false));
    for (const [d, b] of s.chunks) {
      if (typeof b === 'number') f[d]!.gap(b);
      else f[d]!.push(b);
    }
  }
  return objects;
}

const line = (c: string, fields: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'drda', capture: 'derby-jdbc', case: c, ...fields }));

const { file, port } = process.env.DBTAP_DRDA_BENCH_CAPTURE !== undefined ? { file: process.env.DBTAP_DRDA_BENCH_CAPTURE, port: Number(process.env.DBTAP_DRDA_BENCH_PORT ?? 1527) } : await derbyCapture();
const fileBytes = statSync(file).size;
const { streams, payload } = loadStreams(file, port);
for (let i = 0; i < 2; i++) {
  runFramers(streams);
  runSessions(drda, streams, 0);
}
const framer = best(() => runFramers(streams));
line('framer-only', { streams: streams.length, payloadMb: +(payload / 1e6).toFixed(1), seconds: +framer.seconds.toFixed(3), mbPerSec: mb(payload, framer.seconds), objectsPerSec: Math.round(framer.result / framer.seconds) });
for (const maxRows of [0, 5]) {
  const r = best(() => runSessions(drda, streams, maxRows));
  line(maxRows === 0 ? 'session' : 'session-maxRows-5', {
    statements: r.result.statements,
    seconds: +r.seconds.toFixed(3),
    mbPerSec: mb(payload, r.seconds),
    statementsPerSec: Math.round(r.result.statements / r.seconds),
    vsFramer: +(framer.seconds / r.seconds).toFixed(2),
  });
}

const { seconds: pipelineSeconds, statements, frames } = await bestAudit(file, [port]);
line('pipeline', { file, fileMb: +(fileBytes / 1e6).toFixed(1), frames, statements, seconds: +pipelineSeconds.toFixed(3), mbPerSec: mb(fileBytes, pipelineSeconds), statementsPerSec: Math.round(statements / pipelineSeconds) });

const shark = bestTshark(['-r', file, '--enable-heuristic', 'drda_tcp', '-Y', 'drda.sqlstatement', '-T', 'fields', '-e', 'drda.sqlstatement']);
const tsharkSeconds = shark?.seconds ?? Infinity;
const queries = shark?.lines ?? -1;
if (queries >= 0) {
  line('tshark', { queries, seconds: +tsharkSeconds.toFixed(3), mbPerSec: mb(fileBytes, tsharkSeconds), queriesPerSec: Math.round(queries / tsharkSeconds) });
  line('ratio', { pipelineVsTshark: +(tsharkSeconds / pipelineSeconds).toFixed(1) });
}

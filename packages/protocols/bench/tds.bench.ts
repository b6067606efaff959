// TDS decoder throughput on real client traffic, beside tshark on the same
// file. The capture is recorded once on lo (test-support/tds-traffic.ts):
// tedious over four connections sends 20,000 statements (sp_executesql with
// parameters and a result set, prepared sp_execute, SQL batches, inserts with
// nvarchar/varchar parameters) to the test responder. Prints one JSON line per case:
//   framer-only  - baseline: the kit Framer cutting the same bytes into TDS packets, no decoding
//   session      - the decoder alone: sessions fed the reassembled streams held in memory
//   pipeline     - the whole audit path: read the file, decode frames, reassemble, detect, decode
//   tshark       - `tshark -r F -d tcp.port==P,tds -Y "tds.query || tds.type == 3" -T fields -e tds.query -e tds.rpc.name`
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Framer, tds } from '@dbtap/protocols';
import { recordTds } from '../../../test-support/tds-traffic.js';
import { resyncAt, streamFormat } from '../src/tds/framer.js';
import { best, bestAudit, bestTshark, loadStreams, mbPerSec as mb, runSessions, type Stream } from '../../../test-support/bench-streams.js';

const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '../../..');

async function capture(): Promise<{ file: string; port: number }> {
  const dir = join(repoRoot, '.bench');
  const file = join(dir, 'tds-traffic.pcap');
  const meta = join(dir, 'tds-traffic.json');
  if (existsSync(file) && existsSync(meta) && statSync(file).size > 1_000_000) return { file, port: (JSON.parse(readFileSync(meta, 'utf8')) as { port: number }).port };
  mkdirSync(dir, { recursive: true });
  const port = await recordTds(file, { statements: 20_000, connections: 4, password: 'bench-pw' });
  writeFileSync(meta, JSON.stringify({ port }));
  return { file, port };
}

function runFramers(streams: Stream[]): number {
  let packets = 0;
  const sink = (): void => {
    packets++;
  };
  for (const s of streams) {
    const f = [new Framer(streamFormat, sink, { maxMessageBytes: 64 << 20, resync: resyncAt }), new Framer(streamFormat, sink, { maxMessageBytes: 64 << 20, resync: resyncAt })];
    for (const [d, b] of s.chunks) {
      if (typeof b === 'number') f[d]!.gap(b);
      else f[d]!.push(b);
    }
  }
  return packets;
}

const line = (c: string, fields: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'tds', capture: 'tedious-mixed', case: c, ...fields }));

const { file, port } = await capture();
const fileBytes = statSync(file).size;
const { streams, payload } = loadStreams(file, port);
for (let i = 0; i < 2; i++) {
  runFramers(streams);
  runSessions(tds, streams, 0);
  runSessions(tds, streams, 5);
}
const framer = best(() => runFramers(streams));
line('framer-only', { streams: streams.length, payloadMb: +(payload / 1e6).toFixed(1), seconds: +framer.seconds.toFixed(3), mbPerSec: mb(payload, framer.seconds), packetsPerSec: Math.round(framer.result / framer.seconds) });
for (const maxRows of [0, 5]) {
  const r = best(() => runSessions(tds, streams, maxRows));
  line(maxRows === 0 ? 'session' : 'session-maxRows-5', {
    statements: r.result.statements,
    seconds: +r.seconds.toFixed(3),
    mbPerSec: mb(payload, r.seconds),
    statementsPerSec: Math.round(r.result.statements / r.seconds),
    recordsPerSec: Math.round(r.result.records / r.seconds),
    vsFramer: +(framer.seconds / r.seconds).toFixed(2),
  });
}

const { seconds: pipelineSeconds, statements, frames } = await bestAudit(file);
line('pipeline', { file, fileMb: +(fileBytes / 1e6).toFixed(1), frames, statements, seconds: +pipelineSeconds.toFixed(3), mbPerSec: mb(fileBytes, pipelineSeconds), statementsPerSec: Math.round(statements / pipelineSeconds) });

const shark = bestTshark(['-r', file, '-d', `tcp.port==${port},tds`, '-Y', 'tds.query || tds.type == 3', '-T', 'fields', '-e', 'tds.query', '-e', 'tds.rpc.name']);
const tsharkSeconds = shark?.seconds ?? Infinity;
const requests = shark?.lines ?? -1;
if (requests >= 0) {
  line('tshark', { requests, seconds: +tsharkSeconds.toFixed(3), mbPerSec: mb(fileBytes, tsharkSeconds), requestsPerSec: Math.round(requests / tsharkSeconds) });
  line('ratio', { pipelineVsTshark: +(tsharkSeconds / pipelineSeconds).toFixed(1) });
}

// Oracle decoder throughput on real traffic, beside tshark on the same file.
// The corpus has no large Oracle capture, so the TOAD session of the corpus
// (trex_cap2_Oracle.pcap: login, 140 TTC calls, 49 SQL texts, fetches) is
// repeated into one file, each copy on its own client port and later in
// time. Prints one JSON line per case:
//   session   - the decoder alone: sessions fed the reassembled streams held in memory
//   pipeline  - the whole audit path: read the file, decode frames, reassemble, detect, decode
//   tshark    - `tshark -r F -d tcp.port==1521,tns -Y tns.data_oci.id -T fields -e tns.data_oci.id`
//               (TNS framing and the TTC call code; tshark 4.0 has no SQL field for Oracle)
// Run: node --import=tsx --expose-gc packages/protocols/bench/oracle.bench.ts [copies]
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapWriter, openCapture, type Frame } from '@dbtap/core';
import { oracle } from '@dbtap/protocols';
import { best, bestAudit, bestTshark, loadStreams, mbPerSec as mb, runSessions } from '../../../test-support/bench-streams.js';

// The capture corpus beside the repository (as test-support/corpus.ts finds it, without ava).
const corpusDir = process.env.DBTAP_CORPUS ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/corpus/pcaps');
const source = join(corpusDir, 'oracle', 'trex_cap2_Oracle.pcap');
const copies = Number(process.argv[2] ?? 300);

/** Writes `copies` copies of the capture, the client port of copy i set to 20000 + i, each copy 60 s after the last. */
function repeated(file: string): string {
  const frames: Frame[] = [];
  const reader = openCapture(source);
  for (let f = reader.next(); f !== undefined; f = reader.next()) frames.push({ ...f, data: f.data.slice() });
  reader.close();
  const w = PcapWriter.open(file, { linkType: frames[0]!.linkType });
  const span = frames.at(-1)!.ts - frames[0]!.ts + 60e6;
  for (let i = 0; i < copies; i++) {
    const port = 20000 + i;
    for (const f of frames) {
      const d = f.data.slice();
      // Ethernet + IPv4: the TCP ports follow the IP header.
      if (d[12] === 0x08 && d[13] === 0x00 && d[23] === 6) {
        const tcp = 14 + (d[14]! & 0x0f) * 4;
        if (((d[tcp]! << 8) | d[tcp + 1]!) !== 1521) d.set([port >> 8, port & 0xff], tcp);
        else d.set([port >> 8, port & 0xff], tcp + 2);
      }
      w.write({ ...f, ts: f.ts + i * span, data: d });
    }
  }
  w.close();
  return file;
}

const line = (c: string, fields: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'oracle', capture: `trex_cap2_Oracle x${copies}`, case: c, ...fields }));

const file = repeated(join(mkdtempSync(join(tmpdir(), 'dbtap-oracle-bench-')), 'oracle-toad-repeated.pcap'));
const fileBytes = statSync(file).size;
const { streams, payload } = loadStreams(file);
const r = best(() => runSessions(oracle, streams, 0));
line('session', {
  streams: streams.length,
  payloadMb: +(payload / 1e6).toFixed(1),
  statements: r.result.statements,
  seconds: +r.seconds.toFixed(3),
  mbPerSec: mb(payload, r.seconds),
  statementsPerSec: Math.round(r.result.statements / r.seconds),
  recordsPerSec: Math.round(r.result.records / r.seconds),
});

const { seconds: pipelineSeconds, statements, frames } = await bestAudit(file, [1521]);
line('pipeline', { fileMb: +(fileBytes / 1e6).toFixed(1), frames, statements, seconds: +pipelineSeconds.toFixed(3), mbPerSec: mb(fileBytes, pipelineSeconds), statementsPerSec: Math.round(statements / pipelineSeconds) });

const shark = bestTshark(['-r', file, '-d', 'tcp.port==1521,tns', '-Y', 'tns.data_oci.id', '-T', 'fields', '-e', 'tns.data_oci.id']);
const tsharkSeconds = shark?.seconds ?? Infinity;
const calls = shark?.lines ?? -1;
if (calls >= 0) {
  line('tshark', { calls, seconds: +tsharkSeconds.toFixed(3), mbPerSec: mb(fileBytes, tsharkSeconds), callsPerSec: Math.round(calls / tsharkSeconds) });
  line('ratio', { pipelineVsTshark: +(tsharkSeconds / pipelineSeconds).toFixed(1) });
}

// Read + decode + reassemble a large capture of real database traffic, beside
// tshark's TCP conversation table over the same file (its own reassembly-free
// baseline: it still dissects every frame). Prints one JSON line per case.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { decodePacket, FlowTable, openCapture, PacketDecoder, type DecodedPacket } from '@dbtap/core';
import { benchCapture } from '../../../test-support/bench-capture.js';

const file = process.env.DBTAP_BENCH_CAPTURE ?? (await benchCapture());
const size = statSync(file).size;

function run(withReassembly: boolean): { frames: number; seconds: number; bytes: number; heapMb: number } {
  const start = process.hrtime.bigint();
  const reader = openCapture(file);
  const decoder = new PacketDecoder();
  let delivered = 0;
  const table = new FlowTable({
    open: () => {},
    data: (_f, _d, b) => {
      delivered += b.length;
    },
    gap: () => {},
    close: () => {},
  });
  let frames = 0;
  let heap = 0;
  for (let f = reader.next(); f !== undefined; f = reader.next()) {
    frames++;
    const p = decoder.decode(f);
    if (withReassembly) table.process(p);
    if ((frames & 0xffff) === 0) heap = Math.max(heap, process.memoryUsage().heapUsed);
  }
  table.flush(Number.MAX_SAFE_INTEGER);
  reader.close();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { frames, seconds, bytes: delivered, heapMb: Math.round(heap / 1e5) / 10 };
}

/**
 * The flow table alone: every packet decoded once into memory (frames copied),
 * then fed to a fresh table; the median of `runs`. This is the per-packet
 * cost of the flow lookup, activity order and reassembly without the file
 * reading and decoding around it.
 */
function tableOnly(runs: number): { frames: number; seconds: number } {
  const reader = openCapture(file);
  const packets: DecodedPacket[] = [];
  for (let f = reader.next(); f !== undefined; f = reader.next()) packets.push(decodePacket({ ...f, data: f.data.slice() }));
  reader.close();
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const table = new FlowTable({ open: () => {}, data: () => {}, gap: () => {}, close: () => {} });
    const t0 = process.hrtime.bigint();
    for (const p of packets) table.process(p);
    table.flush(Number.MAX_SAFE_INTEGER);
    if (i >= 2) times.push(Number(process.hrtime.bigint() - t0) / 1e9); // the first two warm up
  }
  times.sort((a, b) => a - b);
  return { frames: packets.length, seconds: times[times.length >> 1]! };
}

run(true); // warm-up
const decodeOnly = run(false);
const full = run(true);
const table = tableOnly(5);
const t0 = process.hrtime.bigint();
const ts = spawnSync('tshark', ['-r', file, '-q', '-z', 'conv,tcp'], { stdio: ['ignore', 'ignore', 'ignore'] });
const tsharkSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

const line = (name: string, r: { frames: number; seconds: number }, extra: Record<string, unknown> = {}): void =>
  console.log(JSON.stringify({
    bench: `core/${name}`, file, frames: r.frames, seconds: +r.seconds.toFixed(3),
    framesPerSec: Math.round(r.frames / r.seconds), mbPerSec: +(size / 1e6 / r.seconds).toFixed(1), ...extra,
  }));
line('read+decode', decodeOnly, { heapMb: decodeOnly.heapMb });
line('read+decode+reassemble', full, { payloadMb: +(full.bytes / 1e6).toFixed(1), heapMb: full.heapMb });
line('reassemble-only', table, { nsPerPacket: Math.round((table.seconds * 1e9) / table.frames) });
if (ts.status === 0) {
  line('tshark-conv-tcp', { frames: full.frames, seconds: tsharkSeconds });
  console.log(JSON.stringify({ bench: 'core/ratio', speedupVsTshark: +(tsharkSeconds / full.seconds).toFixed(1) }));
}

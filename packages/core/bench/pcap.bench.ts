// Streaming read of a ~200 MB capture (the MySQL and PostgreSQL corpus
// captures looped, with advancing timestamps), as pcap and as pcapng, beside
// tshark's frame-count pass over the same file (`-q -z io,stat,0`: it reads
// and dissects every frame). Prints one JSON line per case.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LinkType, openCapture, PcapWriter, type Frame } from '@dbtap/core';

// As in test-support/corpus.ts, which cannot be imported outside ava.
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const corpusDir = process.env.DBTAP_CORPUS ?? resolve(repoRoot, '../shared/corpus/pcaps');

const TARGET_BYTES = Number(process.env.DBTAP_PCAP_BENCH_MB ?? 200) * 1e6;
const dir = join(repoRoot, '.bench');
const pcapFile = join(dir, `pcap-bench-${TARGET_BYTES / 1e6}mb.pcap`);
const pcapngFile = pcapFile.replace(/\.pcap$/, '.pcapng');

/**
 * Ethernet frames of every MySQL and PostgreSQL corpus capture, copied: a
 * real mix of small statements and large result segments (about 1 KB a frame).
 */
function templates(): Frame[] {
  const out: Frame[] = [];
  for (const sub of ['mysql', 'postgresql']) {
    const d = join(corpusDir, sub);
    if (!existsSync(d)) continue;
    const files = readdirSync(d)
      .filter((f) => /\.(pcap|pcapng)$/.test(f))
      .map((f) => join(d, f))
      .sort();
    for (const f of files) {
      const r = openCapture(f);
      for (let fr = r.next(); fr; fr = r.next()) if (fr.linkType === LinkType.ETHERNET) out.push({ ...fr, data: fr.data.slice() });
    }
  }
  if (out.length === 0) throw new Error(`no corpus captures under ${corpusDir}: the bench needs them`);
  return out;
}

function generate(): void {
  if (existsSync(pcapFile) && statSync(pcapFile).size >= TARGET_BYTES) return;
  mkdirSync(dir, { recursive: true });
  const frames = templates();
  const w = PcapWriter.open(pcapFile, { linkType: LinkType.ETHERNET });
  let bytes = 24;
  let ts = 1_732_530_000_000_000;
  for (let i = 0; bytes < TARGET_BYTES; i++) {
    const f = frames[i % frames.length]!;
    ts += 37;
    w.write({ ...f, ts });
    bytes += 16 + f.data.length;
  }
  w.close();
}

function convertToPcapng(): boolean {
  if (existsSync(pcapngFile) && statSync(pcapngFile).mtimeMs >= statSync(pcapFile).mtimeMs) return true;
  return spawnSync('editcap', ['-F', 'pcapng', pcapFile, pcapngFile], { stdio: 'ignore' }).status === 0;
}

interface Run {
  frames: number;
  seconds: number;
  maxArrayBuffersMb: number;
}

function readOnce(file: string): Run {
  globalThis.gc?.();
  const start = process.hrtime.bigint();
  const r = openCapture(file);
  let frames = 0;
  let sum = 0;
  let maxAb = 0;
  for (let f = r.next(); f !== undefined; f = r.next()) {
    frames++;
    sum += f.data.length + (f.data[0] ?? 0) + f.origLen; // touch every frame so nothing is optimised away
    if ((frames & 0xfff) === 0) maxAb = Math.max(maxAb, process.memoryUsage().arrayBuffers);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.error !== undefined || sum < 0) throw r.error ?? new Error('unreachable');
  return { frames, seconds, maxArrayBuffersMb: +(maxAb / 1e6).toFixed(1) };
}

function tsharkSeconds(file: string): number | undefined {
  const start = process.hrtime.bigint();
  const r = spawnSync('tshark', ['-r', file, '-q', '-z', 'io,stat,0'], { stdio: 'ignore' });
  if (r.status !== 0) return undefined;
  return Number(process.hrtime.bigint() - start) / 1e9;
}

generate();
const cases: [string, string][] = [['pcap', pcapFile]];
if (convertToPcapng()) cases.push(['pcapng', pcapngFile]);
for (const [format, file] of cases) {
  const size = statSync(file).size;
  readOnce(file); // warm-up: JIT and page cache
  const runs = [readOnce(file), readOnce(file), readOnce(file)];
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const base = tsharkSeconds(file);
  console.log(
    JSON.stringify({
      bench: `core/pcap-read-${format}`,
      file,
      mb: +(size / 1e6).toFixed(1),
      frames: best.frames,
      seconds: +best.seconds.toFixed(3),
      framesPerSec: Math.round(best.frames / best.seconds),
      mbPerSec: +(size / 1e6 / best.seconds).toFixed(1),
      maxArrayBuffersMb: Math.max(...runs.map((r) => r.maxArrayBuffersMb)),
      baseline: 'tshark -q -z io,stat,0',
      baselineSeconds: base === undefined ? null : +base.toFixed(3),
      speedupVsBaseline: base === undefined ? null : +(base / best.seconds).toFixed(1),
    }),
  );
}

// TCP reassembly against real captures: every corpus file, byte counts
// against tshark, and a shuffle/duplicate/drop test whose delivered bytes
// plus reported gaps must equal the original streams exactly.
import test from 'ava';
import { join } from 'node:path';
import { decodePacket, FlowTable, openCapture, TcpFlags, type DecodedPacket, type Frame } from '@dbtap/core';
import { corpusFiles, corpusTest, repoRoot, tshark, tsharkTest } from '../../../test-support/corpus.js';

/** Every frame of a capture, with its bytes copied (the reader reuses its buffer). */
function readFrames(path: string): Frame[] {
  const reader = openCapture(path);
  const out: Frame[] = [];
  for (let f = reader.next(); f !== undefined; f = reader.next()) out.push({ ...f, data: f.data.slice() });
  reader.close();
  return out;
}

/** Stream images per flow direction: `key dir` -> byte array with -1 for gap bytes. */
type Images = Map<string, number[]>;

function reassemble(packets: DecodedPacket[]): { images: Images; table: FlowTable } {
  const images: Images = new Map();
  const keyOf = (f: { client: { ip: string; port: number }; server: { ip: string; port: number } }, dir: number): string =>
    `${f.client.ip}:${f.client.port}>${f.server.ip}:${f.server.port} ${dir}`;
  const img = (k: string): number[] => {
    let a = images.get(k);
    if (!a) images.set(k, (a = []));
    return a;
  };
  const table = new FlowTable({
    open: () => {},
    data: (f, dir, bytes) => {
      const a = img(keyOf(f, dir));
      for (const b of bytes) a.push(b);
    },
    gap: (f, dir, n) => {
      const a = img(keyOf(f, dir));
      for (let i = 0; i < n; i++) a.push(-1);
    },
    close: () => {},
  });
  for (const p of packets) table.process(p);
  table.flush(Number.MAX_SAFE_INTEGER);
  return { images, table };
}

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const isData = (p: DecodedPacket): boolean => p.payload.length > 0 && (p.tcp!.flags & (TcpFlags.SYN | TcpFlags.FIN | TcpFlags.RST)) === 0;
const dirKey = (p: DecodedPacket): string => `${p.srcIp.join('.')}:${p.tcp!.srcPort}>${p.dstIp.join('.')}:${p.tcp!.dstPort}`;

/**
 * Perturbs a packet list: data segments move up to `window` places, some are
 * duplicated later, and (with `dropRate`) some are dropped, never the last
 * data segment of a direction (nothing after it could reveal the loss). The
 * first data segment of a direction stays first: without a SYN it is what
 * defines where the stream starts.
 */
function perturb(packets: DecodedPacket[], seed: number, window: number, dupRate: number, dropRate: number): DecodedPacket[] {
  const r = rng(seed);
  const lastData = new Map<string, number>();
  const firstData = new Map<string, number>();
  packets.forEach((p, i) => {
    if (!isData(p)) return;
    lastData.set(dirKey(p), i);
    if (!firstData.has(dirKey(p))) firstData.set(dirKey(p), i);
  });
  const keyed: Array<[number, DecodedPacket]> = [];
  packets.forEach((p, i) => {
    if (!isData(p)) {
      // Handshake first, teardown after the data around it.
      const flags = p.tcp!.flags;
      keyed.push([flags & TcpFlags.SYN ? i - window : flags & (TcpFlags.FIN | TcpFlags.RST) ? i + window : i, p]);
      return;
    }
    if (firstData.get(dirKey(p)) === i) {
      keyed.push([i - window, p]);
      return;
    }
    if (dropRate > 0 && lastData.get(dirKey(p)) !== i && r() < dropRate) return;
    keyed.push([i + r() * window, p]);
    if (r() < dupRate) keyed.push([i + r() * window * 2, p]);
  });
  return keyed.sort((a, b) => a[0] - b[0]).map(([, p]) => p);
}

function realCaptures(): string[] {
  const own = [join(repoRoot, 'examples/captures/mariadb-session.pcap'), join(repoRoot, 'examples/captures/postgres-session.pcap')];
  const corpus = ['mysql/packetbeat_mysql_long_result.pcap', 'mysql/deepflow_large-response.pcap', 'postgresql/', 'mssql-tds/arkime_tds7.pcap'];
  const files = corpusFiles().filter((f) => corpus.some((c) => f.includes(c)));
  return [...own, ...files.slice(0, 8)];
}

function check(t: import('ava').ExecutionContext, name: string, ref: Images, got: Images, exact: boolean): void {
  t.is(got.size, ref.size, `${name}: same streams`);
  for (const [k, r] of ref) {
    const g = got.get(k);
    if (!g) {
      t.fail(`${name}: stream ${k} missing`);
      continue;
    }
    t.is(g.length, r.length, `${name} ${k}: delivered + gap bytes = original length`);
    let mismatch = -1;
    for (let i = 0; i < Math.min(g.length, r.length); i++) {
      if (g[i] !== -1 && r[i] !== -1 && g[i] !== r[i]) {
        mismatch = i;
        break;
      }
      if (exact && g[i] !== r[i]) {
        mismatch = i;
        break;
      }
    }
    t.is(mismatch, -1, `${name} ${k}: delivered bytes sit where they were sent`);
  }
}

test('shuffled, duplicated and dropped segments of real captures reassemble exactly', (t) => {
  const files = realCaptures();
  t.true(files.length >= 2);
  for (const file of files) {
    const packets = readFrames(file).map(decodePacket).filter((p) => p.tcp !== undefined);
    const ref = reassemble(packets).images;
    // Duplicates only: the stream is identical, no gap.
    check(t, `${file} dup`, ref, reassemble(perturb(packets, 1, 1, 0.3, 0)).images, true);
    for (const seed of [2, 3, 4]) {
      // Reordering and duplicates: every byte accounted for, none misplaced.
      check(t, `${file} shuffle ${seed}`, ref, reassemble(perturb(packets, seed, 8, 0.2, 0)).images, false);
      // Drops too: the losses become gaps of exactly the missing size.
      const dropped = reassemble(perturb(packets, seed, 8, 0.2, 0.1));
      check(t, `${file} drop ${seed}`, ref, dropped.images, false);
    }
  }
});

corpusTest('every corpus capture goes through decoding and reassembly without an exception', (t) => {
  const files = corpusFiles();
  t.true(files.length > 50);
  let flows = 0;
  for (const file of files) {
    const reader = openCapture(file);
    const table = new FlowTable({ open: () => {}, data: () => {}, gap: () => {}, close: () => {} });
    for (let f = reader.next(); f !== undefined; f = reader.next()) table.process(decodePacket(f));
    table.flush(Number.MAX_SAFE_INTEGER);
    reader.close();
    flows += table.stats.flows;
  }
  t.true(flows > 100);
});

tsharkTest('flow and payload byte counts agree with tshark conversations', (t) => {
  const files = corpusFiles().filter((f) => /deepflow_mysql\.pcap|packetbeat_mysql_long_result|pgsql|postgres.*\.pcap|arkime_tds7/.test(f)).slice(0, 8);
  files.push(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  for (const file of files) {
    // tshark: one line per conversation with the TCP payload bytes each way (tcp.len sums).
    const out = tshark(['-r', file, '-Y', 'tcp.len > 0', '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.len', '-e', 'tcp.analysis.retransmission', '-e', 'tcp.analysis.out_of_order']);
    const tsharkStreams = new Set<string>();
    let tsharkBytes = 0;
    for (const line of out.split('\n')) {
      if (!line) continue;
      const [stream, len, retrans] = line.split('\t');
      tsharkStreams.add(stream!);
      if (!retrans) tsharkBytes += Number(len);
    }
    const packets = readFrames(file).map(decodePacket);
    const { table } = reassemble(packets);
    const s = table.stats;
    t.is(s.flows, tsharkStreams.size, `${file}: connections carrying data`);
    t.is(s.bytesDelivered + s.gapBytes, tsharkBytes, `${file}: payload bytes (delivered ${s.bytesDelivered}, gaps ${s.gapBytes})`);
  }
});

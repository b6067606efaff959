import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tshark, tsharkTest } from '../../../test-support/corpus.js';
import { detectCaptureFormat, ErrorCodes, isDbtapError, LinkType, openCapture, readCaptureBytes, type CaptureReader, type Frame } from '@dbtap/core';

// ---------------------------------------------------------------------------
// Builders: capture files written byte by byte from the format specs, so the
// tests know every offset (pcap-savefile(5), draft-ietf-opsawg-pcapng).

/** Growable byte writer with a fixed byte order. */
class W {
  private readonly bytes: number[] = [];
  constructor(readonly le: boolean) {}
  get length(): number {
    return this.bytes.length;
  }
  u8(x: number): this {
    this.bytes.push(x & 0xff);
    return this;
  }
  u16(x: number): this {
    return this.le ? this.u8(x).u8(x >>> 8) : this.u8(x >>> 8).u8(x);
  }
  u32(x: number): this {
    return this.le ? this.u16(x & 0xffff).u16(x >>> 16) : this.u16(x >>> 16).u16(x & 0xffff);
  }
  u64(x: bigint): this {
    const hi = Number((BigInt.asUintN(64, x) >> 32n) & 0xffffffffn);
    const lo = Number(BigInt.asUintN(64, x) & 0xffffffffn);
    return this.le ? this.u32(lo).u32(hi) : this.u32(hi).u32(lo);
  }
  raw(b: Uint8Array | number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
  pad4(): this {
    while (this.bytes.length % 4) this.bytes.push(0);
    return this;
  }
  out(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

interface PcapRec {
  sec: number;
  frac: number;
  data: Uint8Array;
  origLen?: number;
}

function pcapFile(o: { le?: boolean; nano?: boolean; linkType?: number; snapLen?: number; modified?: boolean; major?: number }, recs: PcapRec[]): Uint8Array {
  const w = new W(o.le ?? true);
  w.u32(o.modified ? 0xa1b2cd34 : o.nano ? 0xa1b23c4d : 0xa1b2c3d4)
    .u16(o.major ?? 2)
    .u16(4)
    .u32(0)
    .u32(0)
    .u32(o.snapLen ?? 65535)
    .u32(o.linkType ?? LinkType.ETHERNET);
  for (const r of recs) {
    w.u32(r.sec).u32(r.frac).u32(r.data.length).u32(r.origLen ?? r.data.length);
    if (o.modified) w.u32(7).u16(0x0800).u8(0).u8(0);
    w.raw(r.data);
  }
  return w.out();
}

/** Option list: [code, value bytes] pairs, then opt_endofopt. */
function options(w: W, opts: [number, Uint8Array][]): void {
  if (opts.length === 0) return;
  for (const [code, val] of opts) w.u16(code).u16(val.length).raw(val).pad4();
  w.u16(0).u16(0);
}

/** A pcapng file in one or more sections, each in its own byte order. */
class Ng {
  private readonly blocks: Uint8Array[] = [];
  private le = true;
  /** Offsets where each block ends. */
  readonly ends: number[] = [];
  private size = 0;

  private block(type: number, body: (w: W) => void): this {
    const b = new W(this.le);
    body(b);
    b.pad4();
    const w = new W(this.le).u32(type).u32(b.length + 12).raw(b.out()).u32(b.length + 12);
    const out = w.out();
    this.blocks.push(out);
    this.size += out.length;
    this.ends.push(this.size);
    return this;
  }
  shb(le = true, opts: [number, Uint8Array][] = []): this {
    this.le = le;
    return this.block(0x0a0d0d0a, (w) => {
      w.u32(0x1a2b3c4d).u16(1).u16(0).u64(-1n);
      options(w, opts);
    });
  }
  idb(linkType: number, snapLen: number, opts: { tsresol?: number; tsoffset?: bigint; name?: string } = {}): this {
    return this.block(1, (w) => {
      w.u16(linkType).u16(0).u32(snapLen);
      const o: [number, Uint8Array][] = [];
      if (opts.name !== undefined) o.push([2, new TextEncoder().encode(opts.name)]);
      if (opts.tsresol !== undefined) o.push([9, Uint8Array.of(opts.tsresol)]);
      if (opts.tsoffset !== undefined) o.push([14, new W(this.le).u64(opts.tsoffset).out()]);
      options(w, o);
    });
  }
  epb(ifId: number, units: bigint, data: Uint8Array, origLen = data.length, opts: [number, Uint8Array][] = []): this {
    return this.block(6, (w) => {
      w.u32(ifId).u32(Number(units >> 32n)).u32(Number(units & 0xffffffffn)).u32(data.length).u32(origLen).raw(data).pad4();
      options(w, opts);
    });
  }
  opb(ifId: number, units: bigint, data: Uint8Array, origLen = data.length): this {
    return this.block(2, (w) => {
      w.u16(ifId).u16(0).u32(Number(units >> 32n)).u32(Number(units & 0xffffffffn)).u32(data.length).u32(origLen).raw(data).pad4();
    });
  }
  spb(data: Uint8Array, origLen = data.length): this {
    return this.block(3, (w) => {
      w.u32(origLen).raw(data).pad4();
    });
  }
  other(type: number, body: Uint8Array): this {
    return this.block(type, (w) => {
      w.raw(body);
    });
  }
  out(): Uint8Array {
    const all = new Uint8Array(this.size);
    let o = 0;
    for (const b of this.blocks) {
      all.set(b, o);
      o += b.length;
    }
    return all;
  }
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

/** Drains a reader, copying each frame's data (views are only valid until the next call). */
function drain(r: CaptureReader): Frame[] {
  const out: Frame[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) out.push({ ...f, data: f.data.slice() });
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'dbtap-pcap-test-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
function tmpFile(b: Uint8Array): string {
  const p = join(tmp, `f${fileNo++}.cap`);
  writeFileSync(p, b);
  return p;
}

// ---------------------------------------------------------------------------

test('detectCaptureFormat recognises every magic in both byte orders and nothing else', (t) => {
  for (const le of [true, false]) {
    t.is(detectCaptureFormat(pcapFile({ le }, [])), 'pcap');
    t.is(detectCaptureFormat(pcapFile({ le, nano: true }, [])), 'pcap');
    t.is(detectCaptureFormat(pcapFile({ le, modified: true }, [])), 'pcap');
    t.is(detectCaptureFormat(new Ng().shb(le).out()), 'pcapng');
  }
  t.is(detectCaptureFormat(Uint8Array.of(0xd4, 0xc3, 0xb2)), undefined, 'too short');
  t.is(detectCaptureFormat(new TextEncoder().encode('GET / HTTP/1.1')), undefined);
  t.is(detectCaptureFormat(new Uint8Array(0)), undefined);
});

for (const le of [true, false]) {
  for (const nano of [false, true]) {
    test(`pcap ${nano ? 'nanosecond' : 'microsecond'} ${le ? 'little' : 'big'} endian: frames, timestamps, lengths`, (t) => {
      const recs: PcapRec[] = [
        { sec: 1_700_000_000, frac: nano ? 123_456_789 : 123_456, data: bytes(60, 1) },
        { sec: 1_700_000_001, frac: nano ? 999_999_999 : 999_999, data: bytes(1, 2), origLen: 1514 },
        { sec: 0xffffffff, frac: 0, data: new Uint8Array(0), origLen: 0 },
      ];
      const r = readCaptureBytes(pcapFile({ le, nano, linkType: LinkType.LINUX_SLL, snapLen: 1234 }, recs));
      t.is(r.format, 'pcap');
      t.deepEqual(r.interfaces, [{ linkType: LinkType.LINUX_SLL, snapLen: 1234, tsResolution: nano ? 1e9 : 1e6, tsOffsetSec: 0 }]);
      const frames = drain(r);
      t.is(r.error, undefined);
      t.is(frames.length, 3);
      // Nanoseconds are cut to whole microseconds, toward the past.
      t.deepEqual(
        frames.map((f) => f.ts),
        [1_700_000_000_123_456, 1_700_000_001_999_999, 0xffffffff * 1e6],
      );
      t.deepEqual(frames[0]!.data, recs[0]!.data);
      t.is(frames[1]!.origLen, 1514);
      t.is(frames[1]!.data.length, 1);
      t.is(frames[2]!.data.length, 0);
      for (const f of frames) {
        t.is(f.linkType, LinkType.LINUX_SLL);
        t.is(f.interfaceId, 0);
      }
      t.deepEqual(r.stats, { frames: 3, bytesRead: 24 + 3 * 16 + 61, skippedBlocks: 0 });
    });
  }
}

test('pcap: the "modified" variant with 24-byte record headers, and FCS bits above the link type', (t) => {
  const file = pcapFile({ modified: true, linkType: 0x10000000 | LinkType.ETHERNET }, [
    { sec: 10, frac: 5, data: bytes(20, 3) },
    { sec: 11, frac: 6, data: bytes(30, 4) },
  ]);
  const r = readCaptureBytes(file);
  const frames = drain(r);
  t.is(r.error, undefined);
  t.deepEqual(
    frames.map((f) => [f.ts, f.data.length, f.linkType]),
    [
      [10_000_005, 20, LinkType.ETHERNET],
      [11_000_006, 30, LinkType.ETHERNET],
    ],
  );
  t.deepEqual(frames[1]!.data, bytes(30, 4));
});

test('pcapng: three interfaces with their own link types and timestamp resolutions', (t) => {
  const sec = 1_700_000_000n;
  const ng = new Ng()
    .shb()
    .idb(LinkType.ETHERNET, 65535, { name: 'eth0' }) // default resolution: microseconds
    .idb(LinkType.RAW, 0, { tsresol: 9, name: 'lo' }) // 10^-9
    .idb(LinkType.LINUX_SLL, 128, { tsresol: 0x80 | 10, tsoffset: -3600n }) // 2^-10, one hour back
    .epb(0, sec * 1_000_000n + 654_321n, bytes(42, 1))
    .epb(1, sec * 1_000_000_000n + 987_654_321n, bytes(20, 2), 40)
    .epb(2, sec * 1024n + 512n, bytes(16, 3))
    .epb(0, sec * 1_000_000n + 654_322n, bytes(5, 4));
  const r = readCaptureBytes(ng.out());
  t.is(r.format, 'pcapng');
  t.deepEqual(r.interfaces, [
    { linkType: LinkType.ETHERNET, snapLen: 65535, tsResolution: 1e6, tsOffsetSec: 0, name: 'eth0' },
    { linkType: LinkType.RAW, snapLen: 0, tsResolution: 1e9, tsOffsetSec: 0, name: 'lo' },
    { linkType: LinkType.LINUX_SLL, snapLen: 128, tsResolution: 1024, tsOffsetSec: -3600 },
  ], 'all interfaces before the first frame are known right after open');
  const frames = drain(r);
  t.is(r.error, undefined);
  t.deepEqual(
    frames.map((f) => [f.interfaceId, f.linkType, f.ts, f.data.length, f.origLen]),
    [
      [0, LinkType.ETHERNET, 1_700_000_000_654_321, 42, 42],
      [1, LinkType.RAW, 1_700_000_000_987_654, 20, 40],
      [2, LinkType.LINUX_SLL, (1_700_000_000 - 3600) * 1e6 + 500_000, 16, 16],
      [0, LinkType.ETHERNET, 1_700_000_000_654_322, 5, 5],
    ],
  );
  t.deepEqual(frames[1]!.data, bytes(20, 2));
  t.deepEqual(r.stats, { frames: 4, bytesRead: ng.ends.at(-1)!, skippedBlocks: 0 });
});

test('pcapng: timestamps are exact whole microseconds for any resolution and size', (t) => {
  // Reference in BigInt; the reader divides in doubles and must agree to the microsecond.
  const cases: [number, bigint][] = [
    [6, 0xffffffffffffffffn],
    [9, 0xffffffffffffffffn],
    [9, 1_732_530_000_999_999_999n],
    [0x80 | 30, (1_732_530_000n << 30n) + (1n << 30n) - 1n],
    [12, 1_732_530_000_123_456_789_012n & 0xffffffffffffffffn],
    [3, 1_732_530_000_123n],
    [0, 1_732_530_000n],
  ];
  for (const [tsresol, units] of cases) {
    const res = tsresol & 0x80 ? 2n ** BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
    const want = (units / res) * 1_000_000n + ((units % res) * 1_000_000n) / res;
    const r = readCaptureBytes(new Ng().shb().idb(1, 0, { tsresol }).epb(0, units, bytes(4, 0)).out());
    const f = r.next();
    t.is(f?.ts, Number(want), `tsresol ${tsresol}, units ${units}`);
  }
});

test('pcapng: a simple packet block uses interface 0 and its snap length, and has no timestamp', (t) => {
  const ng = new Ng().shb().idb(LinkType.ETHERNET, 32).spb(bytes(32, 1), 100).spb(bytes(10, 2)).idb(LinkType.RAW, 0).spb(bytes(12, 3));
  const r = readCaptureBytes(ng.out());
  const frames = drain(r);
  t.is(r.error, undefined);
  t.deepEqual(
    frames.map((f) => [f.interfaceId, f.linkType, f.ts, f.data.length, f.origLen]),
    [
      [0, LinkType.ETHERNET, 0, 32, 100],
      [0, LinkType.ETHERNET, 0, 10, 10],
      [0, LinkType.ETHERNET, 0, 12, 12],
    ],
  );
  t.deepEqual(frames[2]!.data, bytes(12, 3));
  // Without a snap length, the padding of an SPB must not count as data.
  const r2 = readCaptureBytes(new Ng().shb().idb(1, 0).spb(bytes(5, 1)).out());
  t.is(r2.next()?.data.length, 5);
});

test('pcapng: obsolete packet blocks are read like enhanced ones', (t) => {
  const r = readCaptureBytes(new Ng().shb().idb(LinkType.NULL, 0).idb(LinkType.RAW, 0).opb(1, 5_000_001n, bytes(9, 1), 99).out());
  const f = r.next();
  t.truthy(f);
  t.deepEqual([f!.interfaceId, f!.linkType, f!.ts, f!.origLen], [1, LinkType.RAW, 5_000_001, 99]);
  t.deepEqual(f!.data, bytes(9, 1));
  t.is(r.next(), undefined);
  t.is(r.error, undefined);
});

test('pcapng: unknown and informational blocks are skipped and counted', (t) => {
  const ng = new Ng()
    .shb(true, [[1, new TextEncoder().encode('a comment')]])
    .other(4, bytes(24, 9)) // name resolution block
    .idb(1, 0)
    .other(0x0a, bytes(16, 1)) // decryption secrets block
    .epb(0, 1n, bytes(8, 1), 8, [[1, new TextEncoder().encode('packet comment')]])
    .other(5, bytes(20, 2)) // interface statistics block
    .other(0x00000bad, bytes(12, 3)) // custom block
    .other(0x40000bad, new Uint8Array(0)) // custom, empty
    .epb(0, 2n, bytes(8, 2));
  const r = readCaptureBytes(ng.out());
  const frames = drain(r);
  t.is(r.error, undefined);
  t.is(frames.length, 2);
  t.deepEqual(frames[0]!.data, bytes(8, 1), 'options after the data are not data');
  t.is(r.stats.skippedBlocks, 5);
  t.is(r.stats.bytesRead, ng.ends.at(-1)!);
});

test('pcapng: two sections in different byte orders; interface ids restart per section', (t) => {
  const ng = new Ng()
    .shb(true)
    .idb(LinkType.ETHERNET, 0)
    .epb(0, 1_000_000n, bytes(10, 1))
    .shb(false)
    .idb(LinkType.RAW, 0, { tsresol: 9 })
    .idb(LinkType.NULL, 0)
    .epb(0, 2_000_000_000n, bytes(11, 2))
    .epb(1, 3_000_000n, bytes(12, 3))
    .shb(true)
    .idb(LinkType.LINUX_SLL2, 0)
    .epb(0, 4_000_000n, bytes(13, 4));
  const r = readCaptureBytes(ng.out());
  const frames = drain(r);
  t.is(r.error, undefined);
  t.deepEqual(
    frames.map((f) => [f.interfaceId, f.linkType, f.ts, f.data.length]),
    [
      [0, LinkType.ETHERNET, 1_000_000, 10],
      [1, LinkType.RAW, 2_000_000, 11],
      [2, LinkType.NULL, 3_000_000, 12],
      [3, LinkType.LINUX_SLL2, 4_000_000, 13],
    ],
  );
  t.deepEqual(frames[1]!.data, bytes(11, 2));
  t.is(r.interfaces.length, 4);
});

test('pcapng: contradictory blocks stop reading with BAD_CAPTURE_FORMAT, never an exception', (t) => {
  const good = new Ng().shb().idb(1, 0).epb(0, 1n, bytes(8, 1));
  const cases: [string, Uint8Array, RegExp][] = [
    ['interface out of range', new Ng().shb().idb(1, 0).epb(0, 1n, bytes(8, 1)).epb(1, 2n, bytes(8, 2)).out(), /interface 1/],
    ['packet before any interface', new Ng().shb().spb(bytes(4, 1)).out(), /before any interface/],
    ['length not a multiple of 4', concat(good.out(), new W(true).u32(6).u32(13).u32(0).u8(0).out()), /multiple of 4/],
    ['length below 12', concat(good.out(), new W(true).u32(6).u32(8).u32(8).out()), /invalid total length 8/],
    ['trailer mismatch', concat(good.out(), new W(true).u32(5).u32(16).u32(0).u32(20).out()), /16 at its start but 20/],
    ['captured length beyond the block', concat(good.out(), new W(true).u32(6).u32(32).u32(0).u32(0).u32(0).u32(100).u32(100).u32(32).out()), /claims 100 captured bytes/],
    ['bad byte-order magic in a later section', concat(good.out(), new W(true).u32(0x0a0d0d0a).u32(28).u32(0x12345678).u32(1).u64(0n).u32(28).out()), /byte-order magic/],
  ];
  for (const [name, file, msg] of cases) {
    const r = readCaptureBytes(file);
    let frames: Frame[] = [];
    t.notThrows(() => {
      frames = drain(r);
    }, name);
    t.is(r.error?.code, ErrorCodes.BAD_CAPTURE_FORMAT, name);
    t.regex(r.error?.message ?? '', msg, name);
    t.is(frames.length >= 0 && frames.every((f) => f.data.length === 8), true, name);
    t.is(r.next(), undefined, `${name}: stays ended`);
  }
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

test('garbage, empty, missing and unsupported files fail at open with a clear code', (t) => {
  const bad = (b: Uint8Array, re: RegExp): void => {
    for (const open of [() => readCaptureBytes(b), () => openCapture(tmpFile(b))]) {
      const err = t.throws(open);
      t.true(isDbtapError(err, ErrorCodes.BAD_CAPTURE_FORMAT), String(err));
      t.regex(err?.message ?? '', re);
    }
  };
  bad(new Uint8Array(0), /empty/);
  bad(new TextEncoder().encode('<html><body>not a capture</body></html>'), /not a pcap or pcapng file.*0x3c68746d/);
  bad(Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0b), /not a pcap or pcapng/);
  bad(Uint8Array.of(0x01), /not a pcap or pcapng/);
  bad(pcapFile({ major: 3 }, []), /unsupported pcap version 3\.4/);
  bad(new W(true).u32(0x0a0d0d0a).u32(28).u32(0xdeadbeef).u16(1).u16(0).u64(0n).u32(28).out(), /byte-order magic/);
  bad(new W(true).u32(0x0a0d0d0a).u32(28).u32(0x1a2b3c4d).u16(2).u16(0).u64(0n).u32(28).out(), /unsupported pcapng version 2\.0/);
  const missing = t.throws(() => openCapture(join(tmp, 'no-such-file.pcap')));
  t.true(isDbtapError(missing, ErrorCodes.IO));
  t.regex(missing?.message ?? '', /no-such-file\.pcap/);
  t.true(isDbtapError(t.throws(() => openCapture(tmp)), ErrorCodes.IO), 'a directory');
  t.true(isDbtapError(t.throws(() => openCapture(tmpFile(pcapFile({}, [])), { bufferSize: 0 })), ErrorCodes.INVALID_ARGUMENT));
});

/**
 * Cuts `file` at every offset and checks the reader against the full read:
 * frames are a prefix, and the error is TRUNCATED (with the exact number of
 * missing bytes) exactly when the cut falls inside a header, record or block.
 * `units` lists [start, headerEnd, end) of each unit the reader needs whole.
 */
function checkEveryCut(t: import('ava').ExecutionContext, file: Uint8Array, units: [number, number, number][], fromFile: boolean): void {
  const full = drain(readCaptureBytes(file));
  for (let cut = 0; cut <= file.length; cut++) {
    const part = file.subarray(0, cut);
    if (cut === 0) {
      t.true(isDbtapError(t.throws(() => readCaptureBytes(part)), ErrorCodes.BAD_CAPTURE_FORMAT), 'an empty file is no capture');
      continue;
    }
    let r: CaptureReader | undefined;
    let frames: Frame[] = [];
    try {
      r = fromFile ? openCapture(tmpFile(part), { bufferSize: 7 }) : readCaptureBytes(part);
      frames = drain(r);
    } catch (err) {
      t.fail(`cut at ${cut} threw ${String(err)}`);
      continue;
    }
    const inside = units.find(([s, , e]) => cut > s && cut < e);
    t.deepEqual(frames, full.slice(0, frames.length), `cut at ${cut}: frames are a prefix`);
    if (inside === undefined) {
      t.is(r.error, undefined, `cut at ${cut} is on a boundary`);
      t.is(r.stats.bytesRead, cut);
    } else {
      const [s, h, e] = inside;
      t.is(r.error?.code, ErrorCodes.TRUNCATED, `cut at ${cut} inside [${s}, ${e})`);
      t.is(r.error?.details?.missing, cut < h ? h - cut : e - cut, `cut at ${cut}: missing bytes`);
      t.is(r.stats.bytesRead, s, `cut at ${cut}: bytes read`);
    }
  }
}

const smallPcap = pcapFile({}, [
  { sec: 1, frac: 1, data: bytes(10, 1) },
  { sec: 2, frac: 2, data: bytes(0, 2), origLen: 60 },
  { sec: 3, frac: 3, data: bytes(7, 3) },
]);
const pcapUnits: [number, number, number][] = [
  [0, 24, 24],
  [24, 40, 50],
  [50, 66, 66],
  [66, 82, 89],
];

const ng = new Ng().shb().idb(LinkType.ETHERNET, 0).epb(0, 1n, bytes(10, 1)).other(5, bytes(8, 1)).spb(bytes(6, 2)).idb(LinkType.RAW, 0, { tsresol: 9 }).epb(1, 2n, bytes(3, 3));
const smallPcapng = ng.out();
const ngUnits: [number, number, number][] = ng.ends.map((e, i) => {
  const s = i === 0 ? 0 : ng.ends[i - 1]!;
  return [s, s + 12, e];
});

test('truncation at every byte offset of a small pcap (in memory)', (t) => {
  checkEveryCut(t, smallPcap, pcapUnits, false);
});
test('truncation at every byte offset of a small pcap (file, tiny buffer)', (t) => {
  checkEveryCut(t, smallPcap, pcapUnits, true);
});
test('truncation at every byte offset of a small pcapng (in memory)', (t) => {
  t.is(drain(readCaptureBytes(smallPcapng)).length, 3);
  checkEveryCut(t, smallPcapng, ngUnits, false);
});
test('truncation at every byte offset of a small pcapng (file, tiny buffer)', (t) => {
  checkEveryCut(t, smallPcapng, ngUnits, true);
});

test('a file bigger than the buffer reads the same with any buffer size', (t) => {
  const b = new Ng().shb().idb(LinkType.ETHERNET, 0).idb(LinkType.RAW, 0, { tsresol: 9 });
  for (let i = 0; i < 500; i++) {
    const size = (i * 397) % 3000; // 0..2999 bytes, many bigger than the small buffers below
    if (i % 50 === 7) b.other(5, bytes(40, i));
    b.epb(i % 2, BigInt(i) * 1_234_567n, bytes(size, i), size + (i % 3));
  }
  const file = b.out();
  const want = drain(readCaptureBytes(file));
  t.is(want.length, 500);
  const path = tmpFile(file);
  for (const bufferSize of [1, 64, 1000, 4096, 1 << 20]) {
    const r = openCapture(path, { bufferSize });
    const got = drain(r);
    t.is(r.error, undefined, `bufferSize ${bufferSize}`);
    t.deepEqual(got, want, `bufferSize ${bufferSize}`);
    t.is(r.stats.bytesRead, file.length);
  }
  // Same for pcap.
  const recs: PcapRec[] = want.map((f, i) => ({ sec: i, frac: i, data: f.data }));
  const pfile = pcapFile({}, recs);
  const pwant = drain(readCaptureBytes(pfile));
  t.deepEqual(drain(openCapture(tmpFile(pfile), { bufferSize: 100 })), pwant);
});

test('a record or block bigger than maxBlockSize stops reading with LIMIT_EXCEEDED', (t) => {
  const ngFile = new Ng().shb().idb(1, 0).epb(0, 1n, bytes(100, 1)).epb(0, 2n, bytes(5000, 2)).epb(0, 3n, bytes(100, 3)).out();
  const pFile = pcapFile({}, [
    { sec: 1, frac: 0, data: bytes(100, 1) },
    { sec: 2, frac: 0, data: bytes(5000, 2) },
  ]);
  for (const [file, name] of [
    [ngFile, 'pcapng'],
    [pFile, 'pcap'],
  ] as const) {
    for (const r of [openCapture(tmpFile(file), { bufferSize: 256, maxBlockSize: 4096 }), readCaptureBytes(file, { maxBlockSize: 4096 })]) {
      const frames = drain(r);
      t.is(frames.length, 1, name);
      t.is(r.error?.code, ErrorCodes.LIMIT_EXCEEDED, name);
      t.is(r.error?.details?.limit, 4096);
    }
  }
});

test('a length far beyond the end of a cut file is reported as truncation, not allocated', (t) => {
  // A record header claiming 1 GiB, in a file of 60 bytes.
  const file = concat(pcapFile({}, []), new W(true).u32(1).u32(0).u32(1 << 30).u32(1 << 30).out(), bytes(20, 1));
  const before = process.memoryUsage().arrayBuffers;
  const r = openCapture(tmpFile(file), { bufferSize: 16, maxBlockSize: 2 ** 31 });
  t.is(r.next(), undefined);
  t.true(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no buffer sized after the bogus length');
  t.is(r.error?.code, ErrorCodes.TRUNCATED);
  t.is(r.error?.details?.missing, 16 + (1 << 30) - 36);
});

test('iteration: for...of reads every frame, break closes the reader, reading after close gives nothing', (t) => {
  const path = tmpFile(smallPcap);
  let n = 0;
  for (const f of openCapture(path)) {
    t.true(f.data instanceof Uint8Array);
    n++;
  }
  t.is(n, 3);
  const r = openCapture(path);
  for (const _ of r) break;
  t.is(r.stats.frames, 1);
  t.is(r.next(), undefined, 'closed by break');
  const r2 = readCaptureBytes(smallPcap);
  r2.close();
  r2.close();
  t.is(r2.next(), undefined);
  t.is(r2.error, undefined);
});

test('frames read from memory are views into the input, not copies', (t) => {
  const f = readCaptureBytes(smallPcap).next()!;
  t.is(f.data.buffer, smallPcap.buffer);
  t.is(f.data.byteOffset, 40);
});

tsharkTest('tshark reads the built files the same way: lengths, timestamps, interfaces', (t) => {
  const files: [string, Uint8Array][] = [
    ['pcap ns big endian', pcapFile({ le: false, nano: true }, [{ sec: 1_700_000_000, frac: 999_999_999, data: bytes(60, 1), origLen: 70 }])],
    ['pcap modified', pcapFile({ modified: true }, [{ sec: 10, frac: 5, data: bytes(20, 3) }])],
    [
      'pcapng interfaces, resolutions, offset, skipped blocks',
      new Ng()
        .shb()
        .idb(LinkType.ETHERNET, 65535)
        .idb(LinkType.RAW, 0, { tsresol: 9 })
        .idb(LinkType.LINUX_SLL, 128, { tsresol: 0x80 | 10, tsoffset: 3600n })
        .other(5, new Uint8Array(12)) // interface statistics: interface 0, time 0, no options
        .epb(0, 1_700_000_000_654_321n, bytes(42, 1))
        .epb(1, 1_700_000_000_987_654_321n, bytes(20, 2), 40)
        .epb(2, 1_700_000_000n * 1024n + 1000n, bytes(16, 3))
        .opb(1, 1_700_000_001_000_000_001n, bytes(9, 4))
        .out(),
    ],
    ['pcapng simple packet blocks', new Ng().shb().idb(1, 32).epb(0, 5_000_000n, bytes(8, 1)).spb(bytes(32, 1), 100).spb(bytes(10, 2)).out()],
    ['pcapng sections in both byte orders', new Ng().shb(true).idb(1, 0).epb(0, 1_000_000n, bytes(10, 1)).shb(false).idb(101, 0, { tsresol: 9 }).idb(0, 0).epb(1, 3_000_000n, bytes(12, 3)).epb(0, 2_000_000_000n, bytes(11, 2)).out()],
  ];
  for (const [name, file] of files) {
    const path = tmpFile(file);
    // tshark 4.0 numbers interfaces per section; dbtap across the file (see CaptureReader.interfaces).
    const localIds = name.includes('sections') ? [0, 0, 1] : [0, 1, 2];
    const mine = drain(openCapture(path)).map((f) => `${localIds[f.interfaceId!]} ${f.data.length} ${f.origLen} ${f.ts}`);
    const theirs = tshark(['-r', path, '-T', 'fields', '-e', 'frame.interface_id', '-e', 'frame.cap_len', '-e', 'frame.len', '-e', 'frame.time_epoch'])
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [id, cap, len, epoch] = l.split('\t');
        // A simple packet block has no timestamp: tshark prints none, dbtap gives 0.
        const [sec = '0', frac = ''] = epoch!.split('.');
        return `${id === '' ? 0 : id} ${cap} ${len} ${Number(sec) * 1e6 + Math.floor(Number(frac.padEnd(9, '0')) / 1000)}`;
      });
    t.deepEqual(mine, theirs, name);
  }
});

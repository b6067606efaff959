// The kit framer on a toy format (u8 type | u16be length of the body | body),
// which has what every real format has: a header, a length, and bytes that
// may or may not be a boundary.
import test from 'ava';
import { Framer, FrameFlag, Outcome, type FrameFormat, type FramerOptions } from '@dbtap/protocols';

const toy: FrameFormat = {
  headerBytes: 3,
  frameLength: (b, at) => (b[at] === 0x51 || b[at] === 0x52 ? 3 + ((b[at + 1]! << 8) | b[at + 2]!) : Outcome.Malformed),
};

/** Plausible when the type is known and the next message (or the end) follows. */
function toyResync(b: Uint8Array, at: number, end: number): number {
  if (b[at] !== 0x51 && b[at] !== 0x52) return Outcome.Malformed;
  if (end - at < 3) return Outcome.More;
  const total = 3 + ((b[at + 1]! << 8) | b[at + 2]!);
  if (total > 1000) return Outcome.Malformed;
  if (end - at < total) return Outcome.More;
  return total;
}

function msg(type: number, body: string): Uint8Array {
  const b = new TextEncoder().encode(body);
  const out = new Uint8Array(3 + b.length);
  out[0] = type;
  out[1] = b.length >> 8;
  out[2] = b.length & 0xff;
  out.set(b, 3);
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

interface Got {
  text: string;
  wire: number;
  flags: number;
  view: boolean;
}

function harness(opts: Partial<FramerOptions> = {}) {
  const got: Got[] = [];
  let current: Uint8Array | undefined;
  const f = new Framer(
    toy,
    (m, wire, flags) => {
      got.push({ text: new TextDecoder().decode(m.subarray(3)), wire, flags, view: current !== undefined && m.buffer === current.buffer });
    },
    { maxMessageBytes: 1 << 16, resync: toyResync, ...opts },
  );
  const push = (b: Uint8Array): number => {
    current = b;
    return f.push(b);
  };
  return { f, got, push };
}

const stream = cat(msg(0x51, 'select 1'), msg(0x52, ''), msg(0x51, 'hello world'), msg(0x52, 'x'));
const expected = ['select 1', '', 'hello world', 'x'];

test('whole messages inside a chunk are views; the same messages at every split offset', (t) => {
  const h = harness();
  h.push(stream);
  t.deepEqual(
    h.got.map((g) => g.text),
    expected,
  );
  t.true(h.got.every((g) => g.view && g.flags === 0));
  for (let cut = 0; cut <= stream.length; cut++) {
    const s = harness();
    s.push(stream.subarray(0, cut));
    s.push(stream.subarray(cut));
    t.deepEqual(
      s.got.map((g) => g.text),
      expected,
      `cut at ${cut}`,
    );
    t.is(s.f.counters.skippedBytes, 0);
  }
});

test('byte at a time: every message copied once, nothing skipped', (t) => {
  const h = harness();
  for (let i = 0; i < stream.length; i++) h.push(stream.subarray(i, i + 1));
  t.deepEqual(
    h.got.map((g) => g.text),
    expected,
  );
  t.deepEqual(
    h.got.map((g) => g.wire),
    [11, 3, 14, 4],
  );
  t.true(h.f.idle);
});

test('a gap inside a message keeps sync: zero-filled by default, cut out on request', (t) => {
  const m = msg(0x51, 'abcdefgh');
  for (const holes of ['zero-fill', 'cut'] as const) {
    const h = harness({ holes });
    h.push(m.subarray(0, 5));
    t.true(h.f.gap(3));
    h.push(m.subarray(8));
    h.push(msg(0x52, 'next'));
    t.is(h.got.length, 2);
    t.is(h.got[0]!.flags & FrameFlag.Truncated, FrameFlag.Truncated);
    t.is(h.got[0]!.wire, m.length);
    t.is(h.got[0]!.text, holes === 'zero-fill' ? 'ab\0\0\0fgh' : 'abfgh');
    t.is(h.got[1]!.text, 'next');
    t.true(h.f.synced);
  }
});

test('a gap between messages loses sync; the scan resumes at the next plausible message and counts what it skipped', (t) => {
  const h = harness();
  h.push(msg(0x51, 'one'));
  t.false(h.f.gap(10));
  t.true(h.f.takeLostSync());
  t.false(h.f.takeLostSync());
  const garbage = new Uint8Array([0x00, 0x51, 0xff, 0xff, 0x07]);
  h.push(cat(garbage, msg(0x51, 'two'), msg(0x52, 'three')));
  t.deepEqual(
    h.got.map((g) => g.text),
    ['one', 'two', 'three'],
  );
  t.is(h.f.counters.skippedBytes, garbage.length);
  t.is(h.f.counters.resyncs, 1);
});

test('the scan keeps a candidate that needs more bytes across chunks', (t) => {
  const h = harness({ startSynced: false });
  const two = msg(0x51, 'two');
  h.push(cat(new Uint8Array([1, 2, 3]), two.subarray(0, 4)));
  t.is(h.got.length, 0);
  h.push(two.subarray(4));
  t.deepEqual(
    h.got.map((g) => g.text),
    ['two'],
  );
  t.is(h.f.counters.skippedBytes, 3);
});

test('a malformed header counts and rescans from that byte', (t) => {
  const h = harness();
  h.push(cat(new Uint8Array([0x99, 0, 1, 0]), msg(0x52, 'ok')));
  t.deepEqual(
    h.got.map((g) => g.text),
    ['ok'],
  );
  t.is(h.f.counters.malformed, 1);
  t.is(h.f.counters.skippedBytes, 4);
});

test('oversized messages: the prefix is delivered Truncated|Oversized, the rest skipped, the stream stays in sync', (t) => {
  const big = msg(0x51, 'x'.repeat(500));
  // A prefix that straddles chunks is collected whole before the rest is skipped.
  for (const chunking of [[big.length], [1, big.length - 1], [2, big.length - 2], [5, 3, 4, big.length - 12], [100, 400, big.length - 500]]) {
    const h = harness({ maxMessageBytes: 100, oversizePrefix: 20 });
    let o = 0;
    for (const k of chunking) {
      h.push(big.subarray(o, o + k));
      o += k;
    }
    h.push(msg(0x52, 'after'));
    t.is(h.got.length, 2, `chunks ${chunking}`);
    t.is(h.got[0]!.flags, FrameFlag.Truncated | FrameFlag.Oversized);
    t.is(h.got[0]!.wire, big.length);
    t.is(h.got[0]!.text, 'x'.repeat(17));
    t.is(h.got[1]!.text, 'after');
    t.is(h.f.counters.oversized, 1);
  }
});

test('oversized messages: a gap in the part that is skipped anyway keeps sync', (t) => {
  const big = msg(0x51, 'abcdefghijklmnopqrstuvwxyz'.repeat(20));
  const h = harness({ maxMessageBytes: 100, oversizePrefix: 20 });
  h.push(big.subarray(0, 10));
  t.true(h.f.gap(300));
  h.push(big.subarray(310));
  h.push(msg(0x52, 'after'));
  t.deepEqual(h.got.map((g) => g.text), ['abcdefg' + '\0'.repeat(10), 'after']);
});

test('the sink may switch the format and stop the framer; push returns what it consumed', (t) => {
  const oneByte: FrameFormat = { headerBytes: 1, frameLength: () => 1 };
  const seen: number[] = [];
  const f: Framer = new Framer(
    oneByte,
    (m) => {
      seen.push(m.length);
      if (m.length === 1) f.format = toy;
      else if (m[0] === 0x52) f.stop();
    },
    { maxMessageBytes: 1000, resync: toyResync },
  );
  const input = cat(new Uint8Array([0x53]), msg(0x51, 'a'), msg(0x52, 'b'), new Uint8Array([9, 9, 9]));
  const used = f.push(input);
  t.deepEqual(seen, [1, 4, 4]);
  t.is(used, input.length - 3);
});

test('off() ignores everything after it', (t) => {
  const h = harness();
  h.f.off();
  t.is(h.push(stream), stream.length);
  t.is(h.got.length, 0);
  t.false(h.f.gap(5));
});

test('scanning is bounded: a flood of candidates that never complete keeps at most maxScanBytes', (t) => {
  const h = harness({ startSynced: false, maxScanBytes: 4096 });
  const flood = new Uint8Array(64 << 10).fill(0x51); // every offset is a plausible header needing more bytes
  for (let i = 0; i < 16; i++) h.push(flood);
  t.is(h.got.length, 0);
  t.true(h.f.counters.skippedBytes >= 16 * flood.length - 4096);
});

test('a resync check that accepts what the format refuses cannot make the framer loop', (t) => {
  // The check says yes to every 0x51, but the format refuses a 0x51 whose length byte is 0xff.
  const strict: FrameFormat = { headerBytes: 3, frameLength: (b, at) => (b[at] === 0x51 && b[at + 1] !== 0xff ? 3 + b[at + 2]! : Outcome.Malformed) };
  const got: string[] = [];
  const f = new Framer(strict, (m) => got.push(new TextDecoder().decode(m.subarray(3))), { maxMessageBytes: 1000, resync: (b, at) => (b[at] === 0x51 ? 1 : Outcome.Malformed) });
  f.push(Uint8Array.from([0x51, 0xff, 0x00, 0x51, 0xff, 0x01]));
  f.push(Uint8Array.from([0x51, 0x00, 0x02, 0x6f, 0x6b]));
  t.deepEqual(got, ['ok']);
  t.true(f.counters.malformed >= 2);
  // The same with the refused header split across chunks.
  const g = new Framer(strict, () => {}, { maxMessageBytes: 1000, resync: (b, at) => (b[at] === 0x51 ? 1 : Outcome.Malformed) });
  g.push(Uint8Array.from([0x51]));
  g.push(Uint8Array.from([0xff, 0x00, 0x51]));
  g.push(Uint8Array.from([0xff, 0x00]));
  t.true(g.counters.malformed >= 2);
});

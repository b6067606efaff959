// The conformance suite every protocol runs. A protocol supplies recorded
// conversations (real traffic, one entry per TCP chunk or message) that end
// with a statement whose SQL is `lastSql`; the suite damages them in every way
// the network and the capture do, and checks the promises of the plugin
// contract:
//
//   split      each chunk split at every offset       -> the same records
//   bytewise   every chunk delivered a byte at a time -> the same records
//   truncated  each chunk cut at every offset, the rest lost in a gap
//                                                      -> never throws; records completed
//                                                         before it unchanged; the last
//                                                         statement still decodes
//   dropped    each whole chunk lost (a gap at a message boundary)
//                                                      -> the last statement still decodes
//   ends       the capture ends at every offset        -> close flushes, never throws
//   garbage    random bytes before the first message, picked up mid-stream
//                                                      -> the last statement still decodes
import test from 'ava';
import { Direction, type AuditEvent } from '@dbtap/core';
import { defaultSessionOptions, type ProtocolDecoder, type SessionOptions } from '@dbtap/protocols';

/** A recorded conversation and what must survive any damage to it. */
export interface Conversation {
  /** Test-name prefix. */
  readonly name: string;
  /** The decoder under test. */
  readonly decoder: ProtocolDecoder;
  /** The traffic, one entry per TCP chunk (or message) as recorded, in order. */
  readonly chunks: ReadonlyArray<readonly [Direction, Uint8Array]>;
  /** SQL text of the final statement, which every damage before it must leave decodable (status ok). */
  readonly lastSql: string;
  /** Session options (maxRows etc.). */
  readonly options?: Partial<SessionOptions>;
}

/** Bounds on the work of the suite. */
export interface ConformanceOptions {
  /** Offsets tried per chunk for split/truncate/end (all of them up to this many; else the edges and a spread). Default 512. */
  readonly maxOffsetsPerChunk?: number;
  /** Garbage prefixes tried. Default 16. */
  readonly garbageRuns?: number;
}

type Damage =
  | { readonly kind: 'split'; readonly at: number; readonly k: number }
  | { readonly kind: 'bytewise' }
  | { readonly kind: 'truncate'; readonly at: number; readonly k: number }
  | { readonly kind: 'drop'; readonly at: number }
  | { readonly kind: 'end'; readonly at: number; readonly k: number }
  | { readonly kind: 'garbage'; readonly prefix: Uint8Array };

interface Run {
  readonly events: AuditEvent[];
  /** Records emitted before each chunk was fed. */
  readonly before: number[];
}

function run(c: Conversation, damage?: Damage): Run {
  const events: AuditEvent[] = [];
  const midStream = damage?.kind === 'garbage';
  const session = c.decoder.createSession({
    flowId: 'f1',
    client: { ip: '10.0.0.1', port: 50000 },
    server: { ip: '10.0.0.2', port: 3306 },
    midStream,
    options: { ...defaultSessionOptions, maxRows: 10, ...c.options },
    emit: (e) => events.push(e),
  });
  const before: number[] = [];
  let ts = 1_000_000;
  const seen = [false, false];
  for (let i = 0; i < c.chunks.length; i++) {
    const [dir, bytes] = c.chunks[i]!;
    before.push(events.length);
    ts += 100;
    if (damage === undefined || !('at' in damage) || damage.at !== i) {
      if (damage?.kind === 'bytewise') for (let b = 0; b < bytes.length; b++) session.data(dir, bytes.subarray(b, b + 1), ts);
      else if (damage?.kind === 'garbage' && !seen[dir]) session.data(dir, concat(damage.prefix, bytes), ts);
      else session.data(dir, bytes, ts);
      seen[dir] = true;
      continue;
    }
    if (damage.kind === 'split') {
      session.data(dir, bytes.subarray(0, damage.k), ts);
      session.data(dir, bytes.subarray(damage.k), ts);
    } else if (damage.kind === 'truncate') {
      session.data(dir, bytes.subarray(0, damage.k), ts);
      session.gap(dir, bytes.length - damage.k, ts);
    } else if (damage.kind === 'drop') {
      session.gap(dir, bytes.length, ts);
    } else {
      session.data(dir, bytes.subarray(0, damage.k), ts);
      session.close('end-of-capture', ts + 100);
      return { events, before };
    }
  }
  session.close('fin', ts + 100);
  return { events, before };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Offsets 1..len-1 (or 0..len for `inclusive`), thinned to the edges and a spread past `max`. */
function offsets(len: number, max: number, inclusive = false): number[] {
  const lo = inclusive ? 0 : 1;
  const hi = inclusive ? len : len - 1;
  if (hi - lo + 1 <= max) return Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);
  const out = new Set<number>();
  const edge = Math.floor(max / 4);
  for (let i = 0; i < edge; i++) {
    out.add(lo + i);
    out.add(hi - i);
  }
  const step = (hi - lo) / (max - 2 * edge);
  for (let x = lo; x <= hi; x += step) out.add(Math.round(x));
  return [...out].sort((a, b) => a - b);
}

/** xorshift32: the garbage is random but the same on every run. */
function garbage(seed: number, n: number): Uint8Array {
  let s = seed | 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function lastOk(events: readonly AuditEvent[], sql: string): boolean {
  return events.some((e) => e.kind === 'statement' && e.sql !== undefined && e.sql.endsWith(sql) && e.status === 'ok');
}

/** Index of the chunk that carries the last statement (damage is applied only before it). */
function lastIndex(c: Conversation): number {
  const needle = Buffer.from(c.lastSql);
  for (let i = c.chunks.length - 1; i >= 0; i--) {
    const [dir, bytes] = c.chunks[i]!;
    if (dir === Direction.ToServer && Buffer.from(bytes).includes(needle)) return i;
  }
  // Compressed or encoded: the last client chunk.
  let j = c.chunks.length - 1;
  while (j > 0 && c.chunks[j]![0] !== Direction.ToServer) j--;
  return j;
}

const json = (e: readonly AuditEvent[]): string => JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

/** Registers the conformance tests for `conversations`; see the module comment. */
export function conformance(conversations: readonly Conversation[], opts: ConformanceOptions = {}): void {
  const max = opts.maxOffsetsPerChunk ?? 512;
  for (const c of conversations) {
    const whole = (): Run => {
      const r = run(c);
      if (!lastOk(r.events, c.lastSql)) throw new Error(`${c.name}: the conversation does not decode whole (no ok record ending with ${c.lastSql})`);
      return r;
    };

    test(`${c.name}: conformance: split at every offset and byte at a time give the same records`, (t) => {
      const ref = json(whole().events);
      const failures: string[] = [];
      let cases = 0;
      c.chunks.forEach(([, bytes], at) => {
        for (const k of offsets(bytes.length, max)) {
          cases++;
          if (json(run(c, { kind: 'split', at, k }).events) !== ref) failures.push(`chunk ${at} split at ${k}`);
        }
      });
      if (json(run(c, { kind: 'bytewise' }).events) !== ref) failures.push('byte at a time');
      t.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${cases + 1} deliveries differ`);
    });

    test(`${c.name}: conformance: truncation at every offset and a lost chunk keep what came before and decode what follows`, (t) => {
      const ref = whole();
      const refJson = ref.events.map((e) => json([e]));
      const last = lastIndex(c);
      t.true(last > 0, 'the last statement is not the first chunk');
      const failures: string[] = [];
      let cases = 0;
      const check = (got: Run, at: number, what: string): void => {
        cases++;
        const keep = ref.before[at]!;
        for (let i = 0; i < keep; i++) {
          if (got.events[i] === undefined || json([got.events[i]!]) !== refJson[i]) {
            failures.push(`${what}: record ${i}, complete before the damage, changed`);
            break;
          }
        }
        if (!lastOk(got.events, c.lastSql)) failures.push(`${what}: the last statement was lost`);
        for (const e of got.events) if (e.status !== 'ok' && e.status !== 'error' && e.status !== 'unknown') failures.push(`${what}: bad status`);
      };
      for (let at = 0; at < last; at++) {
        const len = c.chunks[at]![1].length;
        for (const k of offsets(len, max, true).filter((k) => k < len)) check(run(c, { kind: 'truncate', at, k }), at, `chunk ${at} cut at ${k}`);
        check(run(c, { kind: 'drop', at }), at, `chunk ${at} lost`);
      }
      t.deepEqual(failures.slice(0, 20), [], `${failures.length} problems in ${cases} damaged runs`);
    });

    test(`${c.name}: conformance: a capture that ends at any offset flushes cleanly`, (t) => {
      const failures: string[] = [];
      c.chunks.forEach(([, bytes], at) => {
        for (const k of offsets(bytes.length, max, true)) {
          const got = run(c, { kind: 'end', at, k });
          if (got.events.some((e) => !e.id)) failures.push(`chunk ${at} end at ${k}: a record without id`);
        }
      });
      t.deepEqual(failures.slice(0, 20), []);
    });

    test(`${c.name}: conformance: garbage before the first message, picked up mid-stream, still decodes the last statement`, (t) => {
      whole();
      const runs = opts.garbageRuns ?? 16;
      const failures: string[] = [];
      for (let i = 0; i < runs; i++) {
        const prefix = garbage(0x9e3779b9 ^ (i * 7919), 1 + ((i * 37) % 200));
        if (!lastOk(run(c, { kind: 'garbage', prefix }).events, c.lastSql)) failures.push(`${prefix.length} garbage bytes (seed ${i})`);
      }
      t.deepEqual(failures, []);
    });
  }
}

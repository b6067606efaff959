// Random and mutated input: real recorded sessions and built conversations
// with flipped, inserted and dropped bytes, gaps, odd chunking and missing
// beginnings, and plain random streams. No exception may escape a session,
// every record must stay well-formed, and what a session keeps in memory
// must stay within its bounds whatever the stream announces.
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import { C, S, colDef, concat, greeting, lenenc, loginReq, lstr, newSession, ok, pkt, query, recordedScript, str, u16, u32 } from './helpers/mysql.js';
import * as recorded from './helpers/mysql-fixtures.js';
import { cachingSha2Script, compressedScript, plainScript, prepareOk, queryAttributesScript, type Script } from './helpers/mysql-scripts.js';
import { MysqlSession } from '../src/mysql/session.js';

// A session catches what its decoding throws (a bug must not stop the
// pipeline) and counts it as malformed input. Here a throw is a failure:
// the packet handlers are wrapped to record any exception before it is caught.
const thrown: string[] = [];
const proto = MysqlSession.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const name of ['onClientPacket', 'onServerPacket']) {
  const orig = proto[name]!;
  proto[name] = function (this: unknown, ...a: unknown[]) {
    try {
      return orig.apply(this, a);
    } catch (e) {
      thrown.push(`${name}: ${(e as Error).stack?.split('\n').slice(0, 3).join(' / ')}`);
      throw e;
    }
  };
}

/** Deterministic pseudo-random numbers (a failing case is reproducible from its seed). */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const sources: [string, Script][] = [
  ['plain', plainScript()],
  ['compressed', compressedScript()],
  ['caching_sha2', cachingSha2Script()],
  ['query attributes', queryAttributesScript()],
  ...Object.values(recorded)
    .filter((s): s is recorded.RecordedSession => typeof s === 'object' && s.name !== 'bigCompressedSession')
    .map((s): [string, Script] => [s.name, recordedScript(s)]),
];

function wellFormed(events: AuditEvent[], where: string): string[] {
  const bad: string[] = [];
  for (const e of events) {
    if (!e.id.startsWith('f1:') || e.flowId !== 'f1' || e.dbType !== 'mysql') bad.push(`${where}: identity ${e.id}`);
    if (!['ok', 'error', 'unknown'].includes(e.status)) bad.push(`${where}: status ${e.status}`);
    if (!['login', 'statement', 'logout'].includes(e.kind)) bad.push(`${where}: kind ${e.kind}`);
    if (e.sql !== undefined && typeof e.sql !== 'string') bad.push(`${where}: sql`);
    if (e.durationUs !== undefined && !(e.durationUs >= 0)) bad.push(`${where}: duration ${e.durationUs}`);
    if ((e.bytesIn ?? 0) < 0 || (e.bytesOut ?? 0) < 0) bad.push(`${where}: bytes`);
  }
  return bad;
}

test('mutated real and built sessions never throw and give well-formed records', (t) => {
  const bad: string[] = [];
  let runs = 0;
  for (let seed = 1; seed <= 2400; seed++) {
    const rnd = rng(seed * 7919);
    const [name, script] = sources[seed % sources.length]!;
    const h = newSession({ maxRows: 2, midStream: rnd(4) === 0, maxMessageBytes: rnd(3) === 0 ? 256 : 64 << 20 });
    // A capture that begins late: drop some chunks and part of the next.
    let start = 0;
    let skip = 0;
    if (rnd(5) === 0) {
      start = rnd(script.length);
      skip = rnd(Math.max(1, script[start]![1].length));
    }
    let ts = 1_000_000;
    for (let i = start; i < script.length; i++) {
      const [dir, orig] = script[i]!;
      let m: Uint8Array = Uint8Array.from(orig.subarray(i === start ? skip : 0));
      // flips
      for (let k = rnd(4); k > 0 && m.length > 0; k--) m[rnd(m.length)] = rnd(256);
      // an insertion or a deletion
      if (rnd(8) === 0) {
        const at = rnd(m.length + 1);
        m = concat(m.subarray(0, at), Uint8Array.from({ length: 1 + rnd(12) }, () => rnd(256)), m.subarray(at));
      } else if (rnd(8) === 0 && m.length > 2) {
        const at = rnd(m.length - 1);
        m = concat(m.subarray(0, at), m.subarray(at + 1 + rnd(Math.min(8, m.length - at - 1))));
      }
      // random chunking, with a gap now and then
      let o = 0;
      while (o < m.length) {
        const n = 1 + rnd(Math.max(1, m.length - o));
        ts += 10;
        if (rnd(25) === 0) {
          h.session.gap(dir, n, ts);
        } else {
          h.session.data(dir, m.subarray(o, o + n), ts);
        }
        o += n;
      }
      // a duplicated chunk
      if (rnd(30) === 0) h.session.data(dir, m, ts);
    }
    h.session.close(rnd(2) === 0 ? 'fin' : 'end-of-capture', ts + 10);
    runs++;
    bad.push(...wellFormed(h.events, `${name} seed ${seed}`));
    if (h.session.stats.events !== h.events.length) bad.push(`${name} seed ${seed}: events counted ${h.session.stats.events} != ${h.events.length}`);
  }
  t.deepEqual(bad.slice(0, 20), [], `${bad.length} problems in ${runs} runs`);
  t.deepEqual([...new Set(thrown)].slice(0, 10), []);
});

test('random byte streams in both directions never throw', (t) => {
  const bad: string[] = [];
  for (let seed = 1; seed <= 600; seed++) {
    const rnd = rng(seed * 104729);
    const h = newSession({ midStream: seed % 2 === 0, maxRows: 3 });
    let ts = 0;
    for (let k = 0; k < 40; k++) {
      const dir = rnd(2) as 0 | 1;
      const len = rnd(300);
      // Biased toward protocol-looking bytes: small lengths, sequence 0/1, command bytes.
      const b = Uint8Array.from({ length: len }, (_, i) => (i % 7 < 3 ? rnd(8) : i % 7 === 3 ? rnd(3) : rnd(256)));
      if (rnd(20) === 0) h.session.gap(dir, rnd(1000), ++ts);
      h.session.data(dir, b, ++ts);
    }
    h.session.close('fin', ++ts);
    bad.push(...wellFormed(h.events, `random seed ${seed}`));
  }
  t.deepEqual(bad.slice(0, 20), []);
  t.deepEqual([...new Set(thrown)].slice(0, 10), []);
});

/** Bytes held by ArrayBuffers (the framers' buffers live there). */
function arrayBufferBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().arrayBuffers;
}

test('memory: packets announcing 16 MiB and more are buffered only up to maxMessageBytes', (t) => {
  const max = 1 << 20;
  const h = newSession({ maxMessageBytes: max, maxSqlLength: 100 });
  for (const [d, b] of [[S, pkt(0, greeting())], [C, pkt(1, loginReq({ db: 'test' }))], [S, pkt(2, ok())]] as const) h.session.data(d, b, 1);
  // A COM_QUERY chained over 0xffffff-byte packets: 80 MiB in 64 KiB chunks (the same chunk object).
  const chunk = new Uint8Array(64 << 10).fill(0x61);
  const header = (seq: number): Uint8Array => Uint8Array.of(0xff, 0xff, 0xff, seq);
  const before = arrayBufferBytes();
  let peak = 0;
  let seq = 0;
  for (let phys = 0; phys < 5; phys++) {
    h.session.data(C, phys === 0 ? concat(header(seq++), [0x03], str('SELECT ')) : header(seq++), 2);
    for (let sent = phys === 0 ? 8 : 0; sent + chunk.length <= 0xffffff; sent += chunk.length) h.session.data(C, chunk, 2);
    h.session.data(C, chunk.subarray(0, 0xffffff % chunk.length - (phys === 0 ? 8 : 0)), 2);
    peak = Math.max(peak, arrayBufferBytes() - before);
  }
  h.session.data(C, Uint8Array.of(0, 0, 0, seq), 3);
  h.session.data(S, pkt(1, ok()), 4);
  h.session.data(C, pkt(0, query("SELECT 'after'")), 5);
  h.session.data(S, pkt(1, ok()), 6);
  t.true(peak < 4 * max, `peak ${peak} bytes`);
  const big = h.events.find((e) => e.sql?.startsWith('SELECT aaa'));
  t.like(big, { truncated: true, status: 'ok', bytesIn: 5 * (0xffffff + 4) + 4 });
  t.is(big?.sql?.length, 100);
  t.like(h.events.at(-1), { sql: "SELECT 'after'", status: 'ok' });
});

test('memory: unanswered pipelined requests, prepared statements, long data and wide results stay bounded', (t) => {
  const h = newSession({ maxSqlLength: 1000 });
  for (const [d, b] of [[S, pkt(0, greeting())], [C, pkt(1, loginReq({ db: 'test' }))], [S, pkt(2, ok())]] as const) h.session.data(d, b, 1);
  // 20,000 queries the server never answers: the queue keeps 256 and records the rest as unknown.
  const q = pkt(0, query('SELECT SLEEP(1)'));
  for (let i = 0; i < 20_000; i++) h.session.data(C, q, 2);
  t.true(h.session.stats.unmatchedRequests >= 20_000 - 256, `unmatched ${h.session.stats.unmatchedRequests}`);
  h.session.close('fin', 3);
  t.true(h.events.filter((e) => e.sql === 'SELECT SLEEP(1)').every((e) => e.status === 'unknown'));

  // 6,000 prepared statements: the oldest are forgotten (4096 kept), so their EXECUTE has no text.
  const p = newSession({ maxSqlLength: 1000 });
  for (const [d, b] of [[S, pkt(0, greeting())], [C, pkt(1, loginReq({ db: 'test' }))], [S, pkt(2, ok())]] as const) p.session.data(d, b, 1);
  for (let id = 1; id <= 6000; id++) {
    p.session.data(C, pkt(0, concat([0x16], str(`SELECT ${id}`))), 2);
    p.session.data(S, pkt(1, prepareOk(id, 0, 0)), 2);
  }
  const exec = (id: number): AuditEvent => {
    p.session.data(C, pkt(0, concat([0x17], u32(id), [0], u32(1))), 3);
    p.session.data(S, pkt(1, ok()), 3);
    return p.events.at(-1)!;
  };
  t.is(exec(1).sql, undefined);
  t.is(exec(6000).sql, 'SELECT 6000');
  // 2,000 pieces of long data of 4 KiB for one parameter: the joined value is cut at maxSqlLength.
  p.session.data(C, pkt(0, concat([0x16], str('INSERT INTO d VALUES (?)'))), 4);
  p.session.data(S, concat(pkt(1, prepareOk(7000, 0, 1)), pkt(2, colDef('?')), pkt(3, [0xfe, 0, 0, 2, 0])), 4);
  const piece = pkt(0, concat([0x18], u32(7000), u16(0), new Uint8Array(4096).fill(0x7a)));
  for (let i = 0; i < 2000; i++) p.session.data(C, piece, 5);
  p.session.data(C, pkt(0, concat([0x17], u32(7000), [0], u32(1), [0], [1], u16(0xfc))), 6);
  p.session.data(S, pkt(1, ok({ affected: 1 })), 6);
  const ld = p.events.at(-1)!;
  t.is(ld.command, 'COM_STMT_EXECUTE');
  t.is((ld.params?.[0] as string).length, 1000);

  // A result announcing 100,000 columns, all sent: the record keeps a bounded list of names.
  const w = newSession({ maxRows: 1 });
  for (const [d, b] of [[S, pkt(0, greeting())], [C, pkt(1, loginReq({ db: 'test' }))], [S, pkt(2, ok())]] as const) w.session.data(d, b, 1);
  w.session.data(C, pkt(0, query('SELECT wide')), 2);
  w.session.data(S, pkt(1, lenenc(100_000)), 2);
  const def = pkt(2, colDef('c'));
  for (let i = 0; i < 100_000; i++) w.session.data(S, def, 2);
  w.session.data(S, concat(pkt(3, [0xfe, 0, 0, 2, 0]), pkt(4, [0xfe, 0, 0, 2, 0])), 3);
  const wide = w.events.at(-1)!;
  t.like(wide, { sql: 'SELECT wide', status: 'ok', rowsReturned: 0 });
  t.true(wide.columns!.length <= 4096, `${wide.columns!.length} column names kept`);
});

test('query attributes and EXECUTE with absurd parameter counts are malformed, not a hang', (t) => {
  const h = newSession();
  h.session.data(S, pkt(0, greeting({ caps: 0xffffffff & ~0x800 })), 1);
  h.session.data(C, pkt(1, loginReq({ db: 'test', caps: 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000 | 0x8000000 })), 1);
  h.session.data(S, pkt(2, ok()), 1);
  // parameter_count 2^40 + 8 (its null bitmap would be 2^37 + 1 bytes) with new-params-bound set: only a handful of bytes follow.
  const huge = [0xfe, 8, 0, 0, 0, 1, 0, 0, 0];
  h.session.data(C, pkt(0, concat([0x03], huge, [1], [0], [1], u16(0xfe), lstr('x'), str('SELECT 1'))), 2);
  h.session.data(S, pkt(1, ok()), 2);
  h.session.data(C, pkt(0, concat([0x17], u32(1), [0x08], u32(1), huge, [0], [1], u16(0xfe))), 3);
  h.session.data(S, pkt(1, ok()), 3);
  // The same count where the bitmap length wraps to nothing in 32-bit arithmetic.
  h.session.data(C, pkt(0, concat([0x17], u32(1), [0x08], u32(1), [0xfe, 0, 0, 0, 0, 1, 0, 0, 0], [1], u16(0xfe))), 3);
  h.session.data(S, pkt(1, ok()), 3);
  h.session.data(C, pkt(0, query("SELECT 'after'")), 4);
  h.session.data(S, pkt(1, ok()), 4);
  t.is(h.events.at(-1)?.sql, "SELECT 'after'");
  t.true(h.session.stats.malformed >= 1);
});

// Test helpers for the MySQL decoder: a collecting SessionContext, packet
// builders, and a tshark-based stream splitter for real captures.
import type { AuditEvent } from '@dbtap/core';
import { defaultSessionOptions, mysql, type ProtocolSession, type SessionContext, type SessionOptions } from '@dbtap/protocols';
import { deflateSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';

export const C = 0 as const; // client -> server
export const S = 1 as const; // server -> client

/** A session plus the records it emitted. */
export interface Harness {
  session: ProtocolSession;
  events: AuditEvent[];
  ctx: SessionContext;
}

/** A MySQL session whose records are collected into `events`. */
export function newSession(opts: Partial<SessionOptions> & { midStream?: boolean } = {}): Harness {
  const events: AuditEvent[] = [];
  const { midStream, ...o } = opts;
  const ctx: SessionContext = {
    flowId: 'f1',
    client: { ip: '127.0.0.1', port: 50000 },
    server: { ip: '127.0.0.1', port: 3306 },
    midStream: midStream ?? false,
    options: { ...defaultSessionOptions, ...o },
    emit: (e) => events.push(e),
  };
  return { session: mysql.createSession(ctx), events, ctx };
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p instanceof Uint8Array ? p : Uint8Array.from(p)))));
}

export function u16(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff];
}
export function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
export function str(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'utf8'));
}
export function cstr(s: string): Uint8Array {
  return concat(str(s), [0]);
}
export function lenenc(n: number): number[] {
  if (n < 0xfb) return [n];
  if (n < 0x10000) return [0xfc, ...u16(n)];
  if (n < 0x1000000) return [0xfd, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff];
  return [0xfe, ...u32(n), 0, 0, 0, 0];
}
export function lstr(s: string | Uint8Array): Uint8Array {
  const b = typeof s === 'string' ? str(s) : s;
  return concat(lenenc(b.length), b);
}

/** One wire packet: u24 length | seq | payload. */
export function pkt(seq: number, payload: Uint8Array | number[]): Uint8Array {
  const p = payload instanceof Uint8Array ? payload : Uint8Array.from(payload);
  const n = p.length;
  return concat([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, seq & 0xff], p);
}

/** A payload that may exceed 16 MiB, split into 0xffffff-byte packets. */
export function bigPkt(seq: number, payload: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let off = 0;
  for (;;) {
    const n = Math.min(0xffffff, payload.length - off);
    parts.push(pkt(seq++, payload.subarray(off, off + n)));
    off += n;
    if (n < 0xffffff) break;
  }
  return concat(...parts);
}

/** Wraps plain packet bytes into one compressed-protocol packet. */
export function compressed(seq: number, inner: Uint8Array, compress = true): Uint8Array {
  const body = compress ? Uint8Array.from(deflateSync(inner)) : inner;
  const raw = compress ? inner.length : 0;
  return concat([body.length & 0xff, (body.length >> 8) & 0xff, (body.length >> 16) & 0xff, seq, raw & 0xff, (raw >> 8) & 0xff, (raw >> 16) & 0xff], body);
}

// Capabilities used by the builders.
export const CAP = {
  LONG_PASSWORD: 0x1,
  CONNECT_WITH_DB: 0x8,
  COMPRESS: 0x20,
  LOCAL_FILES: 0x80,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC: 0x200000,
  SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
  QUERY_ATTRIBUTES: 0x8000000,
};
export const BASE_CAPS =
  CAP.LONG_PASSWORD | CAP.CONNECT_WITH_DB | CAP.LOCAL_FILES | CAP.PROTOCOL_41 | CAP.TRANSACTIONS | CAP.SECURE_CONNECTION | CAP.MULTI_STATEMENTS | CAP.MULTI_RESULTS | CAP.PS_MULTI_RESULTS | CAP.PLUGIN_AUTH | CAP.CONNECT_ATTRS | CAP.PLUGIN_AUTH_LENENC;

/** HandshakeV10 payload. */
export function greeting(opts: { version?: string; connId?: number; caps?: number; plugin?: string } = {}): Uint8Array {
  const caps = opts.caps ?? (BASE_CAPS | CAP.SSL | CAP.COMPRESS | CAP.SESSION_TRACK | CAP.DEPRECATE_EOF);
  return concat(
    [10],
    cstr(opts.version ?? '8.0.36'),
    u32(opts.connId ?? 42),
    str('abcdefgh'),
    [0],
    u16(caps & 0xffff),
    [45],
    u16(2),
    u16(caps >>> 16),
    [21],
    new Array(10).fill(0),
    str('ijklmnopqrst'),
    [0],
    cstr(opts.plugin ?? 'caching_sha2_password'),
  );
}

/** HandshakeResponse41 payload. */
export function loginReq(opts: { user?: string; db?: string; caps?: number; plugin?: string; attrs?: Record<string, string>; charset?: number } = {}): Uint8Array {
  let caps = opts.caps ?? BASE_CAPS;
  if (opts.db === undefined) caps &= ~CAP.CONNECT_WITH_DB;
  const attrs = opts.attrs ?? { _client_name: 'libmysql', _client_version: '8.0.36', _os: 'Linux', _pid: '1234', program_name: 'mysql', _os_user: 'alice' };
  const attrBytes = concat(...Object.entries(attrs).flatMap(([k, v]) => [lstr(k), lstr(v)]));
  return concat(
    u32(caps),
    u32(1 << 24),
    [opts.charset ?? 45],
    new Array(23).fill(0),
    cstr(opts.user ?? 'alice'),
    caps & CAP.PLUGIN_AUTH_LENENC ? lstr(new Uint8Array(20).fill(7)) : concat([20], new Uint8Array(20).fill(7)),
    opts.db !== undefined ? cstr(opts.db) : [],
    caps & CAP.PLUGIN_AUTH ? cstr(opts.plugin ?? 'caching_sha2_password') : [],
    caps & CAP.CONNECT_ATTRS ? lstr(attrBytes) : [],
  );
}

export function ok(opts: { affected?: number; insertId?: number; status?: number; warnings?: number; info?: string; header?: number } = {}): Uint8Array {
  return concat([opts.header ?? 0], lenenc(opts.affected ?? 0), lenenc(opts.insertId ?? 0), u16(opts.status ?? 2), u16(opts.warnings ?? 0), opts.info ? str(opts.info) : []);
}
export function err(code: number, state: string, message: string): Uint8Array {
  return concat([0xff], u16(code), str('#' + state), str(message));
}
export function eof(status = 2, warnings = 0): Uint8Array {
  return concat([0xfe], u16(warnings), u16(status));
}
export function colDef(name: string, type = 0xfd, opts: { schema?: string; table?: string; flags?: number } = {}): Uint8Array {
  return concat(lstr('def'), lstr(opts.schema ?? 'test'), lstr(opts.table ?? 't'), lstr(opts.table ?? 't'), lstr(name), lstr(name), [0x0c], u16(45), u32(255), [type], u16(opts.flags ?? 0), [0], [0, 0]);
}
export function textRow(...vals: (string | null)[]): Uint8Array {
  return concat(...vals.map((v) => (v === null ? Uint8Array.of(0xfb) : lstr(v))));
}
export function query(sql: string): Uint8Array {
  return concat([0x03], str(sql));
}

/**
 * A text result set as server packets starting at sequence 1
 * (with EOF after the columns and at the end, or OK-terminated when `deprecateEof`).
 */
export function resultSet(cols: string[], rows: (string | null)[][], opts: { deprecateEof?: boolean; status?: number; startSeq?: number } = {}): Uint8Array {
  let seq = opts.startSeq ?? 1;
  const parts: Uint8Array[] = [pkt(seq++, lenenc(cols.length))];
  for (const c of cols) parts.push(pkt(seq++, colDef(c)));
  if (!opts.deprecateEof) parts.push(pkt(seq++, eof()));
  for (const r of rows) parts.push(pkt(seq++, textRow(...r)));
  parts.push(pkt(seq++, opts.deprecateEof ? ok({ header: 0xfe, status: opts.status ?? 2 }) : eof(opts.status ?? 2)));
  return concat(...parts);
}

/** Feeds a script of (direction, bytes) chunks with increasing timestamps. */
export function feed(h: Harness, script: [0 | 1, Uint8Array | number][], t0 = 1_000_000, step = 100): void {
  let ts = t0;
  for (const [dir, bytes] of script) {
    if (typeof bytes === 'number') h.session.gap(dir, bytes, ts);
    else h.session.data(dir, bytes, ts);
    ts += step;
  }
}

/** A typical login: greeting, HandshakeResponse, OK. */
export function loginScript(opts: { db?: string; caps?: number; version?: string } = {}): [0 | 1, Uint8Array][] {
  return [
    [S, pkt(0, greeting({ version: opts.version, caps: opts.caps === undefined ? undefined : opts.caps | BASE_CAPS | CAP.SSL | CAP.COMPRESS | CAP.SESSION_TRACK | CAP.DEPRECATE_EOF | CAP.QUERY_ATTRIBUTES }))],
    [C, pkt(1, loginReq({ db: opts.db ?? 'test', caps: opts.caps }))],
    [S, pkt(2, ok())],
  ];
}

// ---- real captures via tshark -------------------------------------------------

function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
}

/** One TCP stream of a capture split into its in-order chunks, by direction. */
export interface FollowedStream {
  index: number;
  clientPort: number;
  serverPort: number;
  /** In-order chunks; a number is a gap of that many bytes. */
  chunks: [0 | 1, Uint8Array | number][];
  /** True when the stream does not start with a server greeting. */
  midStream: boolean;
}

/**
 * Splits every TCP stream of `file` into chunks with `tshark -z follow,tcp,raw`
 * (an independent reassembler, so decoder tests do not depend on dbtap's).
 * The server side is the endpoint whose port is in `serverPorts`, else the one
 * that spoke first with a greeting, else the node tshark lists second.
 */
export function followStreams(file: string, serverPorts: number[] = [3306]): FollowedStream[] {
  const ids = [...new Set(tshark(['-r', file, '-Y', 'tcp.len > 0', '-T', 'fields', '-e', 'tcp.stream']).split('\n').filter((x) => x !== '').map(Number))].sort((a, b) => a - b);
  const out: FollowedStream[] = [];
  for (const id of ids) {
    const txt = tshark(['-r', file, '-q', '-z', `follow,tcp,raw,${id}`]);
    const node0 = /Node 0: .*:(\d+)\s*$/m.exec(txt);
    const node1 = /Node 1: .*:(\d+)\s*$/m.exec(txt);
    if (!node0 || !node1) continue;
    const p0 = Number(node0[1]);
    const p1 = Number(node1[1]);
    const raw: [0 | 1, Uint8Array | number][] = [];
    for (const line of txt.split('\n')) {
      if (!/^\t?[0-9a-f]+$/.test(line)) continue;
      const b = hex(line.trim());
      // tshark writes lost segments as the text "[N bytes missing in capture file]"
      const missing = /^\[(\d+) bytes missing in capture file\]\0?$/.exec(Buffer.from(b).toString('latin1'));
      raw.push([line.startsWith('\t') ? 1 : 0, missing ? Number(missing[1]) : b]);
    }
    // node 1 lines are indented; decide which node is the server
    let serverIsNode1 = serverPorts.includes(p1) || !serverPorts.includes(p0);
    const first = raw[0];
    const firstIsGreeting = first !== undefined && typeof first[1] !== 'number' && first[1][3] === 0 && first[1][4] === 10;
    if (!serverPorts.includes(p0) && !serverPorts.includes(p1)) {
      serverIsNode1 = first === undefined ? true : firstIsGreeting ? first[0] === 1 : p1 < p0;
    }
    const chunks: [0 | 1, Uint8Array | number][] = raw.map(([n, b]) => [((n === 1) === serverIsNode1 ? 1 : 0) as 0 | 1, b]);
    const midStream = !(firstIsGreeting && (first![0] === 1) === serverIsNode1);
    out.push({ index: id, clientPort: serverIsNode1 ? p0 : p1, serverPort: serverIsNode1 ? p1 : p0, chunks, midStream });
  }
  return out;
}

/** A recorded session (mysql-fixtures.ts) as a script of (direction, bytes) chunks. */
export function recordedScript(s: { readonly chunks: readonly (readonly [0 | 1, string])[] }): [0 | 1, Uint8Array][] {
  return s.chunks.map(([d, h]) => [d, hex(h)]);
}

// Frame builders for PostgreSQL protocol tests and a session harness that
// collects emitted records.
import { Direction, type AuditEvent } from '@dbtap/core';
import { defaultSessionOptions, postgres, type ProtocolSession, type SessionOptions } from '@dbtap/protocols';

const enc = new TextEncoder();

/** Concatenates byte arrays. */
export function cat(...parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Big-endian Int32. */
export function i32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v);
  return b;
}

/** Big-endian Int16. */
export function i16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setInt16(0, v);
  return b;
}

/** NUL-terminated UTF-8 string. */
export function cstr(s: string): Uint8Array {
  return cat(enc.encode(s), new Uint8Array([0]));
}

/** A typed message: type byte, Int32 length, body. */
export function msg(type: string, ...body: Uint8Array[]): Uint8Array {
  const b = cat(...body);
  return cat(new Uint8Array([type.charCodeAt(0)]), i32(b.length + 4), b);
}

/** An untyped startup-phase packet. */
export function untyped(...body: Uint8Array[]): Uint8Array {
  const b = cat(...body);
  return cat(i32(b.length + 4), b);
}

// ---- frontend -------------------------------------------------------------

/** StartupMessage with protocol 3.0 (or the given minor) and parameters. */
export function startup(params: Record<string, string>, minor = 0): Uint8Array {
  const kv = Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]);
  return untyped(i32((3 << 16) | minor), ...kv, new Uint8Array([0]));
}
export const sslRequest = (): Uint8Array => untyped(i32(80877103));
export const gssEncRequest = (): Uint8Array => untyped(i32(80877104));
export const cancelRequest = (pid: number, secret: number): Uint8Array => untyped(i32(80877102), i32(pid), i32(secret));
export const query = (sql: string): Uint8Array => msg('Q', cstr(sql));
export const parse = (name: string, sql: string, types: number[] = []): Uint8Array => msg('P', cstr(name), cstr(sql), i16(types.length), ...types.map(i32));
/** Bind with per-value formats; values are strings (text), byte arrays (binary) or null. */
export function bind(portal: string, stmt: string, values: (string | Uint8Array | null)[], formats?: number[], resultFormats: number[] = []): Uint8Array {
  const fmts = formats ?? values.map((v) => (v instanceof Uint8Array ? 1 : 0));
  const vals = values.map((v) => (v === null ? i32(-1) : cat(i32(typeof v === 'string' ? enc.encode(v).length : v.length), typeof v === 'string' ? enc.encode(v) : v)));
  return msg('B', cstr(portal), cstr(stmt), i16(fmts.length), ...fmts.map(i16), i16(values.length), ...vals, i16(resultFormats.length), ...resultFormats.map(i16));
}
export const describe = (target: 'S' | 'P', name: string): Uint8Array => msg('D', enc.encode(target), cstr(name));
export const execute = (portal: string, maxRows = 0): Uint8Array => msg('E', cstr(portal), i32(maxRows));
export const close = (target: 'S' | 'P', name: string): Uint8Array => msg('C', enc.encode(target), cstr(name));
export const sync = (): Uint8Array => msg('S');
export const flush = (): Uint8Array => msg('H');
export const terminate = (): Uint8Array => msg('X');
export const password = (pw: string): Uint8Array => msg('p', cstr(pw));
export const copyData = (text: string): Uint8Array => msg('d', enc.encode(text));
export const copyDone = (): Uint8Array => msg('c');
export const copyFail = (m: string): Uint8Array => msg('f', cstr(m));

// ---- backend --------------------------------------------------------------

export const authOk = (): Uint8Array => msg('R', i32(0));
export const authCleartext = (): Uint8Array => msg('R', i32(3));
export const authMd5 = (salt = [1, 2, 3, 4]): Uint8Array => msg('R', i32(5), new Uint8Array(salt));
export const authSasl = (...mechs: string[]): Uint8Array => msg('R', i32(10), ...mechs.map(cstr), new Uint8Array([0]));
export const paramStatus = (name: string, value: string): Uint8Array => msg('S', cstr(name), cstr(value));
export const backendKey = (pid: number, secret: number): Uint8Array => msg('K', i32(pid), i32(secret));
export const ready = (status = 'I'): Uint8Array => msg('Z', enc.encode(status));
/** RowDescription of text columns (type oid per column, default text). */
export function rowDesc(names: string[], types: number[] = [], formats: number[] = []): Uint8Array {
  return msg('T', i16(names.length), ...names.map((n, i) => cat(cstr(n), i32(0), i16(0), i32(types[i] ?? 25), i16(-1), i32(-1), i16(formats[i] ?? 0))));
}
export function dataRow(values: (string | Uint8Array | null)[]): Uint8Array {
  return msg('D', i16(values.length), ...values.map((v) => (v === null ? i32(-1) : cat(i32(typeof v === 'string' ? enc.encode(v).length : v.length), typeof v === 'string' ? enc.encode(v) : v))));
}
export const complete = (tag: string): Uint8Array => msg('C', cstr(tag));
export const emptyQuery = (): Uint8Array => msg('I');
export const parseComplete = (): Uint8Array => msg('1');
export const bindComplete = (): Uint8Array => msg('2');
export const closeComplete = (): Uint8Array => msg('3');
export const noData = (): Uint8Array => msg('n');
export const portalSuspended = (): Uint8Array => msg('s');
export const paramDesc = (types: number[]): Uint8Array => msg('t', i16(types.length), ...types.map(i32));
export const copyInResponse = (cols: number): Uint8Array => msg('G', new Uint8Array([0]), i16(cols), ...new Array(cols).fill(0).map(() => i16(0)));
export const copyOutResponse = (cols: number): Uint8Array => msg('H', new Uint8Array([0]), i16(cols), ...new Array(cols).fill(0).map(() => i16(0)));
/** ErrorResponse / NoticeResponse with the usual fields. */
export function errorMsg(code: string, message: string, severity = 'ERROR', extra: Record<string, string> = {}, type = 'E'): Uint8Array {
  const fields: [string, string][] = [['S', severity], ['V', severity], ['C', code], ['M', message], ...Object.entries(extra)];
  return msg(type, ...fields.map(([k, v]) => cat(enc.encode(k), cstr(v))), new Uint8Array([0]));
}
export const notice = (message: string): Uint8Array => errorMsg('00000', message, 'NOTICE', {}, 'N');

// ---- harness --------------------------------------------------------------

/** A session fed by hand, collecting its records. */
export class Harness {
  readonly events: AuditEvent[] = [];
  readonly session: ProtocolSession;
  ts = 1_700_000_000_000_000;

  constructor(opts: { midStream?: boolean; options?: Partial<SessionOptions> } = {}) {
    this.session = postgres.createSession({
      flowId: 'f1',
      client: { ip: '127.0.0.1', port: 40000 },
      server: { ip: '127.0.0.1', port: 5432 },
      midStream: opts.midStream ?? false,
      options: { ...defaultSessionOptions, ...opts.options },
      emit: (e) => this.events.push(e),
    });
  }

  /** Client bytes, 100 µs after the previous call. */
  c(...parts: Uint8Array[]): this {
    this.ts += 100;
    this.session.data(Direction.ToServer, cat(...parts), this.ts);
    return this;
  }

  /** Server bytes, 100 µs after the previous call. */
  s(...parts: Uint8Array[]): this {
    this.ts += 100;
    this.session.data(Direction.ToClient, cat(...parts), this.ts);
    return this;
  }

  gap(dir: Direction, n: number): this {
    this.ts += 100;
    this.session.gap(dir, n, this.ts);
    return this;
  }

  close(reason: 'fin' | 'rst' | 'end-of-capture' = 'fin'): this {
    this.ts += 100;
    this.session.close(reason, this.ts);
    return this;
  }

  /** Events of one kind. */
  of(kind: AuditEvent['kind']): AuditEvent[] {
    return this.events.filter((e) => e.kind === kind);
  }

  /** A standard trust login. */
  login(params: Record<string, string> = { user: 'alice', database: 'shop', application_name: 'psql' }): this {
    return this.c(startup(params)).s(authOk(), paramStatus('server_version', '15.20'), paramStatus('client_encoding', 'UTF8'), backendKey(4242, 7), ready());
  }
}

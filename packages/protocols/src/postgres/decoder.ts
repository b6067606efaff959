// Bytes -> typed PostgreSQL messages, and the plausibility checks used to
// find message boundaries when a capture starts mid-stream or after a gap.
//
// Every decoder takes a ByteReader positioned on the message body (after the
// type byte and the Int32 length) and returns `undefined` when the body does
// not hold what the type says: malformed input is a value, never a throw.
import { ByteReader, toHex } from '@dbtap/core';
import {
  BackendType,
  FrontendType,
  StartupCode,
  type BackendMessage,
  type ErrorFields,
  type FieldDescription,
  type FrontendMessage,
  type RawValue,
  type StartupPacket,
} from './messages.js';

/** Largest startup packet PostgreSQL accepts (MAX_STARTUP_PACKET_LENGTH in pqcomm.h). */
export const MAX_STARTUP_PACKET = 10000;

/**
 * Decodes an untyped startup-phase packet (the bytes after its Int32 length).
 *
 * ```
 * StartupMessage: Int32 len | Int32 196608 (3.0) | (cstring name, cstring value)* | 0
 * SSLRequest:     Int32 8   | Int32 80877103
 * GSSENCRequest:  Int32 8   | Int32 80877104
 * CancelRequest:  Int32 16  | Int32 80877102 | Int32 pid | Int32 secret
 * ```
 */
export function decodeStartup(r: ByteReader): StartupPacket | undefined {
  const code = r.u32be();
  if (!r.ok) return undefined;
  switch (code) {
    case StartupCode.Ssl:
      return r.remaining === 0 ? { kind: 'ssl' } : undefined;
    case StartupCode.GssEnc:
      return r.remaining === 0 ? { kind: 'gssenc' } : undefined;
    case StartupCode.Cancel: {
      // PostgreSQL 18 allows a longer secret key; keep whatever follows the pid.
      const pid = r.u32be();
      const secret = toHex(r.rest());
      return r.ok && secret.length >= 8 ? { kind: 'cancel', pid, secret } : undefined;
    }
    case StartupCode.GaussStop: {
      const pid = r.u32be();
      const queryId = toHex(r.bytes(8));
      return r.ok ? { kind: 'gauss-stop', pid, queryId } : undefined;
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return undefined;
  const params = new Map<string, string>();
  while (r.remaining > 1) {
    const name = r.cstringUtf8();
    const value = r.cstringUtf8();
    if (!r.ok) return undefined;
    params.set(name, value);
  }
  // The list ends with one NUL; tolerate its absence (some proxies drop it).
  if (r.remaining === 1 && r.u8() !== 0) return undefined;
  return { kind: 'startup', major, minor, params };
}

function cstr(r: ByteReader): string {
  return r.cstringUtf8();
}

/** Reads Int16 count + count Int16 format codes. */
function int16List(r: ByteReader): number[] {
  const n = r.u16be();
  if (n * 2 > r.remaining) {
    r.overrun = true;
    return [];
  }
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.i16be();
  return out;
}

/** Reads Int16 count + count (Int32 length, bytes) values, -1 = NULL. */
function valueList(r: ByteReader): RawValue[] {
  const n = r.u16be();
  if (n * 4 > r.remaining) {
    r.overrun = true;
    return [];
  }
  const out = new Array<RawValue>(n);
  for (let i = 0; i < n; i++) {
    const len = r.i32be();
    out[i] = len < 0 ? null : r.bytes(len);
    if (!r.ok) return out;
  }
  return out;
}

/** Expands the 0 / 1 / n format-code convention of Bind and FunctionCall to one code per value. */
function expandFormats(codes: readonly number[], n: number): number[] {
  if (codes.length === n) return codes as number[];
  const fill = codes.length === 1 ? codes[0]! : 0;
  return new Array<number>(n).fill(fill);
}

/** Decodes one frontend message body of the given type. */
export function decodeFrontend(type: number, r: ByteReader): FrontendMessage | undefined {
  let m: FrontendMessage;
  switch (type) {
    case FrontendType.Query:
      m = { type, sql: r.cstring() };
      break;
    case FrontendType.Parse: {
      // Parse: cstring name | cstring query | Int16 n | Int32 oid * n
      const name = cstr(r);
      const sql = r.cstring();
      const n = r.u16be();
      if (n * 4 > r.remaining) return undefined;
      const paramTypes = new Array<number>(n);
      for (let i = 0; i < n; i++) paramTypes[i] = r.u32be();
      m = { type, name, sql, paramTypes };
      break;
    }
    case FrontendType.Bind: {
      // Bind: cstring portal | cstring statement | Int16 n, Int16 fmt * n |
      //       Int16 m, (Int32 len, bytes) * m | Int16 k, Int16 fmt * k
      const portal = cstr(r);
      const statement = cstr(r);
      const formats = int16List(r);
      const values = valueList(r);
      const resultFormats = int16List(r);
      if (formats.length > 1 && formats.length !== values.length) return undefined;
      m = { type, portal, statement, paramFormats: expandFormats(formats, values.length), values, resultFormats };
      break;
    }
    case FrontendType.Describe:
    case FrontendType.Close: {
      const t = r.u8();
      if (t !== 0x53 && t !== 0x50) return undefined; // 'S' statement, 'P' portal
      m = { type, target: t === 0x53 ? 'S' : 'P', name: cstr(r) };
      break;
    }
    case FrontendType.Execute:
      m = { type, portal: cstr(r), maxRows: r.u32be() };
      break;
    case FrontendType.Sync:
    case FrontendType.Flush:
    case FrontendType.Terminate:
    case FrontendType.CopyDone:
      m = { type };
      break;
    case FrontendType.FunctionCall: {
      const oid = r.u32be();
      const formats = int16List(r);
      const args = valueList(r);
      const resultFormat = r.i16be();
      m = { type, oid, argFormats: expandFormats(formats, args.length), args, resultFormat };
      break;
    }
    case FrontendType.CopyData:
      m = { type, size: r.remaining };
      r.rest();
      break;
    case FrontendType.CopyFail:
      m = { type, message: cstr(r) };
      break;
    case FrontendType.Password:
      m = { type, body: r.rest() };
      break;
    default:
      return undefined;
  }
  return r.ok ? m : undefined;
}

/** Decodes the field list of an ErrorResponse or NoticeResponse: (Byte1 code, cstring value)* 0. */
export function decodeErrorFields(r: ByteReader): ErrorFields | undefined {
  const all = new Map<string, string>();
  for (;;) {
    const code = r.u8();
    if (!r.ok) return undefined;
    if (code === 0) break;
    all.set(String.fromCharCode(code), cstr(r));
    if (!r.ok) return undefined;
  }
  const f: { -readonly [K in keyof ErrorFields]: ErrorFields[K] } = { all };
  const set = (key: Exclude<keyof ErrorFields, 'all'>, code: string): void => {
    const v = all.get(code);
    if (v !== undefined) f[key] = v;
  };
  set('severity', 'S');
  set('severityEn', 'V');
  set('code', 'C');
  set('message', 'M');
  set('detail', 'D');
  set('hint', 'H');
  set('position', 'P');
  return f;
}

/** Decodes one backend message body of the given type. */
export function decodeBackend(type: number, r: ByteReader): BackendMessage | undefined {
  let m: BackendMessage;
  switch (type) {
    case BackendType.Authentication:
      m = { type, code: r.u32be(), data: r.rest() };
      break;
    case BackendType.BackendKeyData:
      m = { type, pid: r.u32be(), secret: toHex(r.rest()) };
      break;
    case BackendType.ParameterStatus:
      m = { type, name: cstr(r), value: cstr(r) };
      break;
    case BackendType.ReadyForQuery:
      m = { type, status: String.fromCharCode(r.u8()) };
      break;
    case BackendType.RowDescription: {
      // Int16 n | (cstring name, Int32 table, Int16 col, Int32 type, Int16 size, Int32 mod, Int16 fmt) * n
      const n = r.u16be();
      if (n * 19 > r.remaining) return undefined;
      const fields = new Array<FieldDescription>(n);
      for (let i = 0; i < n; i++) {
        fields[i] = { name: cstr(r), tableOid: r.u32be(), column: r.i16be(), typeOid: r.u32be(), typeSize: r.i16be(), typeMod: r.i32be(), format: r.i16be() };
      }
      m = { type, fields };
      break;
    }
    case BackendType.DataRow:
      m = { type, values: valueList(r) };
      break;
    case BackendType.CommandComplete:
      m = { type, tag: cstr(r) };
      break;
    case BackendType.ErrorResponse:
    case BackendType.NoticeResponse: {
      const fields = decodeErrorFields(r);
      if (fields === undefined) return undefined;
      m = { type, fields };
      break;
    }
    case BackendType.EmptyQueryResponse:
    case BackendType.ParseComplete:
    case BackendType.BindComplete:
    case BackendType.CloseComplete:
    case BackendType.NoData:
    case BackendType.PortalSuspended:
    case BackendType.CopyDone:
      m = { type };
      break;
    case BackendType.ParameterDescription: {
      const n = r.u16be();
      if (n * 4 > r.remaining) return undefined;
      const types = new Array<number>(n);
      for (let i = 0; i < n; i++) types[i] = r.u32be();
      m = { type, types };
      break;
    }
    case BackendType.CopyInResponse:
    case BackendType.CopyOutResponse:
    case BackendType.CopyBothResponse:
      m = { type, format: r.u8(), columnFormats: int16List(r) };
      break;
    case BackendType.CopyData:
      m = { type, size: r.remaining, data: r.rest() };
      break;
    case BackendType.NotificationResponse:
      m = { type, pid: r.u32be(), channel: cstr(r), payload: cstr(r) };
      break;
    case BackendType.FunctionCallResponse: {
      const len = r.i32be();
      m = { type, value: len < 0 ? null : r.bytes(len) };
      break;
    }
    case BackendType.NegotiateProtocolVersion: {
      const minor = r.u32be();
      const n = r.u32be();
      if (n > r.remaining) return undefined;
      const unsupported: string[] = [];
      for (let i = 0; i < n; i++) unsupported.push(cstr(r));
      m = { type, minor, unsupported };
      break;
    }
    default:
      return undefined;
  }
  return r.ok ? m : undefined;
}

// ---------------------------------------------------------------------------
// Boundary plausibility, for resynchronisation.

/**
 * Results of {@link checkAt} and {@link checkStartupAt} other than a positive
 * number, which means "a whole, well-formed message of that many bytes".
 */
export const Plausible = {
  /** Not a message boundary. */
  No: 0,
  /** Could be, but the message is not complete in the buffer yet. */
  More: -1,
} as const;

/** Largest message a resynchronising scan will wait for; bigger candidates are rejected. */
export const SCAN_MAX_MESSAGE = 1 << 20;

const frontendTypes = new Uint8Array(256);
for (const c of 'QPBEDCSHX') frontendTypes[c.charCodeAt(0)] = 1;
const backendTypes = new Uint8Array(256);
for (const c of 'RSKZTDCEN123nstGHWIAVv') backendTypes[c.charCodeAt(0)] = 1;

const scanReader = new ByteReader();

/**
 * Whether a typed message plausibly starts at `buf[at]`, judged only from the
 * bytes in `buf[at, end)`. `toServer` picks the frontend or backend message set.
 * Weakly structured messages (CopyData, password, FunctionCall) are never
 * accepted as resynchronisation points; fixed-size ones must have their size.
 * Returns the message's total wire length (type byte included) when it is whole
 * and well formed, else {@link Plausible}.No or {@link Plausible}.More.
 */
export function checkAt(buf: Uint8Array, at: number, end: number, toServer: boolean): number {
  if (at >= end) return Plausible.More;
  const type = buf[at]!;
  if ((toServer ? frontendTypes : backendTypes)[type] !== 1) return Plausible.No;
  if (end - at < 5) return Plausible.More;
  // A length above 2^24 is implausible for resync (its top byte must be 0).
  if (buf[at + 1] !== 0) return Plausible.No;
  const len = ((buf[at + 2]! << 16) | (buf[at + 3]! << 8) | buf[at + 4]!) >>> 0;
  if (len < 4 || len > SCAN_MAX_MESSAGE) return Plausible.No;
  const fixed = fixedLength(type, toServer);
  if (fixed >= 0 && len !== fixed) return Plausible.No;
  if (fixed < 0 && len === 4) return Plausible.No;
  const total = len + 1;
  if (end - at < total) {
    // Cheap prefix check for the commonest big messages: a Query's text holds no NUL.
    if (toServer && type === FrontendType.Query) {
      const stop = Math.min(end, at + 5 + 256);
      for (let i = at + 5; i < stop; i++) if (buf[i] === 0) return Plausible.No;
    }
    return Plausible.More;
  }
  const r = scanReader.reset(buf, at + 5, at + total);
  if (toServer) {
    if (type === FrontendType.Query) {
      // The only NUL is the terminator.
      const nul = buf.indexOf(0, at + 5);
      return nul === at + total - 1 ? total : Plausible.No;
    }
    const m = decodeFrontend(type, r);
    if (m === undefined || r.remaining !== 0) return Plausible.No;
  } else {
    if (type === BackendType.ReadyForQuery) {
      const s = buf[at + 5];
      if (s !== 0x49 && s !== 0x54 && s !== 0x45) return Plausible.No; // 'I' 'T' 'E'
    } else if (type === BackendType.Authentication) {
      const code = r.u32be();
      if (code > 14) return Plausible.No;
    } else {
      const m = decodeBackend(type, r);
      if (m === undefined || r.remaining !== 0) return Plausible.No;
      if (m.type === BackendType.CommandComplete && !/^[A-Z]/.test(m.tag)) return Plausible.No;
      if ((m.type === BackendType.ErrorResponse || m.type === BackendType.NoticeResponse) && m.fields.severity === undefined) return Plausible.No;
    }
  }
  return total;
}

function fixedLength(type: number, toServer: boolean): number {
  if (toServer) {
    switch (type) {
      case FrontendType.Sync:
      case FrontendType.Flush:
      case FrontendType.Terminate:
        return 4;
    }
    return -1;
  }
  switch (type) {
    case BackendType.ReadyForQuery:
      return 5;
    case BackendType.BackendKeyData:
      return 12;
    case BackendType.ParseComplete:
    case BackendType.BindComplete:
    case BackendType.CloseComplete:
    case BackendType.NoData:
    case BackendType.PortalSuspended:
    case BackendType.EmptyQueryResponse:
      return 4;
  }
  return -1;
}

/**
 * Whether `buf[at, end)` starts with a plausible untyped startup packet
 * (StartupMessage 3.x, SSLRequest, GSSENCRequest, CancelRequest).
 */
export function checkStartupAt(buf: Uint8Array, at: number, end: number): number {
  if (end - at < 8) return Plausible.More;
  const len = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  const code = ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0;
  if (code === StartupCode.Ssl || code === StartupCode.GssEnc) return len === 8 ? len : Plausible.No;
  if (code === StartupCode.Cancel) return len >= 16 && len <= 264 ? len : Plausible.No;
  if (code === StartupCode.GaussStop) return len === 20 ? len : Plausible.No;
  if (code >>> 16 !== 3 || len < 9 || len > MAX_STARTUP_PACKET) return Plausible.No;
  if (end - at < len) return Plausible.More;
  return buf[at + len - 1] === 0 ? len : Plausible.No;
}

// Bytes -> typed PostgreSQL messages, and the plausibility checks used to
// detect the protocol and to find message boundaries when a capture starts
// mid-stream or after a gap.
//
// Every decoder takes a ByteReader positioned on the message body (after the
// type byte and the Int32 length) and returns the message or an Outcome:
// Truncated when the body ran out and the framer flagged the message as cut
// (a gap, the size limit), Malformed when the body cannot hold what the type
// says. Nothing here throws.
import { ByteReader, decodeUtf8, toHex } from '@dbtap/core';
import { Outcome, type Result } from '../kit/index.js';
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

/** Bytes before the body of a typed message: type byte + Int32 length. */
export const TYPED_HEADER = 5;
/** Bytes before the body of an untyped startup-phase packet: Int32 length. */
export const STARTUP_HEADER = 4;

/** Big-endian Int32 at `buf[at]`, unsigned. */
export function u32At(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

/** The outcome of a body that did not decode: cut by the capture, or wrong. */
function failed(truncated: boolean): Outcome {
  return truncated ? Outcome.Truncated : Outcome.Malformed;
}

/**
 * A NUL-terminated name (statement, portal, parameter) as UTF-8. The empty
 * name (the unnamed statement and portal, most of extended-protocol traffic)
 * is returned without a view or a decode.
 */
export function readName(r: ByteReader): string {
  const p = r.pos;
  if (p < r.end && r.buf[p] === 0) {
    r.pos = p + 1;
    return '';
  }
  return decodeUtf8(r.cstring());
}

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
export function decodeStartup(r: ByteReader, truncated = false): Result<StartupPacket> {
  const code = r.u32be();
  if (!r.ok) return failed(truncated);
  switch (code) {
    case StartupCode.Ssl:
      return r.remaining === 0 ? { kind: 'ssl' } : Outcome.Malformed;
    case StartupCode.GssEnc:
      return r.remaining === 0 ? { kind: 'gssenc' } : Outcome.Malformed;
    case StartupCode.Cancel: {
      // PostgreSQL 18 allows a longer secret key; keep whatever follows the pid.
      const pid = r.u32be();
      const secret = toHex(r.rest());
      return r.ok && secret.length >= 8 ? { kind: 'cancel', pid, secret } : failed(truncated);
    }
    case StartupCode.GaussStop: {
      const pid = r.u32be();
      const queryId = toHex(r.bytes(8));
      return r.ok ? { kind: 'gauss-stop', pid, queryId } : failed(truncated);
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return Outcome.Malformed;
  const params = new Map<string, string>();
  while (r.remaining > 1) {
    const name = r.cstringUtf8();
    const value = r.cstringUtf8();
    if (!r.ok) return failed(truncated);
    params.set(name, value);
  }
  // The list ends with one NUL; tolerate its absence (some proxies drop it).
  if (r.remaining === 1 && r.u8() !== 0) return Outcome.Malformed;
  return { kind: 'startup', major, minor, params };
}

// Shared results for the common empty lists and bodiless messages: nothing is allocated for them.
const NONE: readonly number[] = Object.freeze([]);
const NO_VALUES: readonly RawValue[] = Object.freeze([]);
const bodiless = new Map<number, FrontendMessage>(
  [FrontendType.Sync, FrontendType.Flush, FrontendType.Terminate, FrontendType.CopyDone].map((type) => [type, Object.freeze({ type }) as FrontendMessage]),
);
const bodilessBackend = new Map<number, BackendMessage>(
  [BackendType.EmptyQueryResponse, BackendType.ParseComplete, BackendType.BindComplete, BackendType.CloseComplete, BackendType.NoData, BackendType.PortalSuspended, BackendType.CopyDone].map((type) => [
    type,
    Object.freeze({ type }) as BackendMessage,
  ]),
);

/** Reads Int16 count + count Int16 format codes. */
function int16List(r: ByteReader): readonly number[] {
  const n = r.u16be();
  if (n === 0) return NONE;
  if (n * 2 > r.remaining) {
    r.overrun = true;
    return [];
  }
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.i16be();
  return out;
}

/** Reads Int16 count + count (Int32 length, bytes) values, -1 = NULL. */
function valueList(r: ByteReader): readonly RawValue[] {
  const n = r.u16be();
  if (n === 0) return NO_VALUES;
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

/** Reads Int16 count + count Int32 type OIDs. */
function oidList(r: ByteReader): readonly number[] | undefined {
  const n = r.u16be();
  if (n === 0) return r.ok ? NONE : undefined;
  if (n * 4 > r.remaining) return undefined;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.u32be();
  return out;
}

/** Expands the 0 / 1 / n format-code convention of Bind and FunctionCall to one code per value. */
function expandFormats(codes: readonly number[], n: number): readonly number[] {
  if (codes.length === n) return codes;
  if (codes.length === 0 && n === 0) return NONE;
  const fill = codes.length === 1 ? codes[0]! : 0;
  return new Array<number>(n).fill(fill);
}

/**
 * Decodes one frontend message body of the given type. Pass `truncated`
 * when the framer flagged the message as cut: a body that runs out is then
 * {@link Outcome}.Truncated rather than Malformed.
 */
export function decodeFrontend(type: number, r: ByteReader, truncated = false): Result<FrontendMessage> {
  let m: FrontendMessage;
  switch (type) {
    case FrontendType.Query:
      m = { type, sql: r.cstring() };
      break;
    case FrontendType.Parse: {
      // Parse: cstring name | cstring query | Int16 n | Int32 oid * n
      const name = readName(r);
      const sql = r.cstring();
      const paramTypes = oidList(r);
      if (paramTypes === undefined) return failed(truncated);
      m = { type, name, sql, paramTypes };
      break;
    }
    case FrontendType.Bind: {
      // Bind: cstring portal | cstring statement | Int16 n, Int16 fmt * n |
      //       Int16 m, (Int32 len, bytes) * m | Int16 k, Int16 fmt * k
      const portal = readName(r);
      const statement = readName(r);
      const formats = int16List(r);
      const values = valueList(r);
      const resultFormats = int16List(r);
      if (formats.length > 1 && formats.length !== values.length) return Outcome.Malformed;
      m = { type, portal, statement, paramFormats: expandFormats(formats, values.length), values, resultFormats };
      break;
    }
    case FrontendType.Describe:
    case FrontendType.Close: {
      const t = r.u8();
      if (r.ok && t !== 0x53 && t !== 0x50) return Outcome.Malformed; // 'S' statement, 'P' portal
      m = { type, target: t === 0x53 ? 'S' : 'P', name: readName(r) };
      break;
    }
    case FrontendType.Execute:
      m = { type, portal: readName(r), maxRows: r.u32be() };
      break;
    case FrontendType.Sync:
    case FrontendType.Flush:
    case FrontendType.Terminate:
    case FrontendType.CopyDone:
      m = bodiless.get(type)!;
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
      m = { type, message: r.cstringUtf8() };
      break;
    case FrontendType.Password:
      m = { type, body: r.rest() };
      break;
    default:
      return Outcome.Malformed;
  }
  return r.ok ? m : failed(truncated);
}

/** Decodes the field list of an ErrorResponse or NoticeResponse: (Byte1 code, cstring value)* 0. */
export function decodeErrorFields(r: ByteReader, truncated = false): Result<ErrorFields> {
  const all = new Map<string, string>();
  for (;;) {
    const code = r.u8();
    if (!r.ok) return failed(truncated);
    if (code === 0) break;
    all.set(String.fromCharCode(code), r.cstringUtf8());
    if (!r.ok) return failed(truncated);
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

/**
 * Decodes a RowDescription body:
 * `Int16 n | (cstring name, Int32 table, Int16 col, Int32 type, Int16 size, Int32 mod, Int16 fmt) * n`.
 */
export function decodeFields(r: ByteReader, truncated = false): Result<FieldDescription[]> {
  const n = r.u16be();
  if (n * 19 > r.remaining) return failed(truncated);
  const fields = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = { name: r.cstringUtf8(), tableOid: r.u32be(), column: r.i16be(), typeOid: r.u32be(), typeSize: r.i16be(), typeMod: r.i32be(), format: r.i16be() };
  }
  return r.ok ? fields : failed(truncated);
}

/** Decodes one backend message body of the given type (see {@link decodeFrontend} for `truncated`). */
export function decodeBackend(type: number, r: ByteReader, truncated = false): Result<BackendMessage> {
  let m: BackendMessage;
  switch (type) {
    case BackendType.Authentication:
      m = { type, code: r.u32be(), data: r.rest() };
      break;
    case BackendType.BackendKeyData:
      m = { type, pid: r.u32be(), secret: toHex(r.rest()) };
      break;
    case BackendType.ParameterStatus:
      m = { type, name: r.cstringUtf8(), value: r.cstringUtf8() };
      break;
    case BackendType.ReadyForQuery:
      m = { type, status: String.fromCharCode(r.u8()) };
      break;
    case BackendType.RowDescription: {
      const fields = decodeFields(r, truncated);
      if (typeof fields === 'number') return fields;
      m = { type, fields };
      break;
    }
    case BackendType.DataRow:
      m = { type, values: valueList(r) };
      break;
    case BackendType.CommandComplete:
      m = { type, tag: r.cstringUtf8() };
      break;
    case BackendType.ErrorResponse:
    case BackendType.NoticeResponse: {
      const fields = decodeErrorFields(r, truncated);
      if (typeof fields === 'number') return fields;
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
      m = bodilessBackend.get(type)!;
      break;
    case BackendType.ParameterDescription: {
      const types = oidList(r);
      if (types === undefined) return failed(truncated);
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
      m = { type, pid: r.u32be(), channel: r.cstringUtf8(), payload: r.cstringUtf8() };
      break;
    case BackendType.FunctionCallResponse: {
      const len = r.i32be();
      m = { type, value: len < 0 ? null : r.bytes(len) };
      break;
    }
    case BackendType.NegotiateProtocolVersion: {
      const minor = r.u32be();
      const n = r.u32be();
      if (n > r.remaining) return failed(truncated);
      const unsupported: string[] = [];
      for (let i = 0; i < n; i++) unsupported.push(r.cstringUtf8());
      m = { type, minor, unsupported };
      break;
    }
    default:
      return Outcome.Malformed;
  }
  return r.ok ? m : failed(truncated);
}

// ---------------------------------------------------------------------------
// Boundary plausibility, for detection and resynchronisation.

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
 * accepted as boundaries; fixed-size ones must have their size.
 * Returns the message's total wire length (type byte included) when it is whole
 * and well formed, {@link Outcome}.More when it may be once more bytes arrive,
 * else {@link Outcome}.Malformed.
 */
export function checkTyped(buf: Uint8Array, at: number, end: number, toServer: boolean): Result<number> {
  if (at >= end) return Outcome.More;
  const type = buf[at]!;
  if ((toServer ? frontendTypes : backendTypes)[type] !== 1) return Outcome.Malformed;
  if (end - at < TYPED_HEADER) return Outcome.More;
  // A length above 2^24 is implausible for resync (its top byte must be 0).
  if (buf[at + 1] !== 0) return Outcome.Malformed;
  const len = (buf[at + 2]! << 16) | (buf[at + 3]! << 8) | buf[at + 4]!;
  if (len < 4 || len > SCAN_MAX_MESSAGE) return Outcome.Malformed;
  const fixed = fixedLength(type, toServer);
  if (fixed >= 0 ? len !== fixed : len === 4) return Outcome.Malformed;
  const total = len + 1;
  if (end - at < total) {
    // Cheap prefix check for the commonest big messages: a Query's text holds no NUL.
    if (toServer && type === FrontendType.Query) {
      const stop = Math.min(end, at + TYPED_HEADER + 256);
      for (let i = at + TYPED_HEADER; i < stop; i++) if (buf[i] === 0) return Outcome.Malformed;
    }
    return Outcome.More;
  }
  return wellFormed(buf, at, total, type, toServer) ? total : Outcome.Malformed;
}

/** Whether the whole message `buf[at, at + total)` decodes exactly, with the values a real peer sends. */
function wellFormed(buf: Uint8Array, at: number, total: number, type: number, toServer: boolean): boolean {
  const r = scanReader.reset(buf, at + TYPED_HEADER, at + total);
  if (toServer) {
    // A Query's only NUL is its terminator.
    if (type === FrontendType.Query) return buf.indexOf(0, at + TYPED_HEADER) === at + total - 1;
    const m = decodeFrontend(type, r);
    return typeof m !== 'number' && r.remaining === 0;
  }
  if (type === BackendType.ReadyForQuery) {
    const s = buf[at + TYPED_HEADER];
    return s === 0x49 || s === 0x54 || s === 0x45; // 'I' 'T' 'E'
  }
  if (type === BackendType.Authentication) return r.u32be() <= 14;
  const m = decodeBackend(type, r);
  if (typeof m === 'number' || r.remaining !== 0) return false;
  if (m.type === BackendType.CommandComplete) return /^[A-Z]/.test(m.tag);
  if (m.type === BackendType.ErrorResponse || m.type === BackendType.NoticeResponse) return m.fields.severity !== undefined;
  return true;
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
 * (StartupMessage 3.x, SSLRequest, GSSENCRequest, CancelRequest, openGauss
 * stop request): its length, {@link Outcome}.More, or Malformed.
 */
export function checkStartup(buf: Uint8Array, at: number, end: number): Result<number> {
  if (end - at < 8) return Outcome.More;
  const len = u32At(buf, at);
  const code = u32At(buf, at + 4);
  if (code === StartupCode.Ssl || code === StartupCode.GssEnc) return len === 8 ? len : Outcome.Malformed;
  if (code === StartupCode.Cancel) return len >= 16 && len <= 264 ? len : Outcome.Malformed;
  if (code === StartupCode.GaussStop) return len === 20 ? len : Outcome.Malformed;
  if (code >>> 16 !== 3 || len < 9 || len > MAX_STARTUP_PACKET) return Outcome.Malformed;
  if (end - at < len) return Outcome.More;
  return buf[at + len - 1] === 0 ? len : Outcome.Malformed;
}

// Bytes -> typed MySQL messages. Every function reads from a bounded
// ByteReader positioned at the first payload byte and returns `undefined`
// when the payload is shorter than its fields (malformed or truncated): the
// caller decides which of the two it was.
import { ByteReader, type ParamValue, decodeText, decodeUtf8, toHex } from '@dbtap/core';
import { Cap, FieldType, MariaCap, type ChangeUser, type ColumnDef, type EofPacket, type ErrPacket, type Greeting, type LoginRequest, type OkPacket, type PrepareOk } from './messages.js';

// ---- charsets ---------------------------------------------------------------

const collationCharsets: Record<number, string> = {};
function mapIds(charset: string, ids: number[]): void {
  for (const id of ids) collationCharsets[id] = charset;
}
// Collation ids from `SELECT id, character_set_name FROM information_schema.collations`
// (MySQL 8.0 and MariaDB 10.11); ids not listed decode as UTF-8.
mapIds('latin1', [5, 8, 15, 31, 47, 48, 49, 94]);
mapIds('gbk', [28, 87]);
mapIds('gb2312', [24, 86]);
mapIds('gb18030', [248, 249, 250]);
mapIds('big5', [1, 84]);
mapIds('sjis', [13, 88]);
mapIds('cp932', [95, 96]);
mapIds('ujis', [12, 91]);
mapIds('eucjpms', [97, 98]);
mapIds('euckr', [19, 85]);
mapIds('cp1251', [14, 23, 50, 51, 52]);
mapIds('windows-1250', [26, 34, 44, 66, 99]);
mapIds('koi8r', [7, 74]);

/** The decoder label for a MySQL collation id (as sent in the handshake); UTF-8 when unknown. */
export function charsetOfCollation(id: number): string {
  return collationCharsets[id] ?? 'utf-8';
}

/** Decodes text in a session charset (ASCII / UTF-8 fast path). */
export function text(bytes: Uint8Array, charset: string): string {
  return charset === 'utf-8' ? decodeUtf8(bytes) : decodeText(bytes, charset);
}

/**
 * Sets `key` on a map of client- or server-chosen names as an own property
 * ("__proto__" must not reach the object's prototype).
 */
export function setName(out: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---- handshake ----------------------------------------------------------------

/**
 * protocol::HandshakeV10
 * ```
 * u8 protocol_version (10) | cstring server_version | u32 connection_id
 * 8 auth_plugin_data_1 | u8 0 | u16 caps_lo | u8 charset | u16 status | u16 caps_hi
 * u8 auth_data_len | 6 reserved | u32 mariadb_ext_caps (MySQL: 4 reserved)
 * max(13, auth_data_len - 8) auth_plugin_data_2 | cstring auth_plugin_name
 * ```
 */
export function decodeGreeting(r: ByteReader): Greeting | undefined {
  const protocolVersion = r.u8();
  if (protocolVersion !== 10) return undefined;
  const serverVersion = r.cstringUtf8();
  const connectionId = r.u32le();
  r.skip(9);
  if (!r.ok) return undefined;
  let capabilities = r.u16le();
  let charset = 0;
  let status = 0;
  let mariaCapabilities = 0;
  let authPlugin = '';
  if (r.remaining > 0) {
    charset = r.u8();
    status = r.u16le();
    capabilities = (capabilities | (r.u16le() << 16)) >>> 0;
    const authLen = r.u8();
    r.skip(6);
    const ext = r.u32le();
    // MariaDB clears CLIENT_MYSQL (bit 0) and puts its extended caps here.
    if ((capabilities & Cap.LongPassword) === 0) mariaCapabilities = ext;
    if (capabilities & Cap.SecureConnection) r.skip(Math.min(r.remaining, Math.max(13, authLen - 8)));
    if (capabilities & Cap.PluginAuth && r.remaining > 0) {
      // Some 5.5 servers omit the terminating NUL.
      const nul = r.buf.indexOf(0, r.pos);
      authPlugin = nul >= 0 && nul < r.end ? r.cstringUtf8() : decodeUtf8(r.rest());
    }
  }
  if (!r.ok) return undefined;
  return { protocolVersion, serverVersion, connectionId, capabilities, mariaCapabilities, charset, status, authPlugin };
}

/** Connection attributes: lenenc total length, then lenenc key / lenenc value pairs. */
export function decodeAttributes(r: ByteReader): Record<string, string> | undefined {
  const total = r.lenencInt();
  if (total === null || !r.ok || total > r.remaining) return undefined;
  const end = r.pos + total;
  const out: Record<string, string> = {};
  while (r.pos < end) {
    const k = r.lenencBytes();
    const v = r.lenencBytes();
    if (!r.ok || k === null || v === null || r.pos > end) return Object.keys(out).length > 0 ? out : undefined;
    setName(out, decodeUtf8(k), decodeUtf8(v));
  }
  return out;
}

/**
 * protocol::HandshakeResponse41 (or SSLRequest, or HandshakeResponse320):
 * ```
 * u32 caps | u32 max_packet | u8 charset | 19 filler | u32 mariadb_ext_caps
 * cstring user | auth_response (lenenc | u8 len | cstring) | cstring database
 * cstring auth_plugin | lenenc attrs_len { lenenc key, lenenc value }*
 * ```
 */
export function decodeLoginRequest(r: ByteReader): LoginRequest | undefined {
  const start = r.pos;
  const len = r.remaining;
  if (len < 4) return undefined;
  const lo = r.u16le();
  if ((lo & Cap.Protocol41) === 0) {
    // HandshakeResponse320: u16 caps | u24 max_packet | cstring user | auth [| cstring db]
    const maxPacket = r.u24le();
    const user = r.cstringUtf8();
    if (!r.ok) return undefined;
    return { capabilities: lo, mariaCapabilities: 0, maxPacket, charset: 0, sslRequest: (lo & Cap.Ssl) !== 0 && r.remaining === 0 && user === '', user };
  }
  r.pos = start;
  const capabilities = r.u32le();
  const maxPacket = r.u32le();
  const charset = r.u8();
  r.skip(19);
  const mariaCapabilities = (capabilities & Cap.LongPassword) === 0 ? r.u32le() : (r.skip(4), 0);
  if (!r.ok) return undefined;
  if (r.remaining === 0) {
    // SSLRequest: the same first 32 bytes, nothing after; TLS follows.
    return { capabilities, mariaCapabilities, maxPacket, charset, sslRequest: (capabilities & Cap.Ssl) !== 0 };
  }
  const user = r.cstringUtf8();
  if (capabilities & Cap.PluginAuthLenencData) r.lenencBytes();
  else if (capabilities & Cap.SecureConnection) r.skip(r.u8());
  else r.cstring();
  if (!r.ok) return { capabilities, mariaCapabilities, maxPacket, charset, sslRequest: false, user };
  let database: string | undefined;
  let authPlugin: string | undefined;
  let attributes: Record<string, string> | undefined;
  if (capabilities & Cap.ConnectWithDb && r.remaining > 0) database = r.cstringUtf8();
  if (capabilities & Cap.PluginAuth && r.remaining > 0) authPlugin = r.cstringUtf8();
  if (capabilities & Cap.ConnectAttrs && r.remaining > 0) attributes = decodeAttributes(r);
  return { capabilities, mariaCapabilities, maxPacket, charset, sslRequest: false, user, database, authPlugin, attributes };
}

/** COM_CHANGE_USER after the command byte: cstring user | auth | cstring db | u16 charset | cstring plugin | attrs. */
export function decodeChangeUser(r: ByteReader, caps: number): ChangeUser | undefined {
  const user = r.cstringUtf8();
  if (caps & Cap.SecureConnection) r.skip(r.u8());
  else r.cstring();
  if (!r.ok) return undefined;
  const out: { -readonly [K in keyof ChangeUser]: ChangeUser[K] } = { user };
  if (r.remaining > 0) out.database = r.cstringUtf8();
  if (r.remaining >= 2) out.charset = r.u16le();
  if (caps & Cap.PluginAuth && r.remaining > 0) out.authPlugin = r.cstringUtf8();
  if (caps & Cap.ConnectAttrs && r.remaining > 0) out.attributes = decodeAttributes(r);
  if (out.database === '') delete out.database;
  return out;
}

// ---- generic responses ------------------------------------------------------

/**
 * OK_Packet (header 0x00, or 0xfe as a result-set terminator under CLIENT_DEPRECATE_EOF):
 * ```
 * u8 header | lenenc affected_rows | lenenc last_insert_id | u16 status | u16 warnings
 * SESSION_TRACK: lenenc info [| lenenc session_state_changes if SERVER_SESSION_STATE_CHANGED]
 * else: info (rest of packet)
 * ```
 */
export function decodeOk(r: ByteReader, caps: number): OkPacket | undefined {
  r.skip(1);
  const affectedRows = r.lenencInt() ?? 0;
  const lastInsertId = r.lenencInt() ?? 0;
  let status = 0;
  let warnings = 0;
  if (caps & Cap.Protocol41) {
    status = r.u16le();
    warnings = r.u16le();
  } else if (caps & Cap.Transactions) {
    status = r.u16le();
  }
  if (!r.ok) return undefined;
  let info: string | undefined;
  let schema: string | undefined;
  let systemVariables: Record<string, string> | undefined;
  if (r.remaining > 0) {
    if (caps & Cap.SessionTrack) {
      const i = r.lenencBytes();
      if (i !== null && i.length > 0) info = decodeUtf8(i);
      if (status & 0x4000 && r.remaining > 0) {
        const state = r.lenencBytes();
        if (state !== null && r.ok) ({ schema, systemVariables } = decodeSessionState(state));
      }
      if (!r.ok) info = undefined;
    } else {
      info = decodeUtf8(r.rest());
    }
  }
  const ok: { -readonly [K in keyof OkPacket]: OkPacket[K] } = { affectedRows, lastInsertId, status, warnings };
  if (info) ok.info = info;
  if (schema !== undefined) ok.schema = schema;
  if (systemVariables !== undefined) ok.systemVariables = systemVariables;
  return ok;
}

/** Session state change records: { u8 type | lenenc data }*; type 0 = system variables, 1 = schema. */
function decodeSessionState(bytes: Uint8Array): { schema?: string; systemVariables?: Record<string, string> } {
  const r = new ByteReader(bytes);
  let schema: string | undefined;
  let vars: Record<string, string> | undefined;
  while (r.remaining > 0 && r.ok) {
    const type = r.u8();
    const data = r.lenencBytes();
    if (data === null || !r.ok) break;
    const d = new ByteReader(data);
    if (type === 1) {
      const s = d.lenencBytes();
      if (s !== null && d.ok) schema = decodeUtf8(s);
    } else if (type === 0) {
      const k = d.lenencBytes();
      const v = d.lenencBytes();
      if (k !== null && v !== null && d.ok) setName((vars ??= {}), decodeUtf8(k), decodeUtf8(v));
    }
  }
  return { schema, systemVariables: vars };
}

/** ERR_Packet: `u8 0xff | u16 code | ['#' 5-byte sqlstate] | message`. */
export function decodeErr(r: ByteReader): ErrPacket | undefined {
  r.skip(1);
  const code = r.u16le();
  if (!r.ok) return undefined;
  let sqlState: string | undefined;
  // The SQLSTATE marker is present whenever CLIENT_PROTOCOL_41 is; checking the
  // byte itself also works for the handshake-time ERR that predates capabilities.
  if (r.peek() === 0x23 && r.remaining >= 6) {
    r.skip(1);
    sqlState = r.latin1(5);
  }
  const message = decodeUtf8(r.rest());
  return sqlState === undefined ? { code, message } : { code, sqlState, message };
}

/** EOF_Packet: `u8 0xfe | u16 warnings | u16 status`. */
export function decodeEof(r: ByteReader): EofPacket {
  r.skip(1);
  const warnings = r.u16le();
  const status = r.u16le();
  return { warnings, status };
}

/**
 * protocol::ColumnDefinition41:
 * ```
 * lenenc catalog ("def") | lenenc schema | lenenc table | lenenc org_table | lenenc name | lenenc org_name
 * [MariaDB extended metadata: lenenc] | lenenc 0x0c | u16 charset | u32 length | u8 type | u16 flags | u8 decimals | 2 filler
 * ```
 */
export function decodeColumnDef(r: ByteReader, mariaCaps: number): ColumnDef | undefined {
  r.lenencBytes();
  const schema = r.lenencBytes();
  const table = r.lenencBytes();
  const orgTable = r.lenencBytes();
  const name = r.lenencBytes();
  r.lenencBytes();
  if (mariaCaps & MariaCap.ExtendedMetadata) r.lenencBytes();
  r.lenencInt();
  const charset = r.u16le();
  r.skip(4);
  const type = r.u8();
  const flags = r.u16le();
  if (!r.ok || schema === null || table === null || orgTable === null || name === null) return undefined;
  return { schema: decodeUtf8(schema), table: decodeUtf8(table), orgTable: decodeUtf8(orgTable), name: decodeUtf8(name), charset, type, flags };
}

/** Where a result column comes from: its schema, its table (behind any alias) and its name. */
export interface ColumnRef {
  readonly schema: string;
  readonly orgTable: string;
  readonly name: string;
}

/** The name and origin of a column definition (cheap path when the type and flags are not needed). */
export function decodeColumnRef(r: ByteReader): ColumnRef | undefined {
  r.lenencBytes();
  const schema = r.lenencBytes();
  r.lenencBytes();
  const orgTable = r.lenencBytes();
  const name = r.lenencBytes();
  if (!r.ok || schema === null || orgTable === null || name === null) return undefined;
  return { schema: schema.length === 0 ? '' : decodeUtf8(schema), orgTable: orgTable.length === 0 ? '' : decodeUtf8(orgTable), name: decodeUtf8(name) };
}

/** COM_STMT_PREPARE_OK: `u8 0x00 | u32 statement_id | u16 num_columns | u16 num_params | u8 0 | u16 warnings`. */
export function decodePrepareOk(r: ByteReader): PrepareOk | undefined {
  r.skip(1);
  const statementId = r.u32le();
  const columns = r.u16le();
  const params = r.u16le();
  if (!r.ok) return undefined;
  r.skip(1);
  const warnings = r.remaining >= 2 ? r.u16le() : 0;
  return { statementId, columns, params, warnings };
}

// ---- values -------------------------------------------------------------------

function pad(n: number, w: number): string {
  return String(n).padStart(w, '0');
}

/** Text form of a binary DATE / DATETIME / TIMESTAMP value (length byte then 0, 4, 7 or 11 bytes). */
function binaryDateTime(r: ByteReader, type: number): string {
  const n = r.u8();
  let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, us = 0;
  if (n >= 4) {
    y = r.u16le();
    mo = r.u8();
    d = r.u8();
  }
  if (n >= 7) {
    h = r.u8();
    mi = r.u8();
    s = r.u8();
  }
  if (n >= 11) us = r.u32le();
  if (n !== 0 && n !== 4 && n !== 7 && n !== 11) r.skip(n - Math.min(n, 11));
  const date = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}`;
  if (type === FieldType.Date || type === FieldType.NewDate) return date;
  return `${date} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${us ? '.' + pad(us, 6) : ''}`;
}

/** Text form of a binary TIME value (length byte then 0, 8 or 12 bytes). */
function binaryTime(r: ByteReader): string {
  const n = r.u8();
  if (n === 0) return '00:00:00';
  const neg = r.u8();
  const days = r.u32le();
  const h = r.u8();
  const mi = r.u8();
  const s = r.u8();
  const us = n >= 12 ? r.u32le() : 0;
  if (n !== 8 && n !== 12) r.skip(Math.max(0, n - 12));
  return `${neg ? '-' : ''}${pad(days * 24 + h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${us ? '.' + pad(us, 6) : ''}`;
}

const typeNames: Record<number, string> = {
  0x00: 'decimal', 0x01: 'tiny', 0x02: 'short', 0x03: 'long', 0x04: 'float', 0x05: 'double', 0x06: 'null',
  0x07: 'timestamp', 0x08: 'longlong', 0x09: 'int24', 0x0a: 'date', 0x0b: 'time', 0x0c: 'datetime', 0x0d: 'year',
  0x0f: 'varchar', 0x10: 'bit', 0xf5: 'json', 0xf6: 'newdecimal', 0xf7: 'enum', 0xf8: 'set', 0xf9: 'tiny_blob',
  0xfa: 'medium_blob', 0xfb: 'long_blob', 0xfc: 'blob', 0xfd: 'var_string', 0xfe: 'string', 0xff: 'geometry',
};

/** Name of a column / parameter type, e.g. `longlong`. */
export function typeName(type: number): string {
  return typeNames[type] ?? `type_${type}`;
}

/** True when `bytes` decode as text (no control characters other than whitespace). */
function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 256);
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
    if (c === 0x7f) return false;
  }
  return true;
}

/**
 * One value of the binary protocol (ProtocolBinary::*), as used by
 * COM_STMT_EXECUTE parameters and binary result rows. Returns `undefined`
 * (and leaves the reader overrun) when the value does not fit.
 */
export function decodeBinaryValue(r: ByteReader, type: number, unsigned: boolean, charset: string): ParamValue | undefined {
  let v: ParamValue;
  switch (type) {
    case FieldType.Null:
      return null;
    case FieldType.Tiny:
      v = unsigned ? r.u8() : r.i8();
      break;
    case FieldType.Short:
    case FieldType.Year:
      v = unsigned || type === FieldType.Year ? r.u16le() : r.i16le();
      break;
    case FieldType.Long:
    case FieldType.Int24:
      v = unsigned ? r.u32le() : r.i32le();
      break;
    case FieldType.LongLong: {
      const big = unsigned ? r.u64le() : r.i64le();
      const num = Number(big);
      v = Number.isSafeInteger(num) ? num : big.toString();
      break;
    }
    case FieldType.Float:
      v = r.f32le();
      break;
    case FieldType.Double:
      v = r.f64le();
      break;
    case FieldType.Date:
    case FieldType.NewDate:
    case FieldType.DateTime:
    case FieldType.Timestamp:
    case FieldType.DateTime2:
    case FieldType.Timestamp2:
      v = binaryDateTime(r, type);
      break;
    case FieldType.Time:
    case FieldType.Time2:
      v = binaryTime(r);
      break;
    case FieldType.Decimal:
    case FieldType.NewDecimal:
    case FieldType.VarChar:
    case FieldType.VarString:
    case FieldType.String:
    case FieldType.Enum:
    case FieldType.Set:
    case FieldType.Json: {
      const b = r.lenencBytes();
      v = b === null ? null : text(b, charset);
      break;
    }
    case FieldType.TinyBlob:
    case FieldType.MediumBlob:
    case FieldType.LongBlob:
    case FieldType.Blob:
    case FieldType.Bit:
    case FieldType.Geometry:
    case FieldType.Vector: {
      const b = r.lenencBytes();
      if (b === null) v = null;
      else if (type !== FieldType.Bit && type !== FieldType.Geometry && looksLikeText(b)) v = text(b, charset);
      else v = { type: typeName(type), hex: toHex(b) };
      break;
    }
    default:
      // An unknown type has an unknown length: nothing after it can be read.
      r.skip(r.remaining + 1);
      return undefined;
  }
  return r.ok ? v : undefined;
}

/** A {@link ParamValue} as result-row text. */
export function valueText(v: ParamValue): string | null {
  if (v === null) return null;
  if (typeof v === 'object') return 'hex' in v ? v.hex : v.text;
  return String(v);
}

/** Most parameters (placeholders plus query attributes) a statement can bind. */
const MAX_PARAMS = 0xffff;

/** Decoded COM_STMT_EXECUTE body. */
export interface ExecuteRequest {
  readonly statementId: number;
  readonly flags: number;
  /** Bound parameters (the statement's own, in order). */
  readonly params: ParamValue[];
  /** Query attributes bound after the statement's parameters (MySQL 8.0.23+). */
  readonly attributes?: Record<string, string>;
  /** Parameter types now in force (new-params-bound updates them). */
  readonly types: readonly number[];
  /** True when the values could not all be read. */
  readonly incomplete: boolean;
}

/**
 * COM_STMT_EXECUTE after the command byte:
 * ```
 * u32 statement_id | u8 flags | u32 iteration_count
 * [QUERY_ATTRIBUTES and (num_params > 0 or flags & PARAMETER_COUNT_AVAILABLE): lenenc parameter_count]
 * if parameter_count > 0:
 *   null_bitmap[(n + 7) / 8] | u8 new_params_bound
 *   if new_params_bound: { u16 type (| 0x8000 unsigned) [| lenenc name if QUERY_ATTRIBUTES] } * n
 *   values of the non-NULL parameters
 * ```
 * `prevTypes` are the types bound by an earlier execute of the same statement
 * (a driver sends them only when they change). `longData` holds values sent
 * with COM_STMT_SEND_LONG_DATA, which are absent from the execute packet.
 */
export function decodeExecute(r: ByteReader, numParams: number | undefined, prevTypes: readonly number[] | undefined, caps: number, charset: string, longData?: ReadonlyMap<number, ParamValue>): ExecuteRequest | undefined {
  const statementId = r.u32le();
  const flags = r.u8();
  r.skip(4);
  if (!r.ok) return undefined;
  let count = numParams ?? -1;
  if (caps & Cap.QueryAttributes && (count > 0 || flags & 0x08)) {
    count = r.lenencInt() ?? 0;
    // Parameters and attributes share a u16 space (a statement has at most 65,535 placeholders).
    if (count > MAX_PARAMS) return undefined;
  }
  if (count < 0) {
    // Unknown statement (prepared before the capture started): the parameter
    // count cannot be known, so the values are not decoded.
    return { statementId, flags, params: [], types: prevTypes ?? [], incomplete: r.remaining > 0 };
  }
  const params: ParamValue[] = [];
  let attributes: Record<string, string> | undefined;
  if (count === 0 || r.remaining === 0) return { statementId, flags, params, types: prevTypes ?? [], incomplete: count > 0 };
  const bitmap = r.bytes((count + 7) >> 3);
  const newBound = r.u8();
  let types: number[] = prevTypes ? prevTypes.slice() : [];
  const names: string[] = [];
  if (newBound === 1) {
    types = [];
    for (let i = 0; i < count && r.ok; i++) {
      types.push(r.u16le());
      if (caps & Cap.QueryAttributes) {
        const nm = r.lenencBytes();
        names.push(nm === null ? '' : decodeUtf8(nm));
      }
    }
  }
  if (!r.ok) return { statementId, flags, params, types, incomplete: true };
  const stmtParams = numParams ?? count;
  let incomplete = false;
  for (let i = 0; i < count; i++) {
    let v: ParamValue | undefined;
    if (bitmap[i >> 3]! & (1 << (i & 7))) v = null;
    else if (longData?.has(i)) v = longData.get(i)!;
    else {
      const t = types[i];
      if (t === undefined) {
        incomplete = true;
        break;
      }
      v = decodeBinaryValue(r, t & 0xff, (t & 0x8000) !== 0, charset);
      if (v === undefined) {
        incomplete = true;
        break;
      }
    }
    if (i < stmtParams) params.push(v);
    else setName((attributes ??= {}), names[i] ?? String(i), valueText(v) ?? 'NULL');
  }
  return attributes === undefined ? { statementId, flags, params, types, incomplete } : { statementId, flags, params, attributes, types, incomplete };
}

/**
 * COM_QUERY after the command byte. With CLIENT_QUERY_ATTRIBUTES:
 * `lenenc parameter_count | lenenc parameter_set_count (1) | [null_bitmap | u8 1 | {u16 type, lenenc name}* | values]`
 * then the query text; without it, the text is the whole rest.
 */
export function decodeQuery(r: ByteReader, caps: number, charset: string): { sql: Uint8Array; attributes?: Record<string, string> } | undefined {
  if ((caps & Cap.QueryAttributes) === 0) return { sql: r.rest() };
  const count = r.lenencInt() ?? 0;
  r.lenencInt();
  if (!r.ok || count > MAX_PARAMS) return undefined;
  let attributes: Record<string, string> | undefined;
  if (count > 0) {
    const bitmap = r.bytes((count + 7) >> 3);
    r.u8();
    const types: number[] = [];
    const names: string[] = [];
    for (let i = 0; i < count && r.ok; i++) {
      types.push(r.u16le());
      const nm = r.lenencBytes();
      names.push(nm === null ? '' : decodeUtf8(nm));
    }
    attributes = {};
    for (let i = 0; i < count && r.ok; i++) {
      const v = bitmap[i >> 3]! & (1 << (i & 7)) ? null : decodeBinaryValue(r, types[i]! & 0xff, (types[i]! & 0x8000) !== 0, charset);
      if (v === undefined) break;
      setName(attributes, names[i]!, valueText(v) ?? 'NULL');
    }
  }
  if (!r.ok) return undefined;
  return attributes === undefined ? { sql: r.rest() } : { sql: r.rest(), attributes };
}

/** Text result row: one lenenc string per column, 0xfb for NULL. */
export function decodeTextRow(r: ByteReader, columns: number, charset: string): (string | null)[] {
  const row: (string | null)[] = [];
  for (let i = 0; i < columns && r.remaining > 0; i++) {
    const b = r.lenencBytes();
    row.push(b === null ? null : text(b, charset));
  }
  return row;
}

/** Binary result row: `u8 0x00 | null_bitmap[(n + 9) / 8] (offset 2) | values`. */
export function decodeBinaryRow(r: ByteReader, cols: readonly ColumnDef[], charset: string): (string | null)[] {
  r.skip(1);
  const n = cols.length;
  const bitmap = r.bytes((n + 9) >> 3);
  const row: (string | null)[] = [];
  for (let i = 0; i < n && r.ok; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) {
      row.push(null);
      continue;
    }
    const c = cols[i]!;
    const v = decodeBinaryValue(r, c.type, (c.flags & 0x20) !== 0, charset);
    if (v === undefined) break;
    row.push(valueText(v));
  }
  return row;
}

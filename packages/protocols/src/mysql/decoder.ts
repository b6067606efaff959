// Bytes -> typed MySQL messages, and the plausibility checks that detection
// and resynchronisation use. Every decode function reads from a bounded
// ByteReader positioned at the first payload byte and returns a message or
// an Outcome: Truncated when the payload ends before its fields do (the
// caller knows whether the packet itself was cut, which makes it a capture
// artefact, or whole, which makes it malformed), Malformed when a field
// holds what the protocol does not allow.
import { ByteReader, type ParamValue, decodeUtf8 } from '@dbtap/core';
import { Outcome, type Result } from '../kit/index.js';
import { Cap, Command, MariaCap, Resp, ServerKind, type ChangeUser, type ColumnCount, type ColumnDef, type EofPacket, type ErrPacket, type ExecuteRequest, type Greeting, type LoginRequest, type OkPacket, type PrepareOk, type QueryRequest } from './messages.js';
import { decodeBinaryValue, looksLikeText, setName, valueText } from './values.js';

/** Skips a length-encoded string without making a view of it. */
function skipLenenc(r: ByteReader): void {
  const n = r.lenencInt();
  if (n !== null) r.skip(n);
}

/** The outcome of a reader that ran past its end, else `v`. */
function done<T>(r: ByteReader, v: T): Result<T> {
  return r.ok ? v : Outcome.Truncated;
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
export function decodeGreeting(r: ByteReader): Result<Greeting> {
  const protocolVersion = r.u8();
  if (!r.ok) return Outcome.Truncated;
  if (protocolVersion !== 10) return Outcome.Malformed;
  const serverVersion = r.cstringUtf8();
  const connectionId = r.u32le();
  r.skip(9);
  if (!r.ok) return Outcome.Truncated;
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
  return done(r, { kind: ServerKind.Greeting, protocolVersion, serverVersion, connectionId, capabilities, mariaCapabilities, charset, status, authPlugin });
}

/** Connection attributes: lenenc total length, then lenenc key / lenenc value pairs (what parses of them). */
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
 * The auth response is skipped, never decoded.
 */
export function decodeLoginRequest(r: ByteReader): Result<LoginRequest> {
  const start = r.pos;
  if (r.remaining < 4) return Outcome.Truncated;
  const lo = r.u16le();
  if ((lo & Cap.Protocol41) === 0) {
    // HandshakeResponse320: u16 caps | u24 max_packet | cstring user | auth [| cstring db]
    const maxPacket = r.u24le();
    const user = r.cstringUtf8();
    return done(r, { capabilities: lo, mariaCapabilities: 0, maxPacket, charset: 0, sslRequest: (lo & Cap.Ssl) !== 0 && r.remaining === 0 && user === '', user });
  }
  r.pos = start;
  const capabilities = r.u32le();
  const maxPacket = r.u32le();
  const charset = r.u8();
  r.skip(19);
  const mariaCapabilities = (capabilities & Cap.LongPassword) === 0 ? r.u32le() : (r.skip(4), 0);
  if (!r.ok) return Outcome.Truncated;
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

/** COM_CHANGE_USER after the command byte: cstring user | auth (skipped) | cstring db | u16 charset | cstring plugin | attrs. */
export function decodeChangeUser(r: ByteReader, caps: number): Result<ChangeUser> {
  const user = r.cstringUtf8();
  if (caps & Cap.SecureConnection) r.skip(r.u8());
  else r.cstring();
  if (!r.ok) return Outcome.Truncated;
  const out: { -readonly [K in keyof ChangeUser]: ChangeUser[K] } = { user };
  if (r.remaining > 0) out.database = r.cstringUtf8();
  if (r.remaining >= 2) out.charset = r.u16le();
  if (caps & Cap.PluginAuth && r.remaining > 0) out.authPlugin = r.cstringUtf8();
  if (caps & Cap.ConnectAttrs && r.remaining > 0) out.attributes = decodeAttributes(r);
  if (out.database === '') delete out.database;
  return out;
}

/** AuthSwitchRequest: `u8 0xfe | cstring plugin | data` (the one-byte pre-4.1 form means mysql_old_password). */
export function decodeAuthSwitch(r: ByteReader): string {
  r.skip(1);
  return r.remaining > 0 ? r.cstringUtf8() : 'mysql_old_password';
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
export function decodeOk(r: ByteReader, caps: number): Result<OkPacket> {
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
  if (!r.ok) return Outcome.Truncated;
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
  const ok: { -readonly [K in keyof OkPacket]: OkPacket[K] } = { kind: ServerKind.Ok, affectedRows, lastInsertId, status, warnings };
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
export function decodeErr(r: ByteReader): Result<ErrPacket> {
  r.skip(1);
  const code = r.u16le();
  if (!r.ok) return Outcome.Truncated;
  let sqlState: string | undefined;
  // The SQLSTATE marker is present whenever CLIENT_PROTOCOL_41 is; checking the
  // byte itself also works for the handshake-time ERR that predates capabilities.
  if (r.peek() === 0x23 && r.remaining >= 6) {
    r.skip(1);
    sqlState = r.latin1(5);
  }
  const message = decodeUtf8(r.rest());
  return sqlState === undefined ? { kind: ServerKind.Err, code, message } : { kind: ServerKind.Err, code, sqlState, message };
}

/** EOF_Packet: `u8 0xfe | u16 warnings | u16 status` (missing fields read as 0). */
export function decodeEof(r: ByteReader): EofPacket {
  r.skip(1);
  const warnings = r.u16le();
  const status = r.u16le();
  return { kind: ServerKind.Eof, warnings, status };
}

/** Status flags of an EOF_Packet without building the message (the common result-set terminator). */
export function eofStatus(b: Uint8Array): number {
  return b.length >= 5 ? b[3]! | (b[4]! << 8) : 0;
}

/** Warnings of an EOF_Packet without building the message. */
export function eofWarnings(b: Uint8Array): number {
  return b.length >= 3 ? b[1]! | (b[2]! << 8) : 0;
}

/**
 * The first packet of a result set: `lenenc column_count [| u8 metadata_follows]`
 * (the flag only under CLIENT_OPTIONAL_RESULTSET_METADATA or MariaDB's metadata cache).
 */
export function decodeColumnCount(r: ByteReader, optionalMetadata: boolean): Result<ColumnCount> {
  const count = r.lenencInt();
  if (!r.ok) return Outcome.Truncated;
  if (count === null || count === 0) return Outcome.Malformed;
  const metadataFollows = optionalMetadata && r.remaining > 0 ? r.u8() !== 0 : true;
  return { kind: ServerKind.ColumnCount, count, metadataFollows };
}

/**
 * protocol::ColumnDefinition41:
 * ```
 * lenenc catalog ("def") | lenenc schema | lenenc table | lenenc org_table | lenenc name | lenenc org_name
 * [MariaDB extended metadata: lenenc] | lenenc 0x0c | u16 charset | u32 length | u8 type | u16 flags | u8 decimals | 2 filler
 * ```
 */
export function decodeColumnDef(r: ByteReader, mariaCaps: number): Result<ColumnDef> {
  skipLenenc(r);
  const schema = r.lenencBytes();
  const table = r.lenencBytes();
  const orgTable = r.lenencBytes();
  const name = r.lenencBytes();
  skipLenenc(r);
  if (mariaCaps & MariaCap.ExtendedMetadata) skipLenenc(r);
  r.lenencInt();
  const charset = r.u16le();
  r.skip(4);
  const type = r.u8();
  const flags = r.u16le();
  if (!r.ok) return Outcome.Truncated;
  if (schema === null || table === null || orgTable === null || name === null) return Outcome.Malformed;
  return { kind: ServerKind.ColumnDef, schema: decodeUtf8(schema), table: decodeUtf8(table), orgTable: decodeUtf8(orgTable), name: decodeUtf8(name), charset, type, flags };
}

/** Where a result column comes from: its schema, its table (behind any alias) and its name. */
export interface ColumnRef {
  readonly schema: string;
  readonly orgTable: string;
  readonly name: string;
}

/** The name and origin of a column definition (cheap path when the type and flags are not needed). */
export function decodeColumnRef(r: ByteReader): Result<ColumnRef> {
  skipLenenc(r);
  const schema = r.lenencBytes();
  skipLenenc(r);
  const orgTable = r.lenencBytes();
  const name = r.lenencBytes();
  if (!r.ok) return Outcome.Truncated;
  if (schema === null || orgTable === null || name === null) return Outcome.Malformed;
  return { schema: schema.length === 0 ? '' : decodeUtf8(schema), orgTable: orgTable.length === 0 ? '' : decodeUtf8(orgTable), name: decodeUtf8(name) };
}

/** COM_STMT_PREPARE_OK: `u8 0x00 | u32 statement_id | u16 num_columns | u16 num_params | u8 0 | u16 warnings`. */
export function decodePrepareOk(r: ByteReader): Result<PrepareOk> {
  r.skip(1);
  const statementId = r.u32le();
  const columns = r.u16le();
  const params = r.u16le();
  if (!r.ok) return Outcome.Truncated;
  r.skip(1);
  const warnings = r.remaining >= 2 ? r.u16le() : 0;
  return { kind: ServerKind.PrepareOk, statementId, columns, params, warnings };
}

// ---- commands -------------------------------------------------------------------

/** Most parameters (placeholders plus query attributes) a statement can bind. */
const MAX_PARAMS = 0xffff;

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
export function decodeExecute(r: ByteReader, numParams: number | undefined, prevTypes: readonly number[] | undefined, caps: number, charset: string, longData?: ReadonlyMap<number, ParamValue>): Result<ExecuteRequest> {
  const statementId = r.u32le();
  const flags = r.u8();
  r.skip(4);
  if (!r.ok) return Outcome.Truncated;
  let count = numParams ?? -1;
  if (caps & Cap.QueryAttributes && (count > 0 || flags & 0x08)) {
    count = r.lenencInt() ?? 0;
    // Parameters and attributes share a u16 space (a statement has at most 65,535 placeholders).
    if (count > MAX_PARAMS) return Outcome.Malformed;
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
export function decodeQuery(r: ByteReader, caps: number, charset: string): Result<QueryRequest> {
  if ((caps & Cap.QueryAttributes) === 0) return { sql: r.rest() };
  const count = r.lenencInt() ?? 0;
  r.lenencInt();
  if (!r.ok) return Outcome.Truncated;
  if (count > MAX_PARAMS) return Outcome.Malformed;
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
  if (!r.ok) return Outcome.Truncated;
  return attributes === undefined ? { sql: r.rest() } : { sql: r.rest(), attributes };
}

// ---- plausibility: detection and resynchronisation -------------------------------

/** u24le packet length at `buf[p]`. */
export function u24(buf: Uint8Array, p: number): number {
  return buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
}

/**
 * How many packet headers chain from `p` to exactly `end` (the last packet
 * may be cut by `end`), or Outcome.Malformed when a header follows a
 * sequence break. Sequence ids must increase by one, or restart at 0 / 1
 * (a new command or response).
 */
export function chainLength(buf: Uint8Array, p: number, end: number, limit = 64): Result<number> {
  let n = 0;
  let prevSeq = -1;
  while (p < end && n < limit) {
    if (end - p < 4) return n > 0 ? n : Outcome.Malformed;
    const seq = buf[p + 3]!;
    if (prevSeq >= 0 && seq !== ((prevSeq + 1) & 0xff) && seq > 1) return Outcome.Malformed;
    n++;
    prevSeq = seq;
    p += 4 + u24(buf, p);
  }
  return n;
}

/**
 * How many whole packets chain from `p` before `end` (a packet cut by `end`
 * is not counted), with the sequence rule of {@link chainLength}.
 */
export function wholePackets(buf: Uint8Array, p: number, end: number, limit = 8): number {
  let n = 0;
  let prevSeq = -1;
  while (n < limit && end - p >= 4) {
    const len = u24(buf, p);
    const seq = buf[p + 3]!;
    if (prevSeq >= 0 && seq !== ((prevSeq + 1) & 0xff) && seq > 1) break;
    if (end - p - 4 < len) break;
    n++;
    prevSeq = seq;
    p += 4 + len;
  }
  return n;
}

/** True when the chunk is exactly a chain of plain packet headers (none cut by its end). */
export function exactPlain(bytes: Uint8Array): boolean {
  let p = 0;
  while (p + 4 <= bytes.length) p += 4 + u24(bytes, p);
  return p === bytes.length;
}

/** True when the first payload bytes look like SQL text (or query attributes then text). */
export function looksLikeSql(buf: Uint8Array, p: number, end: number): boolean {
  // CLIENT_QUERY_ATTRIBUTES prefix: parameter_count, parameter_set_count (1).
  if (end - p >= 2 && buf[p + 1] === 0x01 && buf[p]! < 0x20) return true;
  const n = Math.min(end, p + 24);
  return p < n && looksLikeText(buf, p, n);
}

/**
 * True when `buf[p]` plausibly starts a client command packet (sequence id
 * 0, a known command byte, a length that fits the command) whose header
 * chain reaches the end of the chunk.
 */
export function plausibleCommand(buf: Uint8Array, p: number, end: number, maxBytes = 1 << 26): boolean {
  if (end - p < 5) return false;
  const len = u24(buf, p);
  if (buf[p + 3] !== 0 || len === 0 || len > maxBytes) return false;
  let ok: boolean;
  switch (buf[p + 4]!) {
    case Command.Quit:
    case Command.Ping:
    case Command.Statistics:
    case Command.ProcessInfo:
    case Command.Debug:
    case Command.ResetConnection:
      ok = len === 1;
      break;
    case Command.Query:
    case Command.StmtPrepare:
    case Command.InitDb:
    case Command.CreateDb:
    case Command.DropDb:
    case Command.FieldList:
      ok = len >= 2 && looksLikeSql(buf, p + 5, Math.min(end, p + 4 + len));
      break;
    case Command.ProcessKill:
    case Command.StmtClose:
    case Command.StmtReset:
      ok = len === 5;
      break;
    case Command.StmtFetch:
      ok = len === 9;
      break;
    case Command.StmtExecute:
      ok = len >= 10 && end - p >= 10 && buf[p + 9]! <= 0x0f;
      break;
    case Command.SetOption:
      ok = len === 3 && buf[p + 6] === 0 && end - p >= 7 && buf[p + 5]! <= 1;
      break;
    case Command.Refresh:
      ok = len === 2;
      break;
    case Command.ChangeUser:
      ok = len >= 3;
      break;
    case Command.StmtSendLongData:
    case Command.StmtBulkExecute:
      ok = len >= 7;
      break;
    default:
      ok = false;
  }
  return ok && chainLength(buf, p, end) >= 1;
}

/**
 * A command candidate that runs past the chunk cannot be checked whole;
 * believing a false one would swallow the client's next commands as its
 * body. Text commands must look like text as far as the chunk shows them;
 * statement commands must name a statement the session knows; fixed-size
 * commands must be whole.
 */
export function believableCommand(buf: Uint8Array, p: number, end: number, knownStatement: (id: number) => boolean): boolean {
  const len = u24(buf, p);
  if (p + 4 + len <= end) return true;
  switch (buf[p + 4]) {
    case Command.Query:
    case Command.StmtPrepare:
      return looksLikeText(buf, p + 5, Math.min(end, p + 5 + 4096));
    case Command.StmtExecute:
    case Command.StmtSendLongData:
    case Command.StmtBulkExecute:
      return end - p >= 9 && knownStatement((buf[p + 5]! | (buf[p + 6]! << 8) | (buf[p + 7]! << 16) | (buf[p + 8]! << 24)) >>> 0);
    case Command.ChangeUser:
      return true;
    default:
      return false;
  }
}

/** Bytes of the shortest HandshakeResponse41 (the SSLRequest), header included. */
const MIN_LOGIN = 36;

/**
 * While the client stream scans before the login: does a HandshakeResponse41
 * start at `buf[p]`? Sequence id 1, CLIENT_PROTOCOL_41 set, the 19 bytes of
 * filler after the charset zero (MySQL and MariaDB alike), one packet to the
 * chunk's end. 1 yes, Outcome.More when too few bytes show it, else
 * Outcome.Malformed.
 */
export function loginBoundary(buf: Uint8Array, p: number, end: number): number {
  if (end - p < MIN_LOGIN) return end - p < 4 || buf[p + 3] === 1 ? Outcome.More : Outcome.Malformed;
  if (buf[p + 3] !== 1 || u24(buf, p) < MIN_LOGIN - 4 || (buf[p + 5]! & 0x02) === 0) return Outcome.Malformed;
  for (let i = p + 13; i < p + 32; i++) if (buf[i] !== 0) return Outcome.Malformed;
  return chainLength(buf, p, end) === 1 ? 1 : Outcome.Malformed;
}

/**
 * True when the `len` payload bytes at `buf[p]` can be the first packet of
 * the response to `cmd`: an OK (header, two length-encoded integers, status,
 * warnings), an ERR (a code, then the SQLSTATE marker), an EOF, a column
 * count (one length-encoded integer, optionally the metadata flag), a LOCAL
 * INFILE request (a file name), for COM_FIELD_LIST a column definition, or
 * for COM_STATISTICS text.
 */
export function plausibleFirstResponse(buf: Uint8Array, p: number, len: number, cmd: number): boolean {
  const f = buf[p]!;
  if (cmd === Command.Statistics) return f !== Resp.Err ? looksLikeSql(buf, p, p + len) : len >= 9;
  // COM_FIELD_LIST answers with column definitions straight away: catalog "def" first.
  if (cmd === Command.FieldList && f === 0x03) return len >= 20 && buf[p + 1] === 0x64 && buf[p + 2] === 0x65 && buf[p + 3] === 0x66;
  switch (f) {
    case Resp.Ok:
      return len >= 7;
    case Resp.Err: {
      const code = buf[p + 1]! | (buf[p + 2]! << 8);
      return len >= 9 && buf[p + 3] === 0x23 && code >= 1000; // '#' SQLSTATE marker
    }
    case Resp.Eof:
      return len === 5 || len >= 7;
    case Resp.LocalInfile:
      return cmd === Command.Query && len >= 2 && looksLikeSql(buf, p + 1, p + len);
    case 0xfc:
      return len === 3 || len === 4;
    case 0xfd:
      return len === 4 || len === 5;
    default:
      return f > 0 && f < 0xfb && (len === 1 || len === 2);
  }
}

/** True when `buf[p]` plausibly starts a server greeting packet (HandshakeV10). */
export function plausibleGreeting(buf: Uint8Array, p: number, end: number): boolean {
  if (end - p < 5 + 1 + 1 + 4 + 9) return false;
  const len = u24(buf, p);
  if (buf[p + 3] !== 0 || buf[p + 4] !== 10 || len < 20 || len > 1024) return false;
  // server version: printable ASCII then NUL, within the packet
  const stop = Math.min(end, p + 4 + len);
  let i = p + 5;
  for (; i < stop; i++) {
    const c = buf[i]!;
    if (c === 0) break;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return i > p + 5 && i < stop && i + 1 + 4 + 8 + 1 <= stop && buf[i + 13] === 0;
}

/** True when `buf[p]` is an ERR sent instead of the greeting (seq 0), alone in the chunk. */
export function plausibleRefusal(buf: Uint8Array, p: number, end: number): boolean {
  return end - p > 4 && buf[p + 3] === 0 && buf[p + 4] === Resp.Err && chainLength(buf, p, end) === 1;
}

/** True when `buf[p]` can be a server packet of the login exchange (OK, ERR, auth switch, auth more data; seq >= 2). */
export function plausibleAuthPacket(buf: Uint8Array, p: number, end: number): boolean {
  if (end - p <= 4) return false;
  const f = buf[p + 4]!;
  return buf[p + 3]! >= 2 && u24(buf, p) > 0 && (f === Resp.Ok || f === Resp.Err || f === Resp.Eof || f === Resp.AuthMoreData) && chainLength(buf, p, end) >= 1;
}

/** Largest first packet of a response a resynchronising scan accepts (an OK with info and session state). */
const MAX_FIRST_RESPONSE = 0xffff;

/**
 * True when a packet of the response to `cmd` can start at `buf[p]`. The
 * first packet of a response (`responded` false: OK, ERR, EOF, column
 * count, LOCAL INFILE request, statistics) is small and sent whole: a long
 * one, or one cut by the chunk, is more likely a false start that would
 * swallow the responses that follow as its body. Inside a response any
 * packet may follow; one that runs past the chunk is only believed when
 * whole packets chain up to it.
 */
export function plausibleResponsePacket(buf: Uint8Array, p: number, end: number, cmd: number, responded: boolean): boolean {
  if (end - p <= 4) return false;
  const len = u24(buf, p);
  if (len === 0) return false;
  if (!responded) {
    if (buf[p + 3] !== 1 || p + 4 + len > end || len > MAX_FIRST_RESPONSE) return false;
    if (!plausibleFirstResponse(buf, p + 4, len, cmd)) return false;
  } else if (p + 4 + len > end && wholePackets(buf, p, end) < 2) {
    return false;
  }
  return chainLength(buf, p, end) >= 1;
}

/** First server packet of a response, for detection: seq 1, OK / ERR / EOF / column count, chaining to the end. */
export function plausibleResponse(b: Uint8Array): boolean {
  if (b.length < 5 || b[3] !== 1) return false;
  const len = u24(b, 0);
  const f = b[4]!;
  if (len === 0 || !(f === Resp.Ok || f === Resp.Err || f === Resp.Eof || (f < 0xfb && len <= 9))) return false;
  return chainLength(b, 0, b.length) >= 1;
}

/** True when `buf[p]` starts a plausible compressed packet header. */
export function looksCompressed(buf: Uint8Array, p: number, end: number): boolean {
  if (end - p < 8) return false;
  const compLen = u24(buf, p);
  const rawLen = u24(buf, p + 4);
  if (compLen === 0) return false;
  if (rawLen === 0) {
    // Stored: the body is itself one or more packets.
    if (compLen < 4) return false;
    return end - p >= 10 && u24(buf, p + 7) + 4 <= compLen;
  }
  // zlib header: CMF 0x78 (deflate, 32K window) and (CMF*256 + FLG) % 31 == 0 (RFC 1950 §2.2).
  const cmf = buf[p + 7]!;
  if (cmf !== 0x78 || end - p < 9) return false;
  if (((cmf << 8) | buf[p + 8]!) % 31 !== 0) return false;
  return rawLen >= compLen - 20;
}

/** A compressed packet starts at `buf[p]`, and so does the next one (or the chunk ends with this one). */
export function compressedBoundary(buf: Uint8Array, p: number, end: number): boolean {
  if (!looksCompressed(buf, p, end)) return false;
  const next = p + 7 + u24(buf, p);
  return next >= end || looksCompressed(buf, next, end);
}

/** True when the chunk is exactly a chain of compressed packets. */
export function exactCompressed(bytes: Uint8Array): boolean {
  let p = 0;
  let n = 0;
  while (p < bytes.length && looksCompressed(bytes, p, bytes.length)) {
    p += 7 + u24(bytes, p);
    n++;
  }
  return n > 0 && p === bytes.length;
}

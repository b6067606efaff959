// The MySQL session state machine: login, command / response pairing and
// audit records. Requests are queued in order (MariaDB connectors pipeline
// PREPARE + EXECUTE); each server packet belongs to the oldest request that
// still waits for its response, and the request's response state decides
// what the packet means.
import { type AuditEvent, type CloseReason, type Direction, type EventStatus, type ParamValue, type Timestamp, ByteReader, isKnownCharset, normalizeCharset } from '@dbtap/core';
import { type ProtocolSession, type SessionContext, type SessionStats, newSessionStats } from '../plugin.js';
import { charsetOfCollation, setName, decodeBinaryRow, decodeChangeUser, decodeColumnDef, decodeColumnRef, decodeEof, decodeErr, decodeExecute, decodeGreeting, decodeLoginRequest, decodeOk, decodePrepareOk, decodeQuery, decodeTextRow, text } from './decoder.js';
import { CompressedFramer, type MysqlPacket, PacketFramer, chainLength, looksCompressed, wholePackets } from './framer.js';
import { Cap, Command, MariaCap, Status, type ChangeUser, type ColumnDef, type ErrPacket, type Greeting, type LoginRequest, type OkPacket, commandName } from './messages.js';

const ToServer = 0;
const ToClient = 1;

/** Response states of a pending request. */
const enum RState {
  First, // waiting for the first packet of a (next) result
  Columns, // column definitions follow
  ColumnsEof, // an EOF may follow the column definitions
  Rows, // rows until EOF / OK terminator or ERR
  PrepParams, // COM_STMT_PREPARE parameter definitions
  PrepParamsEof,
  PrepCols, // COM_STMT_PREPARE column definitions
  PrepColsEof,
  FieldList, // COM_FIELD_LIST column definitions until EOF
  Infile, // client is sending a LOCAL INFILE file
  Auth, // COM_CHANGE_USER authentication exchange
  Stream, // binlog / clone stream: everything until ERR / EOF
  Done,
}

const enum Phase {
  Greeting, // waiting for the server greeting
  Login, // waiting for the client's HandshakeResponse
  Auth, // authentication exchange until OK / ERR
  Command, // command phase
  Encrypted, // TLS: nothing more is decodable
  Closed, // login failed or the stream is unusable
}

interface PreparedStatement {
  sql: string;
  params: number;
  types?: readonly number[];
  columns?: ColumnDef[];
  longData?: Map<number, ParamValue>;
}

interface Pending {
  cmd: number;
  ts: Timestamp;
  endTs: Timestamp;
  state: RState;
  responded: boolean;
  bytesIn: number;
  bytesOut: number;
  truncated: boolean;
  gapBefore: boolean;
  status: EventStatus;
  err?: ErrPacket;
  sql?: string;
  params?: ParamValue[];
  statementId?: number;
  attributes?: Record<string, string>;
  user?: string;
  database?: string;
  // result accounting
  affectedRows?: number;
  lastInsertId?: number;
  warnings?: number;
  rowsReturned?: number;
  message?: string;
  columns?: string[];
  rows?: (string | null)[][];
  colDefs?: ColumnDef[];
  colsLeft: number;
  /** `schema.table` of the first result's columns (their tables behind any alias), distinct, in order. */
  tables?: string[];
  /** System variables the server reported changed (session state tracking). */
  sysvars?: Record<string, string>;
  /** Bytes of file content sent for LOAD DATA LOCAL INFILE. */
  infileBytes?: number;
  resultSets: number;
  binary: boolean;
  prepParams: number;
  prepCols: number;
  // command specifics
  newDatabase?: string;
  newCharset?: string;
  changeUser?: ChangeUser;
  authPlugin?: string;
}

const MAX_PENDING = 256;
/** Column names and definitions kept per result (MySQL and MariaDB allow 4096 columns in a table). */
const MAX_COLUMNS = 4096;
/** Largest first packet of a response a resynchronising scan accepts (an OK with info and session state). */
const MAX_FIRST_RESPONSE = 0xffff;
const MAX_STATEMENTS = 4096;

/** Tables named in `attributes.resultTables` per record. */
const MAX_TABLES = 32;

/** Remembers the table a result column comes from (computed columns have none). */
function noteTable(head: Pending, schema: string, table: string): void {
  if (table === '' || head.resultSets > 1) return;
  const name = schema === '' ? table : `${schema}.${table}`;
  const list = (head.tables ??= []);
  if (list.length < MAX_TABLES && !list.includes(name)) list.push(name);
}

/** Commands that never get a response. */
function noResponse(cmd: number): boolean {
  return cmd === Command.Quit || cmd === Command.StmtClose || cmd === Command.StmtSendLongData;
}

/** True when the first payload bytes look like SQL text (or query attributes then text). */
function looksLikeSql(buf: Uint8Array, p: number, end: number): boolean {
  // CLIENT_QUERY_ATTRIBUTES prefix: parameter_count, parameter_set_count (1).
  if (end - p >= 2 && buf[p + 1] === 0x01 && buf[p]! < 0x20) return true;
  const n = Math.min(end, p + 24);
  if (p >= n) return false;
  for (let i = p; i < n; i++) {
    const c = buf[i]!;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
    if (c === 0x7f) return false;
  }
  return true;
}

/** True when `buf[p, end)` holds no control characters other than white space (UTF-8 text passes). */
function looksLikeText(buf: Uint8Array, p: number, end: number): boolean {
  for (let i = p; i < end; i++) {
    const c = buf[i]!;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return false;
  }
  return true;
}

/**
 * True when `buf[p]` plausibly starts a client command packet (sequence id
 * 0, a known command byte, a length that fits the command) whose header
 * chain reaches the end of the chunk.
 */
export function plausibleCommand(buf: Uint8Array, p: number, end: number, maxBytes = 1 << 26): boolean {
  if (end - p < 5) return false;
  const len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
  if (buf[p + 3] !== 0 || len === 0 || len > maxBytes) return false;
  const cmd = buf[p + 4]!;
  let ok: boolean;
  switch (cmd) {
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
    case Command.StmtSendLongData:
      ok = len >= 7;
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
    case Command.StmtBulkExecute:
      ok = len >= 7;
      break;
    default:
      ok = false;
  }
  return ok && chainLength(buf, p, end) >= 1;
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
  if (cmd === Command.Statistics) return f !== 0xff ? looksLikeSql(buf, p, p + len) : len >= 9;
  // COM_FIELD_LIST answers with column definitions straight away: catalog "def" first.
  if (cmd === Command.FieldList && f === 0x03) return len >= 20 && buf[p + 1] === 0x64 && buf[p + 2] === 0x65 && buf[p + 3] === 0x66;
  switch (f) {
    case 0x00:
      return len >= 7;
    case 0xff: {
      const code = buf[p + 1]! | (buf[p + 2]! << 8);
      return len >= 9 && buf[p + 3] === 0x23 && code >= 1000; // '#' SQLSTATE marker
    }
    case 0xfe:
      return len === 5 || len >= 7;
    case 0xfb:
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
  const len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
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

/** One direction's framing: plain packets, optionally inside the compressed protocol. */
class Channel {
  readonly plain: PacketFramer;
  compressed: CompressedFramer | null = null;
  private readonly max: number;
  constructor(plain: PacketFramer, max: number) {
    this.plain = plain;
    this.max = max;
  }
  push(bytes: Uint8Array): void {
    if (this.compressed) {
      this.compressed.push(bytes);
      return;
    }
    const n = this.plain.push(bytes);
    if (n < bytes.length && this.compressed) (this.compressed as CompressedFramer).push(bytes.subarray(n));
  }
  gap(n: number): boolean {
    return this.compressed ? this.compressed.gap(n) && this.plain.synced : this.plain.gap(n);
  }
  enableCompression(): void {
    if (this.compressed) return;
    this.compressed = new CompressedFramer(this.plain, this.max);
    this.plain.pause();
  }
  get synced(): boolean {
    return this.plain.synced && (this.compressed === null || this.compressed.synced);
  }
  get skipped(): number {
    return this.plain.skipped + (this.compressed?.skipped ?? 0);
  }
}

/** The session state machine of one MySQL connection. */
export class MysqlSession implements ProtocolSession {
  readonly stats: SessionStats = newSessionStats();
  private readonly ctx: SessionContext;
  private readonly client: Channel;
  private readonly server: Channel;
  private readonly reader = new ByteReader();
  private phase: Phase;
  private midSession: boolean;
  private now: Timestamp = 0;
  private nextId = 0;
  private queue: Pending[] = [];
  private readonly statements = new Map<number, PreparedStatement>();
  private lastPrepared = -1;
  private pendingGap = false;
  private quitSeen = false;
  private loggedIn = false;
  private skippedReported = 0;
  // identity
  private greeting: Greeting | undefined;
  private greetingVersion: string | undefined;
  private clientCaps = 0;
  private login: LoginRequest | undefined;
  private loginTs: Timestamp = 0;
  private loginBytesIn = 0;
  private loginBytesOut = 0;
  private authPlugin: string | undefined;
  private user: string | undefined;
  private database: string | undefined;
  private charset = 'utf-8';
  private caps = Cap.Protocol41 | Cap.SecureConnection | Cap.Transactions;
  private mariaCaps = 0;
  private deprecateEof: boolean | undefined;
  private product: string | undefined;
  private clientProgram: string | undefined;
  private clientLibrary: string | undefined;
  private osUser: string | undefined;
  private clientPid: string | undefined;
  private clientHost: string | undefined;
  private tls: boolean | undefined;

  constructor(ctx: SessionContext) {
    this.ctx = ctx;
    if (ctx.options.charset !== undefined) this.charset = ctx.options.charset;
    const max = ctx.options.maxMessageBytes;
    this.client = new Channel(new PacketFramer((p) => this.onClientPacket(p), max), max);
    this.server = new Channel(new PacketFramer((p) => this.onServerPacket(p), max), max);
    this.midSession = ctx.midStream;
    this.phase = ctx.midStream ? Phase.Command : Phase.Greeting;
    if (ctx.midStream) {
      this.client.plain.desync();
      this.server.plain.desync();
    }
    this.client.plain.setFinder((b, p, e) => this.findCommand(b, p, e));
    this.server.plain.setFinder((b, p, e) => this.findResponse(b, p, e));
  }

  // ---- ProtocolSession ------------------------------------------------------

  data(dir: Direction, bytes: Uint8Array, ts: Timestamp): void {
    if (this.phase === Phase.Encrypted || this.phase === Phase.Closed) {
      this.stats.skippedBytes += bytes.length;
      return;
    }
    this.now = ts;
    const ch = dir === ToServer ? this.client : this.server;
    try {
      if (!ch.compressed && !ch.plain.synced && this.phase === Phase.Command) this.maybeCompressedMidStream(bytes);
      else if (dir === ToServer && this.phase === Phase.Command && this.login === undefined && !ch.compressed && ch.plain.idle && !plausibleCommand(bytes, 0, bytes.length) && this.exactCompressed(bytes)) {
        // The login (and with it CLIENT_COMPRESS) was not seen, but the client speaks compressed.
        this.client.enableCompression();
        this.server.enableCompression();
      } else if (this.phase === Phase.Auth && dir === ToServer && this.compressionNegotiated() && ch.plain.idle && looksCompressed(bytes, 0, bytes.length)) {
        // The OK that ended authentication was lost: the client already speaks compressed.
        this.endAuthImplicitly();
        this.client.enableCompression();
        this.server.enableCompression();
      }
      ch.push(bytes);
    } catch {
      // A decoder bug must not take the pipeline down: count it and resync.
      this.stats.malformed++;
      ch.plain.desync();
    }
    this.syncSkipped();
  }

  gap(dir: Direction, nbytes: number, ts: Timestamp): void {
    this.now = ts;
    this.stats.gaps++;
    if (this.phase === Phase.Encrypted || this.phase === Phase.Closed) return;
    try {
      const head = this.queue[0];
      if (dir === ToClient && head) {
        head.truncated = true;
        head.gapBefore = true;
      } else {
        this.pendingGap = true;
      }
      const ch = dir === ToServer ? this.client : this.server;
      if (!ch.gap(nbytes) && dir === ToClient && head && this.phase === Phase.Command && head.state === RState.First && head.responded) {
        // The response started but its remainder is lost: do not let its tail
        // be read as the next request's response.
        this.finish(head, 'unknown');
      }
    } catch {
      this.stats.malformed++;
    }
    this.syncSkipped();
  }

  close(reason: CloseReason, ts: Timestamp): void {
    this.now = ts;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.state !== RState.Done) {
          this.stats.unmatchedRequests++;
          head.truncated = head.truncated || head.responded;
        }
        this.finish(head, head.state === RState.Done ? head.status : 'unknown');
      }
      if ((reason === 'fin' || reason === 'rst') && !this.quitSeen && (this.loggedIn || (this.midSession && this.nextId > 0))) {
        const ev = this.base('logout', ts);
        ev.status = 'ok';
        ev.message = `connection closed (${reason}) without COM_QUIT`;
        this.emit(ev);
      }
    } catch {
      this.stats.malformed++;
    }
    this.phase = Phase.Closed;
  }

  // ---- framing helpers ------------------------------------------------------

  private syncSkipped(): void {
    const s = this.client.skipped + this.server.skipped;
    if (s !== this.skippedReported) {
      this.stats.skippedBytes += s - this.skippedReported;
      this.skippedReported = s;
    }
  }

  private maybeCompressedMidStream(bytes: Uint8Array): void {
    // A capture that starts after CLIENT_COMPRESS was negotiated: a chunk
    // that is exactly a chain of compressed packets (and not of plain ones).
    if (chainLength(bytes, 0, bytes.length) >= 1 && this.exactPlain(bytes)) return;
    if (this.exactCompressed(bytes)) {
      this.client.enableCompression();
      this.server.enableCompression();
    }
  }

  private exactCompressed(bytes: Uint8Array): boolean {
    let p = 0;
    let n = 0;
    while (p < bytes.length && looksCompressed(bytes, p, bytes.length)) {
      p += 7 + (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16));
      n++;
    }
    return n > 0 && p === bytes.length;
  }

  private exactPlain(bytes: Uint8Array): boolean {
    let p = 0;
    while (p + 4 <= bytes.length) p += 4 + (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16));
    return p === bytes.length;
  }

  private findResponse(buf: Uint8Array, pos: number, end: number): number {
    const head = this.queue[0];
    for (let p = pos; p + 4 < end; p++) {
      const len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
      const seq = buf[p + 3]!;
      const f = buf[p + 4]!;
      if (this.phase === Phase.Greeting) {
        if (plausibleGreeting(buf, p, end) || (seq === 0 && f === 0xff && chainLength(buf, p, end) === 1)) return p;
        continue;
      }
      if (this.phase === Phase.Login || this.phase === Phase.Auth) {
        if (seq >= 2 && len > 0 && (f === 0x00 || f === 0xff || f === 0xfe || f === 0x01) && chainLength(buf, p, end) >= 1) return p;
        continue;
      }
      if (!head) {
        if (this.midSession && this.nextId === 0 && plausibleGreeting(buf, p, end)) {
          // The capture started just before the greeting: the client has not
          // spoken yet, so its next bytes start a packet.
          this.phase = Phase.Greeting;
          this.midSession = false;
          if (this.client.plain.idle) this.client.plain.synced = true;
          return p;
        }
        continue;
      }
      if (len === 0) continue;
      if (!head.responded) {
        // The first packet of a response (OK, ERR, EOF, column count, LOCAL
        // INFILE request, statistics) is small and sent whole: a long one, or
        // one cut by the chunk, is more likely a false start that would
        // swallow the responses that follow as its body.
        if (seq !== 1 || p + 4 + len > end || len > MAX_FIRST_RESPONSE) continue;
        if (!plausibleFirstResponse(buf, p + 4, len, head.cmd)) continue;
      } else if (p + 4 + len > end && wholePackets(buf, p, end) < 2) {
        // Inside a response any packet may follow; one that runs past the
        // chunk is only believed when whole packets chain up to it.
        continue;
      }
      if (chainLength(buf, p, end) >= 1) return p;
    }
    return -1;
  }

  private findCommand(buf: Uint8Array, pos: number, end: number): number {
    const max = this.ctx.options.maxMessageBytes;
    const login = this.phase === Phase.Login || this.phase === Phase.Greeting;
    for (let p = pos; p + 5 <= end; p++) {
      if (plausibleCommand(buf, p, end, max) && this.believable(buf, p, end)) return p;
      if (login && buf[p + 3] === 1 && end - p >= 36 && (buf[p + 5]! & 0x02) !== 0 && chainLength(buf, p, end) === 1) return p;
    }
    return -1;
  }

  /**
   * A command candidate that runs past the chunk cannot be checked whole;
   * believing a false one would swallow the client's next commands as its
   * body. Text commands must look like text as far as the chunk shows them;
   * statement commands must name a statement the session knows; fixed-size
   * commands must be whole.
   */
  private believable(buf: Uint8Array, p: number, end: number): boolean {
    const len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
    if (p + 4 + len <= end) return true;
    switch (buf[p + 4]) {
      case Command.Query:
      case Command.StmtPrepare:
        return looksLikeText(buf, p + 5, Math.min(end, p + 5 + 4096));
      case Command.StmtExecute:
      case Command.StmtSendLongData:
      case Command.StmtBulkExecute:
        return end - p >= 9 && this.statements.has((buf[p + 5]! | (buf[p + 6]! << 8) | (buf[p + 7]! << 16) | (buf[p + 8]! << 24)) >>> 0);
      case Command.ChangeUser:
        return true;
      default:
        return false;
    }
  }

  // ---- server packets ------------------------------------------------------

  private onServerPacket(p: MysqlPacket): void {
    this.stats.messages++;
    const b = p.payload;
    switch (this.phase) {
      case Phase.Greeting:
        this.onGreeting(p);
        return;
      case Phase.Login:
        // The server speaks before the client logs in only to refuse; an OK
        // means the login request was lost (gap): record what is known.
        if (b[0] === 0xff) this.loginFailed(p);
        else if (b[0] === 0x00) this.onAuthResponse(p, true);
        return;
      case Phase.Auth:
        this.onAuthResponse(p);
        return;
      case Phase.Command:
        break;
      default:
        return;
    }
    const head = this.queue[0];
    if (!head) {
      this.stats.unmatchedResponses++;
      return;
    }
    head.responded = true;
    head.bytesOut += p.wireBytes;
    head.endTs = this.now;
    if (p.truncated) head.truncated = true;
    this.onResponse(head, p);
  }

  private onGreeting(p: MysqlPacket): void {
    const b = p.payload;
    if (b[0] === 0xff) {
      // The server refused the connection before the handshake (e.g. too many connections, host blocked).
      this.loginTs = this.now;
      this.loginFailed(p);
      return;
    }
    const g = decodeGreeting(this.reader.reset(b));
    if (!g && p.truncated && (b.length === 0 || b[0] === 10)) {
      // A greeting cut by a gap: the login that follows is still decodable.
      const nul = b.indexOf(0, 1);
      if (nul > 1) this.greetingVersion = text(b.subarray(1, nul), 'utf-8');
      this.phase = Phase.Login;
      return;
    }
    if (!g) {
      this.stats.malformed++;
      // Not a greeting: the capture missed it; carry on in command phase.
      this.phase = Phase.Command;
      this.midSession = true;
      return;
    }
    this.greeting = g;
    this.loginBytesOut += p.wireBytes;
    this.product = /mariadb/i.test(g.serverVersion) ? 'mariadb' : undefined;
    this.authPlugin = g.authPlugin || undefined;
    this.phase = Phase.Login;
  }

  private onAuthResponse(p: MysqlPacket, requestLost = false): void {
    const b = p.payload;
    this.loginBytesOut += p.wireBytes;
    switch (b[0]) {
      case 0x00: {
        const ok = decodeOk(this.reader.reset(b), this.caps);
        if (ok?.schema !== undefined) this.database = ok.schema || undefined;
        this.loggedIn = true;
        const ev = this.loginEvent();
        ev.status = 'ok';
        if (ok?.warnings) ev.warnings = ok.warnings;
        if (requestLost) ev.truncated = true;
        this.emit(ev);
        this.phase = Phase.Command;
        this.loginBytesIn = 0;
        this.loginBytesOut = 0;
        if (this.compressionNegotiated()) {
          // Compression starts right after the OK that ends authentication.
          this.client.enableCompression();
          this.server.enableCompression();
        } else if (this.clientCaps & Cap.ZstdCompression) {
          // zstd compression cannot be decoded here: stop cleanly.
          this.phase = Phase.Closed;
        }
        return;
      }
      case 0xff:
        this.loginFailed(p, true);
        return;
      case 0xfe: {
        // AuthSwitchRequest: u8 0xfe | cstring plugin | data
        const r = this.reader.reset(b, 1);
        if (r.remaining > 0) {
          const plugin = r.cstringUtf8();
          if (plugin) this.authPlugin = plugin;
        } else {
          this.authPlugin = 'mysql_old_password';
        }
        return;
      }
      default:
        // AuthMoreData (0x01), e.g. caching_sha2_password fast-auth result or public key.
        return;
    }
  }

  private compressionNegotiated(): boolean {
    return (this.clientCaps & (this.greeting?.capabilities ?? 0xffffffff) & Cap.Compress) !== 0;
  }

  /** The client went on to send commands although the end of authentication was not seen. */
  private endAuthImplicitly(): void {
    const ev = this.loginEvent();
    ev.status = 'ok';
    ev.truncated = true;
    this.loggedIn = true;
    this.emit(ev);
    this.phase = Phase.Command;
  }

  /** The server refused the login; `counted` when the ERR's bytes are already in the login's bytes out. */
  private loginFailed(p: MysqlPacket, counted = false): void {
    const e = decodeErr(this.reader.reset(p.payload));
    if (!counted) this.loginBytesOut += p.wireBytes;
    const ev = this.loginEvent();
    ev.status = 'error';
    if (e) this.applyErr(ev, e);
    this.emit(ev);
    this.phase = Phase.Closed;
  }

  private onResponse(head: Pending, p: MysqlPacket): void {
    const b = p.payload;
    const len = b.length;
    const f = len > 0 ? b[0]! : -1;
    const r = this.reader;
    switch (head.state) {
      case RState.First: {
        if (f === 0xff) {
          const e = decodeErr(r.reset(b));
          if (!e) return this.malformed(head);
          if (e.code === 0xffff) return; // MariaDB progress report
          head.err = e;
          return this.finish(head, 'error');
        }
        if (head.cmd === Command.Statistics) {
          head.message = text(b, 'utf-8');
          return this.finish(head, 'ok');
        }
        if (head.cmd === Command.ChangeUser && f !== 0x00) {
          head.state = RState.Auth;
          return this.onResponse(head, p);
        }
        if (head.cmd === Command.StmtPrepare && f === 0x00 && len >= 9) {
          const ok = decodePrepareOk(r.reset(b));
          if (!ok) return this.malformed(head);
          head.statementId = ok.statementId;
          head.prepParams = ok.params;
          head.prepCols = ok.columns;
          if (ok.warnings) head.warnings = ok.warnings;
          this.remember(head, ok.statementId, ok.params);
          head.colsLeft = ok.params;
          head.state = RState.PrepParams;
          return this.afterPrepDefs(head);
        }
        if (f === 0x00 || (f === 0xfe && len >= 7)) {
          const ok = decodeOk(r.reset(b), this.caps);
          if (!ok) return this.malformed(head);
          return this.applyOk(head, ok);
        }
        if (f === 0xfe) {
          // EOF as the whole response (COM_SET_OPTION, COM_DEBUG, COM_SHUTDOWN)
          const eof = decodeEof(r.reset(b));
          if (eof.warnings) head.warnings = (head.warnings ?? 0) + eof.warnings;
          return this.finish(head, 'ok');
        }
        if (head.cmd === Command.FieldList) {
          head.state = RState.FieldList;
          return this.onResponse(head, p);
        }
        if (head.cmd === Command.BinlogDump || head.cmd === Command.BinlogDumpGtid || head.cmd === Command.Clone || head.cmd === Command.RegisterSlave) {
          head.state = RState.Stream;
          return;
        }
        if (f === 0xfb && head.cmd === Command.Query) {
          // LOCAL INFILE request: u8 0xfb | file name
          (head.attributes ??= {}).localInfile = text(b.subarray(1), this.charset);
          head.state = RState.Infile;
          return;
        }
        // Result set: lenenc column_count [| u8 metadata_follows]
        r.reset(b);
        const n = r.lenencInt();
        if (n === null || !r.ok || n === 0) return this.malformed(head);
        let meta = true;
        if (this.caps & Cap.OptionalResultsetMetadata || (this.mariaCaps & MariaCap.CacheMetadata && head.binary)) meta = r.remaining > 0 ? r.u8() !== 0 : true;
        head.resultSets++;
        head.rowsReturned ??= 0;
        if (head.resultSets === 1) head.columns = [];
        head.colsLeft = meta ? n : 0;
        if (head.binary && head.resultSets === 1) head.colDefs = [];
        if (!meta && head.binary && head.statementId !== undefined) head.colDefs = this.statements.get(head.statementId)?.columns;
        head.state = meta ? RState.Columns : this.deprecateEof ? RState.Rows : RState.ColumnsEof;
        return;
      }
      case RState.Columns: {
        if (f === 0xff) return this.errorIn(head, b);
        const wantDefs = head.resultSets === 1 && (head.binary || this.ctx.options.maxRows > 0);
        if (wantDefs) {
          const def = decodeColumnDef(r.reset(b), this.mariaCaps);
          if (!def) this.stats.malformed++;
          else {
            noteTable(head, def.schema, def.orgTable);
            if (head.columns && head.columns.length < MAX_COLUMNS) head.columns.push(def.name);
            if (head.colDefs) {
              // Binary rows need every definition: beyond the bound they are not decoded.
              if (head.colDefs.length < MAX_COLUMNS) head.colDefs.push(def);
              else head.colDefs = undefined;
            }
          }
        } else if (head.resultSets === 1) {
          const ref = decodeColumnRef(r.reset(b));
          if (ref === undefined) this.stats.malformed++;
          else {
            noteTable(head, ref.schema, ref.orgTable);
            if (head.columns && head.columns.length < MAX_COLUMNS) head.columns.push(ref.name);
          }
        }
        if (--head.colsLeft <= 0) {
          head.state = this.deprecateEof ? RState.Rows : RState.ColumnsEof;
          if (head.binary && head.statementId !== undefined && head.colDefs && head.resultSets === 1) {
            const st = this.statements.get(head.statementId);
            if (st) st.columns = head.colDefs;
          }
        }
        return;
      }
      case RState.ColumnsEof: {
        if (f === 0xfe && len < 9) {
          this.deprecateEof = false;
          const eof = decodeEof(r.reset(b));
          if (eof.status & Status.CursorExists) return this.finish(head, 'ok');
          head.state = RState.Rows;
          return;
        }
        // No EOF after the column definitions: CLIENT_DEPRECATE_EOF is on.
        if (this.deprecateEof === undefined && f !== 0xfe) this.deprecateEof = true;
        head.state = RState.Rows;
        return this.onResponse(head, p);
      }
      case RState.Rows: {
        if (f === 0xfe && len < 0xffffff && !p.truncated) {
          let status: number;
          if (len < 7) {
            const eof = decodeEof(r.reset(b));
            status = eof.status;
            if (eof.warnings) head.warnings = (head.warnings ?? 0) + eof.warnings;
          } else {
            const ok = decodeOk(r.reset(b), this.caps);
            if (!ok) return this.malformed(head);
            status = ok.status;
            if (ok.warnings) head.warnings = (head.warnings ?? 0) + ok.warnings;
            if (ok.schema !== undefined) head.newDatabase = ok.schema;
          }
          if (status & Status.MoreResultsExist) {
            head.state = RState.First;
            return;
          }
          return this.finish(head, 'ok');
        }
        if (f === 0xff && !(head.binary && len > 0 && b[0] === 0x00)) {
          const e = decodeErr(r.reset(b));
          if (e?.code === 0xffff) return;
          return this.errorIn(head, b);
        }
        head.rowsReturned = (head.rowsReturned ?? 0) + 1;
        const maxRows = this.ctx.options.maxRows;
        if (maxRows > 0 && head.resultSets === 1 && (head.rows?.length ?? 0) < maxRows && !p.truncated) {
          const row = head.binary && head.colDefs ? decodeBinaryRow(r.reset(b), head.colDefs, this.charset) : head.binary ? undefined : decodeTextRow(r.reset(b), head.columns?.length ?? 0, this.charset);
          if (row) (head.rows ??= []).push(row);
        }
        return;
      }
      case RState.PrepParams:
      case RState.PrepCols: {
        if (f === 0xff) return this.errorIn(head, b);
        if (head.state === RState.PrepCols) {
          const def = decodeColumnDef(r.reset(b), this.mariaCaps);
          if (def) noteTable(head, def.schema, def.orgTable);
          if (def && (head.colDefs?.length ?? 0) < MAX_COLUMNS) (head.colDefs ??= []).push(def);
        }
        head.colsLeft--;
        return this.afterPrepDefs(head);
      }
      case RState.PrepParamsEof:
      case RState.PrepColsEof: {
        const wasCols = head.state === RState.PrepColsEof;
        if (f === 0xfe && len < 9) {
          this.deprecateEof = false;
          if (wasCols) return this.finish(head, 'ok');
          head.state = RState.PrepCols;
          head.colsLeft = head.prepCols;
          return this.afterPrepDefs(head);
        }
        if (this.deprecateEof === undefined) this.deprecateEof = true;
        if (wasCols) {
          // The packet belongs to the next request.
          head.bytesOut -= p.wireBytes;
          this.finish(head, 'ok');
          const next = this.queue[0];
          if (next) {
            next.responded = true;
            next.bytesOut += p.wireBytes;
            next.endTs = this.now;
            this.onResponse(next, p);
          } else {
            this.stats.unmatchedResponses++;
          }
          return;
        }
        head.state = RState.PrepCols;
        head.colsLeft = head.prepCols;
        this.afterPrepDefs(head);
        return this.onResponse(head, p);
      }
      case RState.FieldList: {
        if (f === 0xff) return this.errorIn(head, b);
        if (f === 0xfe && len < 9) return this.finish(head, 'ok');
        const ref = decodeColumnRef(r.reset(b));
        if (ref !== undefined && (head.columns?.length ?? 0) < MAX_COLUMNS) (head.columns ??= []).push(ref.name);
        return;
      }
      case RState.Infile: {
        // The server answers only after the client's empty packet; a reply
        // here means we missed it.
        head.state = RState.First;
        return this.onResponse(head, p);
      }
      case RState.Auth: {
        if (f === 0x00) {
          const ok = decodeOk(r.reset(b), this.caps);
          if (ok?.schema !== undefined) head.newDatabase = ok.schema;
          return this.finish(head, 'ok');
        }
        if (f === 0xff) {
          const e = decodeErr(r.reset(b));
          if (e) head.err = e;
          return this.finish(head, 'error');
        }
        if (f === 0xfe && len > 1) {
          const plugin = r.reset(b, 1).cstringUtf8();
          if (plugin) head.authPlugin = plugin;
        }
        return;
      }
      case RState.Stream: {
        if (f === 0xff) return this.errorIn(head, b);
        if (f === 0xfe && len < 9) return this.finish(head, 'ok');
        return;
      }
      default:
        this.stats.unmatchedResponses++;
    }
  }

  private afterPrepDefs(head: Pending): void {
    if (head.colsLeft > 0) return;
    if (head.state === RState.PrepParams) {
      if (head.prepParams > 0 && !this.deprecateEof) {
        head.state = RState.PrepParamsEof;
        return;
      }
      head.state = RState.PrepCols;
      head.colsLeft = head.prepCols;
      if (head.colsLeft > 0) return;
    }
    // PrepCols done
    if (head.prepCols > 0 && this.deprecateEof !== true) {
      head.state = RState.PrepColsEof;
      return;
    }
    if (head.statementId !== undefined && head.colDefs) {
      const st = this.statements.get(head.statementId);
      if (st) st.columns = head.colDefs;
    }
    this.finish(head, 'ok');
  }

  private errorIn(head: Pending, b: Uint8Array): void {
    const e = decodeErr(this.reader.reset(b));
    if (!e) return this.malformed(head);
    head.err = e;
    this.finish(head, 'error');
  }

  private malformed(head: Pending): void {
    this.stats.malformed++;
    head.truncated = true;
    this.finish(head, 'unknown');
  }

  private applyOk(head: Pending, ok: OkPacket): void {
    head.affectedRows = (head.affectedRows ?? 0) + ok.affectedRows;
    if (ok.lastInsertId) head.lastInsertId = ok.lastInsertId;
    if (ok.warnings) head.warnings = (head.warnings ?? 0) + ok.warnings;
    if (ok.info && head.message === undefined) head.message = ok.info;
    if (ok.schema !== undefined) head.newDatabase = ok.schema;
    const cs = ok.systemVariables?.character_set_client;
    if (cs !== undefined && isKnownCharset(cs)) head.newCharset = cs;
    if (ok.systemVariables) for (const k of Object.keys(ok.systemVariables)) setName((head.sysvars ??= {}), k, ok.systemVariables[k]!);
    if (ok.status & Status.MoreResultsExist) {
      head.state = RState.First;
      return;
    }
    this.finish(head, 'ok');
  }

  private remember(head: Pending, id: number, params: number): void {
    if (this.statements.size >= MAX_STATEMENTS) {
      const first = this.statements.keys().next().value;
      if (first !== undefined) this.statements.delete(first);
    }
    this.statements.set(id, { sql: head.sql ?? '', params });
    this.lastPrepared = id;
  }

  // ---- client packets -------------------------------------------------------

  private onClientPacket(p: MysqlPacket): void {
    this.stats.messages++;
    switch (this.phase) {
      case Phase.Greeting:
        // The greeting was not captured. A login (seq 1) or a command (seq 0) tells which phase we are in.
        if (p.seq === 1 && p.payload.length >= 4) {
          this.midSession = true;
          this.onLogin(p);
          return;
        }
        this.phase = Phase.Command;
        this.midSession = true;
        break;
      case Phase.Login:
        if (p.seq !== 0) {
          this.onLogin(p);
          return;
        }
        // A command: the login was lost in a gap.
        this.phase = Phase.Command;
        this.midSession = true;
        break;
      case Phase.Auth:
        if (p.seq !== 0 || commandName(p.payload[0] ?? 0xff) === undefined) {
          this.loginBytesIn += p.wireBytes;
          return;
        }
        // A command: the end of authentication was lost in a gap.
        this.endAuthImplicitly();
        break;
      case Phase.Command:
        break;
      default:
        return;
    }
    if (p.seq !== 0) {
      const head = this.queue[this.queue.length - 1];
      if (head && (head.state === RState.Infile || head.state === RState.Auth)) {
        head.bytesIn += p.wireBytes;
        if (head.state === RState.Infile) head.infileBytes = (head.infileBytes ?? 0) + p.payload.length;
        if (head.state === RState.Infile && p.payload.length === 0) head.state = RState.First;
        return;
      }
      this.stats.skippedBytes += p.wireBytes;
      return;
    }
    this.onCommand(p);
  }

  private onLogin(p: MysqlPacket): void {
    this.loginTs = this.now;
    this.loginBytesIn += p.wireBytes;
    const b = p.payload;
    if (b.length >= 4) this.clientCaps = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    const req = decodeLoginRequest(this.reader.reset(b));
    if (!req) {
      this.stats.malformed++;
      this.phase = Phase.Auth;
      return;
    }
    this.login = req;
    const serverCaps = this.greeting?.capabilities ?? 0xffffffff;
    this.caps = (req.capabilities & serverCaps) >>> 0;
    this.mariaCaps = req.mariaCapabilities & (this.greeting?.mariaCapabilities ?? 0xffffffff);
    this.deprecateEof = (this.caps & Cap.DeprecateEof) !== 0;
    this.charset = this.ctx.options.charset ?? charsetOfCollation(req.charset);
    if (req.sslRequest) {
      this.tls = true;
      const ev = this.loginEvent();
      ev.status = 'unknown';
      ev.message = 'TLS requested: the session is encrypted';
      this.emit(ev);
      this.phase = Phase.Encrypted;
      return;
    }
    this.tls = false;
    this.user = req.user;
    this.database = req.database || undefined;
    if (req.authPlugin) this.authPlugin = req.authPlugin;
    const a = req.attributes;
    if (a) {
      this.clientProgram = a.program_name;
      const lib = [a._client_name, a._client_version].filter((x) => x !== undefined).join(' ');
      this.clientLibrary = lib || undefined;
      this.osUser = a._os_user;
      this.clientPid = a._pid;
      this.clientHost = a._client_host ?? a._host;
    }
    this.phase = Phase.Auth;
  }

  private onCommand(p: MysqlPacket): void {
    const b = p.payload;
    if (b.length === 0) {
      this.stats.malformed++;
      return;
    }
    const cmd = b[0]!;
    const name = commandName(cmd);
    if (name === undefined) {
      this.stats.malformed++;
      this.client.plain.desync();
      return;
    }
    // A request whose response began but cannot be completed (the server
    // stream lost sync) ends here.
    if (!this.server.synced) {
      // The server stream lost sync: responses still owed are lost with it.
      while (this.queue.length > 0) {
        const q = this.queue[0]!;
        if (q.state !== RState.Done) {
          q.truncated = true;
          this.stats.unmatchedRequests++;
        }
        this.finish(q, q.state === RState.Done ? q.status : 'unknown');
      }
    }
    const head = this.queue[0];
    if (head && head.responded && head.truncated && head.state !== RState.Done) this.finish(head, 'unknown');
    const last = this.queue[this.queue.length - 1];
    if (last && last.state === RState.PrepColsEof && this.deprecateEof !== false) this.finish(last, 'ok');
    if (this.queue.length >= MAX_PENDING) {
      this.stats.unmatchedRequests++;
      this.finish(this.queue[0]!, 'unknown');
    }
    const req: Pending = {
      cmd,
      ts: this.now,
      endTs: this.now,
      state: RState.First,
      responded: false,
      bytesIn: p.wireBytes,
      bytesOut: 0,
      truncated: p.truncated,
      gapBefore: this.pendingGap,
      status: 'unknown',
      user: this.user,
      database: this.database,
      colsLeft: 0,
      resultSets: 0,
      binary: cmd === Command.StmtExecute || cmd === Command.StmtFetch || cmd === Command.StmtBulkExecute,
      prepParams: 0,
      prepCols: 0,
    };
    this.pendingGap = false;
    this.decodeRequest(req, b);
    if (noResponse(cmd)) {
      req.state = RState.Done;
      req.status = 'ok';
      if (this.queue.length === 0) this.emitRequest(req);
      else this.queue.push(req);
      return;
    }
    if (cmd === Command.StmtFetch) {
      req.state = RState.Rows;
      req.resultSets = 1;
      req.rowsReturned = 0;
      if (req.statementId !== undefined) req.colDefs = this.statements.get(req.statementId)?.columns;
    }
    this.queue.push(req);
  }

  private decodeRequest(req: Pending, b: Uint8Array): void {
    const r = this.reader.reset(b, 1);
    const cs = this.charset;
    switch (req.cmd) {
      case Command.Query:
      case Command.StmtPrepare: {
        const q = req.cmd === Command.Query ? decodeQuery(r, this.caps, cs) : { sql: r.rest() };
        if (!q) {
          this.stats.malformed++;
          req.sql = text(b.subarray(1), cs);
          break;
        }
        req.sql = text(q.sql, cs);
        if ('attributes' in q && q.attributes) req.attributes = q.attributes;
        this.inspectSql(req);
        break;
      }
      case Command.InitDb:
        req.newDatabase = text(r.rest(), cs);
        req.database = req.newDatabase;
        break;
      case Command.CreateDb:
      case Command.DropDb:
        req.attributes = { schema: text(r.rest(), cs) };
        break;
      case Command.FieldList: {
        const table = text(r.cstring(), cs);
        req.attributes = { table };
        if (r.remaining > 0) req.attributes.wildcard = text(r.rest(), cs);
        break;
      }
      case Command.ProcessKill:
        req.attributes = { connectionId: String(r.u32le()) };
        break;
      case Command.SetOption:
        req.attributes = { option: r.u16le() === 0 ? 'MYSQL_OPTION_MULTI_STATEMENTS_ON' : 'MYSQL_OPTION_MULTI_STATEMENTS_OFF' };
        break;
      case Command.Refresh:
        req.attributes = { flags: String(r.u8()) };
        break;
      case Command.ChangeUser: {
        const cu = decodeChangeUser(r, this.caps);
        if (!cu) {
          this.stats.malformed++;
          break;
        }
        req.changeUser = cu;
        req.user = cu.user;
        req.database = cu.database;
        break;
      }
      case Command.StmtExecute:
      case Command.StmtBulkExecute:
      case Command.StmtClose:
      case Command.StmtReset:
      case Command.StmtFetch:
      case Command.StmtSendLongData: {
        let id = r.u32le();
        if (id === 0xffffffff && this.lastPrepared >= 0) id = this.lastPrepared; // MariaDB: the statement just prepared
        req.statementId = id;
        const st = this.statements.get(id);
        if (st) req.sql = st.sql;
        if (req.cmd === Command.StmtExecute) this.decodeExecuteParams(req, b, st);
        else if (req.cmd === Command.StmtSendLongData) {
          const param = r.u16le();
          const data = r.rest();
          if (st) {
            const ld = (st.longData ??= new Map());
            const prev = ld.get(param);
            const chunk = text(data, cs);
            const joined = (typeof prev === 'string' ? prev : '') + chunk;
            ld.set(param, joined.length > this.ctx.options.maxSqlLength ? joined.slice(0, this.ctx.options.maxSqlLength) : joined);
          }
          req.attributes = { param: String(param), bytes: String(data.length) };
        } else if (req.cmd === Command.StmtClose) {
          this.statements.delete(id);
        } else if (req.cmd === Command.StmtReset) {
          if (st) st.longData = undefined;
        } else if (req.cmd === Command.StmtFetch) {
          req.attributes = { rows: String(r.u32le()) };
        }
        break;
      }
      default:
        break;
    }
    if (!r.ok) {
      this.stats.malformed++;
      req.truncated = true;
    }
  }

  private decodeExecuteParams(req: Pending, b: Uint8Array, st: PreparedStatement | undefined): void {
    const r = this.reader.reset(b, 1);
    const ex = decodeExecute(r, st?.params, st?.types, this.caps, this.charset, st?.longData);
    if (!ex) {
      this.stats.malformed++;
      req.truncated = true;
      return;
    }
    req.params = ex.params;
    if (ex.attributes) req.attributes = ex.attributes;
    if (ex.incomplete) req.truncated = true;
    if (st) {
      st.types = ex.types;
      st.longData = undefined;
    }
    if (ex.flags & 0x07) (req.attributes ??= {}).cursor = String(ex.flags & 0x07);
  }

  private inspectSql(req: Pending): void {
    const sql = req.sql!;
    let i = 0;
    while (i < sql.length && sql.charCodeAt(i) <= 0x20) i++;
    const c = sql.charCodeAt(i) | 0x20;
    if (c === 0x75 /* u */) {
      const m = /^use\s+(?:`([^`]+)`|([^\s;]+))/i.exec(sql.slice(i, i + 300));
      if (m) req.newDatabase = m[1] ?? m[2];
    } else if (c === 0x73 /* s */) {
      const m = /^set\s+(?:names|character\s+set|charset)\s+['"`]?([\w-]+)/i.exec(sql.slice(i, i + 100));
      if (m && m[1]!.toLowerCase() !== 'default' && normalizeCharset(m[1]!) !== undefined) req.newCharset = m[1]!.toLowerCase();
    }
    const max = this.ctx.options.maxSqlLength;
    if (sql.length > max) {
      req.sql = sql.slice(0, max);
      req.truncated = true;
    }
  }

  // ---- records ---------------------------------------------------------------

  private finish(req: Pending, status: EventStatus): void {
    req.state = RState.Done;
    req.status = status;
    const i = this.queue.indexOf(req);
    if (i < 0) return;
    if (i > 0) return; // completes when the requests before it do
    while (this.queue.length > 0 && this.queue[0]!.state === RState.Done) this.emitRequest(this.queue.shift()!);
  }

  private emitRequest(req: Pending): void {
    if (req.status === 'ok') this.applySideEffects(req);
    if (req.cmd === Command.Quit) {
      this.quitSeen = true;
      const ev = this.base('logout', req.ts);
      ev.command = 'COM_QUIT';
      ev.status = 'ok';
      ev.bytesIn = req.bytesIn;
      if (req.gapBefore) ev.gapBefore = true;
      this.emit(ev);
      return;
    }
    const kind = req.cmd === Command.ChangeUser ? 'login' : 'statement';
    const ev = this.base(kind, req.ts);
    if (req.user !== undefined) ev.user = req.user;
    else delete ev.user;
    if (req.database !== undefined) ev.database = req.database;
    else delete ev.database;
    ev.command = commandName(req.cmd)!;
    if (req.sql !== undefined) ev.sql = req.sql;
    if (req.params !== undefined) ev.params = req.params;
    if (req.statementId !== undefined) ev.statementId = String(req.statementId);
    if (req.attributes !== undefined) ev.attributes = req.attributes;
    if (req.changeUser) {
      const a: Record<string, string> = { ...(req.changeUser.attributes ?? {}) };
      const plugin = req.authPlugin ?? req.changeUser.authPlugin;
      if (plugin) a.authPlugin = plugin;
      if (Object.keys(a).length > 0) ev.attributes = a;
    }
    ev.status = req.status;
    if (req.responded || req.status !== 'unknown') {
      if (!noResponse(req.cmd)) {
        ev.endTs = req.endTs;
        ev.durationUs = Math.max(0, Math.round(req.endTs - req.ts));
      }
    }
    if (req.err) this.applyErr(ev, req.err);
    if (req.affectedRows !== undefined) ev.affectedRows = req.affectedRows;
    if (req.lastInsertId !== undefined) ev.lastInsertId = req.lastInsertId;
    if (req.warnings !== undefined) ev.warnings = req.warnings;
    if (req.rowsReturned !== undefined) ev.rowsReturned = req.rowsReturned;
    if (req.message !== undefined && ev.message === undefined) ev.message = req.message;
    if (req.columns !== undefined && req.columns.length > 0) ev.columns = req.columns;
    if (req.rows !== undefined) ev.rows = req.rows;
    if (req.tables !== undefined) (ev.attributes ??= {}).resultTables = req.tables.join(',');
    if (req.infileBytes !== undefined) (ev.attributes ??= {}).localInfileBytes = String(req.infileBytes);
    if (req.sysvars !== undefined) for (const k of Object.keys(req.sysvars)) setName((ev.attributes ??= {}), `sysvar.${k}`, req.sysvars[k]!);
    ev.bytesIn = req.bytesIn;
    ev.bytesOut = req.bytesOut;
    if (req.truncated) ev.truncated = true;
    if (req.gapBefore) ev.gapBefore = true;
    this.emit(ev);
  }

  private applySideEffects(req: Pending): void {
    if (req.newDatabase !== undefined) this.database = req.newDatabase || undefined;
    if (req.newCharset !== undefined) this.charset = this.ctx.options.charset ?? normalizeCharset(req.newCharset) === 'utf-8' ? 'utf-8' : req.newCharset;
    switch (req.cmd) {
      case Command.ChangeUser:
        if (req.changeUser) {
          this.user = req.changeUser.user;
          this.database = req.newDatabase ?? req.changeUser.database;
          if (req.changeUser.charset !== undefined) this.charset = this.ctx.options.charset ?? charsetOfCollation(req.changeUser.charset);
        }
        this.statements.clear();
        break;
      case Command.ResetConnection:
        this.statements.clear();
        break;
      case Command.StmtPrepare:
        break;
      default:
    }
  }

  private applyErr(ev: AuditEvent, e: ErrPacket): void {
    ev.errorCode = e.code;
    if (e.sqlState !== undefined) ev.sqlState = e.sqlState;
    ev.message = e.message;
  }

  private loginEvent(): AuditEvent {
    const ev = this.base('login', this.loginTs || this.now);
    ev.endTs = this.now;
    ev.durationUs = Math.max(0, Math.round(this.now - ev.ts));
    ev.bytesIn = this.loginBytesIn;
    ev.bytesOut = this.loginBytesOut;
    const attrs: Record<string, string> = {};
    const a = this.login?.attributes;
    if (a) {
      for (const k of Object.keys(a)) {
        if (k === 'program_name' || k === '_client_name' || k === '_client_version' || k === '_os_user' || k === '_pid') continue;
        setName(attrs, k, a[k]!);
      }
    }
    if (this.authPlugin) attrs.authPlugin = this.authPlugin;
    if (this.login) attrs.clientCharset = this.charset;
    if (this.login && this.login.capabilities & Cap.Compress) attrs.compression = 'zlib';
    if (Object.keys(attrs).length > 0) ev.attributes = attrs;
    if (this.pendingGap) {
      ev.gapBefore = true;
      this.pendingGap = false;
    }
    return ev;
  }

  private base(kind: AuditEvent['kind'], ts: Timestamp): AuditEvent {
    const ctx = this.ctx;
    const ev: AuditEvent = { id: '', kind, flowId: ctx.flowId, ts, client: ctx.client, server: ctx.server, dbType: 'mysql', status: 'unknown' };
    if (this.product !== undefined) ev.dbProduct = this.product;
    if (this.greeting) {
      ev.serverVersion = this.greeting.serverVersion;
      ev.sessionId = String(this.greeting.connectionId);
    } else if (this.greetingVersion !== undefined) {
      ev.serverVersion = this.greetingVersion;
    }
    if (this.user !== undefined) ev.user = this.user;
    if (this.database !== undefined) ev.database = this.database;
    if (this.clientProgram !== undefined) ev.clientProgram = this.clientProgram;
    if (this.clientLibrary !== undefined) ev.clientLibrary = this.clientLibrary;
    if (this.clientHost !== undefined) ev.clientHost = this.clientHost;
    if (this.osUser !== undefined) ev.osUser = this.osUser;
    if (this.clientPid !== undefined) ev.clientPid = this.clientPid;
    if (this.tls !== undefined) ev.tls = this.tls;
    if (this.midSession) ev.midSession = true;
    return ev;
  }

  private emit(ev: AuditEvent): void {
    ev.id = `${this.ctx.flowId}:${++this.nextId}`;
    this.stats.events++;
    this.ctx.emit(ev);
  }
}

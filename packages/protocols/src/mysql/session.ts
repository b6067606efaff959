// The command phase of a MySQL session: command / response pairing and the
// audit records (the connection phase is login.ts, the decoding of each
// command into its request commands.ts). Requests are queued in order (MariaDB connectors pipeline
// PREPARE + EXECUTE); each server packet belongs to the oldest request that
// still waits for its response, and the request's response state decides
// what the packet means:
//
//   COM_QUERY -> OK | ERR | LOCAL INFILE request | column count, column defs, [EOF], rows, EOF/OK
//                (SERVER_MORE_RESULTS_EXISTS: the next result follows)
//   COM_STMT_PREPARE -> PREPARE_OK, param defs, [EOF], column defs, [EOF] | ERR
//   COM_STMT_EXECUTE / COM_STMT_FETCH -> like COM_QUERY, with binary rows
//   COM_CHANGE_USER -> the authentication exchange again
import { type CloseReason, type Direction, type EventStatus, isKnownCharset } from '@dbtap/core';
import { FifoPairing, SESSION_STATE_VERSION, isSessionSnapshot, pickCharset, sameBytes, type SessionSnapshot } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { believableCommand, decodeColumnCount, decodeColumnDef, decodeColumnRef, decodeErr, decodeOk, decodePrepareOk, eofStatus, eofWarnings, plausibleCommand, plausibleGreeting, plausibleResponsePacket } from './decoder.js';
import { MysqlCommands, RState, noResponse, Request, type PreparedStatement } from './commands.js';
import type { MysqlPacket } from './framer.js';
import { Phase } from './login.js';
import type { LoginRequest } from './messages.js';
import { Cap, Command, MariaCap, Resp, Status, type ColumnDef, type OkPacket, commandName } from './messages.js';
import { charsetOfCollation, decodeBinaryRow, decodeTextRow, setName, text } from './values.js';

/** Requests in flight (a client may pipeline; one that never gets answers must not grow the queue). */
const MAX_PENDING = 256;
/** Column names and definitions kept per result (MySQL and MariaDB allow 4096 columns in a table). */
const MAX_COLUMNS = 4096;
/** Tables named in `attributes.resultTables` per record. */
const MAX_TABLES = 32;

/** Column positions whose recent definition packets are remembered (see {@link KnownColumn}). */
const KNOWN_COLUMNS = 64;
/** Definitions remembered per position: statements of a workload interleave, each describing its own columns. */
const KNOWN_WAYS = 4;

/** `schema.table` of a column's origin, or '' for a computed column. */
function tableName(schema: string, table: string): string {
  return table === '' ? '' : schema === '' ? table : `${schema}.${table}`;
}

/** Remembers the table a result column comes from (`name` from {@link tableName}; computed columns have none). */
function noteTable(head: Request, name: string): void {
  if (name === '' || head.resultSets > 1) return;
  const list = (head.tables ??= []);
  if (list.length < MAX_TABLES && !list.includes(name)) list.push(name);
}

/** The protocol part of a MySQL session snapshot. */
interface MysqlState {
  caps: number;
  mariaCaps: number;
  deprecateEof: boolean | undefined;
  charset: string;
  login: LoginRequest | undefined;
  statements: Array<[number, PreparedStatement]>;
  lastPrepared: number;
  pending: Request[];
}

/**
 * A recent column definition packet seen at one position of a result, and
 * what was decoded from it. Clients run the same statements again and again,
 * and the server describes their results with the same bytes each time: a
 * packet equal to the remembered one is compared, not decoded (no views, no
 * text decoding, no table name built).
 */
interface KnownColumn {
  readonly bytes: Uint8Array;
  readonly name: string;
  readonly table: string;
  /** The full definition, when it was needed (binary rows, kept rows). */
  readonly def: ColumnDef | undefined;
}

/** The session state machine of one MySQL connection. */
export class MysqlSession extends MysqlCommands {
  private readonly queue: FifoPairing<Request>;
  /** Recent column definitions at each position of a result, most recent first (see {@link KnownColumn}). */
  private readonly knownColumns: KnownColumn[][] = [];

  constructor(ctx: SessionContext) {
    super(ctx);
    this.queue = new FifoPairing<Request>(MAX_PENDING, (r) => this.emitRequest(this.settle(r, 'unknown')));
    this.track(this.queue);
  }

  // ---- snapshot / restore (kit/session-state.ts) -------------------------------------

  /**
   * The connection's context for a later process: identity, capabilities,
   * charset, prepared statements (text, parameter types, result columns) and
   * the requests still waiting for their responses. None during the login
   * or once compressed or encrypted: such a connection resumes mid-session.
   */
  snapshot(): SessionSnapshot | undefined {
    const kit = this.kitState();
    if (kit === undefined || this.phase !== Phase.Command || this.client.compressed !== null || this.server.compressed !== null) return undefined;
    const statements: Array<[number, PreparedStatement]> = [];
    for (const id of this.statements.keys()) statements.push([id, this.statements.get(id)!]);
    const pending: Request[] = [];
    for (let i = 0; i < this.queue.length; i++) pending.push(this.queue.at(i)!);
    const data: MysqlState = { caps: this.caps, mariaCaps: this.mariaCaps, deprecateEof: this.deprecateEof, charset: this.charset, login: this.login, statements, lastPrepared: this.lastPrepared, pending };
    return { v: SESSION_STATE_VERSION, protocol: 'mysql', kit, data };
  }

  /** Continues from a {@link MysqlSession.snapshot}; false (nothing changed) for anything else. */
  restore(snapshot: SessionSnapshot): boolean {
    if (!isSessionSnapshot(snapshot, 'mysql')) return false;
    const d = snapshot.data as Partial<MysqlState> | null;
    if (d === null || typeof d !== 'object' || typeof d.caps !== 'number' || typeof d.mariaCaps !== 'number' || typeof d.charset !== 'string' || !Array.isArray(d.statements) || !Array.isArray(d.pending)) return false;
    this.restoreKit(snapshot.kit);
    this.caps = d.caps;
    this.mariaCaps = d.mariaCaps;
    this.deprecateEof = typeof d.deprecateEof === 'boolean' ? d.deprecateEof : undefined;
    // the audit object's charset, when one is configured now, still wins
    this.charset = pickCharset(this.ctx.options.charset, d.charset);
    if (d.login !== null && typeof d.login === 'object') this.login = d.login;
    for (const e of d.statements) if (Array.isArray(e) && typeof e[0] === 'number' && e[1] !== null && typeof e[1] === 'object' && typeof e[1].sql === 'string') this.statements.set(e[0], e[1]);
    this.lastPrepared = typeof d.lastPrepared === 'number' ? d.lastPrepared : -1;
    for (const r of d.pending) if (r !== null && typeof r === 'object' && typeof r.cmd === 'number' && typeof r.ts === 'number') this.queue.push(r);
    this.phase = Phase.Command;
    return true;
  }

  // ---- KitSession hooks -------------------------------------------------------------

  protected override onGap(dir: Direction, nbytes: number): void {
    if (this.phase === Phase.Closed) return;
    const head = this.queue.head();
    if (dir === 1 && head) {
      head.truncated = true;
      head.gapBefore = true;
    } else {
      this.pendingGap = true;
    }
    const ch = dir === 0 ? this.client : this.server;
    if (!ch.gap(nbytes) && dir === 1 && head && this.phase === Phase.Command && head.state === RState.First && head.responded) {
      // The response started but its remainder is lost: do not let its tail
      // be read as the next request's response.
      this.finish(head, 'unknown');
    }
  }

  protected override onClose(reason: CloseReason): void {
    this.flushQueue(false);
    // A capture that started mid-session saw the login only implicitly.
    if (this.records.midSession && this.records.emitted > 0) this.loggedIn = true;
    const ev = this.logoutOnClose(reason);
    if (ev) {
      ev.message = `connection closed (${reason}) without COM_QUIT`;
      this.records.emit(ev);
    }
    this.phase = Phase.Closed;
  }

  /** Ends every request in flight; those still owed a response are counted unmatched (and truncated when `lost`, or when their response began). */
  private flushQueue(lost: boolean): void {
    for (let q = this.queue.shift(); q !== undefined; q = this.queue.shift()) {
      if (q.state !== RState.Done) {
        this.stats.unmatchedRequests++;
        q.truncated = q.truncated || lost || q.responded;
        this.settle(q, 'unknown');
      }
      this.emitRequest(q);
    }
  }

  // ---- resynchronisation ------------------------------------------------------------

  protected override commandBoundary(buf: Uint8Array, p: number, end: number): boolean {
    return plausibleCommand(buf, p, end, this.ctx.options.maxMessageBytes) && believableCommand(buf, p, end, this.knownStatement);
  }

  protected override responseBoundary(buf: Uint8Array, p: number, end: number): boolean {
    const head = this.queue.head();
    if (head) return plausibleResponsePacket(buf, p, end, head.cmd, head.responded);
    if (this.records.midSession && this.records.emitted === 0 && plausibleGreeting(buf, p, end)) {
      this.greetingFoundMidStream();
      return true;
    }
    return false;
  }

  // ---- server packets ------------------------------------------------------

  protected override onServerPacket(p: MysqlPacket): void {
    this.stats.messages++;
    if (this.phase !== Phase.Command) {
      if (this.phase !== Phase.Closed) this.onLoginServerPacket(p);
      return;
    }
    const head = this.queue.head();
    if (!head) {
      this.queue.noRequest();
      return;
    }
    this.respondTo(head, p);
  }

  private respondTo(head: Request, p: MysqlPacket): void {
    head.responded = true;
    head.bytesOut += p.wireBytes;
    head.endTs = this.now;
    if (p.truncated) head.truncated = true;
    // The bulk of a result: a row that is only counted (no EOF, OK or ERR header, no rows kept).
    const f = p.payload.length > 0 ? p.payload[0]! : -1;
    if (head.state === RState.Rows && f !== Resp.Eof && f !== Resp.Err && !this.keepsRow(head)) {
      head.rowsReturned = (head.rowsReturned ?? 0) + 1;
      return;
    }
    this.onResponse(head, p);
  }

  private onResponse(head: Request, p: MysqlPacket): void {
    const b = p.payload;
    const len = b.length;
    const f = len > 0 ? b[0]! : -1;
    const r = this.reader;
    switch (head.state) {
      case RState.First:
        return this.onFirst(head, p, f);
      case RState.Columns: {
        if (f === Resp.Err) return this.errorIn(head, b);
        this.onColumn(head, b);
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
        if (f === Resp.Eof && len < 9) {
          this.deprecateEof = false;
          if (eofStatus(b) & Status.CursorExists) return this.finish(head, 'ok');
          head.state = RState.Rows;
          return;
        }
        // No EOF after the column definitions: CLIENT_DEPRECATE_EOF is on.
        if (this.deprecateEof === undefined && f !== Resp.Eof) this.deprecateEof = true;
        head.state = RState.Rows;
        return this.onResponse(head, p);
      }
      case RState.Rows:
        return this.onRow(head, p, f);
      case RState.PrepParams:
      case RState.PrepCols: {
        if (f === Resp.Err) return this.errorIn(head, b);
        if (head.state === RState.PrepCols) {
          const def = decodeColumnDef(r.reset(b), this.mariaCaps);
          if (typeof def !== 'number') {
            noteTable(head, tableName(def.schema, def.orgTable));
            if ((head.colDefs?.length ?? 0) < MAX_COLUMNS) (head.colDefs ??= []).push(def);
          }
        }
        head.colsLeft--;
        return this.afterPrepDefs(head);
      }
      case RState.PrepParamsEof:
      case RState.PrepColsEof:
        return this.onPrepEof(head, p, f);
      case RState.FieldList: {
        if (f === Resp.Err) return this.errorIn(head, b);
        if (f === Resp.Eof && len < 9) return this.finish(head, 'ok');
        const ref = decodeColumnRef(r.reset(b));
        if (typeof ref !== 'number' && (head.columns?.length ?? 0) < MAX_COLUMNS) (head.columns ??= []).push(ref.name);
        return;
      }
      case RState.Infile: {
        // The server answers only after the client's empty packet; a reply
        // here means we missed it.
        head.state = RState.First;
        return this.onResponse(head, p);
      }
      case RState.Auth:
        return this.onChangeUserAuth(head, b, f);
      case RState.Stream: {
        if (f === Resp.Err) return this.errorIn(head, b);
        if (f === Resp.Eof && len < 9) return this.finish(head, 'ok');
        return;
      }
      default:
        this.queue.noRequest();
    }
  }

  /** The first packet of a response, or of the next result of a multi-result response. */
  private onFirst(head: Request, p: MysqlPacket, f: number): void {
    const b = p.payload;
    const len = b.length;
    const r = this.reader;
    if (f === Resp.Err) {
      const e = decodeErr(r.reset(b));
      if (typeof e === 'number') return this.malformed(head);
      if (e.code === 0xffff) return; // MariaDB progress report
      head.err = e;
      return this.finish(head, 'error');
    }
    if (head.cmd === Command.Statistics) {
      head.message = text(b, 'utf-8');
      return this.finish(head, 'ok');
    }
    if (head.cmd === Command.ChangeUser && f !== Resp.Ok) {
      head.state = RState.Auth;
      return this.onResponse(head, p);
    }
    if (head.cmd === Command.StmtPrepare && f === Resp.Ok && len >= 9) {
      const ok = decodePrepareOk(r.reset(b));
      if (typeof ok === 'number') return this.malformed(head);
      head.statementId = ok.statementId;
      head.prepParams = ok.params;
      head.prepCols = ok.columns;
      if (ok.warnings) head.warnings = ok.warnings;
      this.statements.set(ok.statementId, { sql: head.sql ?? '', params: ok.params });
      this.lastPrepared = ok.statementId;
      head.colsLeft = ok.params;
      head.state = RState.PrepParams;
      return this.afterPrepDefs(head);
    }
    if (f === Resp.Ok || (f === Resp.Eof && len >= 7)) {
      const ok = decodeOk(r.reset(b), this.caps);
      if (typeof ok === 'number') return this.malformed(head);
      return this.applyOk(head, ok);
    }
    if (f === Resp.Eof) {
      // EOF as the whole response (COM_SET_OPTION, COM_DEBUG, COM_SHUTDOWN)
      this.addWarnings(head, eofWarnings(b));
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
    if (f === Resp.LocalInfile && head.cmd === Command.Query) {
      // LOCAL INFILE request: u8 0xfb | file name
      (head.attributes ??= {}).localInfile = text(b.subarray(1), this.charset);
      head.state = RState.Infile;
      return;
    }
    const optionalMeta = (this.caps & Cap.OptionalResultsetMetadata) !== 0 || ((this.mariaCaps & MariaCap.CacheMetadata) !== 0 && head.binary);
    const cc = decodeColumnCount(r.reset(b), optionalMeta);
    if (typeof cc === 'number') return this.malformed(head);
    const meta = cc.metadataFollows;
    head.resultSets++;
    head.rowsReturned ??= 0;
    if (head.resultSets === 1) head.columns = [];
    head.colsLeft = meta ? cc.count : 0;
    if (head.binary && head.resultSets === 1) head.colDefs = [];
    if (!meta && head.binary && head.statementId !== undefined) head.colDefs = this.statements.get(head.statementId)?.columns;
    head.state = meta ? RState.Columns : this.deprecateEof ? RState.Rows : RState.ColumnsEof;
  }

  /** A column definition of a result: names and tables of the first result, definitions where binary rows or kept rows need them. */
  private onColumn(head: Request, b: Uint8Array): void {
    if (head.resultSets !== 1) return;
    const needDef = head.binary || this.ctx.options.maxRows > 0;
    const at = head.columns !== undefined ? head.columns.length : KNOWN_COLUMNS;
    const ways = at < KNOWN_COLUMNS ? (this.knownColumns[at] ??= []) : undefined;
    let known: KnownColumn | undefined;
    if (ways !== undefined) {
      for (let i = 0; i < ways.length; i++) {
        const k = ways[i]!;
        if ((!needDef || k.def !== undefined) && sameBytes(b, 0, b.length, k.bytes)) {
          known = k;
          break;
        }
      }
    }
    if (known === undefined) {
      known = this.decodeColumn(b, needDef);
      if (known === undefined) {
        this.stats.malformed++;
        return;
      }
      if (ways !== undefined) {
        // Most recent first; the oldest of a full set is forgotten.
        if (ways.length === KNOWN_WAYS) ways.pop();
        ways.unshift(known);
      }
    }
    noteTable(head, known.table);
    if (head.columns && head.columns.length < MAX_COLUMNS) head.columns.push(known.name);
    if (needDef && head.colDefs) {
      // Binary rows need every definition: beyond the bound they are not decoded.
      if (head.colDefs.length < MAX_COLUMNS) head.colDefs.push(known.def!);
      else head.colDefs = undefined;
    }
  }

  /** Decodes a column definition packet (in full when `full`, else only its name and origin); undefined when malformed. */
  private decodeColumn(b: Uint8Array, full: boolean): KnownColumn | undefined {
    const r = this.reader;
    if (full) {
      const def = decodeColumnDef(r.reset(b), this.mariaCaps);
      if (typeof def === 'number') return undefined;
      return { bytes: b.slice(), name: def.name, table: tableName(def.schema, def.orgTable), def };
    }
    const ref = decodeColumnRef(r.reset(b));
    if (typeof ref === 'number') return undefined;
    return { bytes: b.slice(), name: ref.name, table: tableName(ref.schema, ref.orgTable), def: undefined };
  }

  /** A row, or the EOF / OK / ERR that ends the rows. */
  private onRow(head: Request, p: MysqlPacket, f: number): void {
    const b = p.payload;
    const len = b.length;
    const r = this.reader;
    if (f === Resp.Eof && len < 0xffffff && !p.truncated) {
      let status: number;
      if (len < 7) {
        status = eofStatus(b);
        this.addWarnings(head, eofWarnings(b));
      } else {
        const ok = decodeOk(r.reset(b), this.caps);
        if (typeof ok === 'number') return this.malformed(head);
        status = ok.status;
        this.addWarnings(head, ok.warnings);
        if (ok.schema !== undefined) head.newDatabase = ok.schema;
      }
      if (status & Status.MoreResultsExist) {
        head.state = RState.First;
        return;
      }
      return this.finish(head, 'ok');
    }
    if (f === Resp.Err && !(head.binary && len > 0 && b[0] === 0x00)) {
      const e = decodeErr(r.reset(b));
      if (typeof e !== 'number' && e.code === 0xffff) return;
      return this.errorIn(head, b);
    }
    head.rowsReturned = (head.rowsReturned ?? 0) + 1;
    if (this.keepsRow(head) && !p.truncated) {
      const row = head.binary && head.colDefs ? decodeBinaryRow(r.reset(b), head.colDefs, this.charset) : head.binary ? undefined : decodeTextRow(r.reset(b), head.columns?.length ?? 0, this.charset);
      if (row) (head.rows ??= []).push(row);
    }
  }

  /** True while rows of the request's first result are kept as text (options.maxRows). */
  private keepsRow(head: Request): boolean {
    const maxRows = this.ctx.options.maxRows;
    return maxRows > 0 && head.resultSets === 1 && (head.rows === undefined || head.rows.length < maxRows);
  }

  /** The EOF that may follow a prepared statement's parameter or column definitions. */
  private onPrepEof(head: Request, p: MysqlPacket, f: number): void {
    const wasCols = head.state === RState.PrepColsEof;
    if (f === Resp.Eof && p.payload.length < 9) {
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
      const next = this.queue.head();
      if (next) this.respondTo(next, p);
      else this.queue.noRequest();
      return;
    }
    head.state = RState.PrepCols;
    head.colsLeft = head.prepCols;
    this.afterPrepDefs(head);
    return this.onResponse(head, p);
  }

  /** COM_CHANGE_USER's authentication exchange, until OK or ERR. */
  private onChangeUserAuth(head: Request, b: Uint8Array, f: number): void {
    const r = this.reader;
    if (f === Resp.Ok) {
      const ok = decodeOk(r.reset(b), this.caps);
      if (typeof ok !== 'number' && ok.schema !== undefined) head.newDatabase = ok.schema;
      return this.finish(head, 'ok');
    }
    if (f === Resp.Err) {
      const e = decodeErr(r.reset(b));
      if (typeof e !== 'number') head.err = e;
      return this.finish(head, 'error');
    }
    if (f === Resp.Eof && b.length > 1) {
      const plugin = r.reset(b, 1).cstringUtf8();
      if (plugin) head.authPlugin = plugin;
    }
  }

  private afterPrepDefs(head: Request): void {
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

  private addWarnings(head: Request, n: number): void {
    if (n) head.warnings = (head.warnings ?? 0) + n;
  }

  private errorIn(head: Request, b: Uint8Array): void {
    const e = decodeErr(this.reader.reset(b));
    if (typeof e === 'number') return this.malformed(head);
    head.err = e;
    this.finish(head, 'error');
  }

  private malformed(head: Request): void {
    this.stats.malformed++;
    head.truncated = true;
    this.finish(head, 'unknown');
  }

  private applyOk(head: Request, ok: OkPacket): void {
    head.affectedRows = (head.affectedRows ?? 0) + ok.affectedRows;
    if (ok.lastInsertId) head.lastInsertId = ok.lastInsertId;
    this.addWarnings(head, ok.warnings);
    if (ok.info && head.message === undefined) head.message = ok.info;
    if (ok.schema !== undefined) head.newDatabase = ok.schema;
    const vars = ok.systemVariables;
    if (vars) {
      const cs = vars.character_set_client;
      if (cs !== undefined && isKnownCharset(cs)) head.newCharset = cs;
      for (const k of Object.keys(vars)) setName((head.sysvars ??= {}), k, vars[k]!);
    }
    if (ok.status & Status.MoreResultsExist) {
      head.state = RState.First;
      return;
    }
    this.finish(head, 'ok');
  }

  // ---- client packets -------------------------------------------------------

  protected override onClientPacket(p: MysqlPacket): void {
    this.stats.messages++;
    if (this.phase !== Phase.Command && this.onLoginClientPacket(p)) return;
    if (p.seq !== 0) {
      const last = this.queue.at(this.queue.length - 1);
      if (last && (last.state === RState.Infile || last.state === RState.Auth)) {
        last.bytesIn += p.wireBytes;
        if (last.state === RState.Infile) {
          last.infileBytes = (last.infileBytes ?? 0) + p.payload.length;
          if (p.payload.length === 0) last.state = RState.First;
        }
        return;
      }
      this.stats.skippedBytes += p.wireBytes;
      return;
    }
    this.onCommand(p);
  }

  private onCommand(p: MysqlPacket): void {
    const b = p.payload;
    if (b.length === 0) {
      this.stats.malformed++;
      return;
    }
    const cmd = b[0]!;
    if (commandName(cmd) === undefined) {
      this.stats.malformed++;
      this.client.plain.desync();
      return;
    }
    // The server stream lost sync: responses still owed are lost with it.
    if (!this.server.synced) this.flushQueue(true);
    // A request whose response began but cannot be completed ends here.
    const head = this.queue.head();
    if (head && head.responded && head.truncated && head.state !== RState.Done) this.finish(head, 'unknown');
    const last = this.queue.at(this.queue.length - 1);
    if (last && last.state === RState.PrepColsEof && this.deprecateEof !== false) this.finish(last, 'ok');
    const who = this.records.who;
    const req = new Request(cmd, this.now, p.wireBytes, p.truncated, this.pendingGap, who.user, who.database);
    this.pendingGap = false;
    this.decodeRequest(req, b);
    if (noResponse(cmd)) {
      this.settle(req, 'ok');
      if (this.queue.length === 0) this.emitRequest(req);
      else this.enqueue(req);
      return;
    }
    if (cmd === Command.StmtFetch) {
      req.state = RState.Rows;
      req.resultSets = 1;
      req.rowsReturned = 0;
      if (req.statementId !== undefined) req.colDefs = this.statements.get(req.statementId)?.columns;
    }
    this.enqueue(req);
  }

  /** Queues a request; one evicted to stay within the bound is recorded, and so are the finished ones behind it. */
  private enqueue(req: Request): void {
    this.queue.push(req);
    this.drain();
  }

  // ---- records ---------------------------------------------------------------

  private settle(req: Request, status: EventStatus): Request {
    req.state = RState.Done;
    req.status = status;
    return req;
  }

  /** The request is answered; it is recorded once every request before it is. */
  private finish(req: Request, status: EventStatus): void {
    this.settle(req, status);
    if (this.queue.head() === req) this.drain();
  }

  /** Records the finished requests at the head of the queue. */
  private drain(): void {
    for (let h = this.queue.head(); h !== undefined && h.state === RState.Done; h = this.queue.head()) {
      this.queue.shift();
      this.emitRequest(h);
    }
  }

  private emitRequest(req: Request): void {
    if (req.status === 'ok') this.applySideEffects(req);
    const records = this.records;
    if (req.cmd === Command.Quit) {
      this.loggedOut = true;
      const ev = records.start('logout', req.ts);
      ev.command = 'COM_QUIT';
      ev.status = 'ok';
      ev.bytesIn = req.bytesIn;
      if (req.gapBefore) ev.gapBefore = true;
      records.emit(ev);
      return;
    }
    const ev = records.start(req.cmd === Command.ChangeUser ? 'login' : 'statement', req.ts);
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
    if ((req.responded || req.status !== 'unknown') && !noResponse(req.cmd)) records.end(ev, req.endTs);
    if (req.err) records.error(ev, req.err);
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
    records.emit(ev);
  }

  /** What a successful command changes for the commands after it. */
  private applySideEffects(req: Request): void {
    const who = this.records.who;
    const objectCharset = this.ctx.options.charset;
    if (req.newDatabase !== undefined) who.database = req.newDatabase || undefined;
    // The audit object's charset outranks SET NAMES (regression: it used to be lost after the first one).
    if (req.newCharset !== undefined) this.charset = pickCharset(objectCharset, req.newCharset);
    if (req.cmd === Command.ChangeUser) {
      if (req.changeUser) {
        who.user = req.changeUser.user;
        who.database = req.newDatabase ?? req.changeUser.database;
        if (req.changeUser.charset !== undefined) this.charset = pickCharset(objectCharset, charsetOfCollation(req.changeUser.charset));
      }
      this.statements.clear();
    } else if (req.cmd === Command.ResetConnection) {
      this.statements.clear();
    }
  }
}


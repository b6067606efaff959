// The client's commands in the command phase: the bytes of each COM_* become
// a pending request (SQL text, bound parameters, attributes, the changes it
// asks for), and the prepared statements the statement commands name are
// remembered here (bounded).
//
//   COM_QUERY         u8 0x03 | [query attributes] | sql
//   COM_STMT_PREPARE  u8 0x16 | sql                      -> statement id (in the response)
//   COM_STMT_EXECUTE  u8 0x17 | u32 statement id | flags | iterations | parameters
//   COM_STMT_SEND_LONG_DATA, _CLOSE, _RESET, _FETCH: u8 | u32 statement id | ...
import { type EventStatus, type ParamValue, type Timestamp, normalizeCharset } from '@dbtap/core';
import { BoundedMap, type Pending } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { decodeChangeUser, decodeExecute, decodeQuery } from './decoder.js';
import { MysqlLogin } from './login.js';
import { Command, type ChangeUser, type ColumnDef, type ErrPacket } from './messages.js';
import { text } from './values.js';

/** Response states of a pending request. */
export const enum RState {
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

/** A statement prepared on this connection. */
export interface PreparedStatement {
  sql: string;
  params: number;
  types?: readonly number[];
  columns?: ColumnDef[];
  longData?: Map<number, ParamValue>;
}

/**
 * A request in flight and what its response has shown so far. A class with
 * every field set in the constructor, so that all requests share one shape
 * and the hot path reads them monomorphically (a literal whose optional
 * fields were added as they turned up took a different shape per command).
 */
export class Request implements Pending {
  endTs: Timestamp;
  state: RState = RState.First;
  responded = false;
  bytesOut = 0;
  status: EventStatus = 'unknown';
  err: ErrPacket | undefined = undefined;
  sql: string | undefined = undefined;
  params: ParamValue[] | undefined = undefined;
  statementId: number | undefined = undefined;
  attributes: Record<string, string> | undefined = undefined;
  // result accounting
  affectedRows: number | undefined = undefined;
  lastInsertId: number | undefined = undefined;
  warnings: number | undefined = undefined;
  rowsReturned: number | undefined = undefined;
  message: string | undefined = undefined;
  columns: string[] | undefined = undefined;
  rows: (string | null)[][] | undefined = undefined;
  colDefs: ColumnDef[] | undefined = undefined;
  colsLeft = 0;
  /** `schema.table` of the first result's columns (their tables behind any alias), distinct, in order. */
  tables: string[] | undefined = undefined;
  /** System variables the server reported changed (session state tracking). */
  sysvars: Record<string, string> | undefined = undefined;
  /** Bytes of file content sent for LOAD DATA LOCAL INFILE. */
  infileBytes: number | undefined = undefined;
  resultSets = 0;
  readonly binary: boolean;
  prepParams = 0;
  prepCols = 0;
  // command specifics
  newDatabase: string | undefined = undefined;
  newCharset: string | undefined = undefined;
  changeUser: ChangeUser | undefined = undefined;
  authPlugin: string | undefined = undefined;

  /**
   * @param cmd the command byte
   * @param ts when the command was seen
   * @param bytesIn the command's bytes on the wire
   * @param truncated the command packet was cut
   * @param gapBefore bytes were missing before it
   * @param user the session's user when it was sent
   * @param database the session's database when it was sent
   */
  constructor(
    readonly cmd: number,
    public ts: Timestamp,
    public bytesIn: number,
    public truncated: boolean,
    public gapBefore: boolean,
    public user: string | undefined,
    public database: string | undefined,
  ) {
    this.endTs = ts;
    this.binary = cmd === Command.StmtExecute || cmd === Command.StmtFetch || cmd === Command.StmtBulkExecute;
  }
}

/** Prepared statements remembered per connection. */
const MAX_STATEMENTS = 4096;
/** Commands that never get a response. */
export function noResponse(cmd: number): boolean {
  return cmd === Command.Quit || cmd === Command.StmtClose || cmd === Command.StmtSendLongData;
}

/** The command side of a MySQL session; see the module comment. */
export abstract class MysqlCommands extends MysqlLogin {
  protected readonly statements = new BoundedMap<number, PreparedStatement>(MAX_STATEMENTS);
  protected readonly knownStatement = (id: number): boolean => this.statements.has(id);
  /** The statement prepared last (MariaDB's id 0xffffffff in a pipelined EXECUTE means it). */
  protected lastPrepared = -1;

  constructor(ctx: SessionContext) {
    super(ctx);
    this.track(this.statements);
  }

  /** Fills the request from the command's bytes (`b`: the payload, command byte first). */
  protected decodeRequest(req: Request, b: Uint8Array): void {
    const r = this.reader.reset(b, 1);
    const cs = this.charset;
    switch (req.cmd) {
      case Command.Query:
      case Command.StmtPrepare: {
        const q = req.cmd === Command.Query ? decodeQuery(r, this.caps, cs) : { sql: r.rest() };
        if (typeof q === 'number') {
          this.stats.malformed++;
          req.sql = text(b.subarray(1), cs);
          break;
        }
        this.inspectSql(req, text(q.sql, cs));
        if (q.attributes) req.attributes = q.attributes;
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
        if (typeof cu === 'number') {
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
      case Command.StmtSendLongData:
        this.decodeStatementCommand(req, b);
        return;
      default:
        break;
    }
    if (!r.ok) {
      this.stats.malformed++;
      req.truncated = true;
    }
  }

  /** The commands that name a prepared statement: `u32 statement_id | ...`. */
  private decodeStatementCommand(req: Request, b: Uint8Array): void {
    const r = this.reader.reset(b, 1);
    let id = r.u32le();
    if (id === 0xffffffff && this.lastPrepared >= 0) id = this.lastPrepared; // MariaDB: the statement just prepared
    req.statementId = id;
    const st = this.statements.get(id);
    if (st) req.sql = st.sql;
    switch (req.cmd) {
      case Command.StmtExecute:
        this.decodeExecuteParams(req, b, st);
        break;
      case Command.StmtSendLongData: {
        const param = r.u16le();
        const data = r.rest();
        if (st) {
          const ld = (st.longData ??= new Map());
          const prev = ld.get(param);
          const [joined] = this.records.cutSql((typeof prev === 'string' ? prev : '') + text(data, this.charset));
          ld.set(param, joined);
        }
        req.attributes = { param: String(param), bytes: String(data.length) };
        break;
      }
      case Command.StmtClose:
        this.statements.delete(id);
        break;
      case Command.StmtReset:
        if (st) st.longData = undefined;
        break;
      case Command.StmtFetch:
        req.attributes = { rows: String(r.u32le()) };
        break;
      default:
    }
    if (!r.ok) {
      this.stats.malformed++;
      req.truncated = true;
    }
  }

  private decodeExecuteParams(req: Request, b: Uint8Array, st: PreparedStatement | undefined): void {
    const r = this.reader.reset(b, 1);
    const ex = decodeExecute(r, st?.params, st?.types, this.caps, this.charset, st?.longData);
    if (typeof ex === 'number') {
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

  /** Sets the request's SQL (cut to maxSqlLength) and notes the USE / SET NAMES that change the session. */
  private inspectSql(req: Request, sql: string): void {
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
    const [cut, wasCut] = this.records.cutSql(sql);
    req.sql = cut;
    if (wasCut) req.truncated = true;
  }
}

// The PostgreSQL session state machine: startup and authentication, simple
// and extended query, COPY, function calls; pairs each request with its
// response and emits audit records.
//
// Pairing (protocol docs, "Extended Query" and "Pipelining"): the server
// answers frontend messages strictly in order, so requests wait in a FIFO of
// operations. An ErrorResponse fails the operation at the head; the server
// then skips everything up to the next Sync, and so does the queue.
import { ByteReader, Direction, normalizeCharset, decodeText, type AuditEvent, type CloseReason, type EventStatus, type ParamValue, type Timestamp } from '@dbtap/core';
import { newSessionStats, type ProtocolSession, type SessionContext, type SessionStats } from '../plugin.js';
import { decodeBackend, decodeFrontend, decodeStartup } from './decoder.js';
import { ANSWER, FrameFlag, FramerMode, PgFramer, STARTUP } from './framer.js';
import { AuthCode, BackendType, FrontendType, type ErrorFields, type FieldDescription } from './messages.js';
import { columnText, paramValue } from './values.js';

/** Most prepared statements / portals remembered per session (oldest dropped beyond). */
const MAX_NAMED = 4096;
/** Most operations waiting for a response (oldest dropped beyond, counted unmatched). */
const MAX_QUEUE = 65536;

/** A record under construction. */
interface Draft {
  kind: 'login' | 'statement' | 'logout';
  ts: Timestamp;
  endTs: Timestamp | undefined;
  command: string | undefined;
  sql: string | undefined;
  params: ParamValue[] | undefined;
  statementId: string | undefined;
  status: EventStatus;
  error: ErrorFields | undefined;
  affected: number;
  hasAffected: boolean;
  returned: number;
  hasReturned: boolean;
  /** DataRows since the last RowDescription/CommandComplete. */
  segRows: number;
  /** A RowDescription was seen for the current result. */
  hasResult: boolean;
  fields: readonly FieldDescription[] | undefined;
  resultFormats: readonly number[] | undefined;
  columns: string[] | undefined;
  rows: (string | null)[][] | undefined;
  bytesIn: number;
  bytesOut: number;
  truncated: boolean;
  gapBefore: boolean;
  completed: boolean;
  copy: 'in' | 'out' | 'both' | undefined;
  copyBytes: number;
  copyMessages: number;
  tags: string[];
  attributes: Record<string, string> | undefined;
  /** application_name when the request was sent (a SET may change it before the record goes out). */
  program: string | undefined;
}

function newDraft(kind: Draft['kind'], ts: Timestamp, command: string | undefined): Draft {
  return {
    kind,
    ts,
    endTs: undefined,
    command,
    sql: undefined,
    params: undefined,
    statementId: undefined,
    status: 'unknown',
    error: undefined,
    affected: 0,
    hasAffected: false,
    returned: 0,
    hasReturned: false,
    segRows: 0,
    hasResult: false,
    fields: undefined,
    resultFormats: undefined,
    columns: undefined,
    rows: undefined,
    bytesIn: 0,
    bytesOut: 0,
    truncated: false,
    gapBefore: false,
    completed: false,
    copy: undefined,
    copyBytes: 0,
    copyMessages: 0,
    tags: [],
    attributes: undefined,
    program: undefined,
  };
}

interface Statement {
  sql: string | undefined;
  /** The SQL was cut to maxSqlLength (or by a gap). */
  cut: boolean;
  types: readonly number[];
  fields: readonly FieldDescription[] | undefined;
}

interface Portal {
  statement: string;
  stmt: Statement | undefined;
  params: ParamValue[] | undefined;
  fields: readonly FieldDescription[] | undefined;
  resultFormats: readonly number[];
}

type Op =
  | { k: 'query' | 'execute' | 'function'; d: Draft; portal: Portal | undefined }
  | { k: 'parse'; name: string; sql: string | undefined; ts: Timestamp; bytes: number }
  | { k: 'bind'; portal: string; statement: string; ts: Timestamp; bytes: number }
  | { k: 'describe'; target: 'S' | 'P'; name: string; ts: Timestamp; bytes: number }
  | { k: 'close'; target: 'S' | 'P'; name: string; ts: Timestamp; bytes: number }
  | { k: 'sync' };

type DraftOp = Extract<Op, { d: Draft }>;

/** Login phases. */
const enum Phase {
  /** Before the StartupMessage (SSL/GSS negotiation possible). */
  Startup = 0,
  /** StartupMessage sent, authentication under way. */
  Auth = 1,
  /** Authenticated (or picked up mid-session). */
  Ready = 2,
  /** The stream is encrypted or ended; nothing more to decode. */
  Done = 3,
}

const authNames: Record<number, string> = {
  [AuthCode.Ok]: 'trust',
  [AuthCode.KerberosV5]: 'kerberos-v5',
  [AuthCode.CleartextPassword]: 'cleartext',
  [AuthCode.Md5Password]: 'md5',
  [AuthCode.ScmCredential]: 'scm-credential',
  [AuthCode.Gss]: 'gss',
  [AuthCode.Sspi]: 'sspi',
  [AuthCode.GaussSm3]: 'sm3',
  [AuthCode.GaussIam]: 'iam',
};

/** A PostgreSQL (or wire-compatible) session. */
export class PostgresSession implements ProtocolSession {
  readonly stats: SessionStats = newSessionStats();
  private readonly ctx: SessionContext;
  private readonly client: PgFramer;
  private readonly server: PgFramer;
  private readonly reader = new ByteReader();
  private readonly clientSink = (type: number, body: Uint8Array, wireLen: number, flags: number): void => this.onClient(type, body, wireLen, flags);
  private readonly serverSink = (type: number, body: Uint8Array, wireLen: number, flags: number): void => this.onServer(type, body, wireLen, flags);

  private seq = 0;
  private phase: Phase;
  private ts: Timestamp = 0;
  private midSession: boolean;
  private gapPending = false;

  // Session facts carried on every record.
  private user: string | undefined;
  private database: string | undefined;
  private clientProgram: string | undefined;
  private serverVersion: string | undefined;
  private product: string | undefined;
  private sessionId: string | undefined;
  private tls: boolean | undefined;
  private charset = 'utf-8';

  private login: Draft | undefined;
  private authOk = false;
  private sasl = false;
  private loggedOut = false;
  private fatal: ErrorFields | undefined;

  private readonly queue: Op[] = [];
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, Portal>();
  /** Client bytes not yet attributed to a record (Parse/Bind/Describe before their Execute). */
  private inAcc = 0;
  /** Server bytes not yet attributed to a record. */
  private outAcc = 0;

  constructor(ctx: SessionContext) {
    this.ctx = ctx;
    if (ctx.options.charset !== undefined) this.charset = ctx.options.charset;
    this.midSession = ctx.midStream;
    const max = ctx.options.maxMessageBytes;
    this.client = new PgFramer(true, max, ctx.midStream ? FramerMode.Scan : FramerMode.Startup);
    this.server = new PgFramer(false, max, ctx.midStream ? FramerMode.Scan : FramerMode.Typed);
    this.phase = ctx.midStream ? Phase.Ready : Phase.Startup;
  }

  data(dir: Direction, bytes: Uint8Array, ts: Timestamp): void {
    if (bytes.length === 0) return;
    this.ts = ts;
    try {
      if (dir === Direction.ToServer) {
        // A TLS ClientHello instead of a startup packet: direct TLS (PostgreSQL 17 sslnegotiation=direct).
        if (this.phase === Phase.Startup && this.client.mode === FramerMode.Startup && bytes[0] === 0x16 && bytes.length > 1 && bytes[1] === 0x03) {
          this.encrypted('direct-tls');
          return;
        }
        this.client.push(bytes, this.clientSink);
        this.noteSync(this.client);
      } else {
        this.server.push(bytes, this.serverSink);
        this.noteSync(this.server);
      }
    } catch {
      this.recover(dir);
    }
    this.foldCounters();
  }

  gap(dir: Direction, nbytes: number, ts: Timestamp): void {
    this.ts = ts;
    this.stats.gaps++;
    try {
      const f = dir === Direction.ToServer ? this.client : this.server;
      f.gap(nbytes, dir === Direction.ToServer ? this.clientSink : this.serverSink);
      this.gapPending = true;
      // Requests in flight may have lost their responses (or responses their requests).
      for (const op of this.queue) if ('d' in op) op.d.truncated = true;
      this.noteSync(f);
    } catch {
      this.recover(dir);
    }
    this.foldCounters();
  }

  close(reason: CloseReason, ts: Timestamp): void {
    this.ts = ts;
    try {
      if (this.client.pending || this.server.pending) for (const op of this.queue) if ('d' in op) op.d.truncated = true;
      this.flushQueue();
      if (this.login !== undefined) {
        // Capture ended during authentication.
        this.login.truncated = true;
        this.emit(this.login);
        this.login = undefined;
      }
      if (this.phase === Phase.Ready && !this.loggedOut && (reason === 'fin' || reason === 'rst')) {
        const d = newDraft('logout', ts, undefined);
        d.attributes = { closeReason: reason };
        if (this.fatal !== undefined) this.applyError(d, this.fatal);
        this.emit(d);
        this.loggedOut = true;
      }
      this.phase = Phase.Done;
      this.client.off();
      this.server.off();
    } catch {
      this.stats.malformed++;
    }
    this.foldCounters();
  }

  // ---- plumbing ----------------------------------------------------------

  private framerSkipped = 0;
  private framerMalformed = 0;

  private foldCounters(): void {
    const skipped = this.client.counters.skippedBytes + this.server.counters.skippedBytes;
    const malformed = this.client.counters.malformed + this.server.counters.malformed + this.client.counters.oversized + this.server.counters.oversized;
    this.stats.skippedBytes += skipped - this.framerSkipped;
    this.stats.malformed += malformed - this.framerMalformed;
    this.framerSkipped = skipped;
    this.framerMalformed = malformed;
  }

  private noteSync(f: PgFramer): void {
    if (f.lostSync) {
      f.lostSync = false;
      this.gapPending = true;
    }
  }

  private recover(dir: Direction): void {
    // Defensive: a bug or an input we did not foresee must not escape the session.
    this.stats.malformed++;
    (dir === Direction.ToServer ? this.client : this.server).loseSync();
    this.gapPending = true;
  }

  private encrypted(how: string): void {
    const d = this.login ?? newDraft('login', this.ts, undefined);
    this.login = undefined;
    this.tls = true;
    d.attributes = { ...d.attributes, encryption: how };
    this.emit(d);
    this.phase = Phase.Done;
    this.client.off();
    this.server.off();
  }

  private decodeSql(bytes: Uint8Array, d: Draft): string {
    const max = this.ctx.options.maxSqlLength;
    let s = decodeText(bytes, this.charset);
    if (s.length > max) {
      s = s.slice(0, max);
      d.truncated = true;
    }
    return s;
  }

  private setCharset(name: string): void {
    const label = normalizeCharset(name);
    this.charset = this.ctx.options.charset ?? label ?? 'utf-8';
  }

  private noteProduct(value: string): void {
    if (this.product !== undefined) return;
    if (/kingbase/i.test(value)) this.product = 'kingbase';
    else if (/opengauss/i.test(value)) this.product = 'opengauss';
    else if (/gaussdb/i.test(value)) this.product = 'gaussdb';
  }

  // ---- client side -------------------------------------------------------

  private onClient(type: number, body: Uint8Array, wireLen: number, flags: number): void {
    this.stats.messages++;
    const truncated = (flags & FrameFlag.Truncated) !== 0;
    const r = this.reader.reset(body);
    if (type === STARTUP) return this.onStartup(r, wireLen, truncated);
    const m = decodeFrontend(type, r);
    if (m === undefined) {
      if (truncated && type === FrontendType.Query) {
        // The text up to the hole (zero-filled) or the size limit.
        const nul = body.indexOf(0);
        return this.onQuery(nul < 0 ? body : body.subarray(0, nul), wireLen, true);
      }
      this.stats.malformed++;
      this.inAcc += wireLen;
      return;
    }
    switch (m.type) {
      case FrontendType.Query:
        return this.onQuery(m.sql, wireLen, truncated);
      case FrontendType.Parse: {
        const text = decodeText(m.sql, this.charset);
        const max = this.ctx.options.maxSqlLength;
        const cut = truncated || text.length > max;
        const sql = text.length > max ? text.slice(0, max) : text;
        this.remember(this.statements, m.name, { sql, cut, types: m.paramTypes, fields: undefined });
        this.inAcc += wireLen;
        return this.push({ k: 'parse', name: m.name, sql, ts: this.ts, bytes: wireLen });
      }
      case FrontendType.Bind: {
        const stmt = this.statements.get(m.statement);
        const types = stmt?.types ?? [];
        const params = new Array<ParamValue>(m.values.length);
        for (let i = 0; i < m.values.length; i++) params[i] = paramValue(m.values[i]!, m.paramFormats[i]!, types[i] ?? 0, this.charset);
        this.remember(this.portals, m.portal, { statement: m.statement, stmt, params, fields: undefined, resultFormats: m.resultFormats });
        this.inAcc += wireLen;
        return this.push({ k: 'bind', portal: m.portal, statement: m.statement, ts: this.ts, bytes: wireLen });
      }
      case FrontendType.Describe:
        this.inAcc += wireLen;
        return this.push({ k: 'describe', target: m.target, name: m.name, ts: this.ts, bytes: wireLen });
      case FrontendType.Close:
        if (m.target === 'S') this.statements.delete(m.name);
        else this.portals.delete(m.name);
        this.inAcc += wireLen;
        return this.push({ k: 'close', target: m.target, name: m.name, ts: this.ts, bytes: wireLen });
      case FrontendType.Execute: {
        const d = this.draft('Execute', wireLen, truncated);
        const portal = this.portals.get(m.portal);
        if (portal !== undefined) {
          d.sql = portal.stmt?.sql;
          if (portal.stmt?.cut === true) d.truncated = true;
          d.params = portal.params;
          d.resultFormats = portal.resultFormats;
          if (portal.statement !== '') d.statementId = portal.statement;
        }
        if (m.portal !== '') (d.attributes ??= {}).portal = m.portal;
        if (m.maxRows !== 0) (d.attributes ??= {}).maxRows = String(m.maxRows);
        return this.push({ k: 'execute', d, portal });
      }
      case FrontendType.Sync: {
        this.attachIn(wireLen);
        return this.push({ k: 'sync' });
      }
      case FrontendType.Flush:
        return this.attachIn(wireLen);
      case FrontendType.Terminate: {
        this.flushQueue();
        const d = newDraft('logout', this.ts, 'Terminate');
        d.status = 'ok';
        d.endTs = this.ts;
        d.bytesIn = wireLen;
        this.emit(d);
        this.loggedOut = true;
        return;
      }
      case FrontendType.FunctionCall: {
        const d = this.draft('FunctionCall', wireLen, truncated);
        d.statementId = String(m.oid);
        d.params = m.args.map((a, i) => paramValue(a, m.argFormats[i]!, 0, this.charset));
        return this.push({ k: 'function', d, portal: undefined });
      }
      case FrontendType.CopyData:
      case FrontendType.CopyDone:
      case FrontendType.CopyFail: {
        const op = this.headDraft();
        if (op === undefined) {
          this.stats.unmatchedRequests++;
          return;
        }
        op.d.bytesIn += wireLen;
        if (m.type === FrontendType.CopyData) {
          op.d.copyMessages++;
          op.d.copyBytes += m.size;
        } else if (m.type === FrontendType.CopyFail) {
          (op.d.attributes ??= {}).copyFail = m.message;
        }
        return;
      }
      case FrontendType.Password:
        return this.onPassword(m.body, wireLen);
    }
  }

  private onQuery(sqlBytes: Uint8Array, wireLen: number, truncated: boolean): void {
    const d = this.draft('Query', wireLen, truncated);
    d.sql = this.decodeSql(sqlBytes, d);
    this.push({ k: 'query', d, portal: undefined });
  }

  /** A new statement draft that takes the client bytes not yet attributed. */
  private draft(command: string, wireLen: number, truncated: boolean): Draft {
    const d = newDraft('statement', this.ts, command);
    d.program = this.clientProgram;
    d.bytesIn = this.inAcc + wireLen;
    this.inAcc = 0;
    d.truncated = truncated;
    if (this.gapPending) {
      d.gapBefore = true;
      this.gapPending = false;
    }
    return d;
  }

  /** Adds Sync/Flush bytes to the last statement of the batch, if it is still open. */
  private attachIn(wireLen: number): void {
    const last = this.queue[this.queue.length - 1];
    if (last !== undefined && 'd' in last) last.d.bytesIn += wireLen;
    else this.inAcc += wireLen;
  }

  private remember<V>(map: Map<string, V>, name: string, v: V): void {
    map.delete(name);
    if (map.size >= MAX_NAMED) {
      const oldest = map.keys().next();
      if (oldest.done !== true) map.delete(oldest.value);
    }
    map.set(name, v);
  }

  private push(op: Op): void {
    if (this.queue.length >= MAX_QUEUE) {
      const dropped = this.queue.shift()!;
      this.stats.unmatchedRequests++;
      if ('d' in dropped) this.emit(dropped.d);
    }
    this.queue.push(op);
  }

  private onStartup(r: ByteReader, wireLen: number, truncated: boolean): void {
    const p = decodeStartup(r);
    if (p === undefined) {
      this.stats.malformed++;
      // Not a startup packet after all: assume the typed protocol is already running.
      if (!truncated) this.client.mode = FramerMode.Typed;
      return;
    }
    const login = (this.login ??= newDraft('login', this.ts, undefined));
    login.bytesIn += wireLen;
    switch (p.kind) {
      case 'ssl':
      case 'gssenc':
        (login.attributes ??= {})[p.kind === 'ssl' ? 'sslRequest' : 'gssEncRequest'] = 'sent';
        this.server.mode = FramerMode.Answer;
        return;
      case 'cancel':
      case 'gauss-stop': {
        this.login = undefined;
        const d = newDraft('statement', this.ts, p.kind === 'cancel' ? 'CancelRequest' : 'StopRequest');
        d.status = 'ok';
        d.endTs = this.ts;
        d.bytesIn = wireLen;
        d.statementId = String(p.pid);
        d.attributes = { targetPid: String(p.pid) };
        if (p.kind === 'gauss-stop') {
          d.attributes.queryId = p.queryId;
          this.product ??= 'opengauss';
        }
        this.midSession = false;
        this.emit(d);
        this.phase = Phase.Done;
        return;
      }
      case 'startup': {
        this.midSession = false;
        this.phase = Phase.Auth;
        this.client.mode = FramerMode.Typed;
        login.command = 'StartupMessage';
        const attrs = (login.attributes ??= {});
        attrs.protocol = `${p.major}.${p.minor}`;
        // openGauss clients announce protocol 3.50/3.51 (PG_PROTOCOL_GAUSS_BASE = 50).
        if (p.minor >= 50) this.product ??= 'opengauss';
        for (const [k, v] of p.params) {
          if (k === 'user') this.user = v;
          else if (k === 'database') this.database = v;
          else if (k === 'application_name') this.clientProgram = v;
          else {
            if (k === 'client_encoding') this.setCharset(v);
            // The client picks these names: define them as own properties (a name like
            // "__proto__" must not reach the object's prototype).
            Object.defineProperty(attrs, k, { value: v, enumerable: true, writable: true, configurable: true });
          }
        }
        // The database defaults to the user name (protocol docs, StartupMessage).
        if (this.database === undefined && this.user !== undefined) this.database = this.user;
        this.tls ??= false;
        return;
      }
    }
  }

  private onPassword(body: Uint8Array, wireLen: number): void {
    const login = this.login;
    if (login === undefined) {
      this.inAcc += wireLen;
      return;
    }
    login.bytesIn += wireLen;
    if (this.sasl && (login.attributes?.saslMechanism === undefined)) {
      // SASLInitialResponse: cstring mechanism | Int32 len | data. Only the mechanism is kept.
      const r = this.reader.reset(body);
      const mech = r.cstringUtf8();
      if (r.ok) (login.attributes ??= {}).saslMechanism = mech;
    }
  }

  // ---- server side -------------------------------------------------------

  private onServer(type: number, body: Uint8Array, wireLen: number, flags: number): void {
    this.stats.messages++;
    if (type === ANSWER) return this.onAnswer(body[0]!, wireLen);
    // DataRow is most of a result: count it without decoding unless rows are kept
    // (simple-select bench: 57 -> 186 MB/s).
    if (type === BackendType.DataRow && flags === 0) {
      const op = this.resultTarget();
      if (op === undefined) {
        this.stats.unmatchedResponses++;
        return;
      }
      const d = op.d;
      d.bytesOut += wireLen;
      d.segRows++;
      if (d.rows !== undefined && d.rows.length < this.ctx.options.maxRows && d.hasResult && !d.hasReturned) {
        const m = decodeBackend(type, this.reader.reset(body));
        if (m !== undefined && m.type === BackendType.DataRow) d.rows.push(this.rowText(m.values, d));
        else this.stats.malformed++;
      }
      return;
    }
    const m = decodeBackend(type, this.reader.reset(body));
    const truncated = (flags & FrameFlag.Truncated) !== 0;
    if (m === undefined) {
      if (!truncated) this.stats.malformed++;
      // A cut DataRow still counts as a row.
      if (type === BackendType.DataRow) {
        const op = this.resultTarget();
        if (op !== undefined) {
          op.d.segRows++;
          op.d.truncated = true;
          op.d.bytesOut += wireLen;
          return;
        }
      }
      this.outAcc += wireLen;
      return;
    }
    switch (m.type) {
      case BackendType.Authentication:
        return this.onAuth(m.code, m.data, wireLen);
      case BackendType.ParameterStatus: {
        this.outAcc += wireLen;
        const { name, value } = m;
        if (name === 'server_version') this.serverVersion = value;
        else if (name === 'application_name') this.clientProgram = value;
        else if (name === 'client_encoding') this.setCharset(value);
        this.noteProduct(value);
        if (this.login !== undefined) (this.login.attributes ??= {})[`server.${name}`] = value;
        return;
      }
      case BackendType.BackendKeyData:
        this.outAcc += wireLen;
        this.sessionId = String(m.pid);
        return;
      case BackendType.NegotiateProtocolVersion:
        this.outAcc += wireLen;
        if (this.login !== undefined) (this.login.attributes ??= {}).negotiatedMinor = String(m.minor);
        return;
      case BackendType.ReadyForQuery:
        return this.onReady(m.status, wireLen);
      case BackendType.ErrorResponse:
        return this.onError(m.fields, wireLen);
      case BackendType.NoticeResponse: {
        const op = this.headDraft();
        if (op !== undefined) {
          op.d.bytesOut += wireLen;
          if (m.fields.message !== undefined) (op.d.attributes ??= {}).notice ??= m.fields.message;
        } else this.outAcc += wireLen;
        return;
      }
      case BackendType.NotificationResponse:
        // Asynchronous; not part of any request's response.
        return;
      case BackendType.ParseComplete:
        this.outAcc += wireLen;
        this.take('parse');
        return;
      case BackendType.BindComplete:
        this.outAcc += wireLen;
        this.take('bind');
        return;
      case BackendType.CloseComplete:
        this.outAcc += wireLen;
        this.take('close');
        return;
      case BackendType.ParameterDescription: {
        this.outAcc += wireLen;
        const op = this.find('describe');
        if (op !== undefined && op.target === 'S') {
          const st = this.statements.get(op.name);
          if (st !== undefined) st.types = m.types;
        }
        return;
      }
      case BackendType.NoData:
        this.outAcc += wireLen;
        this.take('describe');
        return;
      case BackendType.RowDescription:
        return this.onRowDescription(m.fields, wireLen);
      case BackendType.DataRow: {
        // Truncated DataRows that still decoded; whole ones took the fast path above.
        const op = this.resultTarget();
        if (op === undefined) return void this.stats.unmatchedResponses++;
        op.d.bytesOut += wireLen;
        op.d.segRows++;
        op.d.truncated = true;
        return;
      }
      case BackendType.CommandComplete:
        return this.onComplete(m.tag, wireLen);
      case BackendType.EmptyQueryResponse: {
        const op = this.resultTarget();
        if (op === undefined) return void this.stats.unmatchedResponses++;
        op.d.bytesOut += wireLen;
        (op.d.attributes ??= {}).emptyQuery = 'true';
        if (op.k === 'execute') this.finishExecute(op);
        return;
      }
      case BackendType.PortalSuspended: {
        const op = this.resultTarget();
        if (op === undefined || op.k !== 'execute') return void this.stats.unmatchedResponses++;
        op.d.bytesOut += wireLen;
        (op.d.attributes ??= {}).portalSuspended = 'true';
        op.d.returned += op.d.segRows;
        op.d.hasReturned = true;
        op.d.segRows = 0;
        this.finishExecute(op);
        return;
      }
      case BackendType.CopyInResponse:
      case BackendType.CopyOutResponse:
      case BackendType.CopyBothResponse: {
        const op = this.resultTarget();
        if (op === undefined) return void this.stats.unmatchedResponses++;
        op.d.bytesOut += wireLen;
        op.d.copy = m.type === BackendType.CopyInResponse ? 'in' : m.type === BackendType.CopyOutResponse ? 'out' : 'both';
        return;
      }
      case BackendType.CopyData: {
        const op = this.resultTarget();
        if (op === undefined) return;
        const d = op.d;
        d.bytesOut += wireLen;
        d.copyMessages++;
        d.copyBytes += m.size;
        const max = this.ctx.options.maxRows;
        if (max > 0 && d.copy === 'out') {
          d.rows ??= [];
          if (d.rows.length < max) {
            let line = decodeText(m.data, this.charset);
            if (line.endsWith('\n')) line = line.slice(0, -1);
            d.rows.push([line]);
          }
        }
        return;
      }
      case BackendType.CopyDone: {
        const op = this.resultTarget();
        if (op !== undefined) op.d.bytesOut += wireLen;
        return;
      }
      case BackendType.FunctionCallResponse: {
        const op = this.resultTarget();
        if (op === undefined) return void this.stats.unmatchedResponses++;
        op.d.bytesOut += wireLen;
        op.d.completed = true;
        op.d.endTs = this.ts;
        return;
      }
    }
  }

  private onAnswer(b: number, wireLen: number): void {
    const login = (this.login ??= newDraft('login', this.ts, undefined));
    login.bytesOut += wireLen;
    const attrs = (login.attributes ??= {});
    if (b === 0x53 /* 'S' */) {
      attrs.sslResponse = 'S';
      return this.encrypted('ssl');
    }
    if (b === 0x47 /* 'G' */) {
      attrs.gssEncResponse = 'G';
      return this.encrypted('gss');
    }
    // 'N': refused; the client continues in plaintext (or gives up).
    if (attrs.gssEncRequest !== undefined && attrs.gssEncResponse === undefined && attrs.sslRequest === undefined) attrs.gssEncResponse = 'N';
    else attrs.sslResponse = 'N';
  }

  private onAuth(code: number, data: Uint8Array, wireLen: number): void {
    const login = this.login ?? (this.midSession ? undefined : (this.login = newDraft('login', this.ts, undefined)));
    if (login === undefined) {
      this.outAcc += wireLen;
      return;
    }
    login.bytesOut += wireLen;
    const attrs = (login.attributes ??= {});
    if (this.phase === Phase.Startup) this.phase = Phase.Auth;
    switch (code) {
      case AuthCode.Ok:
        this.authOk = true;
        attrs.authMethod ??= 'trust';
        return;
      case AuthCode.Sasl: {
        // PostgreSQL: list of mechanism names, each NUL-terminated, then a final NUL.
        // openGauss reuses code 10 for its sha256 method, whose body is binary.
        const r = this.reader.reset(data);
        const mechs: string[] = [];
        while (r.remaining > 1) {
          const s = r.cstring();
          if (!r.ok || s.length === 0 || s.some((c) => c < 0x20 || c > 0x7e)) break;
          mechs.push(String.fromCharCode(...s));
        }
        if (mechs.length > 0 && r.ok && r.remaining === 1 && r.u8() === 0) {
          this.sasl = true;
          attrs.authMethod = 'sasl';
          attrs.saslMechanisms = mechs.join(',');
        } else {
          attrs.authMethod = 'sha256';
          this.product ??= 'opengauss';
        }
        return;
      }
      case AuthCode.SaslContinue:
        if (!this.sasl) {
          attrs.authMethod = 'md5-sha256';
          this.product ??= 'opengauss';
        }
        return;
      case AuthCode.SaslFinal:
        return;
      case AuthCode.GssContinue:
        return;
      default: {
        const name = authNames[code];
        attrs.authMethod = name ?? `code-${code}`;
        if (code === AuthCode.GaussSm3 || code === AuthCode.GaussIam) this.product ??= 'opengauss';
      }
    }
  }

  private onReady(status: string, wireLen: number): void {
    if (this.login !== undefined) {
      const login = this.login;
      this.login = undefined;
      login.bytesOut += wireLen + this.outAcc;
      this.outAcc = 0;
      login.status = 'ok';
      login.endTs = this.ts;
      this.phase = Phase.Ready;
      if (!this.authOk) (login.attributes ??= {}).authOk = 'not-seen';
      this.emit(login);
      return;
    }
    this.phase = Phase.Ready;
    // Pop through the operation this ReadyForQuery answers (Sync, Query or FunctionCall).
    const i = this.queue.findIndex((o) => o.k === 'sync' || o.k === 'query' || o.k === 'function');
    if (i < 0) {
      this.stats.unmatchedResponses++;
      this.outAcc = 0;
      return;
    }
    for (let k = 0; k < i; k++) this.dropOp(this.queue[k]!);
    const op = this.queue[i]!;
    this.queue.splice(0, i + 1);
    if ('d' in op) {
      const d = op.d;
      d.bytesOut += wireLen + this.outAcc;
      this.outAcc = 0;
      d.endTs = this.ts;
      if (d.status !== 'error') d.status = d.truncated && !d.completed ? 'unknown' : 'ok';
      this.closeSegment(d);
      this.emit(d);
    } else {
      this.outAcc = 0;
    }
    this.txStatus = status;
  }

  /** Transaction status from the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' failed transaction. */
  txStatus = 'I';

  /**
   * An op that was never answered (its response lost to a gap or before the
   * capture): statements go out with status unknown, and so does a Parse, so
   * that SQL the server received is never silently dropped.
   */
  private dropOp(op: Op): void {
    if ('d' in op) {
      this.stats.unmatchedRequests++;
      op.d.truncated = true;
      this.emit(op.d);
    } else if (op.k === 'parse' && op.sql !== undefined) {
      this.stats.unmatchedRequests++;
      const d = newDraft('statement', op.ts, 'Parse');
      d.sql = op.sql;
      d.program = this.clientProgram;
      d.bytesIn = op.bytes;
      d.truncated = true;
      if (op.name !== '') d.statementId = op.name;
      this.emit(d);
    }
  }

  private onRowDescription(fields: readonly FieldDescription[], wireLen: number): void {
    const head = this.queue[0];
    if (head !== undefined && head.k === 'describe') {
      this.outAcc += wireLen;
      this.queue.shift();
      if (head.target === 'S') {
        const st = this.statements.get(head.name);
        if (st !== undefined) st.fields = fields;
      } else {
        const p = this.portals.get(head.name);
        if (p !== undefined) p.fields = fields;
      }
      return;
    }
    const op = this.resultTarget();
    if (op === undefined) {
      this.stats.unmatchedResponses++;
      return;
    }
    op.d.bytesOut += wireLen;
    this.startResult(op.d, fields);
  }

  private startResult(d: Draft, fields: readonly FieldDescription[]): void {
    this.closeSegment(d);
    d.hasResult = true;
    if (d.columns === undefined) {
      d.fields = fields;
      d.columns = fields.map((f) => f.name);
      if (this.ctx.options.maxRows > 0) d.rows = [];
    }
  }

  /** Rows of a result that ended without a CommandComplete count (error, suspension). */
  private closeSegment(d: Draft): void {
    if (d.segRows > 0) {
      d.returned += d.segRows;
      d.hasReturned = true;
      d.segRows = 0;
    }
  }

  private rowText(values: readonly (Uint8Array | null)[], d: Draft): (string | null)[] {
    const fields = d.fields;
    const fmts = d.resultFormats;
    const out = new Array<string | null>(values.length);
    for (let i = 0; i < values.length; i++) {
      const f = fields?.[i];
      // Describe-statement fields carry format 0; the Bind result formats decide.
      const fmt = fmts !== undefined && fmts.length > 0 ? (fmts.length === 1 ? fmts[0]! : (fmts[i] ?? 0)) : (f?.format ?? 0);
      out[i] = columnText(values[i]!, fmt, f?.typeOid ?? 0, this.charset);
    }
    return out;
  }

  /** The head query/execute/function op receiving result messages. */
  private resultTarget(): DraftOp | undefined {
    for (const op of this.queue) {
      if ('d' in op) {
        if (op.k === 'execute' && op.d.columns === undefined && op.portal !== undefined) {
          const fields = op.portal.fields ?? op.portal.stmt?.fields;
          if (fields !== undefined) this.startResult(op.d, fields);
        }
        return op;
      }
      if (op.k === 'sync') return undefined;
    }
    return undefined;
  }

  private headDraft(): DraftOp | undefined {
    for (const op of this.queue) if ('d' in op) return op;
    return undefined;
  }

  /** Finds the first op of kind `k` before the next Sync. */
  private find<K extends Op['k']>(k: K): Extract<Op, { k: K }> | undefined {
    for (const op of this.queue) {
      if (op.k === k) return op as Extract<Op, { k: K }>;
      if (op.k === 'sync') return undefined;
    }
    return undefined;
  }

  /**
   * Removes the op a ParseComplete/BindComplete/CloseComplete/NoData answers.
   * Ops before it were not answered (lost to a gap): their records go out.
   */
  private take(k: 'parse' | 'bind' | 'close' | 'describe'): void {
    const i = this.queue.findIndex((o) => o.k === k || o.k === 'sync');
    if (i < 0 || this.queue[i]!.k !== k) {
      this.stats.unmatchedResponses++;
      return;
    }
    for (let j = 0; j < i; j++) this.dropOp(this.queue[j]!);
    this.queue.splice(0, i + 1);
  }

  private onComplete(tag: string, wireLen: number): void {
    const op = this.resultTarget();
    if (op === undefined) {
      this.stats.unmatchedResponses++;
      return;
    }
    const d = op.d;
    d.bytesOut += wireLen;
    d.tags.push(tag);
    d.completed = true;
    d.endTs = this.ts;
    applyTag(d, tag);
    d.segRows = 0;
    d.hasResult = false;
    if (op.k === 'execute') this.finishExecute(op);
  }

  private finishExecute(op: DraftOp): void {
    const i = this.queue.indexOf(op);
    if (i >= 0) {
      for (let j = 0; j < i; j++) this.dropOp(this.queue[j]!);
      this.queue.splice(0, i + 1);
    }
    const d = op.d;
    d.bytesOut += this.outAcc;
    this.outAcc = 0;
    d.endTs = this.ts;
    if (d.status !== 'error') d.status = 'ok';
    this.closeSegment(d);
    this.emit(d);
  }

  private onError(fields: ErrorFields, wireLen: number): void {
    if (this.login !== undefined && this.phase !== Phase.Ready) {
      const login = this.login;
      this.login = undefined;
      login.bytesOut += wireLen + this.outAcc;
      this.outAcc = 0;
      login.endTs = this.ts;
      this.applyError(login, fields);
      this.emit(login);
      this.phase = Phase.Done;
      return;
    }
    const head = this.queue[0];
    if (head === undefined || head.k === 'sync') {
      // FATAL while idle (shutdown, idle timeout, terminated backend): goes on the logout record.
      if (fields.severityEn === 'FATAL' || fields.severity === 'FATAL' || fields.severityEn === 'PANIC') this.fatal = fields;
      else this.stats.unmatchedResponses++;
      this.outAcc += wireLen;
      return;
    }
    if ('d' in head) {
      const d = head.d;
      d.bytesOut += wireLen;
      this.applyError(d, fields);
      d.endTs = this.ts;
      this.closeSegment(d);
      if (head.k === 'execute') {
        this.queue.shift();
        this.emit(d);
        this.discardUntilSync();
      }
      // Query / FunctionCall records go out at ReadyForQuery.
      return;
    }
    // Parse / Bind / Describe / Close failed: the Execute it was for (if queued) carries the error.
    this.queue.shift();
    let target: Draft | undefined;
    for (const op of this.queue) {
      if (op.k === 'sync') break;
      if (op.k === 'execute') {
        target = op.d;
        break;
      }
    }
    if (target === undefined) {
      const command = head.k === 'parse' ? 'Parse' : head.k === 'bind' ? 'Bind' : head.k === 'describe' ? 'Describe' : 'Close';
      target = newDraft('statement', head.ts, command);
      target.program = this.clientProgram;
      target.bytesIn = head.bytes;
      if (this.gapPending) {
        target.gapBefore = true;
        this.gapPending = false;
      }
      if (head.k === 'parse') {
        target.sql = head.sql;
        if (head.name !== '') target.statementId = head.name;
      } else if (head.k === 'bind') {
        const p = this.portals.get(head.portal);
        target.sql = p?.stmt?.sql;
        target.params = p?.params;
        if (head.statement !== '') target.statementId = head.statement;
      } else {
        target.statementId = head.name;
      }
    } else if (head.k === 'parse' && target.sql === undefined) {
      target.sql = head.sql;
    }
    target.bytesOut += wireLen + this.outAcc;
    this.outAcc = 0;
    this.applyError(target, fields);
    target.endTs = this.ts;
    this.emit(target);
    this.discardUntilSync();
  }

  /** After an error the server ignores everything up to Sync (protocol docs, "Extended Query"). */
  private discardUntilSync(): void {
    while (this.queue.length > 0 && this.queue[0]!.k !== 'sync') this.queue.shift();
  }

  private applyError(d: Draft, f: ErrorFields): void {
    d.status = 'error';
    d.error = f;
  }

  private flushQueue(): void {
    const q = this.queue.splice(0);
    for (const op of q) {
      if (!('d' in op)) continue;
      const d = op.d;
      if (d.completed && d.status !== 'error') d.status = 'ok';
      else if (d.status !== 'error') {
        this.stats.unmatchedRequests++;
        d.truncated = true;
      }
      this.closeSegment(d);
      this.emit(d);
    }
  }

  // ---- records -----------------------------------------------------------

  private emit(d: Draft): void {
    const ctx = this.ctx;
    const e: AuditEvent = {
      id: `${ctx.flowId}:${++this.seq}`,
      kind: d.kind,
      flowId: ctx.flowId,
      ts: d.ts,
      client: ctx.client,
      server: ctx.server,
      dbType: 'postgres',
      status: d.status,
    };
    if (d.endTs !== undefined) {
      e.endTs = d.endTs;
      e.durationUs = Math.max(0, Math.round(d.endTs - d.ts));
    }
    if (this.product !== undefined) e.dbProduct = this.product;
    if (this.serverVersion !== undefined) e.serverVersion = this.serverVersion;
    if (this.user !== undefined) e.user = this.user;
    if (this.database !== undefined) e.database = this.database;
    const program = d.kind === 'statement' ? d.program : this.clientProgram;
    if (program !== undefined && program !== '') e.clientProgram = program;
    if (this.sessionId !== undefined) e.sessionId = this.sessionId;
    if (this.tls !== undefined) e.tls = this.tls;
    if (d.command !== undefined) e.command = d.command;
    if (d.sql !== undefined) e.sql = d.sql;
    if (d.params !== undefined && d.params.length > 0) e.params = d.params;
    if (d.statementId !== undefined) e.statementId = d.statementId;
    const f = d.error;
    if (f !== undefined) {
      if (f.code !== undefined) {
        e.errorCode = f.code;
        e.sqlState = f.code;
      }
      if (f.message !== undefined) e.message = f.message;
      const a = (d.attributes ??= {});
      const sev = f.severityEn ?? f.severity;
      if (sev !== undefined) a.severity = sev;
      if (f.detail !== undefined) a.detail = f.detail;
      if (f.hint !== undefined) a.hint = f.hint;
      if (f.position !== undefined) a.position = f.position;
    }
    if (d.hasAffected) e.affectedRows = d.affected;
    if (d.hasReturned || d.columns !== undefined) e.rowsReturned = d.returned;
    if (d.columns !== undefined) e.columns = d.columns;
    if (d.rows !== undefined && d.rows.length > 0) e.rows = d.rows;
    if (d.bytesIn > 0) e.bytesIn = d.bytesIn;
    if (d.bytesOut > 0) e.bytesOut = d.bytesOut;
    if (d.copy !== undefined) {
      const a = (d.attributes ??= {});
      a.copy = d.copy;
      a.copyMessages = String(d.copyMessages);
      a.copyBytes = String(d.copyBytes);
    }
    if (d.tags.length > 0) (d.attributes ??= {}).commandTag = d.tags.join(';');
    if (d.attributes !== undefined) e.attributes = d.attributes;
    if (d.truncated) e.truncated = true;
    if (d.gapBefore) e.gapBefore = true;
    if (this.midSession) e.midSession = true;
    this.stats.events++;
    ctx.emit(e);
  }
}

/**
 * Applies a CommandComplete tag to the counters (protocol docs, CommandComplete):
 * `INSERT oid rows`, `UPDATE rows`, `DELETE rows`, `MERGE rows`, `SELECT rows`,
 * `MOVE rows`, `FETCH rows`, `COPY rows`; other tags carry no count.
 */
function applyTag(d: Draft, tag: string): void {
  const sp = tag.lastIndexOf(' ');
  if (sp < 0) {
    d.segRows = 0;
    return;
  }
  const n = Number(tag.slice(sp + 1));
  if (!Number.isFinite(n)) return;
  const verb = tag.slice(0, tag.indexOf(' '));
  switch (verb) {
    case 'INSERT':
    case 'UPDATE':
    case 'DELETE':
    case 'MERGE':
      d.affected += n;
      d.hasAffected = true;
      return;
    case 'SELECT':
    case 'FETCH':
      if (d.hasResult || d.segRows > 0) {
        d.returned += n;
        d.hasReturned = true;
      } else {
        // CREATE TABLE AS / SELECT INTO: rows written, none returned.
        d.affected += n;
        d.hasAffected = true;
      }
      return;
    case 'COPY':
      if (d.copy === 'out') {
        d.returned += n;
        d.hasReturned = true;
      } else {
        d.affected += n;
        d.hasAffected = true;
      }
      return;
  }
}

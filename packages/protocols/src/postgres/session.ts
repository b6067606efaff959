// The PostgreSQL session: simple and extended query, COPY, function calls;
// pairs each request with its response and emits the statement records
// (the start of the connection is login.ts; the named statements and portals,
// and the snapshot of the session, are state.ts).
//
// Pairing (protocol docs, "Extended Query" and "Pipelining"): the server
// answers frontend messages strictly in order, so requests wait in a FIFO of
// operations. An ErrorResponse fails the operation at the head; the server
// then skips everything up to the next Sync, and so does the queue.
//
// The hot path allocates the record and one operation per request, and
// nothing per result row: DataRows are counted without decoding unless rows
// are kept, and a RowDescription, a Parse or a command tag equal to the
// previous one reuses what that one decoded (a client repeats them).
import { ByteReader, decodeText, Direction, type CloseReason, type ParamValue } from '@dbtap/core';
import { FrameFlag, sameBytes, type Framer } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { decodeBackend, decodeFields, decodeFrontend, decodeStartup, STARTUP_HEADER, TYPED_HEADER } from './decoder.js';
import { answerFormat, pgFramer, startupFormat, typedFormat } from './framer.js';
import { isFatal, Phase, recordError, StartupNext } from './login.js';
import { Answer, BackendType, FrontendType, type ErrorFields, type FieldDescription } from './messages.js';
import { Op, OpKind, OpQueue, Req, Tag } from './requests.js';
import { PgState } from './state.js';
import { paramValue, rowText } from './values.js';

/** Most operations waiting for a response (oldest dropped beyond, counted unmatched). */
const MAX_QUEUE = 65536;

const EMPTY = new Uint8Array(0);

/** A PostgreSQL (or wire-compatible) session. */
export class PostgresSession extends PgState {
  private readonly client: Framer;
  private readonly server: Framer;
  private readonly reader = new ByteReader();
  private readonly queue: OpQueue;
  private readonly maxRows: number;
  /** A gap or lost sync since the last record started: the next one is marked gapBefore. */
  private gapPending = false;
  /** Client bytes not yet attributed to a record (Parse/Bind/Describe before their Execute). */
  private inAcc = 0;
  /** Server bytes not yet attributed to a record. */
  private outAcc = 0;
  /** The byte a server sent where an SSL answer was expected, re-framed as the start of a typed message. */
  private readonly replay = new Uint8Array(1);
  private replayPending = false;
  // The previous RowDescription and command tag, reused when repeated.
  private lastRowDesc: Uint8Array = EMPTY;
  private lastFields: readonly FieldDescription[] = [];
  private lastColumns: readonly string[] = [];
  private lastTagBytes: Uint8Array = EMPTY;
  private readonly lastTag = new Tag();
  private readonly cutTag = new Tag();

  /** @param ctx the connection and where its records go */
  constructor(ctx: SessionContext) {
    super(ctx);
    const max = ctx.options.maxMessageBytes;
    this.client = pgFramer(true, (m, w, f) => this.onClient(m, w, f), max, ctx.midStream);
    this.server = pgFramer(false, (m, w, f) => this.onServer(m, w, f), max, ctx.midStream);
    this.maxRows = ctx.options.maxRows;
    this.queue = new OpQueue(
      MAX_QUEUE,
      (op) => {
        if (op.req !== undefined) op.req.finish(this.records, op);
      },
      this.maxRows > 0,
    );
    this.track(this.client, this.server, this.queue);
  }

  // ---- plumbing ----------------------------------------------------------

  protected onData(dir: Direction, bytes: Uint8Array): void {
    if (dir === Direction.ToServer) {
      const c = this.client;
      // A TLS ClientHello instead of a startup packet: direct TLS (PostgreSQL 17 sslnegotiation=direct).
      if (this.login.phase === Phase.Startup && c.format === startupFormat && c.synced && c.idle && bytes[0] === 0x16 && bytes.length > 1 && bytes[1] === 0x03) {
        this.encrypt('direct-tls');
        // This chunk is the ClientHello: the TLS watcher sees it too.
        this.watchTls(dir, bytes);
        return;
      }
      c.push(bytes);
      if (c.takeLostSync()) this.gapPending = true;
      return;
    }
    const s = this.server;
    const used = s.push(bytes);
    if (this.replayPending) {
      // The sink stopped at a byte that was no SSL answer: it starts a typed message.
      this.replayPending = false;
      s.push(this.replay);
      s.push(bytes.subarray(used));
    }
    if (s.takeLostSync()) this.gapPending = true;
  }

  protected onGap(dir: Direction, nbytes: number): void {
    const f = dir === Direction.ToServer ? this.client : this.server;
    f.gap(nbytes);
    f.takeLostSync();
    this.gapPending = true;
    // Requests in flight may have lost their responses (or responses their requests).
    this.queue.markTruncated();
    if (dir === Direction.ToClient) this.queue.answersLost();
  }

  protected onClose(reason: CloseReason): void {
    if (!this.client.idle || !this.server.idle) this.queue.markTruncated();
    this.flushQueue();
    this.login.close();
    // Logged in: authenticated, or picked up mid-session (a failed login or a CancelRequest has no logout).
    this.loggedIn = this.login.phase === Phase.Ready;
    const ev = this.logoutOnClose(reason);
    if (ev !== undefined) {
      if (this.login.fatal !== undefined) recordError(this.records, ev, this.login.fatal);
      this.records.emit(ev);
    }
    this.client.off();
    this.server.off();
  }

  protected onBug(dir: Direction): void {
    (dir === Direction.ToServer ? this.client : this.server).loseSync();
    this.gapPending = true;
  }

  /** The stream turned encrypted (`how`: ssl, gss, direct-tls): the login attempt is recorded; the kit watches the rest. */
  private encrypt(how: string): void {
    this.encrypted(how);
    this.login.encrypted(how, this.now);
  }

  /** A reader on the body of a message (after its header). */
  private body(message: Uint8Array, header: number): ByteReader {
    return this.reader.reset(message, Math.min(header, message.length), message.length);
  }

  // ---- client side -------------------------------------------------------

  private onClient(message: Uint8Array, wireLen: number, flags: number): void {
    this.stats.messages++;
    const truncated = (flags & FrameFlag.Truncated) !== 0;
    if (this.client.format === startupFormat) return this.onStartup(message, wireLen, truncated);
    const type = message[0]!;
    // COPY FROM STDIN data: only counted.
    if (type === FrontendType.CopyData) return this.onCopyIn(message.length - TYPED_HEADER, wireLen, undefined);
    const m = decodeFrontend(type, this.body(message, TYPED_HEADER), truncated);
    if (typeof m === 'number') {
      if (truncated && type === FrontendType.Query) {
        // The text up to the hole (zero-filled) or the size limit.
        const nul = message.indexOf(0, TYPED_HEADER);
        return this.onQuery(message.subarray(TYPED_HEADER, nul < 0 ? message.length : nul), wireLen, true);
      }
      this.stats.malformed++;
      this.inAcc += wireLen;
      return;
    }
    if (m.type !== FrontendType.Password && m.type !== FrontendType.Terminate) this.afterLostAnswers(m.type);
    switch (m.type) {
      case FrontendType.Query:
        return this.onQuery(m.sql, wireLen, truncated);
      case FrontendType.Parse: {
        const st = this.parsed(m.name, m.sql, m.paramTypes, truncated);
        this.inAcc += wireLen;
        const op = new Op(OpKind.Parse, this.now, m.name, undefined);
        op.sql = st.sql;
        op.bytes = wireLen;
        return this.queue.push(op);
      }
      case FrontendType.Bind: {
        const stmt = this.statements.get(m.statement);
        const types = stmt?.types;
        const n = m.values.length;
        const params = new Array<ParamValue>(n);
        const charset = this.login.charset;
        for (let i = 0; i < n; i++) params[i] = paramValue(m.values[i]!, m.paramFormats[i]!, types?.[i] ?? 0, charset);
        this.remember(this.portals, m.portal, { statement: m.statement, stmt, params, fields: undefined, resultFormats: m.resultFormats });
        this.inAcc += wireLen;
        const op = new Op(OpKind.Bind, this.now, m.portal, undefined);
        op.statement = m.statement;
        op.bytes = wireLen;
        return this.queue.push(op);
      }
      case FrontendType.Describe:
      case FrontendType.Close: {
        if (m.type === FrontendType.Close) {
          if (m.target === 'S') this.statements.delete(m.name);
          else this.portals.delete(m.name);
        }
        this.inAcc += wireLen;
        const op = new Op(m.type === FrontendType.Close ? OpKind.Close : OpKind.Describe, this.now, m.name, undefined);
        op.target = m.target;
        op.bytes = wireLen;
        return this.queue.push(op);
      }
      case FrontendType.Execute: {
        const q = this.start('Execute', wireLen);
        const ev = q.ev;
        const portal = this.portals.get(m.portal);
        if (portal !== undefined) {
          if (portal.stmt !== undefined) {
            ev.sql = portal.stmt.sql;
            if (portal.stmt.cut) ev.truncated = true;
          }
          if (portal.params.length > 0) ev.params = portal.params;
          q.resultFormats = portal.resultFormats;
          if (portal.statement !== '') ev.statementId = portal.statement;
        }
        if (m.portal !== '') (ev.attributes ??= {}).portal = m.portal;
        if (m.maxRows !== 0) (ev.attributes ??= {}).maxRows = String(m.maxRows);
        const op = this.pushReq(OpKind.Execute, q, truncated);
        op.portal = portal;
        return;
      }
      case FrontendType.Sync:
        this.attachIn(wireLen);
        return this.queue.push(new Op(OpKind.Sync, this.now, '', undefined));
      case FrontendType.Flush:
        return this.attachIn(wireLen);
      case FrontendType.Terminate: {
        this.flushQueue();
        const ev = this.records.start('logout', this.now);
        ev.command = 'Terminate';
        ev.status = 'ok';
        this.records.end(ev, this.now);
        ev.bytesIn = wireLen;
        this.records.emit(ev);
        this.loggedOut = true;
        return;
      }
      case FrontendType.FunctionCall: {
        const q = this.start('FunctionCall', wireLen);
        q.ev.statementId = String(m.oid);
        const charset = this.login.charset;
        if (m.args.length > 0) q.ev.params = m.args.map((a, i) => paramValue(a, m.argFormats[i]!, 0, charset));
        this.pushReq(OpKind.Function, q, truncated);
        return;
      }
      case FrontendType.CopyDone:
        return this.onCopyIn(-1, wireLen, undefined);
      case FrontendType.CopyFail:
        return this.onCopyIn(-1, wireLen, m.message);
      case FrontendType.Password:
        if (!this.login.password(m.body, wireLen)) this.inAcc += wireLen;
        return;
    }
  }

  /**
   * A client request after a server-side gap. A client sends requests only
   * once the login is over, and (unless it pipelines) a new Query, FunctionCall
   * or extended-protocol batch only after the ReadyForQuery of the previous
   * one: when those were lost, the requests they answered are closed here
   * (status unknown), so that the responses that follow pair with the
   * requests they answer.
   */
  private afterLostAnswers(type: number): void {
    this.login.lost();
    const queue = this.queue;
    const head = queue.head();
    if (head === undefined || !head.answerLost || type === FrontendType.Sync || type === FrontendType.Flush) return;
    const tail = queue.at(queue.length - 1)!;
    if (tail.kind !== OpKind.Sync && tail.kind !== OpKind.Query && tail.kind !== OpKind.Function) return;
    while (queue.length > 0 && queue.head()!.answerLost) this.dropOp(queue.shift()!);
  }

  /** CopyData (`size` bytes of data; -1 for CopyDone / CopyFail) from the client, on the COPY it feeds. */
  private onCopyIn(size: number, wireLen: number, failure: string | undefined): void {
    const op = this.queue.headReq();
    if (op === undefined) {
      this.stats.unmatchedRequests++;
      return;
    }
    const q = op.req!;
    q.bytesIn += wireLen;
    if (size >= 0) {
      q.copyMessages++;
      q.copyBytes += size;
    }
    if (failure !== undefined) (q.ev.attributes ??= {}).copyFail = failure;
  }

  private onStartup(message: Uint8Array, wireLen: number, truncated: boolean): void {
    const p = decodeStartup(this.body(message, STARTUP_HEADER), truncated);
    if (typeof p === 'number') {
      this.stats.malformed++;
      // Not a startup packet after all: assume the typed protocol is already running.
      if (!truncated) this.client.format = typedFormat;
      return;
    }
    switch (this.login.startup(p, wireLen, this.now)) {
      case StartupNext.AwaitAnswer:
        this.server.format = answerFormat;
        return;
      case StartupNext.Typed:
        this.client.format = typedFormat;
        return;
      case StartupNext.Done:
        return;
    }
  }

  private onQuery(sqlBytes: Uint8Array, wireLen: number, truncated: boolean): void {
    const q = this.start('Query', wireLen);
    this.records.sql(q.ev, decodeText(sqlBytes, this.login.charset));
    this.pushReq(OpKind.Query, q, truncated);
  }

  /** A new statement record that takes the client bytes not yet attributed. */
  private start(command: string, wireLen: number): Req {
    const ev = this.records.start('statement', this.now);
    ev.command = command;
    const q = new Req(ev, this.inAcc + wireLen);
    this.inAcc = 0;
    return q;
  }

  private pushReq(kind: OpKind, q: Req, truncated: boolean): Op {
    const op = new Op(kind, q.ev.ts, '', q);
    op.truncated = truncated;
    if (this.gapPending) {
      op.gapBefore = true;
      this.gapPending = false;
    }
    this.queue.push(op);
    return op;
  }

  /** Adds Sync/Flush bytes to the last statement of the batch, if it is still open. */
  private attachIn(wireLen: number): void {
    const last = this.queue.at(this.queue.length - 1);
    if (last !== undefined && last.req !== undefined) last.req.bytesIn += wireLen;
    else this.inAcc += wireLen;
  }

  // ---- server side -------------------------------------------------------

  private onServer(message: Uint8Array, wireLen: number, flags: number): void {
    if (this.server.format === answerFormat) return this.onAnswer(message[0]!, wireLen);
    this.stats.messages++;
    const type = message[0]!;
    // DataRow is most of a result: count it without decoding unless rows are kept.
    if (type === BackendType.DataRow && flags === 0) return this.onDataRow(message, wireLen);
    const truncated = (flags & FrameFlag.Truncated) !== 0;
    if (type === BackendType.RowDescription && !truncated) return this.onRowDescription(message, wireLen);
    if (type === BackendType.CopyData) return this.onCopyOut(message, wireLen);
    if (type === BackendType.ReadyForQuery && !truncated && message.length === TYPED_HEADER + 1) return this.onReady(message[TYPED_HEADER]!, wireLen);
    if (type === BackendType.CommandComplete && !truncated) {
      const nul = message.indexOf(0, TYPED_HEADER);
      if (nul >= 0) return this.onComplete(this.tagOf(message, nul), wireLen);
    }
    const m = decodeBackend(type, this.body(message, TYPED_HEADER), truncated);
    if (typeof m === 'number') {
      if (!truncated) this.stats.malformed++;
      // A cut DataRow still counts as a row.
      if (type === BackendType.DataRow) {
        const op = this.queue.resultTarget();
        if (op !== undefined) {
          const q = op.req!;
          q.segRows++;
          op.truncated = true;
          q.bytesOut += wireLen;
          return;
        }
      }
      this.outAcc += wireLen;
      return;
    }
    switch (m.type) {
      case BackendType.Authentication:
        if (!this.login.auth(m.code, m.data, wireLen, this.now)) this.outAcc += wireLen;
        return;
      case BackendType.ParameterStatus:
        this.outAcc += wireLen;
        return this.login.parameterStatus(m.name, m.value);
      case BackendType.BackendKeyData:
        this.outAcc += wireLen;
        return this.login.backendKey(m.pid);
      case BackendType.NegotiateProtocolVersion:
        this.outAcc += wireLen;
        return this.login.negotiated(m.minor);
      case BackendType.ReadyForQuery:
        return this.onReady(m.status.charCodeAt(0), wireLen);
      case BackendType.ErrorResponse:
        return this.onError(m.fields, wireLen);
      case BackendType.NoticeResponse: {
        const op = this.queue.headReq();
        if (op !== undefined) {
          op.req!.bytesOut += wireLen;
          if (m.fields.message !== undefined) (op.req!.ev.attributes ??= {}).notice ??= m.fields.message;
        } else this.outAcc += wireLen;
        return;
      }
      case BackendType.NotificationResponse:
        // Asynchronous; not part of any request's response.
        return;
      case BackendType.ParseComplete:
        this.outAcc += wireLen;
        return this.take(OpKind.Parse);
      case BackendType.BindComplete:
        this.outAcc += wireLen;
        return this.take(OpKind.Bind);
      case BackendType.CloseComplete:
        this.outAcc += wireLen;
        return this.take(OpKind.Close);
      case BackendType.ParameterDescription: {
        this.outAcc += wireLen;
        const op = this.queue.find(OpKind.Describe);
        if (op !== undefined && op.target === 'S') {
          const st = this.statements.get(op.name);
          if (st !== undefined) st.types = m.types;
        }
        return;
      }
      case BackendType.NoData:
        this.outAcc += wireLen;
        return this.take(OpKind.Describe);
      case BackendType.RowDescription:
        // Cut by a gap, yet whole enough to decode.
        return this.onFields(m.fields, undefined, wireLen);
      case BackendType.DataRow: {
        // Truncated DataRows that still decoded; whole ones took the fast path above.
        const op = this.queue.resultTarget();
        if (op === undefined) return this.queue.noRequest();
        op.req!.bytesOut += wireLen;
        op.req!.segRows++;
        op.truncated = true;
        return;
      }
      case BackendType.CommandComplete:
        this.cutTag.parse(m.tag);
        return this.onComplete(this.cutTag, wireLen);
      case BackendType.EmptyQueryResponse: {
        const op = this.queue.resultTarget();
        if (op === undefined) return this.queue.noRequest();
        op.req!.bytesOut += wireLen;
        (op.req!.ev.attributes ??= {}).emptyQuery = 'true';
        if (op.kind === OpKind.Execute) this.finishExecute(op);
        return;
      }
      case BackendType.PortalSuspended: {
        const op = this.queue.resultTarget();
        if (op === undefined || op.kind !== OpKind.Execute) return this.queue.noRequest();
        const q = op.req!;
        q.bytesOut += wireLen;
        (q.ev.attributes ??= {}).portalSuspended = 'true';
        q.returned += q.segRows;
        q.hasReturned = true;
        q.segRows = 0;
        return this.finishExecute(op);
      }
      case BackendType.CopyInResponse:
      case BackendType.CopyOutResponse:
      case BackendType.CopyBothResponse: {
        const op = this.queue.resultTarget();
        if (op === undefined) return this.queue.noRequest();
        op.req!.bytesOut += wireLen;
        op.req!.copy = m.type === BackendType.CopyInResponse ? 'in' : m.type === BackendType.CopyOutResponse ? 'out' : 'both';
        return;
      }
      case BackendType.CopyDone: {
        const op = this.queue.resultTarget();
        if (op !== undefined) op.req!.bytesOut += wireLen;
        return;
      }
      case BackendType.FunctionCallResponse: {
        const op = this.queue.resultTarget();
        if (op === undefined) return this.queue.noRequest();
        const q = op.req!;
        q.bytesOut += wireLen;
        q.completed = true;
        q.endTs = this.now;
        return;
      }
    }
  }

  private onAnswer(b: number, wireLen: number): void {
    this.server.format = typedFormat;
    if (b !== Answer.Ssl && b !== Answer.Gss && b !== Answer.Refused) {
      // Not an answer (e.g. an ErrorResponse from a server that does not know the request): re-frame it as typed.
      this.replay[0] = b;
      this.replayPending = true;
      this.server.stop();
      return;
    }
    this.stats.messages++;
    if (this.login.answer(b, wireLen, this.now)) this.encrypt(b === Answer.Ssl ? 'ssl' : 'gss');
  }

  /** CopyData from the server: counted, and decoded only for the first rows of a COPY TO. */
  private onCopyOut(message: Uint8Array, wireLen: number): void {
    const op = this.queue.resultTarget();
    if (op === undefined) return;
    const q = op.req!;
    q.bytesOut += wireLen;
    q.copyMessages++;
    q.copyBytes += message.length - TYPED_HEADER;
    if (this.maxRows > 0 && q.copy === 'out') {
      const rows = (q.rows ??= []);
      if (rows.length < this.maxRows) {
        let line = decodeText(message.subarray(TYPED_HEADER), this.login.charset);
        if (line.endsWith('\n')) line = line.slice(0, -1);
        rows.push([line]);
      }
    }
  }

  private onDataRow(message: Uint8Array, wireLen: number): void {
    const op = this.queue.resultTarget();
    if (op === undefined) return this.queue.noRequest();
    const q = op.req!;
    q.bytesOut += wireLen;
    q.segRows++;
    if (q.rows !== undefined && q.rows.length < this.maxRows && q.hasResult && !q.hasReturned) {
      const m = decodeBackend(BackendType.DataRow, this.body(message, TYPED_HEADER));
      if (typeof m !== 'number' && m.type === BackendType.DataRow) q.rows.push(rowText(m.values, q.fields, q.resultFormats, this.login.charset));
      else this.stats.malformed++;
    }
  }

  /** The tag of a CommandComplete (`message[5, nul)`); the previous one when the bytes repeat. */
  private tagOf(message: Uint8Array, nul: number): Tag {
    if (!sameBytes(message, TYPED_HEADER, nul, this.lastTagBytes)) {
      const bytes = message.subarray(TYPED_HEADER, nul);
      this.lastTag.parse(decodeText(bytes, 'utf-8'));
      this.lastTagBytes = bytes.slice();
    }
    return this.lastTag;
  }

  private onRowDescription(message: Uint8Array, wireLen: number): void {
    if (!sameBytes(message, TYPED_HEADER, message.length, this.lastRowDesc)) {
      const fields = decodeFields(this.body(message, TYPED_HEADER));
      if (typeof fields === 'number') {
        this.stats.malformed++;
        this.outAcc += wireLen;
        return;
      }
      this.lastRowDesc = message.slice(TYPED_HEADER);
      this.lastFields = fields;
      this.lastColumns = fields.map((f) => f.name);
    }
    this.onFields(this.lastFields, this.lastColumns, wireLen);
  }

  /** A RowDescription: the answer to a Describe, or the start of a result. */
  private onFields(fields: readonly FieldDescription[] | undefined, columns: readonly string[] | undefined, wireLen: number): void {
    const head = this.queue.head();
    if (head !== undefined && head.kind === OpKind.Describe) {
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
    const op = this.queue.resultTarget();
    if (op === undefined) return this.queue.noRequest();
    op.req!.bytesOut += wireLen;
    op.req!.startResult(fields, columns, this.maxRows > 0);
  }


  /**
   * Removes the op a ParseComplete/BindComplete/CloseComplete/NoData answers.
   * Ops before it were not answered (lost to a gap): their records go out.
   */
  private take(kind: OpKind): void {
    const i = this.queue.indexOfKind(kind, OpKind.Sync, OpKind.Sync);
    if (i < 0 || this.queue.at(i)!.kind !== kind) return this.queue.noRequest();
    this.shiftThrough(i);
  }

  /** Shifts ops 0..i off the queue; those before `i` were never answered. */
  private shiftThrough(i: number): Op {
    for (let k = 0; k < i; k++) this.dropOp(this.queue.shift()!);
    return this.queue.shift()!;
  }

  private onComplete(tag: Tag, wireLen: number): void {
    const op = this.queue.resultTarget();
    if (op === undefined) return this.queue.noRequest();
    const q = op.req!;
    q.bytesOut += wireLen;
    q.tags = q.tags === undefined ? tag.text : `${q.tags};${tag.text}`;
    q.completed = true;
    q.endTs = this.now;
    q.applyTag(tag);
    q.segRows = 0;
    q.hasResult = false;
    if (op.kind === OpKind.Execute) this.finishExecute(op);
  }

  private finishExecute(op: Op): void {
    const i = this.queue.indexOf(op);
    if (i >= 0) this.shiftThrough(i);
    const q = op.req!;
    q.bytesOut += this.outAcc;
    this.outAcc = 0;
    q.endTs = this.now;
    if (q.ev.status !== 'error') q.ev.status = 'ok';
    q.closeSegment();
    op.req!.finish(this.records, op);
  }

  /** ReadyForQuery with its transaction status byte ('I', 'T' or 'E'). */
  private onReady(status: number, wireLen: number): void {
    if (this.login.ready(wireLen + this.outAcc, this.now)) {
      this.outAcc = 0;
      return;
    }
    this.login.phase = Phase.Ready;
    this.txStatus = String.fromCharCode(status);
    // Pop through the operation this ReadyForQuery answers (Sync, Query or FunctionCall).
    const i = this.queue.indexOfKind(OpKind.Sync, OpKind.Query, OpKind.Function);
    if (i < 0) {
      this.queue.noRequest();
      this.outAcc = 0;
      return;
    }
    const op = this.shiftThrough(i);
    const q = op.req;
    if (q === undefined) {
      this.outAcc = 0;
      return;
    }
    q.bytesOut += wireLen + this.outAcc;
    this.outAcc = 0;
    q.endTs = this.now;
    if (q.ev.status !== 'error') q.ev.status = op.truncated && !q.completed ? 'unknown' : 'ok';
    q.closeSegment();
    op.req!.finish(this.records, op);
  }

  /**
   * An op that was never answered (its response lost to a gap or before the
   * capture): statements go out with status unknown, and so does a Parse, so
   * that SQL the server received is never silently dropped.
   */
  private dropOp(op: Op): void {
    if (op.req !== undefined) {
      this.stats.unmatchedRequests++;
      op.truncated = true;
      op.req!.finish(this.records, op);
    } else if (op.kind === OpKind.Parse && op.sql !== undefined) {
      this.stats.unmatchedRequests++;
      const q = this.startAt(op, 'Parse');
      q.ev.sql = op.sql;
      if (op.name !== '') q.ev.statementId = op.name;
      op.truncated = true;
      q.finish(this.records, op);
    }
  }

  /** A record for a queued op that had none (a Parse never answered, a Parse/Bind/Describe/Close that failed). */
  private startAt(op: Op, command: string): Req {
    const ev = this.records.start('statement', op.ts);
    ev.command = command;
    return new Req(ev, op.bytes);
  }

  private onError(fields: ErrorFields, wireLen: number): void {
    if (this.login.error(fields, wireLen + this.outAcc, this.now)) {
      this.outAcc = 0;
      return;
    }
    const queue = this.queue;
    const head = queue.head();
    if (head === undefined || head.kind === OpKind.Sync) {
      // FATAL while idle (shutdown, idle timeout, terminated backend): goes on the logout record.
      if (isFatal(fields)) this.login.fatal = fields;
      else queue.noRequest();
      this.outAcc += wireLen;
      return;
    }
    const hq = head.req;
    if (hq !== undefined) {
      hq.bytesOut += wireLen;
      recordError(this.records, hq.ev, fields);
      hq.endTs = this.now;
      hq.closeSegment();
      if (head.kind === OpKind.Execute) {
        queue.shift();
        hq.finish(this.records, head);
        this.queue.discardUntilSync();
      }
      // Query / FunctionCall records go out at ReadyForQuery.
      return;
    }
    // Parse / Bind / Describe / Close failed: the Execute it was for (if queued) carries the error.
    queue.shift();
    let target: Op | undefined;
    for (let i = 0; i < queue.length; i++) {
      const op = queue.at(i)!;
      if (op.kind === OpKind.Sync) break;
      if (op.kind === OpKind.Execute) {
        target = op;
        break;
      }
    }
    let q: Req;
    if (target === undefined) {
      target = head;
      q = this.failedRequest(head);
    } else {
      q = target.req!;
      if (head.kind === OpKind.Parse && q.ev.sql === undefined && head.sql !== undefined) q.ev.sql = head.sql;
    }
    q.bytesOut += wireLen + this.outAcc;
    this.outAcc = 0;
    recordError(this.records, q.ev, fields);
    q.endTs = this.now;
    q.finish(this.records, target);
    this.queue.discardUntilSync();
  }

  /** The record of a Parse / Bind / Describe / Close that failed with no Execute after it. */
  private failedRequest(head: Op): Req {
    const command = head.kind === OpKind.Parse ? 'Parse' : head.kind === OpKind.Bind ? 'Bind' : head.kind === OpKind.Describe ? 'Describe' : 'Close';
    const q = this.startAt(head, command);
    const ev = q.ev;
    if (this.gapPending) {
      head.gapBefore = true;
      this.gapPending = false;
    }
    if (head.kind === OpKind.Parse) {
      if (head.sql !== undefined) ev.sql = head.sql;
      if (head.name !== '') ev.statementId = head.name;
    } else if (head.kind === OpKind.Bind) {
      const p = this.portals.get(head.name);
      if (p?.stmt !== undefined) ev.sql = p.stmt.sql;
      if (p !== undefined && p.params.length > 0) ev.params = p.params;
      if (head.statement !== '') ev.statementId = head.statement;
    } else {
      ev.statementId = head.name;
    }
    return q;
  }

  private flushQueue(): void {
    const queue = this.queue;
    for (let op = queue.shift(); op !== undefined; op = queue.shift()) {
      const q = op.req;
      if (q === undefined) continue;
      if (q.ev.status !== 'error') {
        if (q.completed) q.ev.status = 'ok';
        else {
          this.stats.unmatchedRequests++;
          op.truncated = true;
        }
      }
      q.closeSegment();
      op.req!.finish(this.records, op);
    }
  }
}

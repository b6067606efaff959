// One way to build audit records, for every protocol: the session's identity
// copied onto each record, ids, timing, error fields, the SQL length cut and
// the charset precedence.
import { normalizeCharset, type AuditEvent, type AuditEventKind, type Timestamp } from '@dbtap/core';
import type { SessionContext, SessionStats } from '../plugin.js';

/**
 * The text charset of a connection, in one place: the audit object's charset
 * wins (a legacy GBK client on a latin1 connection), then what the connection
 * negotiated (normalised; an unknown label is ignored), then `fallback`.
 *
 * ```ts
 * pickCharset('gbk', 'latin1')      // 'gbk'
 * pickCharset(undefined, 'UTF8')    // 'utf-8'
 * pickCharset(undefined, 'klingon') // 'utf-8'
 * ```
 */
export function pickCharset(objectCharset: string | undefined, negotiated: string | undefined, fallback = 'utf-8'): string {
  if (objectCharset !== undefined && objectCharset !== '') return objectCharset;
  if (negotiated !== undefined) {
    const label = normalizeCharset(negotiated);
    if (label !== undefined) return label;
  }
  return fallback;
}

/** The record fields that describe the connection rather than one statement. */
export type IdentityField = 'dbProduct' | 'serverVersion' | 'sessionId' | 'user' | 'database' | 'clientProgram' | 'clientLibrary' | 'clientHost' | 'osUser' | 'clientPid' | 'tls';

/** Session facts copied onto every record (the fields of {@link IdentityField}); the session updates them as it learns them. */
export type SessionIdentity = { -readonly [K in IdentityField]?: AuditEvent[K] };

/** Error fields of a response, as {@link RecordBuilder.error} applies them. */
export interface RecordError {
  /** Database error code. */
  readonly code?: number | string;
  /** SQLSTATE. */
  readonly sqlState?: string;
  /** Message text. */
  readonly message?: string;
}

/** Builds the records of one session; see the module comment. */
export class RecordBuilder {
  /** The identity copied onto every record started from now on. */
  readonly who: SessionIdentity = {};
  /** While true, records carry `midSession` (the capture did not see the login). */
  midSession: boolean;
  private n = 0;
  private readonly maxSql: number;

  /**
   * @param ctx the session's context (flow, endpoints, options, emit)
   * @param dbType the `dbType` of every record (the decoder's name)
   * @param stats the session's counters (`events` is counted here)
   */
  constructor(
    private readonly ctx: SessionContext,
    readonly dbType: string,
    private readonly stats: SessionStats,
  ) {
    this.midSession = ctx.midStream;
    this.maxSql = ctx.options.maxSqlLength;
  }

  /** Records emitted so far. */
  get emitted(): number {
    return this.n;
  }

  /** Continues the numbering of a restored session: the next record is number `emitted + 1`. */
  resume(emitted: number): void {
    this.n = emitted;
  }

  /** A new record of `kind` at `ts`, with the identity filled in and status `unknown`. */
  start(kind: AuditEventKind, ts: Timestamp): AuditEvent {
    const ctx = this.ctx;
    const w = this.who;
    const ev: AuditEvent = { id: '', kind, flowId: ctx.flowId, ts, client: ctx.client, server: ctx.server, dbType: this.dbType, status: 'unknown' };
    if (w.dbProduct !== undefined) ev.dbProduct = w.dbProduct;
    if (w.serverVersion !== undefined) ev.serverVersion = w.serverVersion;
    if (w.sessionId !== undefined) ev.sessionId = w.sessionId;
    if (w.user !== undefined) ev.user = w.user;
    if (w.database !== undefined) ev.database = w.database;
    if (w.clientProgram !== undefined) ev.clientProgram = w.clientProgram;
    if (w.clientLibrary !== undefined) ev.clientLibrary = w.clientLibrary;
    if (w.clientHost !== undefined) ev.clientHost = w.clientHost;
    if (w.osUser !== undefined) ev.osUser = w.osUser;
    if (w.clientPid !== undefined) ev.clientPid = w.clientPid;
    if (w.tls !== undefined) ev.tls = w.tls;
    if (this.midSession) ev.midSession = true;
    return ev;
  }

  /** SQL text cut to the session's `maxSqlLength`; returns true when it was cut. */
  cutSql(text: string): [sql: string, cut: boolean] {
    return text.length > this.maxSql ? [text.slice(0, this.maxSql), true] : [text, false];
  }

  /** Sets `ev.sql` from `text` cut to `maxSqlLength`, marking the record truncated when cut. */
  sql(ev: AuditEvent, text: string): void {
    if (text.length > this.maxSql) {
      ev.sql = text.slice(0, this.maxSql);
      ev.truncated = true;
    } else {
      ev.sql = text;
    }
  }

  /** Sets `endTs` and `durationUs` (rounded, never negative). */
  end(ev: AuditEvent, endTs: Timestamp): void {
    ev.endTs = endTs;
    ev.durationUs = Math.max(0, Math.round(endTs - ev.ts));
  }

  /** Marks the record failed with the response's error fields. */
  error(ev: AuditEvent, e: RecordError): void {
    ev.status = 'error';
    if (e.code !== undefined) ev.errorCode = e.code;
    if (e.sqlState !== undefined) ev.sqlState = e.sqlState;
    if (e.message !== undefined) ev.message = e.message;
  }

  /** Assigns the record its id (`flowId:n`), counts it and hands it to the pipeline. */
  emit(ev: AuditEvent): void {
    ev.id = `${this.ctx.flowId}:${++this.n}`;
    this.stats.events++;
    this.ctx.emit(ev);
  }
}

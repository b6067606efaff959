import { AUDIT_EVENT_KINDS, DbtapError, RISK_LEVELS, riskRank, type AuditEvent, type AuditEventKind, type EventStatus, type StatementType, type Timestamp } from '@dbtap/core';
import { ServerErrorCodes } from '../errors.js';
import { toNdjson } from '../format.js';
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type AlertQuery,
  type AppendOptions,
  type PageQuery,
  type RecordQuery,
  type SessionQuery,
  type SessionSummary,
  type SessionTimeline,
  type TimelineEntry,
  type SortOrder,
  type SummaryQuery,
  type TimeInput,
} from './types.js';

/** Error codes of the stores and the HTTP API (besides `@dbtap/core`'s `ErrorCodes`); a view of {@link ServerErrorCodes}. */
export const StoreErrorCodes = {
  BAD_QUERY: ServerErrorCodes.BAD_QUERY,
  REPORT_RANGE: ServerErrorCodes.REPORT_RANGE,
  BAD_CURSOR: ServerErrorCodes.BAD_CURSOR,
  STORE_CLOSED: ServerErrorCodes.STORE_CLOSED,
  RETENTION_BUSY: ServerErrorCodes.RETENTION_BUSY,
  BAD_RECORD: ServerErrorCodes.BAD_RECORD,
  STORE_FAILED: ServerErrorCodes.STORE_FAILED,
} as const;

const KINDS = AUDIT_EVENT_KINDS;
const STATEMENT_TYPES: readonly StatementType[] = ['select', 'insert', 'update', 'delete', 'merge', 'ddl', 'dcl', 'tcl', 'other'];
const STATUSES: readonly EventStatus[] = ['ok', 'error', 'unknown'];


function bad(message: string, details?: Record<string, unknown>): DbtapError {
  return new DbtapError(StoreErrorCodes.BAD_QUERY, message, details);
}

// ISO 8601 date-time with optional fraction (any number of digits) and offset.
// Date.parse alone would drop the microsecond digits.
const isoRe = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Parses a {@link TimeInput} to microseconds since the epoch. Numbers are
 * taken as microseconds; a string of digits too. ISO 8601 strings keep up to
 * microsecond precision; a date-time without offset is UTC.
 */
export function parseTime(value: TimeInput, name = 'time'): Timestamp {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw bad(`${name}: not a valid timestamp: ${value}`, { parameter: name });
    return value;
  }
  if (typeof value !== 'string') throw bad(`${name}: expected ISO 8601 text or microseconds`, { parameter: name });
  const s = value.trim();
  if (/^\d{1,17}$/.test(s)) return Number(s);
  const m = isoRe.exec(s);
  if (m === null) throw bad(`${name}: not an ISO 8601 date-time: ${JSON.stringify(value)}`, { parameter: name });
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m;
  const base = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  const check = new Date(base);
  if (Number.isNaN(base) || check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 60) {
    throw bad(`${name}: no such date-time: ${JSON.stringify(value)}`, { parameter: name });
  }
  let offsetMin = 0;
  if (zone !== 'Z') {
    const z = zone.replace(':', '');
    const hours = Number(z.slice(1, 3));
    const minutes = Number(z.slice(3, 5));
    // UTC offsets in use run from -12:00 to +14:00 (ISO 8601 allows no more than 23:59): refuse nonsense like +99:00
    if (minutes > 59 || hours * 60 + minutes > 14 * 60) throw bad(`${name}: UTC offset ${zone} is beyond ±14:00: ${JSON.stringify(value)}`, { parameter: name });
    offsetMin = (z[0] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const micros = frac === '' ? 0 : Math.floor(Number(frac.padEnd(9, '0')) / 1000);
  return (base - offsetMin * 60_000) * 1000 + micros;
}

/** A normalised time range and page of any paged query. */
export interface NormalizedPage {
  from: number | undefined;
  to: number | undefined;
  order: SortOrder;
  limit: number;
  after: Cursor | undefined;
}

/** Decoded paging position: the last item's time and insertion sequence. */
export interface Cursor {
  ts: number;
  seq: number;
}

/** Encodes a paging position as an opaque URL-safe string bound to an order. */
export function encodeCursor(order: SortOrder, c: Cursor): string {
  return Buffer.from(`v1:${order === 'asc' ? 'a' : 'd'}:${c.ts}:${c.seq}`).toString('base64url');
}

/** Decodes {@link encodeCursor}'s output; throws `DBTAP_E_BAD_CURSOR` for anything else. */
export function decodeCursor(cursor: string, order: SortOrder): Cursor {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('latin1') : '';
  const m = /^v1:([ad]):(\d{1,17}):(\d{1,17})$/.exec(text);
  if (m === null) throw new DbtapError(StoreErrorCodes.BAD_CURSOR, 'cursor: not a cursor this store issued');
  if ((m[1] === 'a') !== (order === 'asc')) throw new DbtapError(StoreErrorCodes.BAD_CURSOR, `cursor: issued for the other sort order than ${order}`);
  return { ts: Number(m[2]), seq: Number(m[3]) };
}

function optString(q: object, key: string): string | undefined {
  const v = (q as Record<string, unknown>)[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${key}: expected a string`, { parameter: key });
  if (v.length > 4096) throw bad(`${key}: longer than 4096 characters`, { parameter: key });
  return v;
}

function oneOf<T extends string>(q: object, key: string, allowed: readonly T[]): T | undefined {
  const v = optString(q, key);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw bad(`${key}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`, { parameter: key });
  return v as T;
}

function manyOf<T extends string>(q: object, key: string, allowed: readonly T[]): T[] | undefined {
  const v = (q as Record<string, unknown>)[key];
  if (v === undefined || v === null) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return undefined;
  for (const item of list) {
    if (typeof item !== 'string' || !(allowed as readonly string[]).includes(item)) {
      throw bad(`${key}: expected one or more of ${allowed.join(', ')}, got ${JSON.stringify(item)}`, { parameter: key });
    }
  }
  return [...new Set(list as T[])];
}

function optBool(q: object, key: string): boolean | undefined {
  const v = (q as Record<string, unknown>)[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${key}: expected true or false`, { parameter: key });
  return v;
}

/** Validates the shared paging fields. */
export function normalizePage(q: PageQuery): NormalizedPage {
  if (q === null || typeof q !== 'object') throw bad('query: expected an object');
  const from = q.from === undefined || q.from === null ? undefined : Math.floor(parseTime(q.from, 'from'));
  const to = q.to === undefined || q.to === null ? undefined : Math.ceil(parseTime(q.to, 'to'));
  if (from !== undefined && to !== undefined && to < from) throw bad('to: earlier than from', { parameter: 'to' });
  const order = oneOf(q, 'order', ['asc', 'desc'] as const) ?? 'desc';
  let limit = DEFAULT_PAGE_SIZE;
  if (q.limit !== undefined && q.limit !== null) {
    if (typeof q.limit !== 'number' || !Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_PAGE_SIZE) {
      throw bad(`limit: expected an integer from 1 to ${MAX_PAGE_SIZE}`, { parameter: 'limit' });
    }
    limit = q.limit;
  }
  const cursor = optString(q, 'cursor');
  return { from, to, order, limit, after: cursor === undefined || cursor === '' ? undefined : decodeCursor(cursor, order) };
}

/** A {@link RecordQuery} after validation. */
export interface NormalizedRecordQuery extends NormalizedPage {
  kinds: AuditEventKind[] | undefined;
  auditObjectId: string | undefined;
  user: string | undefined;
  clientIp: string | undefined;
  program: string | undefined;
  dbType: string | undefined;
  statementTypes: StatementType[] | undefined;
  object: string | undefined;
  minRisk: number | undefined;
  ruleId: string | undefined;
  status: EventStatus | undefined;
  flowId: string | undefined;
  /** Full-text terms: each a list of lower-case words, the last one a prefix when `prefix`. */
  text: TextTerm[] | undefined;
}

/** One full-text term: consecutive words (a phrase). */
export interface TextTerm {
  words: string[];
  prefix: boolean;
}

/** Splits a full-text query into phrase terms of words (letters and digits). */
export function parseText(text: string): TextTerm[] {
  const terms: TextTerm[] = [];
  for (const raw of text.split(/\s+/)) {
    if (raw === '') continue;
    const words = raw.toLowerCase().match(/[\p{L}\p{N}]+/gu);
    if (words === null) continue;
    terms.push({ words, prefix: raw.endsWith('*') });
  }
  if (terms.length > 32) throw bad('text: more than 32 terms', { parameter: 'text' });
  return terms;
}

/** Validates a {@link RecordQuery}; throws `DBTAP_E_BAD_QUERY` / `DBTAP_E_BAD_CURSOR`. */
export function normalizeRecordQuery(q: RecordQuery): NormalizedRecordQuery {
  const page = normalizePage(q);
  const minRisk = oneOf(q, 'minRisk', RISK_LEVELS);
  const object = optString(q, 'object');
  const text = optString(q, 'text');
  const terms = text === undefined ? undefined : parseText(text);
  if (terms !== undefined && terms.length === 0 && text !== undefined && text.trim() !== '') {
    throw bad('text: no words to search for', { parameter: 'text' });
  }
  return {
    ...page,
    kinds: manyOf(q, 'kind', KINDS),
    auditObjectId: optString(q, 'auditObjectId'),
    user: optString(q, 'user'),
    clientIp: optString(q, 'clientIp'),
    program: optString(q, 'program'),
    dbType: optString(q, 'dbType'),
    statementTypes: manyOf(q, 'statementType', STATEMENT_TYPES),
    object: object === undefined || object === '' ? undefined : object.toLowerCase(),
    minRisk: minRisk === undefined ? undefined : riskRank(minRisk),
    ruleId: optString(q, 'ruleId'),
    status: oneOf(q, 'status', STATUSES),
    flowId: optString(q, 'flowId'),
    text: terms === undefined || terms.length === 0 ? undefined : terms,
  };
}

/** A {@link SessionQuery} after validation. */
export interface NormalizedSessionQuery extends NormalizedPage {
  user: string | undefined;
  clientIp: string | undefined;
  program: string | undefined;
  auditObjectId: string | undefined;
  dbType: string | undefined;
  minRisk: number | undefined;
  hasErrors: boolean | undefined;
}

/** Validates a {@link SessionQuery}. */
export function normalizeSessionQuery(q: SessionQuery): NormalizedSessionQuery {
  const page = normalizePage(q);
  const minRisk = oneOf(q, 'minRisk', RISK_LEVELS);
  return {
    ...page,
    user: optString(q, 'user'),
    clientIp: optString(q, 'clientIp'),
    program: optString(q, 'program'),
    auditObjectId: optString(q, 'auditObjectId'),
    dbType: optString(q, 'dbType'),
    minRisk: minRisk === undefined ? undefined : riskRank(minRisk),
    hasErrors: optBool(q, 'hasErrors'),
  };
}

/** An {@link AlertQuery} after validation. */
export interface NormalizedAlertQuery extends NormalizedPage {
  ruleId: string | undefined;
  minRisk: number | undefined;
  auditObjectId: string | undefined;
  acknowledged: boolean | undefined;
}

/** Validates an {@link AlertQuery}. */
export function normalizeAlertQuery(q: AlertQuery): NormalizedAlertQuery {
  const page = normalizePage(q);
  const minRisk = oneOf(q, 'minRisk', RISK_LEVELS);
  return {
    ...page,
    ruleId: optString(q, 'ruleId'),
    minRisk: minRisk === undefined ? undefined : riskRank(minRisk),
    auditObjectId: optString(q, 'auditObjectId'),
    acknowledged: optBool(q, 'acknowledged'),
  };
}

/** A {@link SummaryQuery} after validation. */
export interface NormalizedSummaryQuery {
  from: number | undefined;
  to: number | undefined;
  auditObjectId: string | undefined;
  top: number;
}

/** Validates a {@link SummaryQuery}. */
export function normalizeSummaryQuery(q: SummaryQuery): NormalizedSummaryQuery {
  const page = normalizePage({ from: q.from, to: q.to } as PageQuery);
  let top = 20;
  if (q.top !== undefined && q.top !== null) {
    if (typeof q.top !== 'number' || !Number.isInteger(q.top) || q.top < 1 || q.top > 1000) throw bad('top: expected an integer from 1 to 1000', { parameter: 'top' });
    top = q.top;
  }
  return { from: page.from, to: page.to, auditObjectId: optString(q, 'auditObjectId'), top };
}



/** Throws `DBTAP_E_BAD_RECORD` when a record lacks what the store indexes. */
export function checkRecord(e: AuditEvent, index: number): void {
  const fail = (what: string): never => {
    throw new DbtapError(StoreErrorCodes.BAD_RECORD, `record ${index}: ${what}`, { index, id: (e as Partial<AuditEvent> | null)?.id });
  };
  if (e === null || typeof e !== 'object') fail('not an object');
  if (typeof e.id !== 'string' || e.id === '') fail('id missing');
  if (!KINDS.includes(e.kind)) fail(`kind ${JSON.stringify(e.kind)} unknown`);
  if (typeof e.flowId !== 'string') fail('flowId missing');
  if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) fail('ts not a timestamp');
  for (const side of ['client', 'server'] as const) {
    const ep = e[side];
    if (ep === null || typeof ep !== 'object' || typeof ep.ip !== 'string' || typeof ep.port !== 'number') fail(`${side} endpoint missing or malformed`);
  }
}

/**
 * The stored JSON of a record: the same text as `toNdjson`, which converts
 * bigints and byte arrays through a replacer. A replacer makes
 * `JSON.stringify` call back into JavaScript for every value, so a record
 * that holds neither (no `params`, the only field whose type allows a bigint,
 * and no such value at its top level) is serialised without one (a
 * micro-benchmark on the loaded test machine: about half the time per
 * record). A bigint anywhere else makes the plain
 * call throw, and the record then goes through `toNdjson` too.
 */
export function recordJson(e: AuditEvent): string {
  if (e.params === undefined) {
    let plain = true;
    for (const k in e) {
      const v = (e as unknown as Record<string, unknown>)[k];
      if (typeof v === 'bigint' || ArrayBuffer.isView(v)) { plain = false; break; }
    }
    if (plain) {
      try {
        return JSON.stringify(e);
      } catch {
        // a bigint below the top level: the replacer converts it
      }
    }
  }
  return toNdjson(e);
}

/** End time of a record: `endTs`, else `ts`. */
export function endOf(e: AuditEvent): number {
  return typeof e.endTs === 'number' && e.endTs > e.ts ? e.endTs : e.ts;
}

/** Per-flow aggregate of one appended batch, merged into the session table. */
export interface SessionDelta {
  id: string;
  first: AuditEvent;
  start: number;
  end: number;
  user: string | undefined;
  database: string | undefined;
  program: string | undefined;
  sessionId: string | undefined;
  auditObjectId: string | undefined;
  dbProduct: string | undefined;
  login: EventStatus | undefined;
  ended: boolean;
  records: number;
  statements: number;
  errors: number;
  maxRisk: number;
}

/** Folds records (alerts excluded) into per-session deltas. */
export function sessionDeltas(events: readonly AuditEvent[], accepted: (i: number) => boolean): Map<string, SessionDelta> {
  const out = new Map<string, SessionDelta>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.kind === 'alert' || e.flowId === '' || !accepted(i)) continue;
    let d = out.get(e.flowId);
    if (d === undefined) {
      d = {
        id: e.flowId, first: e, start: Math.floor(e.ts), end: Math.floor(endOf(e)),
        user: undefined, database: undefined, program: undefined, sessionId: undefined, auditObjectId: undefined, dbProduct: undefined,
        login: undefined, ended: false, records: 0, statements: 0, errors: 0, maxRisk: 0,
      };
      out.set(e.flowId, d);
    }
    if (e.ts < d.start) { d.start = Math.floor(e.ts); d.first = e; }
    d.end = Math.max(d.end, Math.floor(endOf(e)));
    d.user ??= e.user;
    d.database ??= e.database;
    d.program ??= e.clientProgram;
    d.sessionId ??= e.sessionId;
    d.auditObjectId ??= e.auditObjectId;
    d.dbProduct ??= e.dbProduct;
    if (e.kind === 'login') d.login = e.status;
    if (e.kind === 'logout') d.ended = true;
    d.records++;
    if (e.kind === 'statement') d.statements++;
    if (e.status === 'error') d.errors++;
    d.maxRisk = Math.max(d.maxRisk, riskRank(e.risk));
  }
  return out;
}

/** Builds a timeline from records already in (ts, insertion) order. */
export function buildTimeline(session: SessionSummary, records: AuditEvent[]): SessionTimeline {
  const entries: TimelineEntry[] = [];
  const start = records.length > 0 ? Math.min(session.start, records[0]!.ts) : session.start;
  let prevEnd: number | undefined;
  for (const record of records) {
    const idle = prevEnd === undefined ? 0 : Math.max(0, record.ts - prevEnd);
    entries.push({ record, offsetUs: record.ts - start, idleUs: idle });
    prevEnd = prevEnd === undefined ? endOf(record) : Math.max(prevEnd, endOf(record));
  }
  return { session, entries };
}


/** Validates {@link AppendOptions.position}; a malformed one throws `DBTAP_E_BAD_RECORD`. */
export function checkPosition(options: AppendOptions | undefined): AppendOptions['position'] {
  const p = options?.position;
  if (p === undefined) return undefined;
  if (typeof p.source !== 'string' || p.source === '' || p.source.length > 512 || !Number.isSafeInteger(p.seq) || p.seq < 0) {
    throw new DbtapError(StoreErrorCodes.BAD_RECORD, 'append: position must be { source: non-empty string, seq: integer >= 0 }');
  }
  if (p.sessions !== undefined && typeof p.sessions !== 'string') throw new DbtapError(StoreErrorCodes.BAD_RECORD, 'append: position.sessions must be a string');
  return p;
}

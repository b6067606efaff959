import { RISK_LEVELS, DbtapError, type AuditEvent, type AuditEventKind, type RiskLevel } from '@dbtap/core';
import { ServerErrorCodes } from '../errors.js';
import { StoreErrorCodes, parseTime } from '../store/query.js';
import type { AggregateQuery, AggregateResult, AggregateRow, AuditStore, ReportDimension, ReportFilter } from '../store/types.js';
import { checkReportSpan, normalizeWorkingHours } from '../store/hours.js';
import {
  REPORT_KINDS,
  type ComplianceBreakdown,
  type ComplianceReport,
  type ComplianceSection,
  type ErrorStat,
  type KeyCount,
  type ObjectStat,
  type Report,
  type ReportEvent,
  type ReportHeader,
  type ReportKind,
  type ReportOptions,
  type ServerReport,
  type ServerSection,
  type SourceReport,
  type SourceStat,
  type StatementStat,
  type StatementsReport,
  type VolumePoint,
} from './types.js';

const MINUTE = 60_000_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Bucket widths tried, smallest first, for an automatic volume bucket. */
const NICE_BUCKETS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 7 * DAY];
const AUTO_BUCKETS = 120;
/** Most buckets a volume series may have. */
export const MAX_BUCKETS = 2000;
const SQL_CUT = 2000;
const ACTIVITY: AuditEventKind[] = ['login', 'statement', 'logout'];
const PRIVILEGE_VERBS = ['GRANT', 'REVOKE', 'DENY'];

/** Error codes of the reports (besides the stores' `DBTAP_E_BAD_QUERY`); a view of {@link ServerErrorCodes}. */
export const ReportErrorCodes = {
  UNKNOWN_REPORT: ServerErrorCodes.UNKNOWN_REPORT,
  REPORT_RANGE: ServerErrorCodes.REPORT_RANGE,
} as const;

function bad(parameter: string, message: string): DbtapError {
  return new DbtapError(StoreErrorCodes.BAD_QUERY, `${parameter}: ${message}`, { parameter });
}

interface Normalized {
  from: number | undefined;
  to: number | undefined;
  auditObjectId: string | undefined;
  top: number;
  bucketUs: number | undefined;
  workingHours: Required<NonNullable<ReportOptions['workingHours']>>;
  sensitiveTables: string[];
  minRisk: RiskLevel;
}

function normalizeOptions(o: ReportOptions): Normalized {
  if (o === null || typeof o !== 'object') throw bad('options', 'expected an object');
  const from = o.from === undefined || o.from === null ? undefined : Math.floor(parseTime(o.from, 'from'));
  const to = o.to === undefined || o.to === null ? undefined : Math.ceil(parseTime(o.to, 'to'));
  if (from !== undefined && to !== undefined && to < from) throw bad('to', 'earlier than from');
  const top = o.top ?? 20;
  if (!Number.isInteger(top) || top < 1 || top > 1000) throw bad('top', 'expected an integer from 1 to 1000');
  const bucketUs = o.bucketUs;
  if (bucketUs !== undefined && (!Number.isInteger(bucketUs) || bucketUs < 1_000_000 || bucketUs > 366 * DAY)) throw bad('bucket', 'expected a width from 1 second to 366 days');
  const minRisk = o.minRisk ?? 'medium';
  if (!RISK_LEVELS.includes(minRisk)) throw bad('minRisk', `expected one of ${RISK_LEVELS.join(', ')}`);
  const sensitive = o.sensitiveTables ?? [];
  if (!Array.isArray(sensitive) || sensitive.length > 1000 || sensitive.some((t) => typeof t !== 'string' || t.trim() === '' || t.length > 256)) {
    throw bad('sensitiveTables', 'expected at most 1000 table names (`name` or `schema.name`)');
  }
  const wh = normalizeWorkingHours(o.workingHours ?? {}, 'workingHours');
  const clock = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  if (o.auditObjectId !== undefined && typeof o.auditObjectId !== 'string') throw bad('auditObjectId', 'expected a string');
  return {
    from, to, auditObjectId: o.auditObjectId, top, bucketUs, minRisk,
    workingHours: { timeZone: wh.timeZone, start: clock(wh.startMin), end: clock(wh.endMin), days: wh.days },
    sensitiveTables: [...new Set(sensitive.map((t) => t.trim().toLowerCase()))],
  };
}

function cut(s: string | undefined): string | undefined {
  return s === undefined || s.length <= SQL_CUT ? s : `${s.slice(0, SQL_CUT)}…`;
}

/** The summary of a record that reports list. */
export function reportEvent(e: AuditEvent): ReportEvent {
  const r: ReportEvent = { id: e.id, kind: e.kind, ts: e.ts, clientIp: e.client?.ip ?? '', status: e.status };
  if (typeof e.durationUs === 'number') r.durationUs = e.durationUs;
  if (e.auditObjectId !== undefined) r.auditObjectId = e.auditObjectId;
  if (e.user !== undefined) r.user = e.user;
  if (e.clientProgram !== undefined) r.program = e.clientProgram;
  if (e.database !== undefined) r.database = e.database;
  if (e.statementType !== undefined) r.statementType = e.statementType;
  if (e.verb !== undefined) r.verb = e.verb;
  if (e.fingerprint !== undefined) r.fingerprint = e.fingerprint;
  const sql = cut(e.sql ?? e.alert?.reason);
  if (sql !== undefined) r.sql = sql;
  if (Array.isArray(e.objects) && e.objects.length > 0) r.objects = e.objects.map((o) => (o.schema ? `${o.schema}.${o.name}` : o.name));
  if (e.errorCode !== undefined) r.errorCode = String(e.errorCode);
  else if (e.sqlState !== undefined && e.status === 'error') r.errorCode = e.sqlState;
  if (e.message !== undefined) r.message = e.message;
  if (e.risk !== undefined) r.risk = e.risk;
  if (Array.isArray(e.ruleIds) && e.ruleIds.length > 0) r.ruleIds = [...e.ruleIds];
  return r;
}

function header<K extends ReportKind>(kind: K, n: Normalized, span?: AggregateRow): ReportHeader & { kind: K } {
  const h: ReportHeader & { kind: K } = { kind, generatedAt: Date.now() * 1000 };
  if (n.from !== undefined) h.from = n.from;
  if (n.to !== undefined) h.to = n.to;
  if (span?.firstTs !== undefined) h.firstTs = span.firstTs;
  if (span?.lastTs !== undefined) h.lastTs = span.lastTs;
  if (n.auditObjectId !== undefined) h.auditObjectId = n.auditObjectId;
  return h;
}

function baseFilter(n: Normalized, auditObjectId = n.auditObjectId): ReportFilter {
  const f: ReportFilter = {};
  if (n.from !== undefined) f.from = n.from;
  if (n.to !== undefined) f.to = n.to;
  if (auditObjectId !== undefined) f.auditObjectId = auditObjectId;
  return f;
}

function statementStat(r: AggregateRow, total: number): StatementStat {
  const s: StatementStat = {
    fingerprint: r.key[r.key.length - 1] ?? '',
    count: r.count, errors: r.errors, timed: r.timed, totalUs: r.totalUs,
    timeShare: total > 0 ? r.totalUs / total : 0,
    rowsReturned: r.rowsReturned, affectedRows: r.affectedRows, sessions: r.sessions,
  };
  if (r.timed > 0) s.avgUs = r.totalUs / r.timed;
  if (r.minUs !== undefined) s.minUs = r.minUs;
  if (r.p95Us !== undefined) s.p95Us = r.p95Us;
  if (r.maxUs !== undefined) s.maxUs = r.maxUs;
  if (r.firstTs !== undefined) s.firstTs = r.firstTs;
  if (r.lastTs !== undefined) s.lastTs = r.lastTs;
  if (r.sample !== undefined) {
    if (r.sample.statementType !== undefined) s.statementType = r.sample.statementType;
    if (r.sample.verb !== undefined) s.verb = r.sample.verb;
    const sql = cut(r.sample.sql);
    if (sql !== undefined) s.sample = sql;
  }
  return s;
}

/**
 * Statement statistics per fingerprint, like a query digest: executions,
 * errors, total/mean/min/95th-percentile/max response time, share of all
 * response time, rows returned and changed; largest total time first.
 */
export async function statementsReport(store: AuditStore, options: ReportOptions = {}): Promise<StatementsReport> {
  const n = normalizeOptions(options);
  const f: ReportFilter = { ...baseFilter(n), kind: 'statement' };
  const [all, byFp] = await Promise.all([
    store.aggregate({ ...f, percentiles: true }),
    store.aggregate({ ...f, groupBy: ['fingerprint'], orderBy: 'totalUs', top: n.top, percentiles: true, samples: true }),
  ]);
  const t = all.rows[0]!;
  const report: StatementsReport = {
    ...header('statements', n, t),
    totals: {
      statements: t.count, fingerprints: byFp.groups, errors: t.errors, timed: t.timed, totalUs: t.totalUs,
      rowsReturned: t.rowsReturned, affectedRows: t.affectedRows,
    },
    fingerprints: byFp.rows.map((r) => statementStat(r, t.totalUs)),
  };
  if (t.p95Us !== undefined) report.totals.p95Us = t.p95Us;
  return report;
}

/** The bucket width for a span: the given one, else the smallest "nice" width giving at most 120 buckets. */
export function chooseBucket(spanUs: number, given?: number): number {
  if (given !== undefined) return given;
  for (const b of NICE_BUCKETS) if (spanUs / b <= AUTO_BUCKETS) return b;
  return Math.ceil(spanUs / AUTO_BUCKETS / DAY) * DAY;
}

function volumeSeries(rows: AggregateRow[], lo: number | undefined, hi: number | undefined, bucketUs: number): VolumePoint[] {
  const points = new Map<number, VolumePoint>();
  for (const r of rows) {
    const ts = Number(r.key[0]);
    let p = points.get(ts);
    if (p === undefined) points.set(ts, (p = { ts, statements: 0, errors: 0, logins: 0, failedLogins: 0 }));
    if (r.key[1] === 'statement') { p.statements += r.count; p.errors += r.errors; }
    if (r.key[1] === 'login') { p.logins += r.count; p.failedLogins += r.errors; }
  }
  if (lo === undefined || hi === undefined) return [...points.values()].sort((a, b) => a.ts - b.ts);
  const out: VolumePoint[] = [];
  for (let ts = Math.floor(lo / bucketUs) * bucketUs; ts <= hi; ts += bucketUs) {
    out.push(points.get(ts) ?? { ts, statements: 0, errors: 0, logins: 0, failedLogins: 0 });
  }
  return out;
}

async function serverSection(store: AuditStore, n: Normalized, id: string, bucketUs: number, lo: number | undefined, hi: number | undefined): Promise<ServerSection> {
  const f = baseFilter(n, id);
  const st: ReportFilter = { ...f, kind: 'statement' };
  const [kinds, activity, volume, fps, errs, slowest, objs] = await Promise.all([
    store.aggregate({ ...f, groupBy: ['kind'], top: 10 }),
    store.aggregate({ ...f, kind: ACTIVITY, countsOnly: true }),
    store.aggregate({ ...f, kind: ['login', 'statement'], groupBy: ['time', 'kind'], bucketUs, orderBy: 'key', top: 10_000, countsOnly: true }),
    store.aggregate({ ...st, groupBy: ['fingerprint'], top: n.top, percentiles: true, samples: true }),
    store.aggregate({ ...f, kind: ['login', 'statement'], status: 'error', groupBy: ['error'], top: n.top, samples: true, countsOnly: true }),
    store.reportRecords({ ...st, order: 'slowest', limit: n.top }),
    store.aggregate({ ...st, groupBy: ['object'], top: n.top, countsOnly: true }),
  ]);
  const kind = (k: string): AggregateRow | undefined => kinds.rows.find((r) => r.key[0] === k);
  const statementTotal = kind('statement')?.totalUs ?? 0;
  const objects: ObjectStat[] = objs.rows.map((r) => {
    const o: ObjectStat = { object: r.key[0]!, count: r.count, errors: r.errors, byType: {} };
    if (r.lastTs !== undefined) o.lastTs = r.lastTs;
    return o;
  });
  if (objects.length > 0) {
    const types = await store.aggregate({ ...st, objects: objects.map((o) => o.object), groupBy: ['object', 'statementType'], top: 10_000, countsOnly: true });
    const byName = new Map(objects.map((o) => [o.object, o]));
    for (const r of types.rows) {
      const o = byName.get(r.key[0]!);
      if (o !== undefined) o.byType[r.key[1] || 'unknown'] = r.count;
    }
  }
  return {
    auditObjectId: id,
    totals: {
      records: activity.rows[0]!.count, sessions: activity.rows[0]!.sessions,
      logins: kind('login')?.count ?? 0, failedLogins: kind('login')?.errors ?? 0,
      statements: kind('statement')?.count ?? 0, errors: kind('statement')?.errors ?? 0,
      totalUs: statementTotal, alerts: kind('alert')?.count ?? 0,
    },
    volume: volumeSeries(volume.rows, lo, hi, bucketUs),
    topFingerprints: fps.rows.map((r) => statementStat(r, statementTotal)),
    errors: errs.rows.map((r): ErrorStat => {
      const e: ErrorStat = { code: r.key[0]!, count: r.count };
      if (r.sample?.message !== undefined) e.message = r.sample.message;
      if (r.sample?.fingerprint !== undefined) e.fingerprint = r.sample.fingerprint;
      if (r.lastTs !== undefined) e.lastTs = r.lastTs;
      return e;
    }),
    slowest: slowest.map(reportEvent),
    objects,
  };
}

/**
 * Server analysis, one section per audit object (or only the one asked
 * for): totals, volume over time, most frequent fingerprints, errors by
 * code, slowest statements, objects touched.
 */
export async function serverReport(store: AuditStore, options: ReportOptions = {}): Promise<ServerReport> {
  const n = normalizeOptions(options);
  const span = (await store.aggregate({ ...baseFilter(n), kind: ACTIVITY, countsOnly: true })).rows[0]!;
  const lo = n.from ?? span.firstTs;
  const hi = n.to !== undefined ? n.to - 1 : span.lastTs;
  if (lo !== undefined && hi !== undefined) checkReportSpan(lo, hi);
  const bucketUs = chooseBucket(lo !== undefined && hi !== undefined ? hi - lo + 1 : 0, n.bucketUs);
  if (lo !== undefined && hi !== undefined && (hi - lo) / bucketUs >= MAX_BUCKETS) {
    throw bad('bucket', `${Math.ceil((hi - lo + 1) / bucketUs)} buckets over the range; at most ${MAX_BUCKETS}`);
  }
  let ids: string[];
  if (n.auditObjectId !== undefined) ids = [n.auditObjectId];
  else ids = (await store.aggregate({ ...baseFilter(n), kind: ACTIVITY, groupBy: ['auditObject'], top: n.top, countsOnly: true })).rows.map((r) => r.key[0]!);
  const objects: ServerSection[] = [];
  for (const id of ids) objects.push(await serverSection(store, n, id, bucketUs, lo, hi));
  return { ...header('server', n, span), bucketUs, objects };
}

async function sourceStats(store: AuditStore, n: Normalized, dim: 'clientIp' | 'user' | 'program'): Promise<SourceStat[]> {
  const f: ReportFilter = { ...baseFilter(n), kind: ACTIVITY };
  const top = await store.aggregate({ ...f, groupBy: [dim], top: n.top, countsOnly: true });
  if (top.rows.length === 0) return [];
  const keys = top.rows.map((r) => r.key[0]!);
  const detail = await store.aggregate({ ...f, [dim]: keys, groupBy: [dim, 'kind'], top: 10_000 });
  return top.rows.map((r) => {
    const key = r.key[0]!;
    const part = (k: string): AggregateRow | undefined => detail.rows.find((d) => d.key[0] === key && d.key[1] === k);
    const s: SourceStat = {
      key, sessions: r.sessions,
      logins: part('login')?.count ?? 0, failedLogins: part('login')?.errors ?? 0,
      statements: part('statement')?.count ?? 0, errors: part('statement')?.errors ?? 0,
      totalUs: part('statement')?.totalUs ?? 0, maxRisk: r.maxRisk,
    };
    if (r.firstTs !== undefined) s.firstTs = r.firstTs;
    if (r.lastTs !== undefined) s.lastTs = r.lastTs;
    return s;
  });
}

/** Source analysis: sessions, logins, statements and errors per client address, user and program, and their combinations. */
export async function sourceReport(store: AuditStore, options: ReportOptions = {}): Promise<SourceReport> {
  const n = normalizeOptions(options);
  const f: ReportFilter = { ...baseFilter(n), kind: ACTIVITY };
  const [span, clientIps, users, programs, combos] = await Promise.all([
    store.aggregate({ ...f, countsOnly: true }),
    sourceStats(store, n, 'clientIp'),
    sourceStats(store, n, 'user'),
    sourceStats(store, n, 'program'),
    store.aggregate({ ...f, groupBy: ['clientIp', 'user', 'program'], top: n.top, countsOnly: true }),
  ]);
  return {
    ...header('source', n, span.rows[0]),
    clientIps, users, programs,
    combinations: combos.rows.map((r) => {
      const c = { clientIp: r.key[0]!, user: r.key[1]!, program: r.key[2]!, records: r.count, sessions: r.sessions, errors: r.errors } as SourceReport['combinations'][number];
      if (r.lastTs !== undefined) c.lastTs = r.lastTs;
      return c;
    }),
  };
}

interface SectionSpec {
  id: string;
  title: string;
  description: string;
  filter: ReportFilter;
  by: ReportDimension[];
  /** Keeps only some entries of a breakdown (the sensitive objects among all touched). */
  keep?: (dim: ReportDimension, key: string) => boolean;
}

async function complianceSection(store: AuditStore, n: Normalized, spec: SectionSpec, skip: boolean): Promise<ComplianceSection> {
  const out: ComplianceSection = { id: spec.id, title: spec.title, description: spec.description, count: 0, errors: 0, sessions: 0, breakdowns: [], events: [] };
  if (skip) {
    out.breakdowns = spec.by.map((by) => ({ by, entries: [] }));
    return out;
  }
  const q = (extra: Partial<AggregateQuery>): Promise<AggregateResult> => store.aggregate({ ...spec.filter, ...extra, countsOnly: true });
  const [total, events, ...parts] = await Promise.all([
    q({}),
    store.reportRecords({ ...spec.filter, limit: n.top }),
    ...spec.by.map((by) => q({ groupBy: [by], top: spec.keep === undefined ? n.top : 10_000 })),
  ]);
  const t = total.rows[0]!;
  out.count = t.count;
  out.errors = t.errors;
  out.sessions = t.sessions;
  out.events = events.map(reportEvent);
  out.breakdowns = spec.by.map((by, i): ComplianceBreakdown => ({
    by,
    entries: parts[i]!.rows
      .filter((r) => spec.keep === undefined || spec.keep(by, r.key[0]!))
      .slice(0, n.top)
      .map((r): KeyCount => ({ key: r.key[0]!, count: r.count, errors: r.errors })),
  }));
  return out;
}

/**
 * Compliance: risky operations (risk at or above a level), privilege
 * changes (GRANT, REVOKE, DENY), account changes (other DCL: users, roles,
 * passwords), failed logins, access outside working hours, and access to
 * sensitive tables, each with counts, breakdowns and the latest records.
 */
export async function complianceReport(store: AuditStore, options: ReportOptions = {}): Promise<ComplianceReport> {
  const n = normalizeOptions(options);
  const f = baseFilter(n);
  const wh = n.workingHours;
  const sensitive = n.sensitiveTables;
  // A sensitive entry `name` matches the object `name` in any schema; `schema.name` matches itself.
  const isSensitive = (key: string): boolean => sensitive.some((s) => key === s || (!s.includes('.') && key.endsWith(`.${s}`)));
  const dayNames = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const specs: SectionSpec[] = [
    {
      id: 'riskyOperations', title: 'Risky operations',
      description: `Logins and statements the rules rated ${n.minRisk} or higher.`,
      filter: { ...f, kind: ['login', 'statement'], minRisk: n.minRisk }, by: ['ruleId', 'user', 'clientIp'],
    },
    {
      id: 'privilegeChanges', title: 'Privilege changes',
      description: 'GRANT, REVOKE and DENY statements.',
      filter: { ...f, kind: 'statement', statementType: 'dcl', verbs: PRIVILEGE_VERBS }, by: ['verb', 'user'],
    },
    {
      id: 'accountChanges', title: 'Account changes',
      description: 'Other access-control statements: users, roles and passwords created, changed or dropped.',
      filter: { ...f, kind: 'statement', statementType: 'dcl', excludeVerbs: PRIVILEGE_VERBS }, by: ['verb', 'user'],
    },
    {
      id: 'failedLogins', title: 'Failed logins',
      description: 'Login attempts the server refused.',
      filter: { ...f, kind: 'login', status: 'error' }, by: ['user', 'clientIp', 'error'],
    },
    {
      id: 'offHours', title: 'Off-hours access',
      description: `Logins and statements outside ${wh.start}-${wh.end} on ${wh.days.map((d) => dayNames[d]).join(', ')} (${wh.timeZone}).`,
      filter: { ...f, kind: ['login', 'statement'], offHours: wh }, by: ['user', 'clientIp', 'program'],
    },
    {
      id: 'sensitiveAccess', title: 'Sensitive-table access',
      description: sensitive.length === 0 ? 'No sensitive tables are configured.' : `Statements touching ${sensitive.join(', ')}.`,
      filter: { ...f, kind: 'statement', objects: sensitive }, by: ['object', 'user', 'statementType'],
      keep: (dim, key) => dim !== 'object' || isSensitive(key),
    },
  ];
  const [span, ...sections] = await Promise.all([
    store.aggregate({ ...f, kind: ACTIVITY, countsOnly: true }),
    ...specs.map((s) => complianceSection(store, n, s, s.id === 'sensitiveAccess' && sensitive.length === 0)),
  ]);
  return {
    ...header('compliance', n, span.rows[0]),
    settings: { minRisk: n.minRisk, workingHours: wh, sensitiveTables: sensitive },
    sections,
  };
}

/** Builds a report of the given kind; an unknown kind throws `DBTAP_E_UNKNOWN_REPORT`. */
export async function buildReport(store: AuditStore, kind: ReportKind, options: ReportOptions = {}): Promise<Report> {
  switch (kind) {
    case 'server':
      return serverReport(store, options);
    case 'source':
      return sourceReport(store, options);
    case 'compliance':
      return complianceReport(store, options);
    case 'statements':
      return statementsReport(store, options);
    default:
      throw new DbtapError(ReportErrorCodes.UNKNOWN_REPORT, `no report kind ${JSON.stringify(kind)} (known: ${REPORT_KINDS.join(', ')})`, { parameter: 'kind' });
  }
}

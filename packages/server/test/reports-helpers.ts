// Fixtures of the report tests: a deterministic audit log with fingerprints,
// durations, rows, errors, DCL, sensitive tables and a daylight-saving
// change, and an in-memory reference that answers report aggregates
// without SQL, written independently of the stores.
import type { AuditEvent, AuditEventKind, RiskLevel, StatementType } from '@dbtap/core';
import type { AggregateQuery, AggregateRow, ReportDimension, ReportFilter, ReportRecordQuery, WorkingHours } from '../src/store/index.js';

/** 2024-03-29T00:00:00Z in µs: the log spans the 2024-03-31 change to summer time in Europe. */
export const R0 = Date.UTC(2024, 2, 29) * 1000;
export const MINUTE = 60_000_000;
export const HOUR = 60 * MINUTE;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Template {
  sql: (i: number) => string | undefined;
  fingerprint?: string;
  type?: StatementType;
  verb?: string;
  objects?: { schema?: string; name: string; op: string }[];
  risk?: RiskLevel;
  rules?: string[];
  rows?: boolean;
  affected?: boolean;
}

const templates: Template[] = [
  { sql: (i) => `SELECT * FROM shop.orders WHERE id = ${i}`, fingerprint: 'select * from shop.orders where id = ?', type: 'select', verb: 'SELECT', objects: [{ schema: 'shop', name: 'orders', op: 'read' }], rows: true },
  { sql: (i) => `SELECT * FROM shop.orders WHERE id = ${i}`, fingerprint: 'select * from shop.orders where id = ?', type: 'select', verb: 'SELECT', objects: [{ schema: 'shop', name: 'orders', op: 'read' }], rows: true },
  { sql: (i) => `select salary from hr.Salaries where emp = ${i}`, fingerprint: 'select salary from hr.salaries where emp = ?', type: 'select', verb: 'SELECT', objects: [{ schema: 'hr', name: 'Salaries', op: 'read' }], risk: 'medium', rules: ['sensitive-object'], rows: true },
  { sql: (i) => `UPDATE customers SET seen = ${i}`, fingerprint: 'update customers set seen = ?', type: 'update', verb: 'UPDATE', objects: [{ name: 'customers', op: 'write' }], affected: true },
  { sql: (i) => `INSERT INTO audit_log VALUES (${i})`, fingerprint: 'insert into audit_log values(?+)', type: 'insert', verb: 'INSERT', objects: [{ name: 'audit_log', op: 'write' }, { schema: 'hr', name: 'salaries', op: 'read' }], affected: true },
  { sql: () => "GRANT SELECT ON hr.salaries TO 'bob'@'%'", fingerprint: 'grant select on hr.salaries to ?@?', type: 'dcl', verb: 'GRANT', objects: [{ schema: 'hr', name: 'salaries', op: 'grant' }], risk: 'high', rules: ['privilege-change'] },
  { sql: () => 'REVOKE ALL ON *.* FROM mallory', fingerprint: 'revoke all on *.* from mallory', type: 'dcl', verb: 'REVOKE', risk: 'high', rules: ['privilege-change'] },
  { sql: () => "CREATE USER 'eve'@'%' IDENTIFIED BY 'x'", fingerprint: 'create user ?@? identified by ?', type: 'dcl', verb: 'CREATE USER', risk: 'high', rules: ['account-change', 'privilege-change'] },
  { sql: () => "SET PASSWORD FOR 'eve'@'%' = PASSWORD('y')", fingerprint: 'set password for ?@? = password(?)', type: 'dcl', verb: 'SET PASSWORD', risk: 'medium', rules: ['account-change'] },
  { sql: (i) => `DROP TABLE tmp_${i % 3}`, fingerprint: 'drop table tmp_?', type: 'ddl', verb: 'DROP TABLE', objects: [{ name: `tmp_x`, op: 'drop' }], risk: 'high', rules: ['ddl-drop'] },
  { sql: () => undefined, type: 'other' },
  { sql: () => 'BEGIN', fingerprint: 'begin', type: 'tcl', verb: 'BEGIN' },
];

/**
 * `sessions` connections over about four days from {@link R0}: logins (some
 * failing), statements from the templates with durations (some missing),
 * rows, errors with codes or only a SQLSTATE, alerts, logouts. Some records
 * have no user, program or audit object.
 */
export function reportLog(sessions = 70, seed = 5): AuditEvent[] {
  const rand = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const out: AuditEvent[] = [];
  for (let s = 0; s < sessions; s++) {
    const flowId = `r${seed}-${s}`;
    const user = pick(['alice', 'alice', 'bob', 'carol', 'svc', undefined]);
    const program = pick(['mysql', 'psql', 'etl', undefined]);
    const auditObjectId = pick(['db-a', 'db-a', 'db-b', undefined]);
    const client = { ip: `10.0.0.${1 + Math.floor(rand() * 4)}`, port: 40000 + s };
    const dbType = s % 3 === 0 ? 'postgres' : 'mysql';
    const common: Partial<AuditEvent> = {
      flowId, client, server: { ip: '10.1.0.1', port: dbType === 'mysql' ? 3306 : 5432 }, dbType, database: pick(['shop', 'hr', undefined]),
      ...(user !== undefined ? { user } : {}), ...(program !== undefined ? { clientProgram: program } : {}), ...(auditObjectId !== undefined ? { auditObjectId } : {}),
    };
    let ts = R0 + Math.floor(rand() * 4 * 24 * HOUR);
    let n = 0;
    const failed = rand() < 0.2;
    out.push({
      ...common, id: `${flowId}:${n++}`, kind: 'login', ts, endTs: ts + 700, durationUs: 700, status: failed ? 'error' : 'ok',
      risk: failed ? 'medium' : 'none', ...(failed ? { errorCode: 1045, sqlState: '28000', message: 'Access denied', ruleIds: ['login-failed'] } : {}),
    } as AuditEvent);
    if (failed) continue;
    const count = 1 + Math.floor(rand() * 12);
    for (let i = 0; i < count; i++) {
      // Now and then two records share a time.
      if (rand() > 0.1) ts += 1 + Math.floor(rand() * 40 * MINUTE);
      const t = pick(templates);
      const sql = t.sql(Math.floor(rand() * 1000));
      const timed = rand() > 0.1;
      const error = rand() < 0.1;
      const dur = 50 + Math.floor(rand() * rand() * 200_000);
      const e = {
        ...common, id: `${flowId}:${n++}`, kind: 'statement', ts, status: timed ? (error ? 'error' : 'ok') : 'unknown', risk: t.risk ?? pick(['none', 'none', 'info', 'low']),
        ...(timed ? { endTs: ts + dur, durationUs: dur } : {}),
        ...(sql !== undefined ? { sql } : { command: 'COM_PING' }),
        ...(t.type !== undefined ? { statementType: t.type } : {}), ...(t.verb !== undefined ? { verb: t.verb } : {}),
        ...(t.fingerprint !== undefined ? { fingerprint: t.fingerprint } : {}), ...(t.objects !== undefined ? { objects: t.objects } : {}),
        ...(t.rules !== undefined ? { ruleIds: t.rules } : {}),
      } as AuditEvent;
      if (timed && !error && t.rows) e.rowsReturned = Math.floor(rand() * 5);
      if (timed && !error && t.affected) e.affectedRows = Math.floor(rand() * 3);
      if (error) {
        if (dbType === 'mysql') { e.errorCode = pick([1146, 1064, 1142]); e.sqlState = '42000'; } else e.sqlState = pick(['42P01', '42601']);
        e.message = `failure ${e.errorCode ?? e.sqlState}`;
      }
      out.push(e);
      if (t.risk === 'high') {
        out.push({ ...common, id: `${flowId}:${n++}`, kind: 'alert', ts, status: 'ok', risk: 'high', ruleIds: t.rules, alert: { ruleId: t.rules![0]!, name: 'x', reason: `${t.verb} seen`, eventIds: [e.id] } } as AuditEvent);
      }
    }
    if (rand() < 0.8) out.push({ ...common, id: `${flowId}:${n++}`, kind: 'logout', ts: ts + 100, status: 'ok', risk: 'none' } as AuditEvent);
  }
  return out;
}

// ---- the reference --------------------------------------------------------

const RANK: Record<RiskLevel, number> = { none: 0, info: 1, low: 2, medium: 3, high: 4 };
const LEVELS: RiskLevel[] = ['none', 'info', 'low', 'medium', 'high'];
const list = <T>(v: T | readonly T[] | undefined): T[] | undefined => (v === undefined ? undefined : ([] as T[]).concat(v as T[]));
const dur = (e: AuditEvent): number | undefined => (typeof e.durationUs === 'number' ? e.durationUs : undefined);

/** Canonical and bare object keys of a record, as the stores index them. */
function objectKeys(e: AuditEvent): { all: string[]; canonical: string[] } {
  const all = new Set<string>();
  const canonical = new Set<string>();
  for (const o of e.objects ?? []) {
    const name = o.name.toLowerCase();
    const schema = (o.schema ?? e.database ?? '').toLowerCase();
    all.add(name);
    if (schema !== '') { all.add(`${schema}.${name}`); canonical.add(`${schema}.${name}`); } else canonical.add(name);
  }
  return { all: [...all], canonical: [...canonical] };
}

const dayIndex: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Local weekday and minute of day by Intl directly (no offset tables). */
export function localByIntl(ts: number, timeZone: string): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(Math.floor(ts / 1000)));
  const get = (t: string): string => parts.find((p) => p.type === t)!.value;
  return { day: dayIndex[get('weekday')]!, minute: (Number(get('hour')) % 24) * 60 + Number(get('minute')) };
}

/** True when the record falls outside the working hours (reference version). */
export function offHoursByIntl(ts: number, wh: WorkingHours): boolean {
  const { day, minute } = localByIntl(ts, wh.timeZone ?? 'UTC');
  const m = (s: string): number => Number(s.split(':')[0]) * 60 + Number(s.split(':')[1]);
  const start = m(wh.start ?? '08:00');
  const end = m(wh.end ?? '18:00');
  const days = wh.days ?? [1, 2, 3, 4, 5];
  let working: boolean;
  if (start === end) working = days.includes(day);
  else if (start < end) working = days.includes(day) && minute >= start && minute < end;
  else working = (minute >= start && days.includes(day)) || (minute < end && days.includes((day + 6) % 7));
  return !working;
}

/** Does the record pass the filter? */
export function passes(e: AuditEvent, f: ReportFilter): boolean {
  const ts = Math.floor(e.ts);
  const opt = (v: string | undefined): string => v ?? '';
  const inList = (v: string | undefined, l: string | readonly string[] | undefined): boolean => l === undefined || list(l)!.includes(opt(v));
  if (f.from !== undefined && ts < (f.from as number)) return false;
  if (f.to !== undefined && ts >= (f.to as number)) return false;
  if (f.auditObjectId !== undefined && opt(e.auditObjectId) !== f.auditObjectId) return false;
  if (f.kind !== undefined && !list<AuditEventKind>(f.kind)!.includes(e.kind)) return false;
  if (f.statementType !== undefined && (e.statementType === undefined || !list<StatementType>(f.statementType)!.includes(e.statementType))) return false;
  if (f.status !== undefined && e.status !== f.status) return false;
  if (f.minRisk !== undefined && RANK[e.risk ?? 'none'] < RANK[f.minRisk]) return false;
  if (!inList(e.user, f.user) || !inList(e.client.ip, f.clientIp) || !inList(e.clientProgram, f.program)) return false;
  if (f.objects !== undefined && !objectKeys(e).all.some((k) => f.objects!.map((o) => o.toLowerCase()).includes(k))) return false;
  if (f.verbs !== undefined && (e.verb === undefined || !f.verbs.map((v) => v.toUpperCase()).includes(e.verb.toUpperCase()))) return false;
  if (f.excludeVerbs !== undefined && f.excludeVerbs.map((v) => v.toUpperCase()).includes((e.verb ?? '').toUpperCase())) return false;
  if (f.offHours !== undefined && !offHoursByIntl(ts, f.offHours)) return false;
  return true;
}

function keysOf(e: AuditEvent, d: ReportDimension, bucketUs: number | undefined): string[] {
  const t = (v: string | number | undefined): string => (v === undefined ? '' : String(v));
  switch (d) {
    case 'auditObject': return [t(e.auditObjectId)];
    case 'user': return [t(e.user)];
    case 'clientIp': return [t(e.client.ip)];
    case 'program': return [t(e.clientProgram)];
    case 'database': return [t(e.database)];
    case 'dbType': return [t(e.dbType)];
    case 'kind': return [e.kind];
    case 'statementType': return [t(e.statementType)];
    case 'verb': return [t(e.verb)];
    case 'fingerprint': return [t(e.fingerprint)];
    case 'status': return [e.status];
    case 'risk': return [e.risk ?? 'none'];
    case 'error': return [t(e.errorCode ?? e.sqlState)];
    case 'object': return objectKeys(e).canonical;
    case 'ruleId': return [...new Set([...(e.ruleIds ?? []), ...(e.alert ? [e.alert.ruleId] : [])])];
    case 'time': return [String(Math.floor(Math.floor(e.ts) / bucketUs!) * bucketUs!)];
  }
}

/** Byte order of UTF-8 text (what both stores sort ties by). */
export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The reference answer to an aggregate query over `log` (in insertion order). */
export function referenceAggregate(log: readonly AuditEvent[], q: AggregateQuery): { groups: number; rows: (AggregateRow & { sampleId?: string })[] } {
  const dims = q.groupBy ?? [];
  const groups = new Map<string, { key: string[]; members: { e: AuditEvent; i: number }[] }>();
  log.forEach((e, i) => {
    if (!passes(e, q)) return;
    let combos: string[][] = [[]];
    for (const d of dims) combos = combos.flatMap((c) => keysOf(e, d, q.bucketUs).map((k) => [...c, k]));
    for (const key of combos) {
      const id = JSON.stringify(key);
      let g = groups.get(id);
      if (g === undefined) groups.set(id, (g = { key, members: [] }));
      g.members.push({ e, i });
    }
  });
  if (dims.length === 0 && groups.size === 0) groups.set('[]', { key: [], members: [] });
  const rows = [...groups.values()].map(({ key, members }) => {
    const measured = q.countsOnly !== true;
    const ds = measured ? members.map((m) => dur(m.e)).filter((d): d is number => d !== undefined).sort((a, b) => a - b) : [];
    const row: AggregateRow & { sampleId?: string } = {
      key: key.map((k, j) => (dims[j] === 'risk' ? k : k)),
      count: members.length,
      errors: members.filter((m) => m.e.status === 'error').length,
      sessions: new Set(members.map((m) => m.e.flowId)).size,
      timed: ds.length,
      totalUs: ds.reduce((a, b) => a + b, 0),
      rowsReturned: measured ? members.reduce((a, m) => a + (m.e.rowsReturned ?? 0), 0) : 0,
      affectedRows: measured ? members.reduce((a, m) => a + (m.e.affectedRows ?? 0), 0) : 0,
      maxRisk: LEVELS[Math.max(0, ...members.map((m) => RANK[m.e.risk ?? 'none']))]!,
    };
    if (ds.length > 0) {
      row.minUs = ds[0];
      row.maxUs = ds[ds.length - 1];
      if (q.percentiles) row.p95Us = ds[Math.ceil(0.95 * ds.length) - 1];
    }
    if (members.length > 0) {
      row.firstTs = Math.min(...members.map((m) => Math.floor(m.e.ts)));
      row.lastTs = Math.max(...members.map((m) => Math.floor(m.e.ts)));
    }
    if (q.samples && members.length > 0) {
      const d = (e: AuditEvent): number => (measured ? (dur(e) ?? -1) : -1);
      const best = [...members].sort((a, b) => d(b.e) - d(a.e) || Math.floor(b.e.ts) - Math.floor(a.e.ts) || b.i - a.i)[0]!;
      row.sampleId = best.e.id;
    }
    return row;
  });
  const keyCmp = (a: AggregateRow, b: AggregateRow): number => {
    for (let j = 0; j < dims.length; j++) {
      const d = dims[j]!;
      const c = d === 'time' ? Number(a.key[j]) - Number(b.key[j]) : d === 'risk' ? RANK[a.key[j] as RiskLevel] - RANK[b.key[j] as RiskLevel] : byteCompare(a.key[j]!, b.key[j]!);
      if (c !== 0) return c;
    }
    return 0;
  };
  const measure: Record<string, (a: AggregateRow, b: AggregateRow) => number> = {
    count: (a, b) => b.count - a.count,
    errors: (a, b) => b.errors - a.errors || b.count - a.count,
    totalUs: (a, b) => b.totalUs - a.totalUs || b.count - a.count,
    maxUs: (a, b) => (b.maxUs ?? -1) - (a.maxUs ?? -1),
    lastTs: (a, b) => (b.lastTs ?? 0) - (a.lastTs ?? 0),
    key: () => 0,
  };
  const by = measure[q.orderBy ?? 'count']!;
  rows.sort((a, b) => by(a, b) || keyCmp(a, b));
  const total = dims.length === 0 ? (rows[0]!.count > 0 ? 1 : 0) : rows.length;
  return { groups: total, rows: rows.slice(0, q.top ?? 20) };
}

/** The reference answer to a report-records query. */
export function referenceRecords(log: readonly AuditEvent[], q: ReportRecordQuery): string[] {
  const rows = log.map((e, i) => ({ e, i })).filter(({ e }) => passes(e, q));
  if (q.order === 'slowest') rows.sort((a, b) => (dur(b.e) ?? -1) - (dur(a.e) ?? -1) || Math.floor(b.e.ts) - Math.floor(a.e.ts) || b.i - a.i);
  else rows.sort((a, b) => Math.floor(b.e.ts) - Math.floor(a.e.ts) || b.i - a.i);
  return rows.slice(0, q.limit ?? 100).map(({ e }) => e.id);
}

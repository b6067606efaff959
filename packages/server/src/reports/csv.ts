import { formatTimestamp } from '@dbtap/core';
import type { ComplianceReport, Report, ReportEvent, ServerReport, SourceReport, SourceStat, StatementStat, StatementsReport } from './types.js';

type Cell = string | number | undefined;

/**
 * One CSV cell (RFC 4180). Text a spreadsheet would run as a formula
 * (leading `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`; the JSON
 * report is the lossless form.
 */
function cell(v: Cell): string {
  if (v === undefined) return '';
  let s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v;
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const time = (ts: number | undefined): string | undefined => (ts === undefined ? undefined : formatTimestamp(ts));

/** A table: header and rows, written as CSV lines. */
interface Table {
  section: string;
  header: string[];
  rows: Cell[][];
}

function tableText(t: Table, withSection: boolean): string {
  const line = (cells: Cell[]): string => cells.map(cell).join(',');
  const head = withSection ? ['section', ...t.header] : t.header;
  const rows = t.rows.map((r) => line(withSection ? [t.section, ...r] : r));
  return [line(head), ...rows].map((l) => `${l}\r\n`).join('');
}

const statementHeader = ['fingerprint', 'statementType', 'verb', 'count', 'errors', 'timed', 'totalUs', 'avgUs', 'minUs', 'p95Us', 'maxUs', 'timeShare', 'rowsReturned', 'affectedRows', 'sessions', 'firstSeen', 'lastSeen', 'sample'];
const statementRow = (s: StatementStat): Cell[] => [
  s.fingerprint, s.statementType, s.verb, s.count, s.errors, s.timed, s.totalUs, s.avgUs, s.minUs, s.p95Us, s.maxUs, s.timeShare,
  s.rowsReturned, s.affectedRows, s.sessions, time(s.firstTs), time(s.lastTs), s.sample,
];

const eventHeader = ['time', 'kind', 'durationUs', 'auditObjectId', 'user', 'clientIp', 'program', 'database', 'statementType', 'verb', 'objects', 'status', 'errorCode', 'message', 'risk', 'ruleIds', 'sql', 'id'];
const eventRow = (e: ReportEvent): Cell[] => [
  time(e.ts), e.kind, e.durationUs, e.auditObjectId, e.user, e.clientIp, e.program, e.database, e.statementType, e.verb, e.objects?.join(';'),
  e.status, e.errorCode, e.message, e.risk, e.ruleIds?.join(';'), e.sql, e.id,
];

function statementsTables(r: StatementsReport): Table[] {
  return [{ section: 'fingerprints', header: statementHeader, rows: r.fingerprints.map(statementRow) }];
}

function serverTables(r: ServerReport): Table[] {
  const ao = (id: string): string => id;
  return [
    {
      section: 'totals', header: ['auditObjectId', 'records', 'sessions', 'logins', 'failedLogins', 'statements', 'errors', 'totalUs', 'alerts'],
      rows: r.objects.map((o) => [ao(o.auditObjectId), o.totals.records, o.totals.sessions, o.totals.logins, o.totals.failedLogins, o.totals.statements, o.totals.errors, o.totals.totalUs, o.totals.alerts]),
    },
    {
      section: 'volume', header: ['auditObjectId', 'bucketStart', 'statements', 'errors', 'logins', 'failedLogins'],
      rows: r.objects.flatMap((o) => o.volume.map((v) => [ao(o.auditObjectId), time(v.ts), v.statements, v.errors, v.logins, v.failedLogins])),
    },
    {
      section: 'topFingerprints', header: ['auditObjectId', ...statementHeader],
      rows: r.objects.flatMap((o) => o.topFingerprints.map((s) => [ao(o.auditObjectId), ...statementRow(s)])),
    },
    {
      section: 'errors', header: ['auditObjectId', 'code', 'count', 'message', 'fingerprint', 'lastSeen'],
      rows: r.objects.flatMap((o) => o.errors.map((e) => [ao(o.auditObjectId), e.code, e.count, e.message, e.fingerprint, time(e.lastTs)])),
    },
    { section: 'slowest', header: eventHeader, rows: r.objects.flatMap((o) => o.slowest.map(eventRow)) },
    {
      section: 'objects', header: ['auditObjectId', 'object', 'count', 'errors', 'byType', 'lastSeen'],
      rows: r.objects.flatMap((o) => o.objects.map((x) => [
        ao(o.auditObjectId), x.object, x.count, x.errors, Object.entries(x.byType).map(([k, v]) => `${k}=${v}`).join(';'), time(x.lastTs),
      ])),
    },
  ];
}

function sourceTables(r: SourceReport): Table[] {
  const header = ['key', 'sessions', 'logins', 'failedLogins', 'statements', 'errors', 'totalUs', 'maxRisk', 'firstSeen', 'lastSeen'];
  const row = (s: SourceStat): Cell[] => [s.key, s.sessions, s.logins, s.failedLogins, s.statements, s.errors, s.totalUs, s.maxRisk, time(s.firstTs), time(s.lastTs)];
  return [
    { section: 'clientIps', header, rows: r.clientIps.map(row) },
    { section: 'users', header, rows: r.users.map(row) },
    { section: 'programs', header, rows: r.programs.map(row) },
    {
      section: 'combinations', header: ['clientIp', 'user', 'program', 'records', 'sessions', 'errors', 'lastSeen'],
      rows: r.combinations.map((c) => [c.clientIp, c.user, c.program, c.records, c.sessions, c.errors, time(c.lastTs)]),
    },
  ];
}

function complianceTables(r: ComplianceReport): Table[] {
  return [
    { section: 'sections', header: ['id', 'title', 'count', 'errors', 'sessions', 'description'], rows: r.sections.map((s) => [s.id, s.title, s.count, s.errors, s.sessions, s.description]) },
    {
      section: 'breakdowns', header: ['id', 'by', 'key', 'count', 'errors'],
      rows: r.sections.flatMap((s) => s.breakdowns.flatMap((b) => b.entries.map((e) => [s.id, b.by, e.key, e.count, e.errors]))),
    },
    { section: 'events', header: ['id', ...eventHeader], rows: r.sections.flatMap((s) => s.events.map((e) => [s.id, ...eventRow(e)])) },
  ];
}

/**
 * A report as CSV (RFC 4180, CRLF line ends, times in ISO 8601 UTC). The
 * `statements` report is one table, a row per fingerprint. The other kinds
 * hold several tables, one after another, each with its own header line,
 * a blank line between them, and a first column `section` naming the table,
 * so that a spreadsheet filter on that column separates them again.
 */
export function reportToCsv(report: Report): string {
  switch (report.kind) {
    case 'statements':
      return tableText(statementsTables(report)[0]!, false);
    case 'server':
      return serverTables(report).map((t) => tableText(t, true)).join('\r\n');
    case 'source':
      return sourceTables(report).map((t) => tableText(t, true)).join('\r\n');
    case 'compliance':
      return complianceTables(report).map((t) => tableText(t, true)).join('\r\n');
  }
}

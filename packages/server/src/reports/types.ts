import type { AuditEventKind, EventStatus, RiskLevel, StatementType, Timestamp } from '@dbtap/core';
import type { TimeInput, WorkingHours } from '../store/types.js';

/** The reports dbtap produces. */
export type ReportKind = 'server' | 'source' | 'compliance' | 'statements';

/** Every {@link ReportKind}. */
export const REPORT_KINDS: readonly ReportKind[] = ['server', 'source', 'compliance', 'statements'];

/** What a report covers and how. Every field is optional. */
export interface ReportOptions {
  /** Oldest time included (µs or ISO 8601). */
  from?: TimeInput;
  /** Newest time excluded (µs or ISO 8601). */
  to?: TimeInput;
  /** Only this audit object (monitored database). */
  auditObjectId?: string;
  /** Rows per table and events per list, 1 to 1000 (default 20). */
  top?: number;
  /**
   * Width of a volume-over-time bucket, µs (1 second to 366 days). Chosen
   * from the range when absent: the smallest of 1, 5, 15, 30 minutes, 1, 3,
   * 6, 12 hours, 1 or 7 days that gives at most 120 buckets.
   */
  bucketUs?: number;
  /** Working hours for the off-hours section (default Monday to Friday, 08:00 to 18:00 UTC). */
  workingHours?: WorkingHours;
  /** Tables whose access the compliance report lists: `name` or `schema.name`, case-insensitive. */
  sensitiveTables?: readonly string[];
  /** Lowest risk level counted as a risky operation (default `medium`). */
  minRisk?: RiskLevel;
}

/** Fields every report carries. */
export interface ReportHeader {
  /** Which report. */
  kind: ReportKind;
  /** When it was made, µs since the epoch. */
  generatedAt: Timestamp;
  /** Range start asked for, µs. */
  from?: Timestamp;
  /** Range end asked for (exclusive), µs. */
  to?: Timestamp;
  /** Time of the oldest record covered, µs (absent when none). */
  firstTs?: Timestamp;
  /** Time of the newest record covered, µs. */
  lastTs?: Timestamp;
  /** The audit object the report is limited to. */
  auditObjectId?: string;
}

/** A value and how many records have it. */
export interface KeyCount {
  /** The value (`''` when the records had none). */
  key: string;
  /** Records. */
  count: number;
  /** Records with status `error`. */
  errors: number;
}

/** A record as reports list it: who, what, when and the outcome. */
export interface ReportEvent {
  /** Record id. */
  id: string;
  /** Record kind. */
  kind: AuditEventKind;
  /** When the request was seen, µs. */
  ts: Timestamp;
  /** Response time, µs. */
  durationUs?: number;
  /** Audit object id. */
  auditObjectId?: string;
  /** Database user. */
  user?: string;
  /** Client IP address. */
  clientIp: string;
  /** Client program. */
  program?: string;
  /** Current database. */
  database?: string;
  /** Statement class. */
  statementType?: StatementType;
  /** Leading verb(s). */
  verb?: string;
  /** Statement fingerprint. */
  fingerprint?: string;
  /** SQL text, cut to 2000 characters. */
  sql?: string;
  /** Objects touched, `schema.name` or `name`. */
  objects?: string[];
  /** Outcome. */
  status: EventStatus;
  /** Error code. */
  errorCode?: string;
  /** Error message. */
  message?: string;
  /** Risk level. */
  risk?: RiskLevel;
  /** Rules matched. */
  ruleIds?: string[];
}

/** Statistics of one statement fingerprint, as a query digest gives them. */
export interface StatementStat {
  /** The normalised statement (`''` for records without one). */
  fingerprint: string;
  /** Statement class of the sample. */
  statementType?: StatementType;
  /** Verb of the sample. */
  verb?: string;
  /** SQL of the slowest execution (cut to 2000 characters). */
  sample?: string;
  /** Executions. */
  count: number;
  /** Executions that failed. */
  errors: number;
  /** Executions with a measured response time. */
  timed: number;
  /** Sum of response times, µs. */
  totalUs: number;
  /** Mean response time, µs (`totalUs / timed`). */
  avgUs?: number;
  /** Shortest response time, µs. */
  minUs?: number;
  /** 95th percentile (nearest rank) of the response time, µs. */
  p95Us?: number;
  /** Longest response time, µs. */
  maxUs?: number;
  /** This fingerprint's share of the total response time of all statements (0 to 1). */
  timeShare: number;
  /** Rows returned, summed. */
  rowsReturned: number;
  /** Rows changed, summed. */
  affectedRows: number;
  /** Sessions that ran it. */
  sessions: number;
  /** First execution, µs. */
  firstTs?: Timestamp;
  /** Last execution, µs. */
  lastTs?: Timestamp;
}

/** Totals over all statements of a digest. */
export interface StatementTotals {
  /** Statement records. */
  statements: number;
  /** Distinct fingerprints. */
  fingerprints: number;
  /** Failed statements. */
  errors: number;
  /** Statements with a response time. */
  timed: number;
  /** Sum of response times, µs. */
  totalUs: number;
  /** 95th percentile of all response times, µs. */
  p95Us?: number;
  /** Rows returned. */
  rowsReturned: number;
  /** Rows changed. */
  affectedRows: number;
}

/** Statement statistics per fingerprint, slowest total first (`pt-query-digest` style). */
export interface StatementsReport extends ReportHeader {
  /** `statements` */
  kind: 'statements';
  /** Over every statement in range. */
  totals: StatementTotals;
  /** The fingerprints with the largest total response time. */
  fingerprints: StatementStat[];
}

/** Record counts of one time bucket. */
export interface VolumePoint {
  /** Bucket start, µs. */
  ts: Timestamp;
  /** Statements. */
  statements: number;
  /** Failed statements. */
  errors: number;
  /** Login attempts. */
  logins: number;
  /** Failed login attempts. */
  failedLogins: number;
}

/** Errors with one code. */
export interface ErrorStat {
  /** Error code (else SQLSTATE). */
  code: string;
  /** Failed records. */
  count: number;
  /** Message of the latest one. */
  message?: string;
  /** Fingerprint of the latest one. */
  fingerprint?: string;
  /** Time of the latest one, µs. */
  lastTs?: Timestamp;
}

/** Use of one object (table, view...). */
export interface ObjectStat {
  /** `schema.name`, or `name` when the schema is unknown. */
  object: string;
  /** Statements that touched it. */
  count: number;
  /** Of which failed. */
  errors: number;
  /** Statements per statement class, e.g. `{ select: 10, update: 2 }`. */
  byType: Record<string, number>;
  /** Last access, µs. */
  lastTs?: Timestamp;
}

/** Totals of one audit object. */
export interface ServerTotals {
  /** Records (alerts excluded). */
  records: number;
  /** Sessions. */
  sessions: number;
  /** Login attempts. */
  logins: number;
  /** Failed login attempts. */
  failedLogins: number;
  /** Statements. */
  statements: number;
  /** Failed statements. */
  errors: number;
  /** Sum of statement response times, µs. */
  totalUs: number;
  /** Alerts raised. */
  alerts: number;
}

/** Server analysis of one audit object. */
export interface ServerSection {
  /** Audit object id (`''` for records of no audit object). */
  auditObjectId: string;
  /** Totals. */
  totals: ServerTotals;
  /** Records per time bucket (every bucket of the span, empty ones included). */
  volume: VolumePoint[];
  /** Most frequent fingerprints. */
  topFingerprints: StatementStat[];
  /** Errors by code, most frequent first. */
  errors: ErrorStat[];
  /** Slowest single statements. */
  slowest: ReportEvent[];
  /** Objects touched, most used first. */
  objects: ObjectStat[];
}

/** Server analysis: per audit object, volume over time, top fingerprints, errors, slowest statements, objects touched. */
export interface ServerReport extends ReportHeader {
  /** `server` */
  kind: 'server';
  /** Width of a volume bucket, µs. */
  bucketUs: number;
  /** Audit objects, most records first. */
  objects: ServerSection[];
}

/** Activity of one client address, user or program. */
export interface SourceStat {
  /** The address, user or program (`''` when unknown). */
  key: string;
  /** Sessions. */
  sessions: number;
  /** Login attempts. */
  logins: number;
  /** Failed login attempts. */
  failedLogins: number;
  /** Statements. */
  statements: number;
  /** Failed statements. */
  errors: number;
  /** Sum of statement response times, µs. */
  totalUs: number;
  /** Highest risk of its records. */
  maxRisk: RiskLevel;
  /** First record, µs. */
  firstTs?: Timestamp;
  /** Last record, µs. */
  lastTs?: Timestamp;
}

/** Activity of one combination of client address, user and program. */
export interface SourceCombination {
  /** Client IP address. */
  clientIp: string;
  /** Database user. */
  user: string;
  /** Client program. */
  program: string;
  /** Records (logins, statements, logouts). */
  records: number;
  /** Sessions. */
  sessions: number;
  /** Failed records (logins and statements). */
  errors: number;
  /** Last record, µs. */
  lastTs?: Timestamp;
}

/** Source analysis: activity per client address, user and program. */
export interface SourceReport extends ReportHeader {
  /** `source` */
  kind: 'source';
  /** Per client IP address, most records first. */
  clientIps: SourceStat[];
  /** Per database user. */
  users: SourceStat[];
  /** Per client program. */
  programs: SourceStat[];
  /** Who connects from where with what, most records first. */
  combinations: SourceCombination[];
}

/** One breakdown of a compliance section. */
export interface ComplianceBreakdown {
  /** What the entries are values of: `user`, `clientIp`, `ruleId`, `verb`, `object`, `statementType`. */
  by: string;
  /** The values, most records first. */
  entries: KeyCount[];
}

/** One compliance finding: how often, by whom, and the latest records. */
export interface ComplianceSection {
  /** Stable id: `riskyOperations`, `privilegeChanges`, `accountChanges`, `failedLogins`, `offHours`, `sensitiveAccess`. */
  id: string;
  /** Heading. */
  title: string;
  /** What the section counts. */
  description: string;
  /** Records found. */
  count: number;
  /** Of which failed. */
  errors: number;
  /** Sessions they came from. */
  sessions: number;
  /** Breakdowns. */
  breakdowns: ComplianceBreakdown[];
  /** The newest records found. */
  events: ReportEvent[];
}

/** The settings a compliance report was made with. */
export interface ComplianceSettings {
  /** Lowest risk counted as risky. */
  minRisk: RiskLevel;
  /** Working hours (defaults filled in). */
  workingHours: Required<WorkingHours>;
  /** Sensitive tables, lower case. */
  sensitiveTables: string[];
}

/** Compliance: risky operations, privilege and account changes, failed logins, off-hours and sensitive-table access. */
export interface ComplianceReport extends ReportHeader {
  /** `compliance` */
  kind: 'compliance';
  /** What was counted as risky, working and sensitive. */
  settings: ComplianceSettings;
  /** The sections, in a fixed order. */
  sections: ComplianceSection[];
}

/** Any report. */
export type Report = ServerReport | SourceReport | ComplianceReport | StatementsReport;

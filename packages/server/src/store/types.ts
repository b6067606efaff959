import type { AuditEvent, AuditEventKind, Endpoint, EventStatus, RiskLevel, StatementType, Timestamp } from '@dbtap/core';
import type { IntegrityReport, VerifyOptions } from '../integrity/types.js';

/**
 * A point in time given to a query: microseconds since the Unix epoch (a
 * `Timestamp`) or an ISO 8601 string such as `2024-05-01T10:00:00Z` or
 * `2024-05-01T10:00:00.123456+02:00` (microsecond digits are kept).
 */
export type TimeInput = Timestamp | string;

/** Result order of a query: by time, oldest first (`asc`) or newest first (`desc`, the default). */
export type SortOrder = 'asc' | 'desc';

/** Fields every paged query shares. */
export interface PageQuery {
  /** Oldest time included (inclusive). */
  from?: TimeInput;
  /** Newest time excluded (exclusive). */
  to?: TimeInput;
  /** Sort order by time; `desc` when absent. */
  order?: SortOrder;
  /** Page size, 1 to {@link MAX_PAGE_SIZE}; {@link DEFAULT_PAGE_SIZE} when absent. */
  limit?: number;
  /**
   * The `nextCursor` of the previous page. Opaque; only valid with the same
   * order. Pages are keyed on (time, insertion sequence), so records inserted
   * while paging never shift later pages (no duplicates, no skips among the
   * records that existed when paging began).
   */
  cursor?: string;
}

/** Default page size of every paged query. */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page size a store accepts. */
export const MAX_PAGE_SIZE = 10_000;

/** Filters of {@link AuditStore.search}. Every given filter must hold (AND). */
export interface RecordQuery extends PageQuery {
  /** Record kinds. */
  kind?: AuditEventKind | readonly AuditEventKind[];
  /** Audit object (monitored database) id. */
  auditObjectId?: string;
  /** Database user (exact). */
  user?: string;
  /** Client IP address (exact, text form). */
  clientIp?: string;
  /** Client program (exact). */
  program?: string;
  /** Protocol family, e.g. `mysql`. */
  dbType?: string;
  /** Statement classes. */
  statementType?: StatementType | readonly StatementType[];
  /**
   * An object the statement touches, `name` or `schema.name`, case-insensitive.
   * A bare name also matches qualified references; an unqualified reference
   * counts as being in the record's current database.
   */
  object?: string;
  /** Minimum risk level (inclusive). */
  minRisk?: RiskLevel;
  /** A rule id among the record's `ruleIds` (or the rule of an alert). */
  ruleId?: string;
  /** Outcome. */
  status?: EventStatus;
  /** TCP connection (session) id. */
  flowId?: string;
  /**
   * Full-text search on the SQL text: whitespace-separated terms, all of
   * which must occur; each term matches as a phrase of words (so
   * `customer_accounts` matches that identifier), a trailing `*` makes
   * its last word a prefix.
   */
  text?: string;
}

/** A page of records. */
export interface RecordPage {
  /** The records of this page, in the requested order. */
  records: AuditEvent[];
  /** Cursor of the next page; absent on the last page. */
  nextCursor?: string;
}

/** Filters of {@link AuditStore.sessions}. A session matches the time range when it overlaps it. */
export interface SessionQuery extends PageQuery {
  /** Database user (exact). */
  user?: string;
  /** Client IP address. */
  clientIp?: string;
  /** Client program. */
  program?: string;
  /** Audit object id. */
  auditObjectId?: string;
  /** Protocol family. */
  dbType?: string;
  /** Minimum of the session's highest record risk. */
  minRisk?: RiskLevel;
  /** Only sessions with at least one failed request (`true`) or none (`false`). */
  hasErrors?: boolean;
}

/**
 * One database session (one TCP connection) as the store saw it. Counters
 * cover every record appended for it, including records that retention
 * later removed.
 */
export interface SessionSummary {
  /** Session id: the record's `flowId`. */
  id: string;
  /** Server-side connection id, when the protocol carries it. */
  sessionId?: string;
  /** Time of the first record. */
  start: Timestamp;
  /** Time the last record ended (its `endTs`, else its `ts`). */
  end: Timestamp;
  /** Client endpoint. */
  client: Endpoint;
  /** Server endpoint. */
  server: Endpoint;
  /** Protocol family. */
  dbType: string;
  /** Server product, when it differs from the family. */
  dbProduct?: string;
  /** Database user. */
  user?: string;
  /** Database at login (or the first one seen). */
  database?: string;
  /** Client program. */
  clientProgram?: string;
  /** Audit object id. */
  auditObjectId?: string;
  /** Outcome of the login record, when one was seen. */
  login?: EventStatus;
  /** True when a logout record was seen. */
  ended: boolean;
  /** Records of the session (alerts excluded). */
  records: number;
  /** Statement records. */
  statements: number;
  /** Records with status `error`. */
  errors: number;
  /** Highest risk of its records. */
  maxRisk: RiskLevel;
}

/** A page of sessions. */
export interface SessionPage {
  /** The sessions, ordered by start time. */
  sessions: SessionSummary[];
  /** Cursor of the next page; absent on the last page. */
  nextCursor?: string;
}

/** One record of a session timeline with the timings a replay needs. */
export interface TimelineEntry {
  /** The record. */
  record: AuditEvent;
  /** Microseconds from the session start to this record's `ts`. */
  offsetUs: number;
  /**
   * Microseconds the client was idle before this record: from the end of
   * the previous record (its `endTs`, else its `ts`) to this record's `ts`;
   * 0 for the first record and for overlapping (pipelined) requests.
   */
  idleUs: number;
}

/** Everything stored about one session, records in time order. */
export interface SessionTimeline {
  /** The session summary. */
  session: SessionSummary;
  /** Records still stored (retention may have removed older ones), by `ts` then insertion order. */
  entries: TimelineEntry[];
}

/** Filters of {@link AuditStore.alerts}. */
export interface AlertQuery extends PageQuery {
  /** Rule or detector id. */
  ruleId?: string;
  /** Minimum risk level. */
  minRisk?: RiskLevel;
  /** Audit object id. */
  auditObjectId?: string;
  /** Only acknowledged (`true`) or unacknowledged (`false`) alerts. */
  acknowledged?: boolean;
}

/** Who acknowledged an alert and when. */
export interface Acknowledgement {
  /** Name of the person or system that acknowledged it. */
  by: string;
  /** When (µs since the epoch). */
  at: Timestamp;
}

/** An alert record with its acknowledgement state. */
export interface StoredAlert {
  /** The `alert` record. */
  record: AuditEvent;
  /** Present once acknowledged. */
  acknowledged?: Acknowledgement;
}

/** A page of alerts. */
export interface AlertPage {
  /** The alerts. */
  alerts: StoredAlert[];
  /** Cursor of the next page; absent on the last page. */
  nextCursor?: string;
}

/** What {@link AuditStore.retention} removes. Rules combine: a record goes when either applies. */
export interface RetentionPolicy {
  /** Remove records older than this many days (may be fractional). */
  maxAgeDays?: number;
  /**
   * Remove the oldest records until the stored records total at most this
   * many bytes (measured as the size of each record's JSON form, which is
   * what dominates the store; indexes and free pages are not counted).
   */
  maxBytes?: number;
  /**
   * Directory to export removed records to, as one gzip-compressed NDJSON
   * file per run, written and flushed to disk before anything is deleted.
   * Created when missing. Without it, records are removed without export.
   */
  exportDir?: string;
  /** "Now" for `maxAgeDays`; the current time when absent (µs or ISO 8601). */
  now?: TimeInput;
}

/** What a retention run did. */
export interface RetentionResult {
  /** Records removed. */
  removed: number;
  /** Sum of the removed records' sizes (see {@link RetentionPolicy.maxBytes}). */
  bytesRemoved: number;
  /** Path of the export file, when records were exported. */
  exportFile?: string;
  /** Partitions dropped whole (PostgreSQL only). */
  droppedPartitions?: string[];
}

/** Store-wide counters. */
export interface StoreStats {
  /** Records stored (all kinds). */
  records: number;
  /** Sessions known. */
  sessions: number;
  /** Alert records stored. */
  alerts: number;
  /** Alert records not yet acknowledged. */
  unacknowledgedAlerts: number;
  /** Sum of the stored records' sizes (see {@link RetentionPolicy.maxBytes}). */
  bytes: number;
  /** `ts` of the oldest record. */
  oldest?: Timestamp;
  /** `ts` of the newest record. */
  newest?: Timestamp;
}

/** Filters of {@link AuditStore.summary}. */
export interface SummaryQuery {
  /** Oldest time included. */
  from?: TimeInput;
  /** Newest time excluded. */
  to?: TimeInput;
  /** Audit object id. */
  auditObjectId?: string;
  /** Entries per breakdown, largest counts first (default 20, at most 1000). */
  top?: number;
}

/** One row of a breakdown. */
export interface CountEntry {
  /** The value counted (`''` when the records had none). */
  key: string;
  /** Number of records. */
  count: number;
}

/** Counts of records over a time range. */
export interface SummaryReport {
  /** Range start, when given (µs). */
  from?: Timestamp;
  /** Range end, when given (µs). */
  to?: Timestamp;
  /** Records in range. */
  total: number;
  /** Records per kind. */
  byKind: CountEntry[];
  /** Statement records per statement type. */
  byStatementType: CountEntry[];
  /** Records per database user. */
  byUser: CountEntry[];
  /** Statement records per object touched (`schema.name` or `name`). */
  byObject: CountEntry[];
  /** Records per status. */
  byStatus: CountEntry[];
  /** Records per risk level. */
  byRisk: CountEntry[];
}

/**
 * Working hours, for reports of access outside them. A record is off-hours
 * when its local time (in `timeZone`) is not within `start`..`end` on one of
 * `days`. When `end` is earlier than `start` the window runs overnight and
 * belongs to the day it starts on; `start` equal to `end` means the whole day.
 */
export interface WorkingHours {
  /** IANA time zone, e.g. `Europe/Berlin` (default `UTC`). Daylight saving is followed. */
  timeZone?: string;
  /** Start of the working day, `HH:MM` (default `08:00`). */
  start?: string;
  /** End of the working day, exclusive, `HH:MM` up to `24:00` (default `18:00`). */
  end?: string;
  /** Working days, 0 = Sunday to 6 = Saturday (default Monday to Friday). */
  days?: readonly number[];
}

/**
 * Which records a report aggregate or list covers. Every given condition
 * must hold (AND); a list matches any of its values.
 */
export interface ReportFilter {
  /** Oldest time included. */
  from?: TimeInput;
  /** Newest time excluded. */
  to?: TimeInput;
  /** Audit object (monitored database) id; `''` selects records of no audit object. */
  auditObjectId?: string;
  /** Record kinds. */
  kind?: AuditEventKind | readonly AuditEventKind[];
  /** Statement classes. */
  statementType?: StatementType | readonly StatementType[];
  /** Outcome. */
  status?: EventStatus;
  /** Minimum risk level (inclusive). */
  minRisk?: RiskLevel;
  /** Database user(s), exact; `''` selects records without a user (likewise for client IP and program). */
  user?: string | readonly string[];
  /** Client IP address(es), exact. */
  clientIp?: string | readonly string[];
  /** Client program(s), exact. */
  program?: string | readonly string[];
  /**
   * Records touching any of these objects: `name` or `schema.name`,
   * case-insensitive, matched like {@link RecordQuery.object}.
   */
  objects?: readonly string[];
  /** Records whose verb is one of these (case-insensitive), e.g. `GRANT`. */
  verbs?: readonly string[];
  /** Records whose verb is none of these (records without a verb pass). */
  excludeVerbs?: readonly string[];
  /** Only records whose time falls outside these working hours. */
  offHours?: WorkingHours;
}

/**
 * What a report aggregate groups by. Text values that a record lacks group
 * under `''`.
 *
 * - `auditObject`, `user`, `clientIp`, `program`, `database`, `dbType`,
 *   `kind`, `statementType`, `verb`, `fingerprint`, `status`: the record field.
 * - `risk`: the risk level name.
 * - `error`: the error code, else the SQLSTATE (group errors with `status: 'error'`).
 * - `object`: each object a record touches (`schema.name`, or `name` when no
 *   schema is known), so a record counts once per object.
 * - `ruleId`: each rule the record matched, so a record counts once per rule.
 * - `time`: the start of the record's time bucket (µs since the epoch, as
 *   text), buckets of {@link AggregateQuery.bucketUs} aligned to the epoch.
 */
export type ReportDimension =
  | 'auditObject' | 'user' | 'clientIp' | 'program' | 'database' | 'dbType' | 'kind' | 'statementType'
  | 'verb' | 'fingerprint' | 'status' | 'risk' | 'error' | 'object' | 'ruleId' | 'time';

/** Sort order of aggregate groups: the measure, largest first, or `key` (ascending). Ties go by key. */
export type AggregateOrder = 'count' | 'errors' | 'totalUs' | 'maxUs' | 'lastTs' | 'key';

/** Query of {@link AuditStore.aggregate}. */
export interface AggregateQuery extends ReportFilter {
  /** Dimensions to group by, at most 3; none gives one row of totals. */
  groupBy?: readonly ReportDimension[];
  /** Bucket width in µs for the `time` dimension (1 second to 366 days; required with it). */
  bucketUs?: number;
  /** Group order (default `count`). */
  orderBy?: AggregateOrder;
  /** Groups returned, 1 to 10000 (default 20). */
  top?: number;
  /** Also compute the 95th percentile of the duration per group. */
  percentiles?: boolean;
  /** Also return one sample record per group: its slowest, else its newest. */
  samples?: boolean;
  /**
   * Measure counts only (records, errors, sessions, time span, risk): no
   * duration or row figures (`timed`, `totalUs` and the row sums are 0,
   * `minUs`/`maxUs` absent), which spares reading them from each record;
   * a sample is then the group's newest record. Not with `percentiles` or
   * an order by time.
   */
  countsOnly?: boolean;
}

/** One group of an aggregate. */
export interface AggregateRow {
  /** The group's values, one per `groupBy` dimension. */
  key: string[];
  /** Records in the group. */
  count: number;
  /** Records with status `error`. */
  errors: number;
  /** Distinct sessions (TCP connections) among them. */
  sessions: number;
  /** Records with a duration. */
  timed: number;
  /** Sum of durations, µs. */
  totalUs: number;
  /** Shortest duration, µs (absent when none is timed). */
  minUs?: number;
  /** Longest duration, µs. */
  maxUs?: number;
  /**
   * 95th percentile of the durations, µs, by the nearest-rank method: the
   * smallest duration that at least 95 % of the timed records do not exceed
   * (present when asked for and some record is timed).
   */
  p95Us?: number;
  /** Sum of `rowsReturned`. */
  rowsReturned: number;
  /** Sum of `affectedRows`. */
  affectedRows: number;
  /** Time of the oldest record (absent for an empty total). */
  firstTs?: Timestamp;
  /** Time of the newest record. */
  lastTs?: Timestamp;
  /** Highest risk among them. */
  maxRisk: RiskLevel;
  /** The group's slowest record (newest among equals, or newest when none is timed), when asked for. */
  sample?: AuditEvent;
}

/** Result of {@link AuditStore.aggregate}. */
export interface AggregateResult {
  /** Groups that matched in all (the rows may be fewer: see `top`). */
  groups: number;
  /** The groups, in the requested order. */
  rows: AggregateRow[];
}

/** Query of {@link AuditStore.reportRecords}. */
export interface ReportRecordQuery extends ReportFilter {
  /** `newest` first (default) or `slowest` first (by duration; untimed records last). */
  order?: 'newest' | 'slowest';
  /** Records returned, 1 to 10000 (default 100). */
  limit?: number;
}

/** Options of {@link AuditStore.append}. */
export interface AppendOptions {
  /**
   * Where the batch ends in its source (an agent instance and its batch
   * sequence number), committed in the same transaction as the records, so
   * that after a crash the source resumes exactly after what is stored.
   * Given with an empty batch, only the position is committed.
   *
   * `sessions`: the state of the source's open connections at this
   * position (`AuditPipeline.sessionStates`), kept in the same transaction
   * so that a restart resumes them exactly where the position says; absent
   * means none (a kept state is removed). Stores without
   * {@link AuditStore.ingestSessions} ignore it.
   */
  position?: { source: string; seq: number; sessions?: string };
}

/**
 * Where audit records live. Implementations: {@link SqliteStore} (one file,
 * one process) and {@link PostgresStore} (shared, time-partitioned).
 *
 * Records are immutable once appended; appending a record whose `id` and
 * `ts` are already stored does nothing, so a sender may retry a batch whose
 * acknowledgement it lost.
 */
export interface AuditStore {
  /** Writes a batch in one transaction; resolves once the batch is durable. */
  append(events: readonly AuditEvent[], options?: AppendOptions): Promise<void>;
  /** The last ingest position committed for a source with {@link AppendOptions.position} (0 when none). */
  ingestPosition(source: string): Promise<number>;
  /** The session state committed with the source's last position ({@link AppendOptions.position}), if any. Optional. */
  ingestSessions?(source: string): Promise<string | undefined>;
  /** Finds records, one page at a time. */
  search(q: RecordQuery): Promise<RecordPage>;
  /** Lists sessions, one page at a time. */
  sessions(q: SessionQuery): Promise<SessionPage>;
  /** One session with its records in order and their timings; `undefined` when unknown. */
  session(id: string): Promise<SessionTimeline | undefined>;
  /** Lists alert records with their acknowledgement state. */
  alerts(q: AlertQuery): Promise<AlertPage>;
  /**
   * Marks an alert as acknowledged. Returns the acknowledgement (the first
   * one when it was already acknowledged), or `undefined` when no alert has
   * that id.
   */
  acknowledgeAlert(id: string, by: string): Promise<Acknowledgement | undefined>;
  /** Counts records by kind, statement type, user, object, status and risk. */
  summary(q: SummaryQuery): Promise<SummaryReport>;
  /**
   * Groups the records a filter selects and measures each group (count,
   * errors, sessions, durations with an optional 95th percentile, rows,
   * time span, highest risk), in SQL. The building block of the reports.
   */
  aggregate(q: AggregateQuery): Promise<AggregateResult>;
  /** The records a report filter selects, newest or slowest first, up to a limit. */
  reportRecords(q: ReportRecordQuery): Promise<AuditEvent[]>;
  /** Removes old records per the policy, exporting them first. One run at a time. */
  retention(policy: RetentionPolicy): Promise<RetentionResult>;
  /** Store-wide counters. */
  stats(): Promise<StoreStats>;
  /** Flushes and releases the store; later calls fail with `DBTAP_E_STORE_CLOSED`. */
  close(): Promise<void>;
  /**
   * Verifies the store's hash chain (tamper evidence): names the first
   * altered, missing or inserted record and the link that sealed it.
   * Reads a consistent snapshot; changes nothing.
   */
  verify(options?: VerifyOptions): Promise<IntegrityReport>;
}

import type Database from 'better-sqlite3';
import { closeSync, existsSync, openSync } from 'node:fs';
import { RISK_LEVELS, riskRank, DbtapError, type AuditEvent, type EventStatus } from '@dbtap/core';
import { exportFileName, writeNdjsonGz } from './export.js';
import {
  aggregateResult,
  aggregateSql,
  normalizeAggregateQuery,
  normalizeReportRecordQuery,
  rangeSql,
  recordsSql,
  sampleKeys,
  samplesSql,
  segmentsFor,
  SQLITE_FACTS_FILL,
  SQLITE_FACTS_TABLE,
  type NormalizedReportFilter,
  type ReportTarget,
} from './report-sql.js';
import type { OffsetSegment } from './hours.js';
import { sqliteDriver } from './native.js';
import { StoreWriter } from './writer.js';
import { SqliteChain, verifySqliteDatabase, verifySqliteFile } from '../integrity/sqlite.js';
import { objectKeys, ruleKeys } from '../integrity/chain.js';
import type { IntegrityOptions, IntegrityReport, VerifyOptions } from '../integrity/types.js';
import {
  StoreErrorCodes,
  checkRecord,
  recordJson,
  encodeCursor,
  normalizeAlertQuery,
  normalizeRecordQuery,
  normalizeSessionQuery,
  normalizeSummaryQuery,
  parseTime,
  sessionDeltas,
  buildTimeline,
  type NormalizedPage,
  type TextTerm,
  checkPosition,
} from './query.js';
import type {
  AppendOptions,
  Acknowledgement,
  AggregateQuery,
  AggregateResult,
  ReportRecordQuery,
  AlertPage,
  AlertQuery,
  AuditStore,
  CountEntry,
  RecordPage,
  RecordQuery,
  RetentionPolicy,
  RetentionResult,
  SessionPage,
  SessionQuery,
  SessionSummary,
  SessionTimeline,
  StoreStats,
  SummaryQuery,
  SummaryReport,
} from './types.js';

/** Options of a {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file (created when missing), or `:memory:` for tests. */
  path: string;
  /**
   * SQLite `synchronous` setting. `full` (the default) fsyncs the write-ahead
   * log at every commit, so an acknowledged batch survives a power cut as
   * well as a process crash. `normal` skips that fsync: in WAL mode a commit
   * has still been written to the WAL file (the OS page cache) when `append`
   * resolves, so it survives `kill -9` of the process, but the last batches
   * may be lost if the machine itself goes down.
   */
  synchronous?: 'full' | 'normal';
  /** Milliseconds to wait for another connection's lock (default 5000). */
  busyTimeoutMs?: number;
  /** Tamper evidence: the key that signs the hash chain (see {@link IntegrityOptions}). */
  integrity?: IntegrityOptions;
  /**
   * Appends run in a thread of their own, on a second connection to the
   * file (ignored for `:memory:`): SQLite's inserts and commits no longer
   * hold up this thread, which keeps searching, reporting and everything
   * else. Each append still resolves once its transaction has committed.
   * The records are copied to the thread (structured clone). The daemon
   * uses it with worker threads. Default false.
   */
  writerThread?: boolean;
}

const SCHEMA_VERSION = '2';
const DAY_US = 86_400_000_000;
const RETENTION_CHUNK = 5000;
/** Page size of a new store file, bytes. */
const PAGE_SIZE = 8192;

// Records keep their full JSON plus the columns queries filter on. `seq` (the
// rowid) is the insertion order; pages are keyed on (ts, seq). Every (col, ts)
// index also holds the rowid, so a filter on col is served in time order.
// The object and rule side tables repeat ts so that a filter on them walks
// their (key, ts, seq) primary key in page order and stops at the page end,
// instead of sorting every match (bench, 200k records: object filter p50
// 8.0 ms -> 0.40 ms, rule filter 55 ms -> 0.68 ms).
// The FTS5 table is contentless (the SQL text lives in the JSON) and allows
// deletes by rowid (SQLite >= 3.43), which retention needs. It is filled in
// bulk from the stored JSON (meta key `fts`: the highest seq indexed), after
// appends and before any text search, not row by row inside each append.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  ts INTEGER NOT NULL,
  flow_id TEXT NOT NULL,
  audit_object TEXT,
  db_user TEXT,
  client_ip TEXT,
  program TEXT,
  db_type TEXT,
  stmt_type TEXT,
  risk INTEGER NOT NULL,
  status TEXT NOT NULL,
  size INTEGER NOT NULL,
  json TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_id ON records(id);
CREATE INDEX IF NOT EXISTS records_ts ON records(ts);
CREATE INDEX IF NOT EXISTS records_flow ON records(flow_id, ts);
CREATE INDEX IF NOT EXISTS records_audit_object ON records(audit_object, ts);
CREATE INDEX IF NOT EXISTS records_user ON records(db_user, ts);
CREATE INDEX IF NOT EXISTS records_client ON records(client_ip, ts);
CREATE INDEX IF NOT EXISTS records_program ON records(program, ts);
CREATE INDEX IF NOT EXISTS records_stmt ON records(stmt_type, ts);
CREATE INDEX IF NOT EXISTS records_risk ON records(risk, ts);
CREATE INDEX IF NOT EXISTS records_alerts ON records(ts) WHERE kind = 'alert';
CREATE TABLE IF NOT EXISTS record_objects (
  name TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL, canonical INTEGER NOT NULL,
  PRIMARY KEY (name, ts, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_objects_seq ON record_objects(seq);
CREATE TABLE IF NOT EXISTS record_rules (
  rule_id TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (rule_id, ts, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_rules_seq ON record_rules(seq);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(sql, content='', contentless_delete=1);
CREATE TABLE IF NOT EXISTS sessions (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  start_ts INTEGER NOT NULL,
  end_ts INTEGER NOT NULL,
  client_ip TEXT NOT NULL, client_port INTEGER NOT NULL,
  server_ip TEXT NOT NULL, server_port INTEGER NOT NULL,
  db_type TEXT NOT NULL, db_product TEXT,
  db_user TEXT, database TEXT, program TEXT, audit_object TEXT, session_id TEXT,
  login TEXT, ended INTEGER NOT NULL,
  records INTEGER NOT NULL, statements INTEGER NOT NULL, errors INTEGER NOT NULL, max_risk INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_start ON sessions(start_ts);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(db_user, start_ts);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions(client_ip, start_ts);
CREATE TABLE IF NOT EXISTS alert_acks (id TEXT PRIMARY KEY, by TEXT NOT NULL, at INTEGER NOT NULL);
`;

type Params = (string | number | null)[];
type Row = Record<string, unknown>;

/** One call of {@link SqliteStore.append} waiting for its group commit. */
interface PendingAppend {
  events: readonly AuditEvent[];
  position: AppendOptions['position'];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Records a group commit holds at most (unless one append alone is larger). */
const GROUP_RECORDS = 2000;

const RECORD_COLUMNS = ['seq', 'id', 'kind', 'ts', 'flow_id', 'audit_object', 'db_user', 'client_ip', 'program', 'db_type', 'stmt_type', 'risk', 'status', 'size', 'json'];

/** Records whose SQL text one full-text fill step indexes (one transaction each). */
const FTS_CHUNK = 2000;

/** Rows per multi-row INSERT: one statement per 64 rows instead of one per row. */
const ROWS_PER_INSERT = 64;

/**
 * Multi-row INSERTs of one table: flat parameter lists go in as statements
 * of {@link ROWS_PER_INSERT} rows (prepared once) plus one for the rest.
 */
class BulkInsert {
  private readonly statements = new Map<number, Database.Statement>();

  constructor(private readonly db: Database.Database, private readonly head: string, private readonly columns: readonly string[]) {}

  private statement(rows: number): Database.Statement {
    let st = this.statements.get(rows);
    if (st === undefined) {
      const row = `(${this.columns.map(() => '?').join(', ')})`;
      st = this.db.prepare(`${this.head} (${this.columns.join(', ')}) VALUES ${Array.from({ length: rows }, () => row).join(', ')}`);
      this.statements.set(rows, st);
    }
    return st;
  }

  /** Inserts the rows whose values `params` holds one after another. */
  run(params: readonly unknown[]): void {
    const width = this.columns.length;
    const rows = params.length / width;
    let at = 0;
    for (; at + ROWS_PER_INSERT <= rows; at += ROWS_PER_INSERT) this.statement(ROWS_PER_INSERT).run(params.slice(at * width, (at + ROWS_PER_INSERT) * width));
    if (at < rows) this.statement(rows - at).run(params.slice(at * width));
  }
}

/** SQL text of one full-text term for FTS5: a quoted phrase, `*` for a prefix. */
function ftsTerm(t: TextTerm): string {
  // Words hold only letters and digits (parseText), so no quote can appear.
  return `"${t.words.join(' ')}"${t.prefix ? '*' : ''}`;
}

/** Appends the keyset condition and ORDER BY of a page to `where`/`params`. */
function pageClause(p: NormalizedPage, tsCol: string, seqCol: string, where: string[], params: Params): string {
  if (p.from !== undefined) { where.push(`${tsCol} >= ?`); params.push(p.from); }
  if (p.to !== undefined) { where.push(`${tsCol} < ?`); params.push(p.to); }
  if (p.after !== undefined) {
    where.push(`(${tsCol}, ${seqCol}) ${p.order === 'asc' ? '>' : '<'} (?, ?)`);
    params.push(p.after.ts, p.after.seq);
  }
  const dir = p.order === 'asc' ? 'ASC' : 'DESC';
  return `ORDER BY ${tsCol} ${dir}, ${seqCol} ${dir} LIMIT ${p.limit + 1}`;
}

function whereSql(where: string[]): string {
  return where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
}

/** Records whose report facts are extracted per step of a catch-up (about 65 ms each, measured). */
const REPORT_FACTS_CHUNK = 20_000;

/** Binding arguments of a built report query: its named parameters, if any. */
function sqliteArgs(params: unknown[] | Record<string, unknown>): unknown[] {
  return Array.isArray(params) ? params : Object.keys(params).length > 0 ? [params] : [];
}

function sessionFromRow(r: Row): SessionSummary {
  const s: SessionSummary = {
    id: r.id as string,
    start: r.start_ts as number,
    end: r.end_ts as number,
    client: { ip: r.client_ip as string, port: r.client_port as number },
    server: { ip: r.server_ip as string, port: r.server_port as number },
    dbType: r.db_type as string,
    ended: r.ended === 1,
    records: r.records as number,
    statements: r.statements as number,
    errors: r.errors as number,
    maxRisk: RISK_LEVELS[r.max_risk as number] ?? 'none',
  };
  if (r.session_id !== null) s.sessionId = r.session_id as string;
  if (r.db_product !== null) s.dbProduct = r.db_product as string;
  if (r.db_user !== null) s.user = r.db_user as string;
  if (r.database !== null) s.database = r.database as string;
  if (r.program !== null) s.clientProgram = r.program as string;
  if (r.audit_object !== null) s.auditObjectId = r.audit_object as string;
  if (r.login !== null) s.login = r.login as EventStatus;
  return s;
}

/**
 * An {@link AuditStore} in one SQLite file (better-sqlite3): WAL journal,
 * one transaction per appended batch, the full record as JSON plus indexed
 * columns, FTS5 over the SQL text, keyset pagination.
 *
 * better-sqlite3 is synchronous: each call runs to completion on the
 * calling thread, so the returned promises are already settled work. Keep
 * batches to a few thousand records so that an append does not stall the
 * event loop for long.
 */
export class SqliteStore implements AuditStore {
  /** The file this store writes. */
  readonly path: string;
  private readonly db: Database.Database;
  private retentionRunning = false;
  private closed = false;
  private readonly insertRecords: BulkInsert;
  private readonly insertObjects: BulkInsert;
  private readonly insertRules: BulkInsert;
  private readonly ftsFill: Database.Transaction<() => number>;
  private readonly storedIds: Database.Statement;
  private readonly upsertSession: Database.Statement;
  private readonly setPosition: Database.Statement;
  private readonly appendTx: Database.Transaction<(group: readonly PendingAppend[]) => void>;
  private readonly chain: SqliteChain;
  /** The thread that makes the appends, with {@link SqliteStoreOptions.writerThread}. */
  private readonly writer: StoreWriter | undefined;
  /** Appends waiting for the next group commit, in call order. */
  private queue: PendingAppend[] = [];
  private flushScheduled = false;
  private ftsScheduled = false;
  /** Records appended since the last full-text step (an estimate that only paces the steps). */
  private textBacklog = 0;

  constructor(options: SqliteStoreOptions | string) {
    const opts = typeof options === 'string' ? { path: options } : options;
    if (typeof opts.path !== 'string' || opts.path === '') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'SqliteStore: path missing');
    this.path = opts.path;
    const sync = opts.synchronous ?? 'full';
    if (sync !== 'full' && sync !== 'normal') throw new DbtapError(StoreErrorCodes.BAD_QUERY, `SqliteStore: synchronous must be full or normal, got ${String(sync)}`);
    try {
      // audit records hold SQL and results: a new store file is the owner's alone (SQLite gives its -wal and -shm the same mode)
      if (opts.path !== ':memory:' && !opts.path.startsWith('file:') && !existsSync(opts.path)) closeSync(openSync(opts.path, 'wx', 0o600));
      this.db = new (sqliteDriver())(opts.path, { timeout: opts.busyTimeoutMs ?? 5000 });
      // page_size and auto_vacuum only take effect before the first table
      // exists: a file made by an earlier version keeps its 4,096-byte pages
      // (any page size reads alike). 8,192 bytes: an append writes fewer
      // pages to the WAL per record (store bench, 50,000 records in batches
      // of 1,000, 6 interleaved pairs: CPU per record 0.90-0.99 of 4,096's).
      this.db.pragma(`page_size = ${PAGE_SIZE}`);
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${sync.toUpperCase()}`);
      this.db.exec(SCHEMA);
      const version = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get('schema') as string | undefined;
      if (version === undefined) this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
      else if (version !== SCHEMA_VERSION) throw new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: ${opts.path} has schema version ${version}, expected ${SCHEMA_VERSION}`);
      // A store written before the bulk fill indexed every record as it came.
      this.db.prepare("INSERT OR IGNORE INTO meta (key, value) SELECT 'fts', coalesce(max(seq), 0) FROM records").run();
      // Tamper evidence: the chain table, and a seal over records stored before it existed.
      this.chain = new SqliteChain(this.db, opts.integrity);
    } catch (err) {
      if (err instanceof DbtapError) throw err;
      throw new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: cannot open ${opts.path}: ${(err as Error).message}`, { path: opts.path }, { cause: err });
    }
    this.writer =
      opts.writerThread === true && opts.path !== ':memory:'
        ? new StoreWriter({
            storeWriter: {
              path: opts.path,
              synchronous: sync,
              ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
              ...(opts.integrity !== undefined ? { integrity: opts.integrity } : {}),
            },
          })
        : undefined;
    this.insertRecords = new BulkInsert(this.db, 'INSERT INTO records', RECORD_COLUMNS);
    this.insertObjects = new BulkInsert(this.db, 'INSERT OR IGNORE INTO record_objects', ['name', 'ts', 'seq', 'canonical']);
    this.insertRules = new BulkInsert(this.db, 'INSERT OR IGNORE INTO record_rules', ['rule_id', 'ts', 'seq']);
    const ftsSeq = this.db.prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts'").pluck();
    const ftsHigh = this.db.prepare(`SELECT max(seq) FROM (SELECT seq FROM records WHERE seq > ? ORDER BY seq LIMIT ${FTS_CHUNK})`).pluck();
    const ftsInsert = this.db.prepare(
      "INSERT INTO records_fts (rowid, sql) SELECT seq, json ->> '$.sql' FROM records WHERE seq > ? AND seq <= ? AND json_type(json, '$.sql') = 'text' AND json ->> '$.sql' <> ''",
    );
    const ftsMark = this.db.prepare("UPDATE meta SET value = ? WHERE key = 'fts'");
    this.ftsFill = this.db.transaction(() => {
      const after = ftsSeq.get() as number;
      const high = ftsHigh.get(after) as number | null;
      if (high === null) return 0;
      ftsInsert.run(after, high);
      ftsMark.run(String(high));
      return high - after;
    });
    this.storedIds = this.db.prepare('SELECT id FROM records WHERE id IN (SELECT value FROM json_each(?))').pluck();
    this.upsertSession = this.db.prepare(
      `INSERT INTO sessions (id, start_ts, end_ts, client_ip, client_port, server_ip, server_port, db_type, db_product, db_user, database, program,
         audit_object, session_id, login, ended, records, statements, errors, max_risk)
       VALUES (@id, @start, @end, @clientIp, @clientPort, @serverIp, @serverPort, @dbType, @dbProduct, @user, @database, @program,
         @auditObject, @sessionId, @login, @ended, @records, @statements, @errors, @maxRisk)
       ON CONFLICT (id) DO UPDATE SET
         start_ts = min(start_ts, excluded.start_ts), end_ts = max(end_ts, excluded.end_ts),
         db_product = coalesce(db_product, excluded.db_product), db_user = coalesce(db_user, excluded.db_user),
         database = coalesce(database, excluded.database), program = coalesce(program, excluded.program),
         audit_object = coalesce(audit_object, excluded.audit_object), session_id = coalesce(session_id, excluded.session_id),
         login = coalesce(excluded.login, login), ended = max(ended, excluded.ended),
         records = records + excluded.records, statements = statements + excluded.statements,
         errors = errors + excluded.errors, max_risk = max(max_risk, excluded.max_risk)`,
    );
    this.setPosition = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    const dropSessions = this.db.prepare('DELETE FROM meta WHERE key = ?');
    this.appendTx = this.db.transaction((group: readonly PendingAppend[]) => {
      this.appendRows(group.length === 1 ? group[0]!.events : group.flatMap((p) => p.events));
      // positions in append order: the last of a source wins, with the session state it belongs to
      for (const p of group) {
        const position = p.position;
        if (position === undefined) continue;
        this.setPosition.run(`ingest:${position.source}`, String(position.seq));
        if (position.sessions !== undefined) this.setPosition.run(`sessions:${position.source}`, position.sessions);
        else dropSessions.run(`sessions:${position.source}`);
        this.chain.position(position.source, position.seq);
      }
    });
  }

  private check(): void {
    if (this.closed) throw new DbtapError(StoreErrorCodes.STORE_CLOSED, 'SqliteStore: closed');
  }

  /**
   * Throws `DBTAP_E_INTEGRITY_KEY` when this store could not append: its
   * chain is signed and the key given (or its absence) does not match. A
   * daemon calls it at start instead of failing on the first batch.
   */
  assertWritable(): void {
    this.check();
    this.chain.assertWritable();
  }

  /** {@inheritDoc AuditStore.ingestPosition} */
  async ingestPosition(source: string): Promise<number> {
    this.check();
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(`ingest:${source}`) as string | undefined;
    return v === undefined ? 0 : Number(v);
  }

  /** {@inheritDoc AuditStore.ingestSessions} */
  async ingestSessions(source: string): Promise<string | undefined> {
    this.check();
    return this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(`sessions:${source}`) as string | undefined;
  }

  private appendRows(events: readonly AuditEvent[]): void {
    if (events.length === 0) return;
    // Records already stored (a retried batch) and repeats within the batch
    // are skipped: one indexed lookup per batch instead of INSERT OR IGNORE
    // per row, so that rows can go in multi-row INSERTs.
    const seen = new Set(this.storedIds.all(JSON.stringify(events.map((e) => e.id))) as string[]);
    const accepted = new Uint8Array(events.length);
    const records: unknown[] = [];
    const objects: unknown[] = [];
    const rules: unknown[] = [];
    // Positions come from the chain (never reused); each stored record is sealed.
    let seq = this.chain.begin();
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      accepted[i] = 1;
      const json = recordJson(e);
      const ts = Math.floor(e.ts);
      records.push(
        seq, e.id, e.kind, ts, e.flowId, e.auditObjectId ?? null, e.user ?? null, e.client.ip ?? null, e.clientProgram ?? null,
        e.dbType ?? null, e.statementType ?? null, riskRank(e.risk), e.status ?? 'unknown', Buffer.byteLength(json), json,
      );
      this.chain.add(seq, json);
      for (const o of objectKeys(e)) objects.push(o.key, ts, seq, o.canonical ? 1 : 0);
      for (const r of ruleKeys(e)) rules.push(r, ts, seq);
      seq++;
    }
    this.insertRecords.run(records);
    this.textBacklog += records.length / RECORD_COLUMNS.length;
    this.insertObjects.run(objects);
    this.insertRules.run(rules);
    this.chain.seal();
    for (const d of sessionDeltas(events, (i) => accepted[i] === 1).values()) {
      this.upsertSession.run({
        id: d.id, start: d.start, end: d.end,
        clientIp: d.first.client.ip, clientPort: d.first.client.port, serverIp: d.first.server.ip, serverPort: d.first.server.port,
        dbType: d.first.dbType ?? '', dbProduct: d.dbProduct ?? null, user: d.user ?? null, database: d.database ?? null,
        program: d.program ?? null, auditObject: d.auditObjectId ?? null, sessionId: d.sessionId ?? null,
        login: d.login ?? null, ended: d.ended ? 1 : 0, records: d.records, statements: d.statements, errors: d.errors, maxRisk: d.maxRisk,
      });
    }
  }

  /**
   * Stores records, and with `position` the ingest position of their source,
   * in one transaction (see {@link AuditStore.append}).
   *
   * Group commit: appends made while a commit is pending (several agents,
   * several sources) are written in one transaction, and each promise
   * resolves once that transaction has committed. A group holds at most
   * 2,000 records unless a single append is larger, so one
   * transaction blocks the event loop for a bounded time.
   */
  append(events: readonly AuditEvent[], options?: AppendOptions): Promise<void> {
    try {
      this.check();
      if (!Array.isArray(events)) throw new DbtapError(StoreErrorCodes.BAD_RECORD, 'append: expected an array of records');
      const position = checkPosition(options);
      if (events.length === 0 && position === undefined) return Promise.resolve();
      events.forEach(checkRecord);
      if (this.writer !== undefined) return this.writer.append(events, position);
      return new Promise<void>((resolve, reject) => {
        this.queue.push({ events, position, resolve, reject });
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          setImmediate(() => this.flush());
        }
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Commits the queued appends, one bounded group per turn of the event loop. */
  private flush(): void {
    this.flushScheduled = false;
    const group: PendingAppend[] = [];
    let n = 0;
    while (this.queue.length > 0 && (group.length === 0 || n + this.queue[0]!.events.length <= GROUP_RECORDS)) {
      const p = this.queue.shift()!;
      group.push(p);
      n += p.events.length;
    }
    if (this.queue.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (group.length === 0) return;
    if (this.closed) {
      for (const p of group) p.reject(new DbtapError(StoreErrorCodes.STORE_CLOSED, 'SqliteStore: closed'));
      return;
    }
    try {
      this.commit(group);
      for (const p of group) p.resolve();
      this.scheduleTextIndex();
    } catch (err) {
      if (group.length === 1) {
        group[0]!.reject(err);
        return;
      }
      // One append's failure must not fail the others: each alone in its own transaction.
      for (const p of group) {
        try {
          this.commit([p]);
          p.resolve();
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }

  /**
   * Indexes the SQL text of stored records, one bounded step per turn of the
   * event loop: between appends once a step's worth is waiting, and the rest
   * once appends pause.
   */
  private scheduleTextIndex(): void {
    if (this.ftsScheduled) return;
    this.ftsScheduled = true;
    setImmediate(() => {
      this.ftsScheduled = false;
      if (this.closed || (this.queue.length > 0 && this.textBacklog < FTS_CHUNK)) return; // the next flush schedules it again
      try {
        const n = this.ftsFill.immediate();
        this.textBacklog = Math.max(0, this.textBacklog - n);
        if (n > 0) this.scheduleTextIndex();
      } catch {
        // busy or failing: the next append or text search tries again (and a search reports the error)
      }
    });
  }

  /** Indexes the SQL text of every record stored so far (before a text search). */
  private async indexText(): Promise<void> {
    try {
      while (this.ftsFill.immediate() > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.check();
      }
    } catch (err) {
      if (err instanceof DbtapError) throw err;
      throw new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: full-text indexing failed: ${(err as Error).message}`, { path: this.path }, { cause: err });
    }
  }

  private commit(group: readonly PendingAppend[]): void {
    // The transaction has committed (and with synchronous=FULL, fsynced the
    // WAL) when this returns.
    try {
      // IMMEDIATE: take the write lock before reading the chain head.
      this.appendTx.immediate(group);
    } catch (err) {
      if (err instanceof DbtapError) throw err;
      throw new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: append failed: ${(err as Error).message}`, { path: this.path }, { cause: err });
    }
  }

  /** {@inheritDoc AuditStore.search} */
  async search(query: RecordQuery): Promise<RecordPage> {
    this.check();
    const q = normalizeRecordQuery(query);
    if (q.text !== undefined) await this.indexText();
    const where: string[] = [];
    const params: Params = [];
    const eq = (col: string, v: string | undefined): void => {
      if (v !== undefined) { where.push(`r.${col} = ?`); params.push(v); }
    };
    // A touched-object or rule filter drives the query from its side table,
    // whose (key, ts, seq) order is the page order.
    let from = 'records r';
    let order = ['r.ts', 'r.seq'];
    if (q.object !== undefined) {
      from = 'record_objects o JOIN records r ON r.seq = o.seq';
      order = ['o.ts', 'o.seq'];
      where.push('o.name = ?');
      params.push(q.object);
    }
    if (q.ruleId !== undefined) {
      if (q.object === undefined) {
        from = 'record_rules x JOIN records r ON r.seq = x.seq';
        order = ['x.ts', 'x.seq'];
        where.push('x.rule_id = ?');
      } else {
        where.push('r.seq IN (SELECT seq FROM record_rules WHERE rule_id = ?)');
      }
      params.push(q.ruleId);
    }
    if (q.kinds !== undefined) { where.push(`r.kind IN (${q.kinds.map(() => '?').join(', ')})`); params.push(...q.kinds); }
    eq('audit_object', q.auditObjectId);
    eq('db_user', q.user);
    eq('client_ip', q.clientIp);
    eq('program', q.program);
    eq('db_type', q.dbType);
    eq('status', q.status);
    eq('flow_id', q.flowId);
    if (q.statementTypes !== undefined) { where.push(`r.stmt_type IN (${q.statementTypes.map(() => '?').join(', ')})`); params.push(...q.statementTypes); }
    if (q.minRisk !== undefined && q.minRisk > 0) { where.push('r.risk >= ?'); params.push(q.minRisk); }
    if (q.text !== undefined) {
      where.push('r.seq IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)');
      params.push(q.text.map(ftsTerm).join(' AND '));
    }
    const tail = pageClause(q, order[0]!, order[1]!, where, params);
    const rows = this.db.prepare(`SELECT r.seq, r.ts, r.json FROM ${from} ${whereSql(where)} ${tail}`).all(...params) as { seq: number; ts: number; json: string }[];
    const page: RecordPage = { records: [] };
    const n = Math.min(rows.length, q.limit);
    for (let i = 0; i < n; i++) page.records.push(JSON.parse(rows[i]!.json) as AuditEvent);
    if (rows.length > q.limit) page.nextCursor = encodeCursor(q.order, { ts: rows[n - 1]!.ts, seq: rows[n - 1]!.seq });
    return page;
  }

  /** {@inheritDoc AuditStore.sessions} */
  async sessions(query: SessionQuery): Promise<SessionPage> {
    this.check();
    const q = normalizeSessionQuery(query);
    const where: string[] = [];
    const params: Params = [];
    const eq = (col: string, v: string | undefined): void => {
      if (v !== undefined) { where.push(`${col} = ?`); params.push(v); }
    };
    eq('db_user', q.user);
    eq('client_ip', q.clientIp);
    eq('program', q.program);
    eq('audit_object', q.auditObjectId);
    eq('db_type', q.dbType);
    if (q.minRisk !== undefined && q.minRisk > 0) { where.push('max_risk >= ?'); params.push(q.minRisk); }
    if (q.hasErrors !== undefined) where.push(q.hasErrors ? 'errors > 0' : 'errors = 0');
    // A session matches a range it overlaps: it ends at or after `from`, starts before `to`.
    if (q.from !== undefined) { where.push('end_ts >= ?'); params.push(q.from); }
    const tail = pageClause({ ...q, from: undefined }, 'start_ts', 'rid', where, params);
    const rows = this.db.prepare(`SELECT * FROM sessions ${whereSql(where)} ${tail}`).all(...params) as Row[];
    const page: SessionPage = { sessions: [] };
    const n = Math.min(rows.length, q.limit);
    for (let i = 0; i < n; i++) page.sessions.push(sessionFromRow(rows[i]!));
    if (rows.length > q.limit) page.nextCursor = encodeCursor(q.order, { ts: rows[n - 1]!.start_ts as number, seq: rows[n - 1]!.rid as number });
    return page;
  }

  /** {@inheritDoc AuditStore.session} */
  async session(id: string): Promise<SessionTimeline | undefined> {
    this.check();
    if (typeof id !== 'string' || id === '') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'session: id missing');
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
    if (row === undefined) return undefined;
    const records = (this.db.prepare('SELECT json FROM records WHERE flow_id = ? ORDER BY ts, seq').pluck().all(id) as string[]).map((j) => JSON.parse(j) as AuditEvent);
    return buildTimeline(sessionFromRow(row), records);
  }

  /** {@inheritDoc AuditStore.alerts} */
  async alerts(query: AlertQuery): Promise<AlertPage> {
    this.check();
    const q = normalizeAlertQuery(query);
    const where: string[] = ["r.kind = 'alert'"];
    const params: Params = [];
    if (q.ruleId !== undefined) { where.push('r.seq IN (SELECT seq FROM record_rules WHERE rule_id = ? AND ts = r.ts)'); params.push(q.ruleId); }
    if (q.minRisk !== undefined && q.minRisk > 0) { where.push('r.risk >= ?'); params.push(q.minRisk); }
    if (q.auditObjectId !== undefined) { where.push('r.audit_object = ?'); params.push(q.auditObjectId); }
    if (q.acknowledged !== undefined) where.push(q.acknowledged ? 'a.id IS NOT NULL' : 'a.id IS NULL');
    const tail = pageClause(q, 'r.ts', 'r.seq', where, params);
    const rows = this.db.prepare(`SELECT r.seq, r.ts, r.json, a.by, a.at FROM records r LEFT JOIN alert_acks a ON a.id = r.id ${whereSql(where)} ${tail}`).all(...params) as Row[];
    const page: AlertPage = { alerts: [] };
    const n = Math.min(rows.length, q.limit);
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      const alert = { record: JSON.parse(r.json as string) as AuditEvent } as AlertPage['alerts'][number];
      if (r.by !== null) alert.acknowledged = { by: r.by as string, at: r.at as number };
      page.alerts.push(alert);
    }
    if (rows.length > q.limit) page.nextCursor = encodeCursor(q.order, { ts: rows[n - 1]!.ts as number, seq: rows[n - 1]!.seq as number });
    return page;
  }

  /** {@inheritDoc AuditStore.acknowledgeAlert} */
  async acknowledgeAlert(id: string, by: string): Promise<Acknowledgement | undefined> {
    this.check();
    if (typeof id !== 'string' || id === '') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'acknowledgeAlert: id missing');
    if (typeof by !== 'string' || by.trim() === '' || by.length > 256) throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'acknowledgeAlert: by must be a name of 1 to 256 characters');
    const exists = this.db.prepare("SELECT 1 FROM records WHERE id = ? AND kind = 'alert'").get(id);
    if (exists === undefined) return undefined;
    this.db.prepare('INSERT OR IGNORE INTO alert_acks (id, by, at) VALUES (?, ?, ?)').run(id, by, Date.now() * 1000);
    const row = this.db.prepare('SELECT by, at FROM alert_acks WHERE id = ?').get(id) as { by: string; at: number };
    return { by: row.by, at: row.at };
  }

  /** {@inheritDoc AuditStore.summary} */
  async summary(query: SummaryQuery): Promise<SummaryReport> {
    this.check();
    const q = normalizeSummaryQuery(query);
    const where: string[] = [];
    const params: Params = [];
    if (q.from !== undefined) { where.push('r.ts >= ?'); params.push(q.from); }
    if (q.to !== undefined) { where.push('r.ts < ?'); params.push(q.to); }
    if (q.auditObjectId !== undefined) { where.push('r.audit_object = ?'); params.push(q.auditObjectId); }
    const w = whereSql(where);
    const and = (extra: string): string => (where.length === 0 ? `WHERE ${extra}` : `${w} AND ${extra}`);
    const group = (col: string, from: string, cond?: string): CountEntry[] =>
      (this.db.prepare(`SELECT coalesce(${col}, '') AS key, count(*) AS count FROM ${from} ${cond === undefined ? w : and(cond)} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${q.top}`).all(...params) as CountEntry[]);
    const total = this.db.prepare(`SELECT count(*) FROM records r ${w}`).pluck().get(...params) as number;
    const byRisk = group('r.risk', 'records r').map((e) => ({ key: RISK_LEVELS[Number(e.key)] ?? 'none', count: e.count }));
    const report: SummaryReport = {
      total,
      byKind: group('r.kind', 'records r'),
      byStatementType: group('r.stmt_type', 'records r', "r.kind = 'statement'"),
      byUser: group('r.db_user', 'records r'),
      byObject: group('o.name', 'record_objects o JOIN records r ON r.seq = o.seq', 'o.canonical = 1'),
      byStatus: group('r.status', 'records r'),
      byRisk,
    };
    if (q.from !== undefined) report.from = q.from;
    if (q.to !== undefined) report.to = q.to;
    return report;
  }

  // ---- reports -------------------------------------------------------------

  private static readonly reportTarget: ReportTarget = { dialect: 'sqlite', records: 'records', objects: 'record_objects', rules: 'record_rules', facts: 'report_facts' };
  private factsReady = false;

  /**
   * Brings the report facts (the JSON fields reports group and measure by)
   * up to date: extracts them for records appended since the last report,
   * in chunks with a yield between, so a large backlog does not stall the
   * event loop; forgets the facts of records retention removed. Record
   * positions (`seq`) only grow, so "after the highest seq with facts" is
   * exactly the records not seen yet.
   */
  private async updateReportFacts(): Promise<void> {
    if (!this.factsReady) {
      this.db.exec(SQLITE_FACTS_TABLE);
      this.factsReady = true;
    }
    const fill = this.db.prepare(SQLITE_FACTS_FILL);
    const last = this.db.prepare('SELECT coalesce(max(seq), 0) FROM report_facts').pluck();
    for (;;) {
      this.check();
      const n = fill.run({ after: last.get() as number, limit: REPORT_FACTS_CHUNK }).changes;
      if (n < REPORT_FACTS_CHUNK) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.db.prepare('DELETE FROM report_facts WHERE seq < (SELECT coalesce(min(seq), 9e18) FROM records)').run();
  }

  /** Offset segments of an off-hours filter over the stored span of its range. */
  private reportSegments(f: NormalizedReportFilter): OffsetSegment[] | undefined {
    if (f.offHours === undefined) return undefined;
    const r = rangeSql(SqliteStore.reportTarget, f);
    const span = this.db.prepare(r.text).get(...sqliteArgs(r.params)) as { lo: number | null; hi: number | null };
    return segmentsFor(f, span.lo, span.hi);
  }

  /** {@inheritDoc AuditStore.aggregate} */
  async aggregate(query: AggregateQuery): Promise<AggregateResult> {
    this.check();
    const q = normalizeAggregateQuery(query);
    try {
      await this.updateReportFacts();
      const sql = aggregateSql(SqliteStore.reportTarget, q, this.reportSegments(q));
      const rows = this.db.prepare(sql.text).all(...sqliteArgs(sql.params)) as Row[];
      const keys = sampleKeys(rows);
      let samples: Map<string, string> | undefined;
      if (keys.length > 0) {
        const s = samplesSql(SqliteStore.reportTarget, keys);
        samples = new Map((this.db.prepare(s.text).all(...sqliteArgs(s.params)) as { id: string; j: string }[]).map((x) => [x.id, x.j]));
      }
      return aggregateResult(rows, q, samples);
    } catch (err) {
      if (err instanceof DbtapError) throw err;
      throw new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: aggregate failed: ${(err as Error).message}`, { path: this.path }, { cause: err });
    }
  }

  /** {@inheritDoc AuditStore.reportRecords} */
  async reportRecords(query: ReportRecordQuery): Promise<AuditEvent[]> {
    this.check();
    const q = normalizeReportRecordQuery(query);
    try {
      await this.updateReportFacts();
      const sql = recordsSql(SqliteStore.reportTarget, q, this.reportSegments(q));
      return (this.db.prepare(sql.text).pluck().all(...sqliteArgs(sql.params)) as string[]).map((j) => JSON.parse(j) as AuditEvent);
    } catch (err) {
      if (err instanceof DbtapError) throw err;
      throw new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: reportRecords failed: ${(err as Error).message}`, { path: this.path }, { cause: err });
    }
  }

  /** {@inheritDoc AuditStore.retention} */
  async retention(policy: RetentionPolicy): Promise<RetentionResult> {
    this.check();
    if (policy === null || typeof policy !== 'object') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'retention: policy missing');
    const { maxAgeDays, maxBytes, exportDir } = policy;
    if (maxAgeDays !== undefined && (typeof maxAgeDays !== 'number' || !(maxAgeDays >= 0))) throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'retention: maxAgeDays must be a number >= 0');
    if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !(maxBytes >= 0))) throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'retention: maxBytes must be a number >= 0');
    if (exportDir !== undefined && (typeof exportDir !== 'string' || exportDir === '')) throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'retention: exportDir must be a directory path');
    if (this.retentionRunning) throw new DbtapError(StoreErrorCodes.RETENTION_BUSY, 'retention: a run is already in progress');
    this.retentionRunning = true;
    try {
      // Text indexed before rows go, so that every row removed from the index is in it.
      await this.indexText();
      const now = policy.now === undefined ? Date.now() * 1000 : parseTime(policy.now, 'now');
      // Records appended during the run (seq > maxSeq) are neither exported nor removed.
      const maxSeq = (this.db.prepare('SELECT coalesce(max(seq), 0) FROM records').pluck().get() as number);
      const conds: string[] = [];
      const params: Params = [];
      if (maxAgeDays !== undefined) { conds.push('ts < ?'); params.push(Math.floor(now - maxAgeDays * DAY_US)); }
      if (maxBytes !== undefined) {
        const total = this.db.prepare('SELECT coalesce(sum(size), 0) FROM records WHERE seq <= ?').pluck().get(maxSeq) as number;
        let excess = total - maxBytes;
        if (excess > 0) {
          let last: { ts: number; seq: number } | undefined;
          for (const r of this.db.prepare('SELECT ts, seq, size FROM records WHERE seq <= ? ORDER BY ts, seq').iterate(maxSeq) as IterableIterator<{ ts: number; seq: number; size: number }>) {
            excess -= r.size;
            last = r;
            if (excess <= 0) break;
          }
          if (last !== undefined) { conds.push('(ts, seq) <= (?, ?)'); params.push(last.ts, last.seq); }
        }
      }
      if (conds.length === 0) return { removed: 0, bytesRemoved: 0 };
      const cond = `seq <= ? AND (${conds.join(' OR ')})`;
      const condParams: Params = [maxSeq, ...params];
      const agg = this.db.prepare(`SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, min(ts) AS oldest, max(ts) AS newest FROM records WHERE ${cond}`).get(...condParams) as { n: number; bytes: number; oldest: number | null; newest: number | null };
      if (agg.n === 0) return { removed: 0, bytesRemoved: 0 };
      const result: RetentionResult = { removed: 0, bytesRemoved: agg.bytes };
      if (exportDir !== undefined) {
        const db = this.db;
        const page = db.prepare(`SELECT ts, seq, json FROM records WHERE ${cond} AND (ts, seq) > (?, ?) ORDER BY ts, seq LIMIT ${RETENTION_CHUNK}`);
        const check = (): void => this.check();
        async function* batches(): AsyncGenerator<string[]> {
          let after = { ts: -1, seq: -1 };
          for (;;) {
            check();
            const rows = page.all(...condParams, after.ts, after.seq) as { ts: number; seq: number; json: string }[];
            if (rows.length === 0) return;
            after = rows[rows.length - 1]!;
            yield rows.map((r) => r.json);
          }
        }
        result.exportFile = await writeNdjsonGz(exportDir, exportFileName('dbtap-records', agg.oldest!, agg.newest!, now), batches());
      }
      this.check();
      // Tamper evidence: a checkpoint naming what is about to go, before anything goes.
      this.chain.retentionStart(this.db.prepare(`SELECT seq FROM records WHERE ${cond} ORDER BY seq`).pluck().iterate(...condParams) as IterableIterator<number>);
      // Delete in chunks, each its own transaction, yielding between them so
      // appends and queries are not held up by one long transaction.
      const pick = this.db.prepare(`SELECT seq FROM records WHERE ${cond} ORDER BY seq LIMIT ${RETENTION_CHUNK}`).pluck();
      const delChunk = this.db.transaction((seqs: number[]) => {
        const list = JSON.stringify(seqs);
        this.db.prepare('DELETE FROM alert_acks WHERE id IN (SELECT id FROM records WHERE seq IN (SELECT value FROM json_each(?)))').run(list);
        this.db.prepare('DELETE FROM record_objects WHERE seq IN (SELECT value FROM json_each(?))').run(list);
        this.db.prepare('DELETE FROM record_rules WHERE seq IN (SELECT value FROM json_each(?))').run(list);
        this.db.prepare('DELETE FROM records_fts WHERE rowid IN (SELECT value FROM json_each(?))').run(list);
        return this.db.prepare('DELETE FROM records WHERE seq IN (SELECT value FROM json_each(?))').run(list).changes;
      });
      for (;;) {
        this.check();
        const seqs = pick.all(...condParams) as number[];
        if (seqs.length === 0) break;
        result.removed += delChunk(seqs);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      this.chain.retentionFinish();
      // Sessions whose records are all gone are forgotten too.
      this.db.prepare('DELETE FROM sessions WHERE end_ts <= ? AND NOT EXISTS (SELECT 1 FROM records WHERE flow_id = sessions.id)').run(agg.newest!);
      this.db.pragma('incremental_vacuum');
      return result;
    } finally {
      this.retentionRunning = false;
    }
  }

  /** {@inheritDoc AuditStore.stats} */
  async stats(): Promise<StoreStats> {
    this.check();
    const r = this.db.prepare('SELECT count(*) AS records, coalesce(sum(size), 0) AS bytes, min(ts) AS oldest, max(ts) AS newest FROM records').get() as Row;
    const alerts = this.db.prepare("SELECT count(*) FROM records WHERE kind = 'alert'").pluck().get() as number;
    const acked = this.db.prepare("SELECT count(*) FROM alert_acks a JOIN records r ON r.id = a.id AND r.kind = 'alert'").pluck().get() as number;
    const s: StoreStats = {
      records: r.records as number,
      sessions: this.db.prepare('SELECT count(*) FROM sessions').pluck().get() as number,
      alerts,
      unacknowledgedAlerts: alerts - acked,
      bytes: r.bytes as number,
    };
    if (r.oldest !== null) s.oldest = r.oldest as number;
    if (r.newest !== null) s.newest = r.newest as number;
    return s;
  }

  /** {@inheritDoc AuditStore.verify} */
  async verify(options?: VerifyOptions): Promise<IntegrityReport> {
    this.check();
    // A file is read through a read-only connection of its own (a snapshot
    // that appends on this connection do not disturb); memory has no other way in.
    return this.path === ':memory:' || this.path === '' ? verifySqliteDatabase(this.db, options, false) : verifySqliteFile(this.path, options);
  }

  /** {@inheritDoc AuditStore.close} */
  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already accepted are committed before the file closes.
    while (this.queue.length > 0) this.flush();
    this.closed = true;
    await this.writer?.close();
    this.db.close();
  }
}

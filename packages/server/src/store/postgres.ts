import type pg from 'pg';
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
  type NormalizedReportFilter,
  type ReportTarget,
} from './report-sql.js';
import type { OffsetSegment } from './hours.js';
import { postgresDriver } from './native.js';
import { PostgresChain, chainTransaction } from '../integrity/postgres.js';
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

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /** An existing pool to use (the store does not end it on close). */
  pool?: pg.Pool;
  /** Connection settings for a pool of the store's own, when `pool` is absent. */
  connection?: pg.PoolConfig | string;
  /** Prefix of every table name (default `dbtap`): lower-case letters, digits, `_`, at most 40 characters. */
  prefix?: string;
  /** Width of a record partition: one per UTC `day` (default) or `month`. */
  partition?: 'day' | 'month';
  /** Tamper evidence: the key that signs the hash chain (see {@link IntegrityOptions}). */
  integrity?: IntegrityOptions;
}

const DAY_US = 86_400_000_000;
const RETENTION_CHUNK = 5000;
/** Positions above this are clamped by PostgreSQL (tsvector limit). */
const MAX_TSV_WORDS = 16_383;

type Row = Record<string, unknown>;

/** A tsvector literal of the SQL's words (letters and digits, lower case) with positions. */
function tsvectorOf(sql: string | undefined): string | null {
  if (typeof sql !== 'string' || sql === '') return null;
  const words = sql.toLowerCase().match(/[\p{L}\p{N}]+/gu);
  if (words === null) return null;
  // Words hold no quote or backslash, so they need no escaping; very long
  // words are cut below the 2 KiB lexeme limit.
  const n = Math.min(words.length, MAX_TSV_WORDS);
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = `'${words[i]!.slice(0, 500)}':${i + 1}`;
  return parts.join(' ');
}

/** A tsquery literal of the full-text terms: phrases joined by AND, a prefix on the last word where asked. */
function tsqueryOf(terms: TextTerm[]): string {
  return terms
    .map((t) => {
      const words = t.words.map((w, i) => `'${w.slice(0, 500)}'${t.prefix && i === t.words.length - 1 ? ':*' : ''}`);
      return words.length === 1 ? words[0]! : `(${words.join(' <-> ')})`;
    })
    .join(' & ');
}

class SqlBuilder {
  readonly where: string[] = [];
  readonly params: unknown[] = [];
  p(v: unknown): string {
    this.params.push(v);
    return `$${this.params.length}`;
  }
  eq(col: string, v: string | undefined): void {
    if (v !== undefined) this.where.push(`${col} = ${this.p(v)}`);
  }
  sql(): string {
    return this.where.length === 0 ? '' : `WHERE ${this.where.join(' AND ')}`;
  }
  /** Keyset condition and ORDER BY ... LIMIT of a page. */
  page(q: NormalizedPage, tsCol: string, seqCol: string, withFrom = true): string {
    if (withFrom && q.from !== undefined) this.where.push(`${tsCol} >= ${this.p(q.from)}`);
    if (q.to !== undefined) this.where.push(`${tsCol} < ${this.p(q.to)}`);
    if (q.after !== undefined) this.where.push(`(${tsCol}, ${seqCol}) ${q.order === 'asc' ? '>' : '<'} (${this.p(q.after.ts)}, ${this.p(q.after.seq)})`);
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    return `ORDER BY ${tsCol} ${dir}, ${seqCol} ${dir} LIMIT ${q.limit + 1}`;
  }
}

function sessionFromRow(r: Row): SessionSummary {
  const s: SessionSummary = {
    id: r.id as string,
    start: Number(r.start_ts),
    end: Number(r.end_ts),
    client: { ip: r.client_ip as string, port: r.client_port as number },
    server: { ip: r.server_ip as string, port: r.server_port as number },
    dbType: r.db_type as string,
    ended: r.ended as boolean,
    records: Number(r.records),
    statements: Number(r.statements),
    errors: Number(r.errors),
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

function wrap(err: unknown, what: string): DbtapError {
  if (err instanceof DbtapError) return err;
  return new DbtapError(StoreErrorCodes.STORE_FAILED, `PostgresStore: ${what} failed: ${(err as Error).message}`, { sqlState: (err as { code?: string }).code }, { cause: err });
}

/**
 * An {@link AuditStore} in PostgreSQL (node-postgres): records in a table
 * range-partitioned on `ts` by UTC day or month, partitions created on
 * demand and dropped whole by retention when they fall entirely out of it;
 * the record as JSON plus indexed columns, GIN indexes on touched objects,
 * rule ids and a full-text vector of the SQL words; keyset pagination.
 *
 * Durability is PostgreSQL's: `append` resolves after `COMMIT`, which with
 * the default `synchronous_commit = on` has flushed the WAL.
 */
export class PostgresStore implements AuditStore {
  private readonly pool: pg.Pool;
  private readonly ownPool: boolean;
  private readonly t: { records: string; sessions: string; acks: string; seq: string; ingest: string };
  /** Idle pooled connections the server closed (only counted for a pool the store made). */
  idleConnectionErrors = 0;
  /** Message of the last of those. */
  lastIdleConnectionError: string | undefined = undefined;
  /** Prefix of this store's table names. */
  readonly prefix: string;
  private readonly partition: 'day' | 'month';
  private readonly partitions = new Set<string>();
  private closed = false;
  private retentionRunning = false;
  private readonly chain: PostgresChain;

  private constructor(pool: pg.Pool, ownPool: boolean, prefix: string, partition: 'day' | 'month', integrity?: IntegrityOptions) {
    this.chain = new PostgresChain(`${prefix}_records`, prefix, integrity);
    this.pool = pool;
    this.ownPool = ownPool;
    this.prefix = prefix;
    this.partition = partition;
    this.t = { records: `${prefix}_records`, sessions: `${prefix}_sessions`, acks: `${prefix}_alert_acks`, seq: `${prefix}_records_seq`, ingest: `${prefix}_ingest` };
  }

  /** Connects, creates the tables when missing, and returns the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const prefix = options.prefix ?? 'dbtap';
    if (!/^[a-z_][a-z0-9_]{0,39}$/.test(prefix)) throw new DbtapError(StoreErrorCodes.BAD_QUERY, `PostgresStore: prefix ${JSON.stringify(prefix)} must be lower-case letters, digits and _ (at most 40)`);
    const partition = options.partition ?? 'day';
    if (partition !== 'day' && partition !== 'month') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'PostgresStore: partition must be day or month');
    const own = options.pool === undefined;
    const pool = options.pool ?? new (postgresDriver().Pool)(typeof options.connection === 'string' ? { connectionString: options.connection } : options.connection);
    const store = new PostgresStore(pool, own, prefix, partition, options.integrity);
    // An idle pooled connection the server ends (restart, administrator) emits
    // 'error' on the pool: without a listener it would end the process. The
    // pool drops that connection by itself; queries on a broken one still fail.
    if (own) pool.on('error', (err) => void (store.idleConnectionErrors++, (store.lastIdleConnectionError = err.message)));
    try {
      await store.createSchema();
    } catch (err) {
      if (own) await pool.end().catch(() => undefined);
      throw wrap(err, 'opening the store');
    }
    return store;
  }

  private async createSchema(): Promise<void> {
    const { records, sessions, acks, seq } = this.t;
    const c = await this.pool.connect();
    try {
      // Serialise schema creation between processes opening the same database.
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dbtap-schema:${this.prefix}`]);
      await c.query(`
        CREATE SEQUENCE IF NOT EXISTS ${seq};
        CREATE TABLE IF NOT EXISTS ${records} (
          seq bigint NOT NULL DEFAULT nextval('${seq}'),
          id text NOT NULL,
          kind text NOT NULL,
          ts bigint NOT NULL,
          flow_id text NOT NULL,
          audit_object text, db_user text, client_ip text, program text, db_type text, stmt_type text,
          risk smallint NOT NULL,
          status text NOT NULL,
          size integer NOT NULL,
          objects text[] NOT NULL,
          canonical_objects text[] NOT NULL,
          rule_ids text[] NOT NULL,
          sql_words tsvector,
          record json NOT NULL,
          UNIQUE (id, ts)
        ) PARTITION BY RANGE (ts);
        CREATE INDEX IF NOT EXISTS ${records}_ts ON ${records} (ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_flow ON ${records} (flow_id, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_audit_object ON ${records} (audit_object, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_user ON ${records} (db_user, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_client ON ${records} (client_ip, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_program ON ${records} (program, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_stmt ON ${records} (stmt_type, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_risk ON ${records} (risk, ts, seq);
        CREATE INDEX IF NOT EXISTS ${records}_alerts ON ${records} (ts, seq) WHERE kind = 'alert';
        CREATE INDEX IF NOT EXISTS ${records}_objects ON ${records} USING gin (objects);
        CREATE INDEX IF NOT EXISTS ${records}_rules ON ${records} USING gin (rule_ids);
        CREATE INDEX IF NOT EXISTS ${records}_words ON ${records} USING gin (sql_words);
        CREATE TABLE IF NOT EXISTS ${sessions} (
          rid bigserial PRIMARY KEY,
          id text NOT NULL UNIQUE,
          start_ts bigint NOT NULL, end_ts bigint NOT NULL,
          client_ip text NOT NULL, client_port integer NOT NULL, server_ip text NOT NULL, server_port integer NOT NULL,
          db_type text NOT NULL, db_product text, db_user text, database text, program text, audit_object text, session_id text,
          login text, ended boolean NOT NULL,
          records bigint NOT NULL, statements bigint NOT NULL, errors bigint NOT NULL, max_risk smallint NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ${sessions}_start ON ${sessions} (start_ts, rid);
        CREATE INDEX IF NOT EXISTS ${sessions}_user ON ${sessions} (db_user, start_ts, rid);
        CREATE INDEX IF NOT EXISTS ${sessions}_client ON ${sessions} (client_ip, start_ts, rid);
        CREATE TABLE IF NOT EXISTS ${acks} (id text PRIMARY KEY, by text NOT NULL, at bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS ${this.t.ingest} (source text PRIMARY KEY, seq bigint NOT NULL);
      `);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
    await this.loadPartitions();
    // Tamper evidence: the chain table, and a seal over records stored before it existed.
    await this.chain.init(this.pool);
  }

  private async loadPartitions(): Promise<void> {
    const r = await this.pool.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, [this.t.records]);
    this.partitions.clear();
    for (const row of r.rows as { relname: string }[]) this.partitions.add(row.relname);
  }

  /** Partition name and [from, to) range in µs holding `ts`. */
  private partitionOf(ts: number): { name: string; from: number; to: number } {
    const d = new Date(Math.floor(ts / 1000));
    if (this.partition === 'day') {
      const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      const stamp = new Date(from).toISOString().slice(0, 10).replace(/-/g, '');
      return { name: `${this.t.records}_d${stamp}`, from: from * 1000, to: (from + 86_400_000) * 1000 };
    }
    const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    const to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    const stamp = new Date(from).toISOString().slice(0, 7).replace(/-/g, '');
    return { name: `${this.t.records}_m${stamp}`, from: from * 1000, to: to * 1000 };
  }

  private async ensurePartitions(events: readonly AuditEvent[]): Promise<void> {
    const need = new Map<string, { from: number; to: number }>();
    for (const e of events) {
      const p = this.partitionOf(e.ts);
      if (!this.partitions.has(p.name)) need.set(p.name, p);
    }
    for (const [name, p] of need) {
      try {
        await this.pool.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF ${this.t.records} FOR VALUES FROM (${p.from}) TO (${p.to})`);
      } catch (err) {
        // Another process created it between our check and our CREATE.
        const code = (err as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw err;
      }
      this.partitions.add(name);
    }
  }

  private check(): void {
    if (this.closed) throw new DbtapError(StoreErrorCodes.STORE_CLOSED, 'PostgresStore: closed');
  }

  /** {@inheritDoc AuditStore.append} */
  async append(events: readonly AuditEvent[], options?: AppendOptions): Promise<void> {
    this.check();
    if (!Array.isArray(events)) throw new DbtapError(StoreErrorCodes.BAD_RECORD, 'append: expected an array of records');
    const position = checkPosition(options);
    if (events.length === 0) {
      if (position !== undefined) await this.pool.query(this.positionSql(), [position.source, position.seq]).catch((err: unknown) => Promise.reject(wrap(err, 'append')));
      return;
    }
    events.forEach(checkRecord);
    try {
      await this.ensurePartitions(events);
      await this.appendOnce(events, position);
    } catch (err) {
      // A partition dropped by another process's retention: relearn and retry once.
      if ((err as { code?: string }).code !== '23514') throw wrap(err, 'append');
      try {
        await this.loadPartitions();
        await this.ensurePartitions(events);
        await this.appendOnce(events, position);
      } catch (again) {
        throw wrap(again, 'append');
      }
    }
  }

  private positionSql(): string {
    return `INSERT INTO ${this.t.ingest} (source, seq) VALUES ($1, $2) ON CONFLICT (source) DO UPDATE SET seq = excluded.seq`;
  }

  /** {@inheritDoc AuditStore.ingestPosition} */
  async ingestPosition(source: string): Promise<number> {
    this.check();
    try {
      const r = await this.pool.query(`SELECT seq FROM ${this.t.ingest} WHERE source = $1`, [source]);
      return r.rows.length === 0 ? 0 : Number((r.rows[0] as { seq: string }).seq);
    } catch (err) {
      throw wrap(err, 'ingestPosition');
    }
  }

  private async appendOnce(events: readonly AuditEvent[], position?: AppendOptions['position']): Promise<void> {
    const n = events.length;
    const cols = {
      id: new Array<string>(n), kind: new Array<string>(n), ts: new Array<number>(n), flow: new Array<string>(n),
      ao: new Array<string | null>(n), user: new Array<string | null>(n), ip: new Array<string | null>(n), prog: new Array<string | null>(n),
      dbt: new Array<string | null>(n), st: new Array<string | null>(n), risk: new Array<number>(n), status: new Array<string>(n), size: new Array<number>(n),
      objects: new Array<string>(n), canonical: new Array<string>(n), rules: new Array<string>(n), words: new Array<string | null>(n), json: new Array<string>(n),
    };
    for (let i = 0; i < n; i++) {
      const e = events[i]!;
      const json = recordJson(e);
      const keys = objectKeys(e);
      cols.id[i] = e.id; cols.kind[i] = e.kind; cols.ts[i] = Math.floor(e.ts); cols.flow[i] = e.flowId;
      cols.ao[i] = e.auditObjectId ?? null; cols.user[i] = e.user ?? null; cols.ip[i] = e.client.ip ?? null; cols.prog[i] = e.clientProgram ?? null;
      cols.dbt[i] = e.dbType ?? null; cols.st[i] = e.statementType ?? null; cols.risk[i] = riskRank(e.risk); cols.status[i] = e.status ?? 'unknown';
      cols.size[i] = Buffer.byteLength(json);
      cols.objects[i] = JSON.stringify(keys.map((k) => k.key));
      cols.canonical[i] = JSON.stringify(keys.filter((k) => k.canonical).map((k) => k.key));
      cols.rules[i] = JSON.stringify(ruleKeys(e));
      cols.words[i] = tsvectorOf(e.sql);
      cols.json[i] = json;
    }
    const { records, sessions } = this.t;
    await chainTransaction(this.pool, async (c) => {
      // The chain lock first: links (and the positions they seal) follow one another.
      const head = await this.chain.begin(c);
      // One statement per batch: parallel arrays unnested into rows; the
      // array-valued columns travel as JSON text (unnest cannot take ragged
      // 2-D arrays).
      const r = await c.query(
        `INSERT INTO ${records} (id, kind, ts, flow_id, audit_object, db_user, client_ip, program, db_type, stmt_type, risk, status, size,
           objects, canonical_objects, rule_ids, sql_words, record)
         SELECT id, kind, ts, flow, ao, usr, ip, prog, dbt, st, risk, status, size,
           ARRAY(SELECT json_array_elements_text(objs::json)), ARRAY(SELECT json_array_elements_text(canon::json)),
           ARRAY(SELECT json_array_elements_text(rules::json)), words::tsvector, rec::json
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
           $11::smallint[], $12::text[], $13::integer[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
           AS u(id, kind, ts, flow, ao, usr, ip, prog, dbt, st, risk, status, size, objs, canon, rules, words, rec)
         ON CONFLICT (id, ts) DO NOTHING
         RETURNING id, ts, seq`,
        [cols.id, cols.kind, cols.ts, cols.flow, cols.ao, cols.user, cols.ip, cols.prog, cols.dbt, cols.st, cols.risk, cols.status, cols.size,
          cols.objects, cols.canonical, cols.rules, cols.words, cols.json],
      );
      const inserted = new Set((r.rows as { id: string }[]).map((x) => x.id));
      // Seal what was stored: of records sharing (id, ts) in one batch the first is the one kept.
      const firstOf = new Map<string, number>();
      for (let i = n - 1; i >= 0; i--) firstOf.set(`${cols.id[i]}\u0000${cols.ts[i]}`, i);
      await this.chain.seal(c, head, (r.rows as { id: string; ts: string; seq: string }[]).map((x) => ({ seq: Number(x.seq), json: cols.json[firstOf.get(`${x.id}\u0000${x.ts}`)!]! })));
      const seen = new Set<string>();
      const deltas = [...sessionDeltas(events, (i) => {
        const id = events[i]!.id;
        if (!inserted.has(id) || seen.has(id)) return false;
        seen.add(id);
        return true;
      }).values()];
      if (deltas.length > 0) {
        const col = <T>(f: (d: (typeof deltas)[number]) => T): T[] => deltas.map(f);
        await c.query(
          `INSERT INTO ${sessions} AS s (id, start_ts, end_ts, client_ip, client_port, server_ip, server_port, db_type, db_product, db_user, database, program,
             audit_object, session_id, login, ended, records, statements, errors, max_risk)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::integer[], $6::text[], $7::integer[], $8::text[], $9::text[],
             $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::boolean[], $17::bigint[], $18::bigint[], $19::bigint[], $20::smallint[])
           ON CONFLICT (id) DO UPDATE SET
             start_ts = least(s.start_ts, excluded.start_ts), end_ts = greatest(s.end_ts, excluded.end_ts),
             db_product = coalesce(s.db_product, excluded.db_product), db_user = coalesce(s.db_user, excluded.db_user),
             database = coalesce(s.database, excluded.database), program = coalesce(s.program, excluded.program),
             audit_object = coalesce(s.audit_object, excluded.audit_object), session_id = coalesce(s.session_id, excluded.session_id),
             login = coalesce(excluded.login, s.login), ended = s.ended OR excluded.ended,
             records = s.records + excluded.records, statements = s.statements + excluded.statements,
             errors = s.errors + excluded.errors, max_risk = greatest(s.max_risk, excluded.max_risk)`,
          [
            col((d) => d.id), col((d) => d.start), col((d) => d.end), col((d) => d.first.client.ip), col((d) => d.first.client.port),
            col((d) => d.first.server.ip), col((d) => d.first.server.port), col((d) => d.first.dbType ?? ''), col((d) => d.dbProduct ?? null),
            col((d) => d.user ?? null), col((d) => d.database ?? null), col((d) => d.program ?? null), col((d) => d.auditObjectId ?? null),
            col((d) => d.sessionId ?? null), col((d) => d.login ?? null), col((d) => d.ended), col((d) => d.records), col((d) => d.statements),
            col((d) => d.errors), col((d) => d.maxRisk),
          ],
        );
      }
      if (position !== undefined) await c.query(this.positionSql(), [position.source, position.seq]);
    });
  }

  private async query(text: string, params: unknown[], what: string): Promise<Row[]> {
    this.check();
    try {
      return (await this.pool.query(text, params)).rows as Row[];
    } catch (err) {
      throw wrap(err, what);
    }
  }

  /** {@inheritDoc AuditStore.search} */
  async search(query: RecordQuery): Promise<RecordPage> {
    this.check();
    const q = normalizeRecordQuery(query);
    const b = new SqlBuilder();
    if (q.kinds !== undefined) b.where.push(`kind = ANY(${b.p(q.kinds)}::text[])`);
    b.eq('audit_object', q.auditObjectId);
    b.eq('db_user', q.user);
    b.eq('client_ip', q.clientIp);
    b.eq('program', q.program);
    b.eq('db_type', q.dbType);
    b.eq('status', q.status);
    b.eq('flow_id', q.flowId);
    if (q.statementTypes !== undefined) b.where.push(`stmt_type = ANY(${b.p(q.statementTypes)}::text[])`);
    if (q.minRisk !== undefined && q.minRisk > 0) b.where.push(`risk >= ${b.p(q.minRisk)}`);
    if (q.object !== undefined) b.where.push(`objects @> ARRAY[${b.p(q.object)}::text]`);
    if (q.ruleId !== undefined) b.where.push(`rule_ids @> ARRAY[${b.p(q.ruleId)}::text]`);
    if (q.text !== undefined) b.where.push(`sql_words @@ ${b.p(tsqueryOf(q.text))}::tsquery`);
    const tail = b.page(q, 'ts', 'seq');
    const rows = await this.query(`SELECT seq, ts, record::text AS json FROM ${this.t.records} ${b.sql()} ${tail}`, b.params, 'search');
    const page: RecordPage = { records: [] };
    const n = Math.min(rows.length, q.limit);
    for (let i = 0; i < n; i++) page.records.push(JSON.parse(rows[i]!.json as string) as AuditEvent);
    if (rows.length > q.limit) page.nextCursor = encodeCursor(q.order, { ts: Number(rows[n - 1]!.ts), seq: Number(rows[n - 1]!.seq) });
    return page;
  }

  /** {@inheritDoc AuditStore.sessions} */
  async sessions(query: SessionQuery): Promise<SessionPage> {
    this.check();
    const q = normalizeSessionQuery(query);
    const b = new SqlBuilder();
    b.eq('db_user', q.user);
    b.eq('client_ip', q.clientIp);
    b.eq('program', q.program);
    b.eq('audit_object', q.auditObjectId);
    b.eq('db_type', q.dbType);
    if (q.minRisk !== undefined && q.minRisk > 0) b.where.push(`max_risk >= ${b.p(q.minRisk)}`);
    if (q.hasErrors !== undefined) b.where.push(q.hasErrors ? 'errors > 0' : 'errors = 0');
    if (q.from !== undefined) b.where.push(`end_ts >= ${b.p(q.from)}`);
    const tail = b.page(q, 'start_ts', 'rid', false);
    const rows = await this.query(`SELECT * FROM ${this.t.sessions} ${b.sql()} ${tail}`, b.params, 'sessions');
    const page: SessionPage = { sessions: [] };
    const n = Math.min(rows.length, q.limit);
    for (let i = 0; i < n; i++) page.sessions.push(sessionFromRow(rows[i]!));
    if (rows.length > q.limit) page.nextCursor = encodeCursor(q.order, { ts: Number(rows[n - 1]!.start_ts), seq: Number(rows[n - 1]!.rid) });
    return page;
  }

  /** {@inheritDoc AuditStore.session} */
  async session(id: string): Promise<SessionTimeline | undefined> {
    this.check();
    if (typeof id !== 'string' || id === '') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'session: id missing');
    const s = await this.query(`SELECT * FROM ${this.t.sessions} WHERE id = $1`, [id], 'session');
    if (s.length === 0) return undefined;
    const rows = await this.query(`SELECT record::text AS json FROM ${this.t.records} WHERE flow_id = $1 ORDER BY ts, seq`, [id], 'session');
    return buildTimeline(sessionFromRow(s[0]!), rows.map((r) => JSON.parse(r.json as string) as AuditEvent));
  }

  /** {@inheritDoc AuditStore.alerts} */
  async alerts(query: AlertQuery): Promise<AlertPage> {
    this.check();
    const q = normalizeAlertQuery(query);
    const b = new SqlBuilder();
    b.where.push("r.kind = 'alert'");
    if (q.ruleId !== undefined) b.where.push(`r.rule_ids @> ARRAY[${b.p(q.ruleId)}::text]`);
    if (q.minRisk !== undefined && q.minRisk > 0) b.where.push(`r.risk >= ${b.p(q.minRisk)}`);
    b.eq('r.audit_object', q.auditObjectId);
    if (q.acknowledged !== undefined) b.where.push(q.acknowledged ? 'a.id IS NOT NULL' : 'a.id IS NULL');
    const tail = b.page(q, 'r.ts', 'r.seq');
    const rows = await this.query(`SELECT r.seq, r.ts, r.record::text AS json, a.by, a.at FROM ${this.t.records} r LEFT JOIN ${this.t.acks} a ON a.id = r.id ${b.sql()} ${tail}`, b.params, 'alerts');
    const page: AlertPage = { alerts: [] };
    const n = Math.min(rows.length, q.limit);
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      const alert: AlertPage['alerts'][number] = { record: JSON.parse(r.json as string) as AuditEvent };
      if (r.by !== null) alert.acknowledged = { by: r.by as string, at: Number(r.at) };
      page.alerts.push(alert);
    }
    if (rows.length > q.limit) page.nextCursor = encodeCursor(q.order, { ts: Number(rows[n - 1]!.ts), seq: Number(rows[n - 1]!.seq) });
    return page;
  }

  /** {@inheritDoc AuditStore.acknowledgeAlert} */
  async acknowledgeAlert(id: string, by: string): Promise<Acknowledgement | undefined> {
    this.check();
    if (typeof id !== 'string' || id === '') throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'acknowledgeAlert: id missing');
    if (typeof by !== 'string' || by.trim() === '' || by.length > 256) throw new DbtapError(StoreErrorCodes.BAD_QUERY, 'acknowledgeAlert: by must be a name of 1 to 256 characters');
    const rows = await this.query(
      `WITH target AS (SELECT id FROM ${this.t.records} WHERE id = $1 AND kind = 'alert' LIMIT 1),
            ins AS (INSERT INTO ${this.t.acks} (id, by, at) SELECT id, $2, $3 FROM target ON CONFLICT (id) DO NOTHING RETURNING by, at)
       SELECT by, at FROM ins UNION ALL SELECT a.by, a.at FROM ${this.t.acks} a JOIN target t ON t.id = a.id`,
      [id, by, Date.now() * 1000],
      'acknowledgeAlert',
    );
    if (rows.length === 0) return undefined;
    return { by: rows[0]!.by as string, at: Number(rows[0]!.at) };
  }

  /** {@inheritDoc AuditStore.summary} */
  async summary(query: SummaryQuery): Promise<SummaryReport> {
    this.check();
    const q = normalizeSummaryQuery(query);
    const b = new SqlBuilder();
    if (q.from !== undefined) b.where.push(`ts >= ${b.p(q.from)}`);
    if (q.to !== undefined) b.where.push(`ts < ${b.p(q.to)}`);
    b.eq('audit_object', q.auditObjectId);
    const w = b.sql();
    const and = (extra: string): string => (b.where.length === 0 ? `WHERE ${extra}` : `${w} AND ${extra}`);
    const group = async (expr: string, cond?: string, from = this.t.records): Promise<CountEntry[]> =>
      (await this.query(`SELECT coalesce(${expr}::text, '') AS key, count(*) AS count FROM ${from} ${cond === undefined ? w : and(cond)} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${q.top}`, b.params, 'summary'))
        .map((r) => ({ key: r.key as string, count: Number(r.count) }));
    const total = Number((await this.query(`SELECT count(*) AS n FROM ${this.t.records} ${w}`, b.params, 'summary'))[0]!.n);
    const [byKind, byStatementType, byUser, byObject, byStatus, byRiskRank] = await Promise.all([
      group('kind'), group('stmt_type', "kind = 'statement'"), group('db_user'), group('o.name', undefined, `${this.t.records} CROSS JOIN LATERAL unnest(canonical_objects) AS o(name)`), group('status'), group('risk'),
    ]);
    const report: SummaryReport = {
      total, byKind, byStatementType, byUser, byObject, byStatus,
      byRisk: byRiskRank.map((e) => ({ key: RISK_LEVELS[Number(e.key)] ?? 'none', count: e.count })),
    };
    if (q.from !== undefined) report.from = q.from;
    if (q.to !== undefined) report.to = q.to;
    return report;
  }

  // ---- reports -------------------------------------------------------------

  private get reportTarget(): ReportTarget {
    return { dialect: 'postgres', records: this.t.records };
  }

  /** Offset segments of an off-hours filter over the stored span of its range. */
  private async reportSegments(f: NormalizedReportFilter, what: string): Promise<OffsetSegment[] | undefined> {
    if (f.offHours === undefined) return undefined;
    const r = rangeSql(this.reportTarget, f);
    const span = (await this.query(r.text, r.params as unknown[], what))[0]!;
    return segmentsFor(f, span.lo, span.hi);
  }

  /** {@inheritDoc AuditStore.aggregate} */
  async aggregate(query: AggregateQuery): Promise<AggregateResult> {
    this.check();
    const q = normalizeAggregateQuery(query);
    const sql = aggregateSql(this.reportTarget, q, await this.reportSegments(q, 'aggregate'));
    const rows = await this.query(sql.text, sql.params as unknown[], 'aggregate');
    const keys = sampleKeys(rows);
    let samples: Map<string, string> | undefined;
    if (keys.length > 0) {
      const s = samplesSql(this.reportTarget, keys);
      samples = new Map((await this.query(s.text, s.params as unknown[], 'aggregate')).map((x) => [x.id as string, x.j as string]));
    }
    return aggregateResult(rows, q, samples);
  }

  /** {@inheritDoc AuditStore.reportRecords} */
  async reportRecords(query: ReportRecordQuery): Promise<AuditEvent[]> {
    this.check();
    const q = normalizeReportRecordQuery(query);
    const sql = recordsSql(this.reportTarget, q, await this.reportSegments(q, 'reportRecords'));
    return (await this.query(sql.text, sql.params as unknown[], 'reportRecords')).map((r) => JSON.parse(r.j as string) as AuditEvent);
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
      return await this.runRetention(policy);
    } catch (err) {
      throw wrap(err, 'retention');
    } finally {
      this.retentionRunning = false;
    }
  }

  private async runRetention(policy: RetentionPolicy): Promise<RetentionResult> {
    const { records, sessions, acks } = this.t;
    const now = policy.now === undefined ? Date.now() * 1000 : parseTime(policy.now, 'now');
    // Records appended during the run (seq > maxSeq) are neither exported nor removed.
    const maxSeq = Number((await this.query(`SELECT coalesce(max(seq), 0) AS m FROM ${records}`, [], 'retention'))[0]!.m);
    const b = new SqlBuilder();
    const seqP = b.p(maxSeq);
    const conds: string[] = [];
    let ageCutoff: number | undefined;
    if (policy.maxAgeDays !== undefined) {
      ageCutoff = Math.floor(now - policy.maxAgeDays * DAY_US);
      conds.push(`ts < ${b.p(ageCutoff)}`);
    }
    if (policy.maxBytes !== undefined) {
      // The newest record to go: the last one whose running size total,
      // oldest first, still falls within the excess.
      const total = Number((await this.query(`SELECT coalesce(sum(size), 0) AS s FROM ${records} WHERE seq <= $1`, [maxSeq], 'retention'))[0]!.s);
      const excess = total - policy.maxBytes;
      if (excess > 0) {
        const last = await this.query(
          `SELECT ts, seq FROM (SELECT ts, seq, sum(size) OVER (ORDER BY ts, seq) - size AS before FROM ${records} WHERE seq <= $1) x
           WHERE before < $2 ORDER BY ts DESC, seq DESC LIMIT 1`,
          [maxSeq, excess],
          'retention',
        );
        if (last.length > 0) conds.push(`(ts, seq) <= (${b.p(Number(last[0]!.ts))}, ${b.p(Number(last[0]!.seq))})`);
      }
    }
    if (conds.length === 0) return { removed: 0, bytesRemoved: 0 };
    const cond = `seq <= ${seqP} AND (${conds.join(' OR ')})`;
    const params = b.params;
    const agg = (await this.query(`SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, min(ts) AS oldest, max(ts) AS newest FROM ${records} WHERE ${cond}`, params, 'retention'))[0]!;
    const n = Number(agg.n);
    if (n === 0) return { removed: 0, bytesRemoved: 0 };
    const result: RetentionResult = { removed: 0, bytesRemoved: Number(agg.bytes) };
    if (policy.exportDir !== undefined) {
      const self = this;
      const k = params.length;
      async function* batches(): AsyncGenerator<string[]> {
        let after = [-1, -1];
        for (;;) {
          const rows = await self.query(
            `SELECT ts, seq, record::text AS json FROM ${records} WHERE ${cond} AND (ts, seq) > ($${k + 1}, $${k + 2}) ORDER BY ts, seq LIMIT ${RETENTION_CHUNK}`,
            [...params, after[0], after[1]],
            'retention export',
          );
          if (rows.length === 0) return;
          const last = rows[rows.length - 1]!;
          after = [Number(last.ts), Number(last.seq)];
          yield rows.map((r) => r.json as string);
        }
      }
      result.exportFile = await writeNdjsonGz(policy.exportDir, exportFileName(`${this.prefix}-records`, Number(agg.oldest), Number(agg.newest), now), batches());
    }
    this.check();
    const dropped: string[] = [];
    await chainTransaction(this.pool, async (c) => {
      // Tamper evidence: the checkpoint of what goes, committed with the deletion (chain lock first, as appends take it).
      const head = await this.chain.begin(c, 'retention');
      const gone = await c.query(`SELECT seq FROM ${records} WHERE ${cond} ORDER BY seq`, params);
      await this.chain.retention(c, head, (gone.rows as { seq: string }[]).map((x) => Number(x.seq)));
      await c.query(`DELETE FROM ${acks} WHERE id IN (SELECT id FROM ${records} WHERE ${cond} AND kind = 'alert')`, params);
      // Partitions wholly before the age cutoff go by DROP, unless a record
      // appended during the run (not exported) sits in them.
      if (ageCutoff !== undefined) {
        const parts = await c.query(
          `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY c.relname`,
          [records],
        );
        for (const p of parts.rows as { name: string; bound: string }[]) {
          const m = /TO \('?(-?\d+)'?\)/.exec(p.bound);
          if (m === null || Number(m[1]) > ageCutoff) continue;
          await c.query(`LOCK TABLE ${p.name} IN ACCESS EXCLUSIVE MODE`);
          const late = await c.query(`SELECT count(*) FILTER (WHERE seq > $1) AS late, count(*) AS n FROM ${p.name}`, [maxSeq]);
          if (Number(late.rows[0].late) > 0) continue;
          await c.query(`DROP TABLE ${p.name}`);
          result.removed += Number(late.rows[0].n);
          dropped.push(p.name);
        }
      }
      const del = await c.query(`DELETE FROM ${records} WHERE ${cond}`, params);
      result.removed += del.rowCount ?? 0;
      await c.query(`DELETE FROM ${sessions} s WHERE s.end_ts <= $1 AND NOT EXISTS (SELECT 1 FROM ${records} r WHERE r.flow_id = s.id)`, [Number(agg.newest)]);
    });
    for (const name of dropped) this.partitions.delete(name);
    if (dropped.length > 0) result.droppedPartitions = dropped;
    return result;
  }

  /** {@inheritDoc AuditStore.stats} */
  async stats(): Promise<StoreStats> {
    const { records, sessions, acks } = this.t;
    const r = (await this.query(
      `SELECT count(*) AS records, coalesce(sum(size), 0) AS bytes, min(ts) AS oldest, max(ts) AS newest,
         count(*) FILTER (WHERE kind = 'alert') AS alerts,
         (SELECT count(*) FROM ${sessions}) AS sessions,
         (SELECT count(*) FROM ${acks} a JOIN ${records} x ON x.id = a.id AND x.kind = 'alert') AS acked
       FROM ${records}`,
      [],
      'stats',
    ))[0]!;
    const s: StoreStats = {
      records: Number(r.records),
      sessions: Number(r.sessions),
      alerts: Number(r.alerts),
      unacknowledgedAlerts: Number(r.alerts) - Number(r.acked),
      bytes: Number(r.bytes),
    };
    if (r.oldest !== null) s.oldest = Number(r.oldest);
    if (r.newest !== null) s.newest = Number(r.newest);
    return s;
  }

  /** {@inheritDoc AuditStore.verify} */
  async verify(options?: VerifyOptions): Promise<IntegrityReport> {
    this.check();
    try {
      return await this.chain.verify(this.pool, options);
    } catch (err) {
      throw wrap(err, 'verify');
    }
  }

  /** {@inheritDoc AuditStore.close} */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownPool) await this.pool.end();
  }
}

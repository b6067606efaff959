// End-to-end proof of the reports: a known workload runs against the local
// MariaDB and PostgreSQL while we capture `lo`; the capture is audited into
// a store through the server's pipeline and rules; the reports built from it
// must count what the databases' own logs count:
//   MariaDB: the slow query log (long_query_time = 0 in our sessions only)
//            per user and fingerprint, with rows sent and changed; the error
//            log for refused logins; what the server returned to the client
//            for failed statements; and pt-query-digest over the same slow log.
//   PostgreSQL: the server log (log_statement = all for our roles only)
//            per user and fingerprint, its ERROR lines per fingerprint and
//            its FATAL lines for refused logins.
// Only sessions of this run's own users and roles go into the store, so
// traffic of concurrent tests on the same servers does not disturb counts.
import test from 'ava';
import { withDbLogLock } from '../../../test-support/db-lock.js';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { AuditEvent } from '@dbtap/core';
import { fingerprint } from '@dbtap/rules';
import { startLiveCapture, type LiveCapture } from '../../../test-support/live-capture.js';
import { locatePgLog, readFrom, sizeOf } from '../../../test-support/db-logs.js';
import { auditFrames } from '../src/audit.js';
import { AuditObjectTable } from '../src/objects.js';
import { loadRuleSelection, rulesProcessor } from '../src/rules.js';
import { SqliteStore } from '../src/store/index.js';
import { buildReport, type ComplianceReport, type ServerReport, type SourceReport, type StatementsReport } from '../src/reports/index.js';
import { tempDir } from './store-helpers.js';

const id = process.pid;
const names = {
  db: `rpt_db_${id}`, app: `rpt_app_${id}`, adm: `rpt_adm_${id}`, tmp: `rpt_tmp_${id}`, nobody: `rpt_nobody_${id}`,
  pgApp: `rpt_pgapp_${id}`, pgAdm: `rpt_pgadm_${id}`, pgTmp: `rpt_pgtmp_${id}`, pgNobody: `rpt_pgnobody_${id}`, schema: `rpt_${id}`,
};
const ours = new Set([names.app, names.adm, names.nobody, names.pgApp, names.pgAdm, names.pgNobody]);
const myRoot = { host: '127.0.0.1', port: 3306, user: 'root', database: 'test' };
const pgRoot = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

async function reachable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs capture rights on lo (root)';
  try {
    const c = await mysql.createConnection({ ...myRoot, connectTimeout: 3000 });
    await c.end();
  } catch (err) {
    return `MariaDB on 127.0.0.1:3306: ${(err as Error).message}`;
  }
  const p = new pg.Client({ ...pgRoot, connectionTimeoutMillis: 3000 });
  try {
    await p.connect();
  } catch (err) {
    return `PostgreSQL on 127.0.0.1:5432: ${(err as Error).message}`;
  }
  try {
    const where = await locatePgLog(p);
    if ('reason' in where) return where.reason;
    pgLogFile = where.file;
  } finally {
    await p.end();
  }
  return undefined;
}

/** Where PostgreSQL writes its log, asked of the server. */
let pgLogFile = '';

const why = await reachable();
const liveTest = why === undefined || process.env.CI ? test.serial : test.skip;
if (why !== undefined && !process.env.CI) console.log(`# skipping live report tests: ${why}`);

// ---- the databases' own logs ---------------------------------------------------


/** One statement of MariaDB's slow log. */
interface SlowEntry {
  user: string;
  thread: number;
  queryTimeS: number;
  rowsSent: number;
  rowsAffected: number;
  sql: string;
}

/** Parses slow-log text: `# User@Host`, `# Thread_id`, `# Query_time ...`, `# Rows_affected`, then the statement. */
function parseSlowLog(text: string): SlowEntry[] {
  const out: SlowEntry[] = [];
  let cur: SlowEntry | undefined;
  let lines: string[] = [];
  const flush = (): void => {
    if (cur === undefined) return;
    const body = lines.filter((l) => !/^use `[^`]*`;$/.test(l) && !/^SET timestamp=\d+;$/.test(l));
    cur.sql = body.join('\n').replace(/;$/, '');
    if (cur.sql !== '') out.push(cur);
    cur = undefined;
    lines = [];
  };
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# User@Host: (\S*)\[/.exec(line)) !== null) {
      flush();
      cur = { user: m[1]!, thread: 0, queryTimeS: 0, rowsSent: 0, rowsAffected: 0, sql: '' };
    } else if (cur !== undefined && (m = /^# Thread_id: (\d+)/.exec(line)) !== null) cur.thread = Number(m[1]);
    else if (cur !== undefined && (m = /^# Query_time: ([\d.]+)\s+Lock_time: [\d.]+\s+Rows_sent: (\d+)/.exec(line)) !== null) {
      cur.queryTimeS = Number(m[1]);
      cur.rowsSent = Number(m[2]);
    } else if (cur !== undefined && (m = /^# Rows_affected: (\d+)/.exec(line)) !== null) cur.rowsAffected = Number(m[1]);
    else if (line.startsWith('#') || /^\/.*Version: .*started with:$|^Tcp port: |^Time\s+Id Command/.test(line)) continue;
    else if (cur !== undefined && line !== '') lines.push(line);
  }
  flush();
  return out;
}

/** One entry of PostgreSQL's stderr log (default Debian prefix `%m [%p] %q%u@%d `, or a brace prefix). */
interface PgEntry {
  pid: number;
  user: string;
  level: string;
  message: string;
  statement?: string;
}

function parsePgLog(text: string): PgEntry[] {
  const raw: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('\t') && raw.length > 0) raw[raw.length - 1] += `\n${line.slice(1)}`;
    else if (line !== '') raw.push(line);
  }
  const out: PgEntry[] = [];
  for (const r of raw) {
    const m = /^\S+ \S+ \S+ \[(\d+)\] (?:(\S*)@\S* |\{([^}]*)\}(?:\{[^}]*\}){4} )?(\w+):  ([\s\S]*)$/.exec(r);
    if (m === null) continue;
    const e: PgEntry = { pid: Number(m[1]), user: m[2] ?? m[3] ?? '', level: m[4]!, message: m[5]! };
    const prev = out[out.length - 1];
    if (e.level === 'STATEMENT' && prev !== undefined && prev.pid === e.pid) { prev.statement = e.message; continue; }
    if (e.level === 'DETAIL' || e.level === 'HINT') continue;
    out.push(e);
  }
  return out;
}

// ---- the workload -----------------------------------------------------------------

/** Errors the servers returned to our clients, by SQL text. */
const clientErrors: { db: 'mysql' | 'postgres'; sql: string; code: string }[] = [];
/** Logins MariaDB refused, with the error code the client got. */
const loginErrors: { user: string; code: string }[] = [];
/** Logins that succeeded, by user (counted by the clients). */
const logins = new Map<string, number>();

async function myWorkload(): Promise<void> {
  const connect = async (user: string, password: string, program: string): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user, password, database: names.db, connectAttributes: { program_name: program } });
    logins.set(user, (logins.get(user) ?? 0) + 1);
    // Every statement of our sessions goes to the slow log, this one included.
    await c.query('SET SESSION long_query_time = 0');
    return c;
  };
  const run = async (c: mysql.Connection, sql: string): Promise<void> => {
    try {
      await c.query(sql);
    } catch (err) {
      clientErrors.push({ db: 'mysql', sql, code: String((err as { errno?: number }).errno) });
    }
  };
  const app = await connect(names.app, 'pw-app', 'rpt-app');
  for (let i = 1; i <= 12; i++) await run(app, `INSERT INTO orders (id, amount) VALUES (${i}, ${i * 10})`);
  for (let i = 1; i <= 15; i++) await run(app, `SELECT id, amount FROM orders WHERE id = ${(i % 12) + 1}`);
  await run(app, 'SELECT id FROM orders WHERE amount > 30');
  for (let i = 1; i <= 6; i++) await run(app, `UPDATE orders SET amount = amount + 1 WHERE id = ${i}`);
  for (let i = 1; i <= 4; i++) await run(app, `SELECT salary FROM salaries WHERE emp = ${i}`);
  for (let i = 0; i < 3; i++) await run(app, 'SELECT * FROM no_such_table_rpt');
  for (let i = 0; i < 2; i++) await run(app, 'SELEC 1');
  await run(app, 'DELETE FROM orders WHERE id = 12');
  await run(app, 'SELECT SLEEP(0.05)');
  await app.end();

  const app2 = await connect(names.app, 'pw-app', 'rpt-report');
  for (let i = 1; i <= 5; i++) await run(app2, `SELECT id, amount FROM orders WHERE id = ${i}`);
  await run(app2, 'SELECT SLEEP(0.06)');
  await app2.end();

  const adm = await connect(names.adm, 'pw-adm', 'rpt-admin');
  await run(adm, `CREATE USER '${names.tmp}'@'%' IDENTIFIED BY 'tmp-pw'`);
  await run(adm, `GRANT SELECT ON ${names.db}.orders TO '${names.tmp}'@'%'`);
  await run(adm, `REVOKE SELECT ON ${names.db}.orders FROM '${names.tmp}'@'%'`);
  await run(adm, `ALTER USER '${names.tmp}'@'%' IDENTIFIED BY 'tmp-pw2'`);
  await run(adm, `DROP USER '${names.tmp}'@'%'`);
  await run(adm, 'SELECT salary FROM salaries WHERE emp = 2');
  await adm.end();

  // Refused logins: a wrong password, an unknown user.
  for (const [user, password] of [[names.app, 'wrong'], [names.app, 'wrong-again'], [names.nobody, 'x']] as const) {
    await mysql.createConnection({ host: '127.0.0.1', port: 3306, user, password, database: names.db }).then(
      (c) => c.end(),
      (err: { errno?: number }) => { loginErrors.push({ user, code: String(err.errno) }); },
    );
  }
}

async function pgWorkload(): Promise<void> {
  const connect = async (user: string): Promise<pg.Client> => {
    const c = new pg.Client({ host: '127.0.0.1', port: 5432, user, database: 'test', application_name: 'rpt-pg' });
    await c.connect();
    logins.set(user, (logins.get(user) ?? 0) + 1);
    return c;
  };
  const run = async (c: pg.Client, sql: string, values?: unknown[]): Promise<void> => {
    try {
      await c.query(sql, values);
    } catch (err) {
      clientErrors.push({ db: 'postgres', sql, code: String((err as { code?: string }).code) });
    }
  };
  const s = names.schema;
  const app = await connect(names.pgApp);
  await run(app, `CREATE TABLE ${s}.items (id int PRIMARY KEY, name text)`);
  for (let i = 1; i <= 8; i++) await run(app, `INSERT INTO ${s}.items VALUES (${i}, 'item ${i}')`);
  for (let i = 1; i <= 10; i++) await run(app, `SELECT name FROM ${s}.items WHERE id = ${(i % 8) + 1}`);
  for (let i = 1; i <= 3; i++) await run(app, `SELECT salary FROM ${s}.salaries WHERE emp = ${i}`);
  for (let i = 1; i <= 3; i++) await run(app, 'SELECT $1::int + 1 AS n', [i]);
  for (let i = 0; i < 3; i++) await run(app, `SELECT * FROM ${s}.no_such_table`);
  for (let i = 0; i < 2; i++) await run(app, 'SELEC 1');
  await run(app, `UPDATE ${s}.items SET name = 'renamed' WHERE id <= 3`);
  await run(app, 'SELECT pg_sleep(0.3)');
  await app.end();

  const adm = await connect(names.pgAdm);
  await run(adm, `CREATE ROLE ${names.pgTmp} LOGIN`);
  await run(adm, `GRANT SELECT ON ${s}.items TO ${names.pgTmp}`);
  await run(adm, `REVOKE SELECT ON ${s}.items FROM ${names.pgTmp}`);
  await run(adm, `ALTER ROLE ${names.pgTmp} NOLOGIN`);
  await run(adm, `DROP ROLE ${names.pgTmp}`);
  await adm.end();

  // A refused login: an unknown role (the local server trusts every known one).
  const bad = new pg.Client({ host: '127.0.0.1', port: 5432, user: names.pgNobody, database: 'test', application_name: 'rpt-pg' });
  await bad.connect().then(() => bad.end(), () => undefined);
}

// ---- setup, capture, audit ----------------------------------------------------------

const keepAlive: LiveCapture[] = [];
const tmp = tempDir('dbtap-reports-live-');
let store: SqliteStore | undefined;
let slow: SlowEntry[] = [];
let slowText = '';
let myErrorLog = '';
let pgLog: PgEntry[] = [];
let records: AuditEvent[] = [];

async function mySetup(root: mysql.Connection): Promise<void> {
  await mySetupTeardown(root);
  await root.query(`CREATE DATABASE ${names.db}`);
  await root.query(`CREATE TABLE ${names.db}.orders (id int PRIMARY KEY, amount int)`);
  await root.query(`CREATE TABLE ${names.db}.salaries (emp int PRIMARY KEY, salary int)`);
  await root.query(`INSERT INTO ${names.db}.salaries VALUES (1, 100), (2, 200), (3, 300)`);
  await root.query(`CREATE USER '${names.app}'@'%' IDENTIFIED BY 'pw-app'`);
  await root.query(`GRANT ALL ON ${names.db}.* TO '${names.app}'@'%'`);
  await root.query(`CREATE USER '${names.adm}'@'%' IDENTIFIED BY 'pw-adm'`);
  await root.query(`GRANT ALL ON *.* TO '${names.adm}'@'%' WITH GRANT OPTION`);
}

async function mySetupTeardown(root: mysql.Connection): Promise<void> {
  for (const u of [names.app, names.adm, names.tmp]) await root.query(`DROP USER IF EXISTS '${u}'@'%'`);
  await root.query(`DROP DATABASE IF EXISTS ${names.db}`);
}

async function pgSetupTeardown(root: pg.Client): Promise<void> {
  await root.query(`DROP SCHEMA IF EXISTS ${names.schema} CASCADE`);
  for (const r of [names.pgTmp, names.pgApp, names.pgAdm]) await root.query(`DROP ROLE IF EXISTS ${r}`);
}

async function pgSetup(root: pg.Client): Promise<void> {
  await pgSetupTeardown(root);
  await root.query(`CREATE ROLE ${names.pgApp} LOGIN`);
  await root.query(`CREATE ROLE ${names.pgAdm} LOGIN CREATEROLE`);
  // Statement logging for our roles only: no global setting changes.
  for (const r of [names.pgApp, names.pgAdm]) await root.query(`ALTER ROLE ${r} SET log_statement = 'all'`);
  await root.query(`CREATE SCHEMA ${names.schema} AUTHORIZATION ${names.pgApp}`);
  await root.query(`CREATE TABLE ${names.schema}.salaries (emp int PRIMARY KEY, salary int)`);
  await root.query(`INSERT INTO ${names.schema}.salaries VALUES (1, 100), (2, 200)`);
  await root.query(`ALTER TABLE ${names.schema}.salaries OWNER TO ${names.pgApp}`);
  await root.query(`GRANT USAGE ON SCHEMA ${names.schema} TO ${names.pgAdm}`);
  // The admin role may grant on the application's tables.
  await root.query(`GRANT ${names.pgApp} TO ${names.pgAdm}`);
}

async function logOutput(root: mysql.Connection): Promise<string> {
  const [rows] = await root.query('SELECT @@global.log_output AS o');
  return String((rows as { o: string }[])[0]!.o).toUpperCase();
}

/**
 * The rows MariaDB wrote to mysql.slow_log (log_output = TABLE) for our
 * users since `since`, written out in the slow-log file format so that the
 * same parser, and pt-query-digest, read them.
 */
async function slowLogTable(root: mysql.Connection, since: Date): Promise<string> {
  const users = [names.app, names.adm].map((u) => `${u}[%`);
  const [rows] = await root.query(
    `SELECT user_host, thread_id, db, UNIX_TIMESTAMP(start_time) AS ts, TIME_TO_SEC(query_time) AS qt,
       TIME_TO_SEC(lock_time) AS lt, rows_sent, rows_examined, rows_affected, CONVERT(sql_text USING utf8mb4) AS sql_text
     FROM mysql.slow_log WHERE start_time >= ? AND (user_host LIKE ? OR user_host LIKE ?) ORDER BY start_time`,
    [since, ...users],
  );
  return (rows as Record<string, unknown>[]).map((r) =>
    `# User@Host: ${String(r.user_host)}\n# Thread_id: ${String(r.thread_id)}  Schema: ${String(r.db)}  QC_hit: No\n` +
    `# Query_time: ${Number(r.qt).toFixed(6)}  Lock_time: ${Number(r.lt).toFixed(6)}  Rows_sent: ${String(r.rows_sent)}  Rows_examined: ${String(r.rows_examined)}\n` +
    `# Rows_affected: ${String(r.rows_affected)}  Bytes_sent: 0\nSET timestamp=${Math.floor(Number(r.ts))};\n${String(r.sql_text)};\n`,
  ).join('');
}


test.before(async () => {
  if (why !== undefined) {
    if (process.env.CI) throw new Error(`live report tests cannot run: ${why}`);
    return;
  }
  // other live tests switch database logs too: one at a time
  await withDbLogLock(captureWorkload);
});

async function captureWorkload(): Promise<void> {
  const root = await mysql.createConnection(myRoot);
  const pgAdmin = new pg.Client({ ...pgRoot, application_name: 'rpt-setup' });
  await pgAdmin.connect();
  let slowWasOn = true;
  try {
    // Tests that change the server's log settings take this lock, so they do not run those changes at once.
    await root.query("SELECT GET_LOCK('dbtap_log_settings', 120)");
    await mySetup(root);
    await pgSetup(pgAdmin);
    const [vars] = await root.query('SELECT @@global.slow_query_log AS slowOn, @@global.slow_query_log_file AS slowFile, @@datadir AS dataDir, @@log_error AS errorLog');
    const v = (vars as Record<string, unknown>[])[0]!;
    const inData = (f: string): string => (isAbsolute(f) ? f : join(String(v.dataDir), f));
    const slowFile = inData(String(v.slowFile));
    const errorLog = inData(String(v.errorLog));
    slowWasOn = Number(v.slowOn) === 1;
    if (!slowWasOn) await root.query('SET GLOBAL slow_query_log = ON');
    const outputBefore = await logOutput(root);
    const [now] = await root.query('SELECT NOW(6) AS t');
    const since = (now as { t: Date }[])[0]!.t;
    const offsets = { slow: sizeOf(slowFile), error: sizeOf(errorLog), pg: sizeOf(pgLogFile) };
    const capture = startLiveCapture('tcp port 3306 or tcp port 5432');
    keepAlive.push(capture);
    let frames;
    try {
      await myWorkload();
      await pgWorkload();
    } finally {
      frames = await capture.stop();
    }
    // The slow log goes to a file or to mysql.slow_log (log_output); read where it went.
    const outputAfter = await logOutput(root);
    if (outputAfter !== outputBefore) throw new Error(`log_output changed from ${outputBefore} to ${outputAfter} during the run (another process changed it); run again`);
    if (outputBefore.includes('FILE')) slowText = readFrom(slowFile, offsets.slow);
    else if (outputBefore.includes('TABLE')) slowText = await slowLogTable(root, since);
    else throw new Error(`log_output is ${outputBefore}: no slow log is written`);
    slow = parseSlowLog(slowText).filter((e) => ours.has(e.user));
    myErrorLog = readFrom(errorLog, offsets.error);
    pgLog = parsePgLog(readFrom(pgLogFile, offsets.pg)).filter((e) => ours.has(e.user));

    // Audit the capture as the server does: pipeline with audit objects, then rules.
    const objects = new AuditObjectTable([
      { id: 'mariadb-local', dbType: 'mysql', addresses: ['127.0.0.1'], ports: [3306] },
      { id: 'pg-local', dbType: 'postgres', addresses: ['127.0.0.1'], ports: [5432] },
    ]);
    const audited = auditFrames(frames, { objects }).events;
    const rules = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
    const processed = audited.flatMap((e) => [...rules.process(e)]);
    const flows = new Set(processed.filter((e) => e.user !== undefined && ours.has(e.user)).map((e) => e.flowId));
    records = processed.filter((e) => flows.has(e.flowId));
    store = new SqliteStore(join(tmp.dir, 'audit.db'));
    await store.append(records);
    if (process.env.DBTAP_REPORTS_LIVE_DUMP !== undefined) {
      writeFileSync(`${process.env.DBTAP_REPORTS_LIVE_DUMP}.records.json`, JSON.stringify(records, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 1));
      writeFileSync(`${process.env.DBTAP_REPORTS_LIVE_DUMP}.slow.log`, slowText);
    }
  } finally {
    if (!slowWasOn) await root.query('SET GLOBAL slow_query_log = OFF').catch(() => undefined);
    await mySetupTeardown(root).catch(() => undefined);
    await root.end();
    await pgSetupTeardown(pgAdmin).catch(() => undefined);
    await pgAdmin.end();
  }
}

test.after.always(async () => {
  await store?.close();
  tmp.cleanup();
});

// ---- helpers over the ground truth --------------------------------------------------

function countBy<T>(items: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

function sumBy<T>(items: readonly T[], key: (x: T) => string, value: (x: T) => number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) out[key(x)] = (out[key(x)] ?? 0) + value(x);
  return out;
}

/**
 * Statements PostgreSQL ran for our roles, from its log: simple queries and
 * extended-protocol executes (`log_statement = all`), plus statements that
 * failed before they could be logged that way (a syntax error), which the
 * log has only as the STATEMENT of their ERROR.
 */
function pgStatements(): { user: string; sql: string }[] {
  const out: { user: string; sql: string }[] = [];
  const lastLogged = new Map<number, string>();
  for (const e of pgLog) {
    if (e.level === 'LOG') {
      const m = /^(?:statement|execute [^:]+): ([\s\S]*)$/.exec(e.message);
      if (m !== null) {
        out.push({ user: e.user, sql: m[1]! });
        lastLogged.set(e.pid, m[1]!);
      }
    } else if (e.level === 'ERROR' && e.statement !== undefined) {
      if (lastLogged.get(e.pid) !== e.statement) out.push({ user: e.user, sql: e.statement });
      lastLogged.delete(e.pid);
    }
  }
  return out;
}

const myFp = (sql: string): string => fingerprint(sql, 'mysql');
const pgFp = (sql: string): string => fingerprint(sql, 'postgres');
const options = { top: 1000, sensitiveTables: ['salaries'] };

liveTest('MariaDB: statements per user and per fingerprint, with rows, match the slow query log', async (t) => {
  t.true(slow.length >= 60, `slow log statements of our users: ${slow.length}`);
  const src = (await buildReport(store!, 'source', options)) as SourceReport;
  const logByUser = countBy(slow, (e) => e.user);
  for (const user of [names.app, names.adm]) {
    t.is(src.users.find((u) => u.key === user)?.statements, logByUser[user], user);
  }
  const st = (await buildReport(store!, 'statements', { ...options, auditObjectId: 'mariadb-local' })) as StatementsReport;
  const report = (f: (s: StatementsReport['fingerprints'][number]) => number): Record<string, number> => Object.fromEntries(st.fingerprints.map((s) => [s.fingerprint, f(s)]));
  t.deepEqual(report((s) => s.count), countBy(slow, (e) => myFp(e.sql)));
  t.deepEqual(report((s) => s.rowsReturned), sumBy(slow, (e) => myFp(e.sql), (e) => e.rowsSent));
  t.deepEqual(report((s) => s.affectedRows), sumBy(slow, (e) => myFp(e.sql), (e) => e.rowsAffected));
  t.is(st.totals.statements, slow.length);
  // The two sleeps are the slowest statements on the wire and in the server's own timing.
  // The sleeps are the slowest statements. (Live frames are stamped when this
  // process reads them, not by the kernel, so wire times carry a few ms of
  // scheduling noise; the bounds leave room for it.)
  const sleep = st.fingerprints.find((s) => s.fingerprint === 'select sleep(?)')!;
  t.is(sleep.count, 2);
  t.true(sleep.maxUs! >= 50_000, JSON.stringify(sleep));
  // largest total time first (which fingerprint leads depends on the machine's load)
  const totals = st.fingerprints.map((f) => f.totalUs);
  t.deepEqual(totals, [...totals].sort((x, y) => y - x), 'largest total time first');
  const serverSide = slow.filter((e) => /SLEEP/.test(e.sql)).map((e) => Math.round(e.queryTimeS * 1e6));
  t.log(`SELECT SLEEP: server-side ${serverSide.join(', ')} µs; on the wire min ${sleep.minUs} max ${sleep.maxUs} µs`);
});

liveTest('MariaDB: failed statements per fingerprint are the errors the server returned', async (t) => {
  const st = (await buildReport(store!, 'statements', { ...options, auditObjectId: 'mariadb-local' })) as StatementsReport;
  const want = countBy(clientErrors.filter((e) => e.db === 'mysql'), (e) => myFp(e.sql));
  t.deepEqual(Object.fromEntries(st.fingerprints.filter((s) => s.errors > 0).map((s) => [s.fingerprint, s.errors])), want);
  const srv = (await buildReport(store!, 'server', { ...options, auditObjectId: 'mariadb-local' })) as ServerReport;
  const codes = Object.fromEntries(srv.objects[0]!.errors.map((e) => [e.code, e.count]));
  const wantCodes = countBy([...clientErrors.filter((e) => e.db === 'mysql'), ...loginErrors], (e) => e.code);
  t.deepEqual(codes, wantCodes);
  t.is(loginErrors.length, 3);
});

liveTest('MariaDB: refused logins match the error log', async (t) => {
  const denied = [...myErrorLog.matchAll(/Access denied for user '([^']+)'@/g)].map((m) => m[1]!).filter((u) => ours.has(u));
  t.is(denied.length, 3, myErrorLog.slice(-2000));
  const c = (await buildReport(store!, 'compliance', options)) as ComplianceReport;
  const failed = c.sections.find((s) => s.id === 'failedLogins')!;
  const byUser = failed.breakdowns.find((b) => b.by === 'user')!.entries;
  const want = countBy(denied, (u) => u);
  for (const [user, n] of Object.entries(want)) t.is(byUser.find((e) => e.key === user)?.count, n, user);
  const src = (await buildReport(store!, 'source', options)) as SourceReport;
  t.is(src.users.find((u) => u.key === names.app)?.failedLogins, want[names.app]);
  t.is(src.users.find((u) => u.key === names.app)?.logins, logins.get(names.app)! + want[names.app]!);
});

liveTest('PostgreSQL: statements, errors per fingerprint and refused logins match the server log', async (t) => {
  const logged = pgStatements();
  t.true(logged.length >= 35, `statements logged for our roles: ${logged.length}`);
  const st = (await buildReport(store!, 'statements', { ...options, auditObjectId: 'pg-local' })) as StatementsReport;
  t.deepEqual(Object.fromEntries(st.fingerprints.map((s) => [s.fingerprint, s.count])), countBy(logged, (e) => pgFp(e.sql)));
  const errors = pgLog.filter((e) => e.level === 'ERROR' && e.statement !== undefined);
  t.is(errors.length, 5);
  t.is(errors.length, clientErrors.filter((e) => e.db === 'postgres').length);
  t.deepEqual(Object.fromEntries(st.fingerprints.filter((s) => s.errors > 0).map((s) => [s.fingerprint, s.errors])), countBy(errors, (e) => pgFp(e.statement!)));
  const src = (await buildReport(store!, 'source', options)) as SourceReport;
  const byUser = countBy(logged, (e) => e.user);
  for (const user of [names.pgApp, names.pgAdm]) t.is(src.users.find((u) => u.key === user)?.statements, byUser[user], user);
  const fatal = pgLog.filter((e) => e.level === 'FATAL' && /role .* does not exist/.test(e.message));
  t.is(fatal.length, 1);
  t.is(src.users.find((u) => u.key === names.pgNobody)?.failedLogins, 1);
  // The live capture stamps frames when they are read, so a busy test process
  // shortens a response time by its read delay: 0.3 s of sleep must still show as
  // at least 0.2 s.
  const sleep = st.fingerprints.find((s) => s.fingerprint === 'select pg_sleep(?)')!;
  t.true(sleep.maxUs! >= 200_000, `longest pg_sleep ${sleep.maxUs} us`);
});

liveTest('compliance: privilege and account changes, sensitive tables and off-hours match the logs', async (t) => {
  const logged = [...slow.map((e) => e.sql), ...pgStatements().map((e) => e.sql)];
  // Working hours that exclude the whole run: every login attempt and statement is off-hours.
  const now = new Date();
  const start = `${String((now.getUTCHours() + 3) % 24).padStart(2, '0')}:00`;
  const end = `${String((now.getUTCHours() + 4) % 24).padStart(2, '0')}:00`;
  const c = (await buildReport(store!, 'compliance', { ...options, workingHours: { timeZone: 'UTC', start, end, days: [0, 1, 2, 3, 4, 5, 6] } })) as ComplianceReport;
  const section = (sid: string): ComplianceReport['sections'][number] => c.sections.find((s) => s.id === sid)!;
  t.is(section('privilegeChanges').count, logged.filter((s) => /^(GRANT|REVOKE)\b/.test(s)).length);
  t.is(section('privilegeChanges').count, 4);
  t.is(section('accountChanges').count, logged.filter((s) => /^(CREATE|ALTER|DROP) (USER|ROLE)\b/.test(s)).length);
  t.is(section('accountChanges').count, 6);
  t.is(section('sensitiveAccess').count, logged.filter((s) => /\bsalaries\b/.test(s)).length);
  const refused = 4; // three at MariaDB, one at PostgreSQL (checked against the logs above)
  const attempts = [...logins.values()].reduce((a, b) => a + b, 0) + refused;
  t.is(section('offHours').count, logged.length + attempts);
  t.is(section('failedLogins').count, refused);
  // Within working hours that cover the run, nothing is off-hours.
  const inside = (await buildReport(store!, 'compliance', { ...options, workingHours: { timeZone: 'UTC', start: '00:00', end: '00:00', days: [0, 1, 2, 3, 4, 5, 6] } })) as ComplianceReport;
  t.is(inside.sections.find((s) => s.id === 'offHours')!.count, 0);
});

liveTest('server report: one section per audit object whose totals match each database', async (t) => {
  const srv = (await buildReport(store!, 'server', options)) as ServerReport;
  const my = srv.objects.find((o) => o.auditObjectId === 'mariadb-local')!;
  const pgo = srv.objects.find((o) => o.auditObjectId === 'pg-local')!;
  t.deepEqual(srv.objects.map((o) => o.auditObjectId).sort(), ['mariadb-local', 'pg-local']);
  t.is(my.totals.statements, slow.length);
  t.is(pgo.totals.statements, pgStatements().length);
  t.is(my.totals.failedLogins, 3);
  t.is(pgo.totals.failedLogins, 1);
  t.is(my.volume.reduce((a, v) => a + v.statements, 0), slow.length);
  // The slowest statements are the stored ones of longest response time (which
  // statement that is depends on the machine's load, and the live capture stamps
  // frames when they are read, not when the kernel saw them, so even SLEEP(0.06)
  // may look faster under load).
  const byDuration = records.filter((e) => e.kind === 'statement' && e.auditObjectId === 'mariadb-local').sort((a, b) => (b.durationUs ?? 0) - (a.durationUs ?? 0));
  t.deepEqual(my.slowest.map((e) => e.durationUs), byDuration.slice(0, my.slowest.length).map((e) => e.durationUs));
  t.true(byDuration.some((e) => e.sql === 'SELECT SLEEP(0.06)' && e.status === 'ok' && e.durationUs! > 0));
  const touched = my.objects.map((o) => o.object);
  t.true(touched.includes(`${names.db}.orders`) && touched.includes(`${names.db}.salaries`), touched.join(', '));
});

/** Runs pt-query-digest over slow-log text; resolves undefined when the tool is not installed. */
function ptQueryDigest(file: string): Promise<{ fingerprint: string; query_count: number; example: { query: string } }[] | undefined> {
  return new Promise((resolve, reject) => {
    const filter = `($event->{user} || '') =~ m/^(?:${names.app}|${names.adm})$/`;
    execFile('pt-query-digest', ['--output', 'json', '--limit', '100%:10000', '--no-report', '--filter', filter, file], { maxBuffer: 64 << 20 }, (err, out) => {
      if (err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      if (err !== null) return reject(err);
      // --no-report keeps the text report away; the JSON document is what is printed.
      resolve(((JSON.parse(out.trim() || '{"classes":[]}') as { classes?: unknown[] }).classes ?? []) as never);
    });
  });
}

liveTest('pt-query-digest on the same slow log: the same counts per fingerprint', async (t) => {
  const file = join(tmp.dir, 'slow.log');
  writeFileSync(file, slowText);
  let classes = await ptQueryDigest(file);
  if (classes !== undefined && classes.length === 0) {
    // Older versions print nothing with --no-report and --output json together.
    classes = await new Promise((resolve, reject) => {
      const filter = `($event->{user} || '') =~ m/^(?:${names.app}|${names.adm})$/`;
      execFile('pt-query-digest', ['--output', 'json', '--limit', '100%:10000', '--filter', filter, file], { maxBuffer: 64 << 20 }, (err, out) => {
        if (err !== null) return reject(err);
        resolve(((JSON.parse(out.trim() || '{"classes":[]}') as { classes?: unknown[] }).classes ?? []) as never);
      });
    });
  }
  if (classes === undefined) {
    if (process.env.CI) t.fail('pt-query-digest is not installed');
    else t.log('pt-query-digest not installed: comparison skipped');
    t.pass();
    return;
  }
  const st = (await buildReport(store!, 'statements', { ...options, auditObjectId: 'mariadb-local' })) as StatementsReport;
  const ours = Object.fromEntries(st.fingerprints.map((s) => [s.fingerprint, s.count]));
  // Each pt class maps to ours through its example statement; the counts add up per fingerprint.
  const theirs = sumBy(classes, (c) => myFp(c.example.query), (c) => Number(c.query_count));
  t.deepEqual(theirs, ours);
  t.is(classes.reduce((a, c) => a + Number(c.query_count), 0), st.totals.statements);
  // Where the two fingerprint texts differ, say so (they are different normalisers; the grouping is what must agree).
  const differ = classes.filter((c) => c.fingerprint !== myFp(c.example.query)).map((c) => `${c.fingerprint}  <>  ${myFp(c.example.query)}`);
  t.log(`${classes.length} pt-query-digest classes, ${st.fingerprints.length} dbtap fingerprints; differently written: ${differ.length}`);
  for (const d of differ) t.log(`  ${d}`);
  t.is(classes.length, st.fingerprints.length, 'the same grouping: one class per fingerprint');
});

// Report aggregates in both stores against an in-memory reference computed
// without SQL, then whole reports: the same in SQLite and PostgreSQL, and
// their figures equal to ones counted directly from the log.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { createTestDatabase, dropTestDatabase } from '../../../test-support/pg-testdb.js';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import { PostgresStore, SqliteStore, type AggregateQuery, type AuditStore, type ReportRecordQuery } from '../src/store/index.js';
import { isWorkingTime, normalizeWorkingHours, offsetSegments, localTime } from '../src/store/hours.js';
import { buildReport, type ComplianceReport, type Report, type SourceReport, type StatementsReport, type ServerReport } from '../src/reports/index.js';
import { tempDir } from './store-helpers.js';
import { HOUR, MINUTE, R0, localByIntl, offHoursByIntl, passes, referenceAggregate, referenceRecords, reportLog } from './reports-helpers.js';

const log = reportLog();
const tmp = tempDir('dbtap-reports-');
const sqlite = new SqliteStore(join(tmp.dir, 'audit.db'));

// PostgreSQL: a database of this run's own on the local server (trust auth).
const host = process.env.DBTAP_PG_HOST ?? '127.0.0.1';
const port = Number(process.env.DBTAP_PG_PORT ?? 5432);
const dbName = `dbtap_reports_test_${randomBytes(4).toString('hex')}`;
const admin = { host, port, user: 'postgres', database: 'postgres' };
let pgReason = '';
let pool: pg.Pool | undefined;
let pgStore: PostgresStore | undefined;
{
  const why = await createTestDatabase(admin, dbName);
  pgReason = why ?? '';
  if (why === undefined) {
    pool = new pg.Pool({ host, port, user: 'postgres', database: dbName, max: 6 });
    // An idle connection the server drops must not crash the test process; queries on it still fail loudly.
    pool.on('error', (err) => console.log(`# idle PostgreSQL connection closed: ${err.message}`));
  }
  if (pool === undefined && !process.env.CI) console.log(`# skipping PostgreSQL report tests: ${host}:${port} unavailable: ${pgReason}`);
}

test.before(async () => {
  await sqlite.append(log);
  if (pool !== undefined) {
    pgStore = await PostgresStore.open({ pool, prefix: 'rep' });
    await pgStore.append(log);
  }
});

test.after.always(async () => {
  await sqlite.close();
  tmp.cleanup();
  await pgStore?.close();
  await pool?.end();
  if (pool === undefined) return;
  const left = await dropTestDatabase(admin, dbName);
  if (left.length > 0) throw new Error(`connections to ${dbName} were left open after the tests: ${left.join('; ')}`);
});

/** Runs `fn` for each store: SQLite always, PostgreSQL when reachable (required under CI). */
function bothStores(title: string, fn: (t: ExecutionContext, store: AuditStore, label: string) => Promise<void>): void {
  test(`sqlite: ${title}`, (t) => fn(t, sqlite, 'sqlite'));
  const pgTest = pool !== undefined || process.env.CI ? test : test.skip;
  pgTest(`postgres: ${title}`, async (t) => {
    if (pgStore === undefined) throw new Error(`PostgreSQL unavailable: ${pgReason}`);
    await fn(t, pgStore, 'postgres');
  });
}

const statements: AggregateQuery = { kind: 'statement' };
const queries: [string, AggregateQuery][] = [
  ['totals with p95', { percentiles: true }],
  ['totals of nothing', { user: 'nobody' }],
  ['fingerprints by total time, p95 and samples', { ...statements, groupBy: ['fingerprint'], orderBy: 'totalUs', percentiles: true, samples: true, top: 100 }],
  ['fingerprints, top 3 by count', { ...statements, groupBy: ['fingerprint'], top: 3 }],
  ['users over activity kinds', { kind: ['login', 'statement', 'logout'], groupBy: ['user'], top: 100 }],
  ['objects touched', { ...statements, groupBy: ['object'], top: 100 }],
  ['objects by statement type', { ...statements, groupBy: ['object', 'statementType'], top: 1000 }],
  ['rules matched', { groupBy: ['ruleId'], top: 100 }],
  ['hourly volume by kind', { groupBy: ['time', 'kind'], bucketUs: HOUR, orderBy: 'key', top: 10_000 }],
  ['errors by code with samples', { status: 'error', groupBy: ['error'], samples: true, top: 100 }],
  ['client, user and program', { groupBy: ['clientIp', 'user', 'program'], top: 7 }],
  ['risk levels', { groupBy: ['risk'], orderBy: 'key', top: 10 }],
  ['sensitive objects by user', { ...statements, objects: ['SALARIES'], groupBy: ['user'], top: 100 }],
  ['qualified object filter', { objects: ['shop.customers'], groupBy: ['database'], top: 100 }],
  ['privilege verbs', { ...statements, statementType: 'dcl', verbs: ['grant', 'REVOKE'], groupBy: ['verb'], top: 100 }],
  ['other DCL verbs', { ...statements, statementType: 'dcl', excludeVerbs: ['GRANT', 'REVOKE'], groupBy: ['verb'], top: 100 }],
  ['verbs excluded, records without a verb kept', { ...statements, excludeVerbs: ['SELECT'], groupBy: ['verb'], top: 100 }],
  ['off hours in Berlin across the DST change', { kind: ['login', 'statement'], offHours: { timeZone: 'Europe/Berlin', start: '08:00', end: '18:00' }, groupBy: ['user'], top: 100 }],
  ['overnight shift on weekends', { offHours: { timeZone: 'America/New_York', start: '22:00', end: '06:00', days: [0, 6] }, groupBy: ['kind'], top: 100 }],
  ['whole working days', { offHours: { timeZone: 'Asia/Kolkata', start: '00:00', end: '00:00', days: [5] } }],
  ['none-valued users and programs', { user: ['', 'alice'], program: '', groupBy: ['user', 'program'], top: 100 }],
  ['records of no audit object', { auditObjectId: '', groupBy: ['kind'], top: 100 }],
  ['range and minimum risk', { from: R0 + 30 * HOUR, to: R0 + 60 * HOUR, minRisk: 'medium', groupBy: ['statementType'], top: 100 }],
  ['order by errors', { groupBy: ['user'], orderBy: 'errors', top: 100 }],
  ['order by max time', { ...statements, groupBy: ['verb'], orderBy: 'maxUs', top: 100 }],
  ['order by last time', { groupBy: ['clientIp'], orderBy: 'lastTs', top: 100 }],
  ['every text dimension', { groupBy: ['auditObject', 'dbType', 'status'], top: 1000 }],
  ['counts only, newest samples', { groupBy: ['user', 'kind'], countsOnly: true, samples: true, top: 1000 }],
  ['counts only by object with filters', { kind: 'statement', objects: ['salaries'], countsOnly: true, groupBy: ['object', 'verb'], top: 1000 }],
];

bothStores('aggregates equal the reference', async (t, store) => {
  for (const [name, q] of queries) {
    const want = referenceAggregate(log, q);
    const got = await store.aggregate(q);
    const plain = got.rows.map((r) => {
      const { sample, ...rest } = r;
      return sample === undefined ? rest : { ...rest, sampleId: sample.id };
    });
    t.deepEqual({ groups: got.groups, rows: plain }, want, name);
    if (!name.includes('nothing')) t.true(want.rows.some((r) => r.count > 0), `${name}: the fixture has no match, the query proves nothing`);
  }
});

bothStores('report record lists equal the reference', async (t, store) => {
  const cases: [string, ReportRecordQuery][] = [
    ['newest statements', { kind: 'statement', limit: 25 }],
    ['slowest statements', { kind: 'statement', order: 'slowest', limit: 40 }],
    ['slowest of an object, untimed last', { objects: ['customers'], order: 'slowest', limit: 1000 }],
    ['failed logins', { kind: 'login', status: 'error', limit: 1000 }],
    ['off hours', { offHours: { timeZone: 'Europe/Berlin' }, limit: 50 }],
  ];
  for (const [name, q] of cases) {
    const want = referenceRecords(log, q);
    t.true(want.length > 0, name);
    t.deepEqual((await store.reportRecords(q)).map((e) => e.id), want, name);
  }
});

bothStores('bad report queries fail with DBTAP_E_BAD_QUERY naming the parameter', async (t, store) => {
  const bad: [unknown, string][] = [
    [{ groupBy: ['colour'] }, 'groupBy'],
    [{ groupBy: ['user', 'user'] }, 'groupBy'],
    [{ groupBy: ['user', 'kind', 'status', 'risk'] }, 'groupBy'],
    [{ groupBy: ['time'] }, 'bucketUs'],
    [{ groupBy: ['time'], bucketUs: 10 }, 'bucketUs'],
    [{ top: 0 }, 'top'],
    [{ orderBy: 'sideways' }, 'orderBy'],
    [{ kind: 'query' }, 'kind'],
    [{ minRisk: 'severe' }, 'minRisk'],
    [{ from: 'yesterday' }, 'from'],
    [{ offHours: { timeZone: 'Mars/Olympus' } }, 'offHours'],
    [{ offHours: { start: '25:00' } }, 'offHours'],
    [{ offHours: { days: [] } }, 'offHours'],
    [{ objects: [42] }, 'objects'],
    [{ user: [null] }, 'user'],
    [{ countsOnly: true, percentiles: true }, 'countsOnly'],
    [{ countsOnly: true, orderBy: 'totalUs' }, 'countsOnly'],
  ];
  for (const [q, parameter] of bad) {
    const err = await t.throwsAsync(store.aggregate(q as AggregateQuery));
    t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'), `${JSON.stringify(q)}: ${String(err)}`);
    t.is((err as { details?: { parameter?: string } }).details?.parameter, parameter, JSON.stringify(q));
  }
  const err = await t.throwsAsync(store.reportRecords({ order: 'fastest' as 'slowest' }));
  t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'));
});

test('sqlite: report facts follow appends and retention', async (t) => {
  const dir = tempDir('dbtap-facts-');
  const path = join(dir.dir, 'audit.db');
  const store = new SqliteStore(path);
  try {
    const q: AggregateQuery = { groupBy: ['fingerprint'], percentiles: true, top: 100 };
    const half = log.slice(0, 300);
    await store.append(half);
    t.deepEqual(await store.aggregate(q), referenceAggregate(half, q));
    // Records appended after a report are picked up by the next one.
    await store.append(log.slice(300));
    t.deepEqual(await store.aggregate(q), referenceAggregate(log, q));
    // Facts of records retention removed are forgotten, and never counted.
    const cutoff = R0 + 48 * HOUR;
    const r = await store.retention({ maxAgeDays: 2, now: cutoff + 2 * 24 * HOUR });
    const left = log.filter((e) => Math.floor(e.ts) >= cutoff);
    t.is(r.removed, log.length - left.length);
    t.true(r.removed > 0 && left.length > 0);
    t.deepEqual(await store.aggregate(q), referenceAggregate(left, q));
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path, { readonly: true });
    const facts = db.prepare('SELECT count(*) AS n, min(seq) AS lo FROM report_facts').get() as { n: number; lo: number };
    const records = db.prepare('SELECT count(*) AS n, min(seq) AS lo FROM records').get() as { n: number; lo: number };
    db.close();
    t.is(facts.lo, records.lo);
    t.true(facts.n >= records.n && facts.n <= records.n + r.removed, JSON.stringify({ facts, records }));
  } finally {
    await store.close();
    dir.cleanup();
  }
});

test('offset segments follow daylight saving changes to the second', (t) => {
  // Europe/Berlin: CET to CEST at 2024-03-31 01:00 UTC, back at 2024-10-27 01:00 UTC.
  const berlin = offsetSegments('Europe/Berlin', Date.UTC(2024, 2, 1) * 1000, Date.UTC(2024, 11, 1) * 1000);
  t.deepEqual(berlin, [
    { until: Date.UTC(2024, 2, 31, 1) * 1000, offsetUs: HOUR },
    { until: Date.UTC(2024, 9, 27, 1) * 1000, offsetUs: 2 * HOUR },
    { offsetUs: HOUR },
  ]);
  // Lord Howe Island moves by half an hour; Kolkata never changes.
  const lh = offsetSegments('Australia/Lord_Howe', Date.UTC(2024, 0, 1) * 1000, Date.UTC(2024, 11, 31) * 1000);
  t.deepEqual(lh.map((s) => s.offsetUs / MINUTE), [660, 630, 660]);
  t.deepEqual(offsetSegments('Asia/Kolkata', R0, R0 + 400 * 24 * HOUR), [{ offsetUs: 330 * MINUTE }]);
  // Local time from the segments equals Intl's, every 37 minutes over a year in New York.
  const from = Date.UTC(2024, 0, 1) * 1000;
  const ny = offsetSegments('America/New_York', from, from + 366 * 24 * HOUR);
  t.is(ny.length, 3);
  for (let ts = from; ts < from + 366 * 24 * HOUR; ts += 37 * MINUTE) t.deepEqual(localTime(ts, ny), localByIntl(ts, 'America/New_York'));
  // isWorkingTime over those local times agrees with the reference, for day, overnight and whole-day windows.
  for (const wh of [{ timeZone: 'America/New_York' }, { timeZone: 'America/New_York', start: '22:00', end: '06:00', days: [0, 6] }, { timeZone: 'America/New_York', start: '00:00', end: '00:00', days: [3] }]) {
    const n = normalizeWorkingHours(wh);
    for (let ts = from; ts < from + 60 * 24 * HOUR; ts += 23 * MINUTE) {
      const { day, minute } = localTime(ts, ny);
      t.is(!isWorkingTime(day, minute, n), offHoursByIntl(ts, wh), `${JSON.stringify(wh)} at ${new Date(ts / 1000).toISOString()}`);
    }
  }
});

function withoutClock<T extends Report>(r: T): Omit<T, 'generatedAt'> {
  const { generatedAt: _, ...rest } = r;
  return rest;
}

const reportOptions = {
  sensitiveTables: ['salaries', 'shop.customers'],
  workingHours: { timeZone: 'Europe/Berlin', start: '08:00', end: '18:00' },
  top: 50,
};

bothStores('statements report: digest totals and per-fingerprint figures', async (t, store) => {
  const r = (await buildReport(store, 'statements', reportOptions)) as StatementsReport;
  const st = log.filter((e) => e.kind === 'statement');
  const timed = st.filter((e) => e.durationUs !== undefined).map((e) => e.durationUs!).sort((a, b) => a - b);
  t.is(r.totals.statements, st.length);
  t.is(r.totals.errors, st.filter((e) => e.status === 'error').length);
  t.is(r.totals.totalUs, timed.reduce((a, b) => a + b, 0));
  t.is(r.totals.p95Us, timed[Math.ceil(timed.length * 0.95) - 1]);
  t.is(r.totals.fingerprints, new Set(st.map((e) => e.fingerprint ?? '')).size);
  t.is(r.fingerprints.reduce((a, f) => a + f.count, 0), st.length);
  t.true(Math.abs(r.fingerprints.reduce((a, f) => a + f.timeShare, 0) - 1) < 1e-9);
  for (let i = 1; i < r.fingerprints.length; i++) t.true(r.fingerprints[i - 1]!.totalUs >= r.fingerprints[i]!.totalUs);
  for (const f of r.fingerprints) {
    const mine = st.filter((e) => (e.fingerprint ?? '') === f.fingerprint);
    const d = mine.filter((e) => e.durationUs !== undefined).map((e) => e.durationUs!).sort((a, b) => a - b);
    t.is(f.count, mine.length, f.fingerprint);
    t.is(f.errors, mine.filter((e) => e.status === 'error').length);
    t.is(f.maxUs, d.length > 0 ? d[d.length - 1] : undefined);
    t.is(f.p95Us, d.length > 0 ? d[Math.ceil(d.length * 0.95) - 1] : undefined);
    t.is(f.avgUs, d.length > 0 ? d.reduce((a, b) => a + b, 0) / d.length : undefined);
    t.is(f.rowsReturned, mine.reduce((a, e) => a + (e.rowsReturned ?? 0), 0));
    if (f.fingerprint !== '') t.is(f.sample, mine.find((e) => e.durationUs === f.maxUs)!.sql);
  }
});

bothStores('compliance report counts what the log holds', async (t, store) => {
  const r = (await buildReport(store, 'compliance', reportOptions)) as ComplianceReport;
  const section = (id: string): ComplianceReport['sections'][number] => r.sections.find((s) => s.id === id)!;
  const count = (f: (e: AuditEvent) => boolean): number => log.filter(f).length;
  t.is(section('riskyOperations').count, count((e) => (e.kind === 'login' || e.kind === 'statement') && ['medium', 'high'].includes(e.risk ?? 'none')));
  t.is(section('privilegeChanges').count, count((e) => e.kind === 'statement' && (e.verb === 'GRANT' || e.verb === 'REVOKE')));
  t.is(section('accountChanges').count, count((e) => e.kind === 'statement' && (e.verb === 'CREATE USER' || e.verb === 'SET PASSWORD')));
  t.is(section('failedLogins').count, count((e) => e.kind === 'login' && e.status === 'error'));
  const off = log.filter((e) => (e.kind === 'login' || e.kind === 'statement') && offHoursByIntl(e.ts, reportOptions.workingHours));
  t.is(section('offHours').count, off.length);
  t.true(off.length > 0 && off.length < log.length);
  const sens = log.filter((e) => e.kind === 'statement' && (e.objects ?? []).some((o) => o.name.toLowerCase() === 'salaries' || ((o.schema ?? e.database) === 'shop' && o.name === 'customers')));
  t.is(section('sensitiveAccess').count, sens.length);
  const byObject = section('sensitiveAccess').breakdowns.find((b) => b.by === 'object')!.entries.map((x) => x.key).sort();
  t.deepEqual(byObject, ['hr.salaries', 'shop.customers']);
  t.is(section('failedLogins').events.length, Math.min(50, section('failedLogins').count));
  t.true(section('failedLogins').events.every((e) => e.kind === 'login' && e.status === 'error'));
  for (const s of r.sections) for (let i = 1; i < s.events.length; i++) t.true(s.events[i - 1]!.ts >= s.events[i]!.ts, s.id);
  t.deepEqual(r.settings.workingHours, { timeZone: 'Europe/Berlin', start: '08:00', end: '18:00', days: [1, 2, 3, 4, 5] });
});

bothStores('source and server reports add up to the log', async (t, store) => {
  const src = (await buildReport(store, 'source', reportOptions)) as SourceReport;
  const activity = log.filter((e) => e.kind !== 'alert');
  for (const u of src.users) {
    const mine = activity.filter((e) => (e.user ?? '') === u.key);
    t.is(u.statements, mine.filter((e) => e.kind === 'statement').length, u.key);
    t.is(u.failedLogins, mine.filter((e) => e.kind === 'login' && e.status === 'error').length, u.key);
    t.is(u.sessions, new Set(mine.map((e) => e.flowId)).size, u.key);
  }
  t.is(src.users.reduce((a, u) => a + u.statements, 0), activity.filter((e) => e.kind === 'statement').length);
  t.is(src.clientIps.reduce((a, u) => a + u.logins, 0), activity.filter((e) => e.kind === 'login').length);
  t.true(src.users.some((u) => u.key === ''), 'records without a user are reported under the empty key');

  const srv = (await buildReport(store, 'server', { ...reportOptions, bucketUs: 6 * HOUR })) as ServerReport;
  t.is(srv.bucketUs, 6 * HOUR);
  t.deepEqual(srv.objects.map((o) => o.auditObjectId).sort(), ['', 'db-a', 'db-b']);
  for (const o of srv.objects) {
    const mine = log.filter((e) => (e.auditObjectId ?? '') === o.auditObjectId);
    t.is(o.totals.statements, mine.filter((e) => e.kind === 'statement').length);
    t.is(o.totals.alerts, mine.filter((e) => e.kind === 'alert').length);
    t.is(o.volume.reduce((a, v) => a + v.statements, 0), o.totals.statements);
    t.is(o.volume.reduce((a, v) => a + v.failedLogins, 0), o.totals.failedLogins);
    t.is(o.volume.length, Math.floor((srv.lastTs! - Math.floor(srv.firstTs! / (6 * HOUR)) * 6 * HOUR) / (6 * HOUR)) + 1);
    const slow = mine.filter((e) => e.kind === 'statement' && e.durationUs !== undefined).map((e) => e.durationUs!).sort((a, b) => b - a);
    t.deepEqual(o.slowest.map((e) => e.durationUs), slow.slice(0, 50));
    for (const x of o.objects) t.is(Object.values(x.byType).reduce((a, b) => a + b, 0), x.count, x.object);
    t.is(o.errors.reduce((a, e) => a + e.count, 0), mine.filter((e) => (e.kind === 'statement' || e.kind === 'login') && e.status === 'error').length);
  }
  const one = (await buildReport(store, 'server', { auditObjectId: 'db-b', from: R0 + 24 * HOUR, to: R0 + 48 * HOUR })) as ServerReport;
  t.is(one.objects.length, 1);
  t.is(one.objects[0]!.totals.statements, log.filter((e) => e.auditObjectId === 'db-b' && e.kind === 'statement' && passes(e, { from: R0 + 24 * HOUR, to: R0 + 48 * HOUR })).length);
  t.is(one.bucketUs, 15 * MINUTE, 'a day is 96 buckets of 15 minutes');
  t.is(one.objects[0]!.volume.length, 96);
});

const pgOnly = pool !== undefined || process.env.CI ? test : test.skip;
pgOnly('every report is the same from SQLite and from PostgreSQL', async (t) => {
  for (const kind of ['server', 'source', 'compliance', 'statements'] as const) {
    const a = await buildReport(sqlite, kind, reportOptions);
    const b = await buildReport(pgStore!, kind, reportOptions);
    t.deepEqual(withoutClock(b), withoutClock(a), kind);
  }
});

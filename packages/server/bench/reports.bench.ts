// Report build time over a filled store, and the digest aggregate against
// a baseline in the same process: the same per-fingerprint figures computed
// in JavaScript from every record read back through paged search.
// One JSON line per case on stdout.
//
//   node --import=tsx packages/server/bench/reports.bench.ts
//   DBTAP_BENCH_REPORT_RECORDS=500000   more records (default 100000)
//   DBTAP_BENCH_PG=1                    also PostgresStore on 127.0.0.1:5432
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { AuditEvent, StatementType } from '@dbtap/core';
import { PostgresStore, SqliteStore, type AuditStore } from '../src/store/index.js';
import { buildReport, type ReportKind } from '../src/reports/index.js';

const RECORDS = Number(process.env.DBTAP_BENCH_REPORT_RECORDS ?? 100_000);
const BATCH = 1000;
const T0 = Date.UTC(2024, 0, 1) * 1000;
const shapes: { type: StatementType; verb: string; sql: (t: string, i: number) => string; fp: (t: string) => string }[] = [
  { type: 'select', verb: 'SELECT', sql: (t, i) => `SELECT * FROM ${t} WHERE id = ${i}`, fp: (t) => `select * from ${t} where id = ?` },
  { type: 'select', verb: 'SELECT', sql: (t, i) => `SELECT count(*) FROM ${t} WHERE owner = 'u${i % 97}'`, fp: (t) => `select count(*) from ${t} where owner = ?` },
  { type: 'update', verb: 'UPDATE', sql: (t, i) => `UPDATE ${t} SET n = ${i} WHERE id = ${i}`, fp: (t) => `update ${t} set n = ? where id = ?` },
  { type: 'insert', verb: 'INSERT', sql: (t, i) => `INSERT INTO ${t} VALUES (${i})`, fp: (t) => `insert into ${t} values(?+)` },
  { type: 'dcl', verb: 'GRANT', sql: (t) => `GRANT SELECT ON ${t} TO auditor`, fp: (t) => `grant select on ${t} to auditor` },
];

/** Record i: 20 per session, about 30 per second, 50 tables x 5 shapes = 250 fingerprints. */
function record(i: number): AuditEvent {
  const flow = Math.floor(i / 20);
  const ts = T0 + i * 33_000;
  const base = {
    id: `b${flow}:${i % 20}`, flowId: `b${flow}`, ts, client: { ip: `10.0.${flow % 200}.${flow % 7}`, port: 40000 + (flow % 20000) }, server: { ip: '10.1.0.1', port: 3306 },
    dbType: 'mysql', user: `user${flow % 40}`, database: 'app', clientProgram: ['app', 'etl', 'mysql'][flow % 3], auditObjectId: `db${flow % 3}`,
  };
  if (i % 20 === 0) return { ...base, kind: 'login', status: i % 740 === 0 ? 'error' : 'ok', risk: 'none' } as AuditEvent;
  const shape = shapes[(i * 7) % shapes.length]!;
  const table = `app.t${(i * 13) % 50}`;
  const dur = 100 + ((i * 7919) % 20_000);
  return {
    ...base, kind: 'statement', endTs: ts + dur, durationUs: dur, status: i % 61 === 0 ? 'error' : 'ok', risk: shape.type === 'dcl' ? 'high' : 'none',
    sql: shape.sql(table, i), fingerprint: shape.fp(table), statementType: shape.type, verb: shape.verb, objects: [{ schema: 'app', name: table.slice(4), op: 'read' }],
    rowsReturned: shape.type === 'select' ? i % 10 : undefined,
  } as AuditEvent;
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

async function fill(store: AuditStore, n: number): Promise<void> {
  for (let i = 0; i < n; i += BATCH) {
    const batch: AuditEvent[] = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) batch.push(record(j));
    await store.append(batch);
  }
}

async function time<T>(fn: () => Promise<T>, runs: number): Promise<{ ms: number; value: T }> {
  let value!: T;
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    value = await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { ms: Math.round(times[Math.floor(times.length / 2)]! * 10) / 10, value };
}

/** The baseline: every statement read back by paged search, grouped and ranked in JavaScript. */
async function digestInJs(store: AuditStore): Promise<number> {
  const groups = new Map<string, number[]>();
  let cursor: string | undefined;
  do {
    const page = await store.search({ kind: 'statement', limit: 10_000, order: 'asc', cursor });
    for (const e of page.records) {
      const fp = e.fingerprint ?? '';
      let l = groups.get(fp);
      if (l === undefined) groups.set(fp, (l = []));
      if (e.durationUs !== undefined) l.push(e.durationUs);
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  for (const l of groups.values()) l.sort((a, b) => a - b);
  return groups.size;
}

async function bench(label: string, store: AuditStore, runs: number): Promise<void> {
  // The first report query of a fresh store also extracts the SQLite report facts: timed on its own.
  const first = await time(() => store.aggregate({ kind: 'statement', top: 1 }), 1);
  const full = await time(() => store.aggregate({ kind: 'statement', groupBy: ['fingerprint'], orderBy: 'totalUs', top: 20, percentiles: true, samples: true }), runs);
  const p95 = await time(() => store.aggregate({ kind: 'statement', groupBy: ['fingerprint'], orderBy: 'totalUs', top: 20, percentiles: true }), runs);
  const plain = await time(() => store.aggregate({ kind: 'statement', groupBy: ['fingerprint'], orderBy: 'totalUs', top: 20 }), runs);
  const js = await time(() => digestInJs(store), 1);
  emit({
    bench: 'reports.digest', store: label, records: RECORDS, fingerprints: full.value.groups, firstQueryMs: first.ms,
    sqlP95SamplesMs: full.ms, sqlP95Ms: p95.ms, sqlSumsMs: plain.ms, jsBaselineMs: js.ms, speedupVsJs: Math.round((js.ms / full.ms) * 10) / 10,
  });
  for (const kind of ['statements', 'server', 'source', 'compliance'] as ReportKind[]) {
    const r = await time(() => buildReport(store, kind, { sensitiveTables: ['t7'], workingHours: { timeZone: 'Europe/Berlin' } }), runs);
    emit({ bench: 'reports.build', store: label, kind, records: RECORDS, ms: r.ms, bytes: JSON.stringify(r.value).length });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-bench-reports-'));
  const wall = Date.now();
  try {
    const store = new SqliteStore({ path: join(dir, 'audit.db'), synchronous: 'normal' });
    await fill(store, RECORDS);
    await bench('sqlite', store, 3);
    await store.close();
    if (process.env.DBTAP_BENCH_PG === '1') {
      const dbName = `dbtap_reports_bench_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      try {
        const pool = new pg.Pool({ host: '127.0.0.1', port: 5432, user: 'postgres', database: dbName });
        // Dropping the database below ends the pool's last connections from the server side.
        pool.on('error', () => undefined);
        const p = await PostgresStore.open({ pool });
        await fill(p, RECORDS);
        await pool.query('VACUUM ANALYZE');
        await bench('postgres', p, 3);
        await p.close();
        await pool.end();
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.end();
      }
    }
    emit({ bench: 'reports', wallSeconds: Math.round((Date.now() - wall) / 100) / 10 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

// Audit store throughput: records/s appended in batches of 1000, records/s
// of 8 concurrent appenders (batches of 100, the group commit case), the
// CPU time per record of the batches of 1000 (user + system, the synthetic
// records' making included), the longest append and event-loop stall (a store that never yields to the
// event loop shows none there: its stall is its longest append), and search latency over the
// filled store. One JSON line per case on stdout.
//
//   node --import=tsx packages/server/bench/store.bench.ts
//   DBTAP_BENCH_RECORDS=1000000  the full-size run (default 200000, which keeps
//                                the bench near a minute on a 2-core machine;
//                                1M takes about 5 minutes there)
//   DBTAP_BENCH_PG=1             also bench PostgresStore on 127.0.0.1:5432 (DBTAP_BENCH_PG_RECORDS, default 200000)
//   DBTAP_BENCH_SCHEMA=1         instead: what each index and the full-text fill cost, as CPU time per
//                                appended record with that part dropped from a fresh store (synchronous=NORMAL,
//                                DBTAP_BENCH_SCHEMA_RECORDS each, default 30000; two rounds, interleaved)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import type { AuditEvent, RiskLevel, StatementType } from '@dbtap/core';
import { PostgresStore, SqliteStore, type AuditStore, type RecordQuery } from '../src/store/index.js';

const RECORDS = Number(process.env.DBTAP_BENCH_RECORDS ?? 200_000);
const PG_RECORDS = Number(process.env.DBTAP_BENCH_PG_RECORDS ?? 200_000);
const BATCH = 1000;
const T0 = Date.UTC(2024, 0, 1) * 1000;

const users = Array.from({ length: 50 }, (_, i) => `user${i}`);
const programs = ['mysql', 'psql', 'app-server', 'etl', 'reporting'];
const tables = Array.from({ length: 200 }, (_, i) => `table_${i}`);
const types: StatementType[] = ['select', 'select', 'select', 'insert', 'update', 'delete', 'ddl'];
const risks: RiskLevel[] = ['none', 'none', 'none', 'none', 'info', 'low', 'medium', 'high'];

/** Record i of a synthetic log: 20 records per session, about 30 per second. */
function record(i: number): AuditEvent {
  const flow = Math.floor(i / 20);
  const type = types[i % types.length]!;
  const table = tables[(i * 7) % tables.length]!;
  const risk = risks[(i * 13) % risks.length]!;
  const ts = T0 + i * 33_000;
  const e: AuditEvent = {
    id: `b${flow}:${i % 20}`, kind: i % 20 === 0 ? 'login' : 'statement', flowId: `b${flow}`, ts, endTs: ts + 800, durationUs: 800,
    client: { ip: `10.0.${flow % 250}.${(flow >> 8) % 250}`, port: 40000 + (flow % 20000) }, server: { ip: '10.1.0.1', port: 3306 },
    dbType: 'mysql', user: users[flow % users.length], database: 'app', clientProgram: programs[flow % programs.length], auditObjectId: `db${flow % 4}`,
    status: i % 53 === 0 ? 'error' : 'ok', risk,
  };
  if (e.kind === 'statement') {
    e.statementType = type;
    e.sql = `${type === 'ddl' ? 'ALTER TABLE' : type.toUpperCase()} ${type === 'select' ? `* FROM ${table} WHERE id = ${i}` : `${table} /* ${i} */`}`;
    e.objects = [{ schema: 'app', name: table, op: type === 'select' ? 'read' : 'write' }];
    if (risk === 'high') e.ruleIds = [`rule-${i % 10}`];
  }
  return e;
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** Appends `n` records in batches of {@link BATCH}; seconds taken, and the longest single append in ms. */
async function fill(store: AuditStore, n: number): Promise<number> {
  const start = process.hrtime.bigint();
  longestAppendMs = 0;
  for (let i = 0; i < n; i += BATCH) {
    const batch: AuditEvent[] = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) batch.push(record(j));
    const t = process.hrtime.bigint();
    await store.append(batch);
    longestAppendMs = Math.max(longestAppendMs, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** The longest append of the last {@link fill}: a synchronous store blocks the event loop that long. */
let longestAppendMs = 0;

/** Like {@link fill}, by `writers` appenders at once, each awaiting its own batches of `batch`. */
async function fillConcurrently(store: AuditStore, n: number, writers: number, batch: number): Promise<number> {
  const start = process.hrtime.bigint();
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + batch);
      const events: AuditEvent[] = [];
      for (let j = from; j < next; j++) events.push(record(j));
      await store.append(events);
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function latency(store: AuditStore, q: RecordQuery, runs: number): Promise<{ p50Ms: number; p95Ms: number; hits: number }> {
  const times: number[] = [];
  let hits = 0;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    hits = (await store.search(q)).records.length;
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const at = (p: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(p * times.length))]! * 1000) / 1000;
  return { p50Ms: at(0.5), p95Ms: at(0.95), hits };
}

async function searches(label: string, store: AuditStore, n: number, runs: number): Promise<void> {
  const span = n * 33_000;
  const mid = T0 + Math.floor(span / 2);
  const deep = await store.search({ limit: 1000, from: mid });
  const cases: [string, RecordQuery][] = [
    ['newest page', { limit: 100 }],
    ['time range 1 h', { from: mid, to: mid + 3_600_000_000, limit: 100 }],
    ['user', { user: 'user7', limit: 100 }],
    ['client ip', { clientIp: '10.0.7.0', limit: 100 }],
    ['object touched', { object: 'app.table_42', limit: 100 }],
    ['statement type + time', { statementType: 'delete', from: mid, limit: 100 }],
    ['min risk high', { minRisk: 'high', limit: 100 }],
    ['rule id', { ruleId: 'rule-3', limit: 100 }],
    ['status error', { status: 'error', limit: 100 }],
    ['full text word', { text: 'table_42', limit: 100 }],
    ['full text rare number', { text: String(Math.floor(n / 3)), limit: 100 }],
    ['full text + user', { text: 'delete', user: 'user3', limit: 100 }],
    ['time range 1 day + user + text', { from: mid, to: mid + 86_400_000_000, user: 'user3', text: 'delete', limit: 100 }],
    ['next page by cursor', { limit: 100, from: mid, cursor: deep.nextCursor }],
  ];
  for (const [name, q] of cases) emit({ bench: 'store.search', store: label, case: name, records: n, runs, ...(await latency(store, q, runs)) });
}

// What each part of the SQLite schema costs an append: the same records into
// a fresh store with that part dropped. CPU time (user + system) rather than
// wall time, so that other work on the machine weighs less.
const SCHEMA_VARIANTS: [string, string[]][] = [
  ['everything', []],
  ['without the full-text fill', ['DROP TABLE records_fts']],
  ['without records_flow', ['DROP INDEX records_flow']],
  ['without records_client', ['DROP INDEX records_client']],
  ['without records_user', ['DROP INDEX records_user']],
  ['without records_audit_object, _program, _stmt, _risk', ['DROP INDEX records_audit_object', 'DROP INDEX records_program', 'DROP INDEX records_stmt', 'DROP INDEX records_risk']],
  ['without record_objects_seq, record_rules_seq', ['DROP INDEX record_objects_seq', 'DROP INDEX record_rules_seq']],
  ['with cache_size 64 MB', ['PRAGMA cache_size = -65536']],
  ['table and records_id only', [
    'DROP TABLE records_fts', 'DROP INDEX records_ts', 'DROP INDEX records_flow', 'DROP INDEX records_audit_object', 'DROP INDEX records_user', 'DROP INDEX records_client',
    'DROP INDEX records_program', 'DROP INDEX records_stmt', 'DROP INDEX records_risk', 'DROP INDEX record_objects_seq', 'DROP INDEX record_rules_seq',
  ]],
];

async function schemaCosts(dir: string): Promise<void> {
  const n = Number(process.env.DBTAP_BENCH_SCHEMA_RECORDS ?? 30_000);
  const cpu = new Map<string, number[]>();
  for (let round = 0; round < 2; round++) {
    for (const [name, sql] of SCHEMA_VARIANTS) {
      const store = new SqliteStore({ path: join(dir, `schema-${round}-${cpu.size}-${randomBytes(3).toString('hex')}.db`), synchronous: 'normal' });
      // The store's own connection: the bench changes its schema behind its back.
      const db = Reflect.get(store, 'db') as { exec(sql: string): void };
      for (const q of sql) db.exec(q);
      // Without the table, the fill would fail; it then has nothing to do.
      if (sql.includes('DROP TABLE records_fts')) Reflect.set(store, 'ftsFill', { immediate: () => 0 });
      const before = process.cpuUsage();
      await fill(store, n);
      const used = process.cpuUsage(before);
      await store.close();
      cpu.set(name, [...(cpu.get(name) ?? []), (used.user + used.system) / n]);
    }
  }
  const all = Math.min(...cpu.get('everything')!);
  for (const [name, us] of cpu) {
    const best = Math.min(...us);
    emit({ bench: 'store.schema', store: 'sqlite', variant: name, records: n, cpuUsPerRecord: Math.round(best * 10) / 10, vsEverything: Math.round((best / all) * 100) / 100 });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-bench-'));
  const wall = Date.now();
  try {
    if (process.env.DBTAP_BENCH_SCHEMA === '1') {
      await schemaCosts(dir);
      return;
    }
    // Baseline in the same process: synchronous=NORMAL skips the WAL fsync per batch.
    const base = new SqliteStore({ path: join(dir, 'normal.db'), synchronous: 'normal' });
    const baseN = Math.min(RECORDS, 50_000);
    const baseS = await fill(base, baseN);
    await base.close();
    emit({ bench: 'store.append', store: 'sqlite', synchronous: 'normal', batch: BATCH, records: baseN, seconds: Math.round(baseS * 100) / 100, recordsPerSec: Math.round(baseN / baseS) });

    // Several agents: 8 appenders with batches of 100 each, synchronous=FULL.
    const conc = new SqliteStore({ path: join(dir, 'concurrent.db'), synchronous: 'full' });
    const concN = Math.min(RECORDS, 50_000);
    const concS = await fillConcurrently(conc, concN, 8, 100);
    await conc.close();
    emit({ bench: 'store.append', store: 'sqlite', synchronous: 'full', writers: 8, batch: 100, records: concN, seconds: Math.round(concS * 100) / 100, recordsPerSec: Math.round(concN / concS) });

    const store = new SqliteStore({ path: join(dir, 'full.db'), synchronous: 'full' });
    const stall = monitorEventLoopDelay({ resolution: 1 });
    stall.enable();
    const cpu0 = process.cpuUsage();
    const s = await fill(store, RECORDS);
    const cpu = process.cpuUsage(cpu0);
    stall.disable();
    const longest = Math.round(longestAppendMs * 10) / 10;
    emit({
      bench: 'store.append', store: 'sqlite', synchronous: 'full', batch: BATCH, records: RECORDS, seconds: Math.round(s * 100) / 100, recordsPerSec: Math.round(RECORDS / s),
      vsNormal: Math.round((RECORDS / s / (baseN / baseS)) * 100) / 100,
      cpuUsPerRecord: Math.round(((cpu.user + cpu.system) / RECORDS) * 10) / 10, longestAppendMs: longest, loopStallMaxMs: Math.round(stall.max / 1e5) / 10,
    });
    await searches('sqlite', store, RECORDS, 20);
    await store.close();

    if (process.env.DBTAP_BENCH_PG === '1') {
      const dbName = `dbtap_store_bench_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      try {
        const p = await PostgresStore.open({ connection: { host: '127.0.0.1', port: 5432, user: 'postgres', database: dbName } });
        const ps = await fill(p, PG_RECORDS);
        emit({ bench: 'store.append', store: 'postgres', batch: BATCH, records: PG_RECORDS, seconds: Math.round(ps * 100) / 100, recordsPerSec: Math.round(PG_RECORDS / ps) });
        await searches('postgres', p, PG_RECORDS, 10);
        await p.close();
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.end();
      }
    }
    emit({ bench: 'store', wallSeconds: Math.round((Date.now() - wall) / 100) / 10 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

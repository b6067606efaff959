import test from 'ava';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTestDatabase, dropTestDatabase } from '../../../test-support/pg-testdb.js';
import { isDbtapError } from '@dbtap/core';
import { PostgresStore } from '../src/store/index.js';
import { DAY, T0, makeLog, readExports, storeContract, tempDir } from './store-helpers.js';

// The local PostgreSQL (trust auth). Each run creates and drops its own database.
const host = process.env.DBTAP_PG_HOST ?? '127.0.0.1';
const port = Number(process.env.DBTAP_PG_PORT ?? 5432);
const dbName = `dbtap_store_test_${randomBytes(4).toString('hex')}`;
const admin = { host, port, user: 'postgres', database: 'postgres' };
let available = false;
let reason = '';
let pool: pg.Pool | undefined;

// Decided before tests are registered, so that they can be skipped (with
// the reason printed) when no server is reachable, except under CI.
{
  const why = await createTestDatabase(admin, dbName);
  available = why === undefined;
  reason = why ?? '';
  if (available) {
    pool = new pg.Pool({ host, port, user: 'postgres', database: dbName, max: 8 });
    pool.on('error', (err) => poolErrors.push(err.message));
  }
  else if (!process.env.CI) console.log(`# skipping PostgreSQL store tests: ${host}:${port} unavailable: ${reason}`);
}

/** Errors of idle pooled connections; any fails the file. */
const poolErrors: string[] = [];

test.after.always(async () => {
  await pool?.end();
  if (!available) return;
  const left = await dropTestDatabase(admin, dbName);
  if (left.length > 0) throw new Error(`connections to ${dbName} were left open after the tests: ${left.join('; ')}`);
  if (poolErrors.length > 0) throw new Error(`pool errors: ${poolErrors.join('; ')}`);
});

let n = 0;
const openStore = async (partition: 'day' | 'month' = 'day'): Promise<PostgresStore> => {
  if (!available) throw new Error(`PostgreSQL at ${host}:${port} unavailable: ${reason}`);
  return PostgresStore.open({ pool, prefix: `t${++n}`, partition });
};

// Without a server the tests are registered as skipped (failing under CI).
const pgTest = (available || process.env.CI ? test : test.skip) as typeof test;

storeContract(pgTest, 'postgres', () => openStore());

pgTest('postgres: monthly partitions work the same', async (t) => {
  const store = await openStore('month');
  try {
    const log = makeLog(8, 3);
    await store.append(log);
    t.is((await store.stats()).records, log.length);
    const parts = await pool!.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '${store.prefix}_records'::regclass`);
    t.deepEqual(parts.rows.map((r) => r.relname), [`${store.prefix}_records_m202403`]);
  } finally {
    await store.close();
  }
});

pgTest('postgres: partitions are created per day on demand and dropped whole by retention', async (t) => {
  const store = await openStore();
  const prefix = store.prefix;
  const tmp = tempDir('dbtap-pg-ret-');
  try {
    const days = [0, 1, 2, 3].map((d) => makeLog(4, 20 + d, T0 + d * DAY));
    for (const l of days) await store.append(l);
    const parts = async (): Promise<string[]> =>
      (await pool!.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '${prefix}_records'::regclass ORDER BY 1`)).rows.map((r) => r.relname as string);
    t.deepEqual(await parts(), ['20240301', '20240302', '20240303', '20240304'].map((d) => `${prefix}_records_d${d}`));
    // Two whole days and part of the third are older than the cutoff.
    const now = T0 + 4 * DAY;
    const cutoff = T0 + 2 * DAY + 30 * 60_000_000;
    const r = await store.retention({ maxAgeDays: (now - cutoff) / DAY, now, exportDir: tmp.dir });
    const removed = days.flat().filter((e) => e.ts < cutoff);
    t.is(r.removed, removed.length);
    t.deepEqual(r.droppedPartitions, [`${prefix}_records_d20240301`, `${prefix}_records_d20240302`]);
    t.deepEqual(await parts(), [`${prefix}_records_d20240303`, `${prefix}_records_d20240304`]);
    t.deepEqual(readExports(tmp.dir).map((e) => e.id).sort(), removed.map((e) => e.id).sort());
    // Appending into a dropped day recreates its partition.
    await store.append(makeLog(1, 99, T0 + 1000));
    t.true((await parts()).includes(`${prefix}_records_d20240301`));
  } finally {
    tmp.cleanup();
    await store.close();
  }
});

pgTest('postgres: bad options are refused', async (t) => {
  const err = await t.throwsAsync(PostgresStore.open({ pool, prefix: 'Robert"); DROP TABLE x;--' }));
  t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'));
  const down = await t.throwsAsync(PostgresStore.open({ connection: { host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 } }));
  t.true(isDbtapError(down, 'DBTAP_E_STORE_FAILED'));
});

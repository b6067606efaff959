// Tamper evidence of the PostgreSQL store against the local server: the
// shared contract, plus one chain from several concurrent writers,
// retention that drops whole partitions, and the chain lock and pooled
// connections after a refused or broken append.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { createTestDatabase } from '../../../test-support/pg-testdb.js';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import { PostgresStore } from '../src/store/index.js';
import { DAY, T0, makeLog } from './store-helpers.js';
import { KEY, integrityContract, type IntegrityFixture, type RawLink, type Tamper } from './integrity-helpers.js';
import type { LinkKind } from '../src/integrity/chain.js';

const host = process.env.DBTAP_PG_HOST ?? '127.0.0.1';
const port = Number(process.env.DBTAP_PG_PORT ?? 5432);
const dbName = `dbtap_integrity_test_${randomBytes(4).toString('hex')}`;
const admin = { host, port, user: 'postgres', database: 'postgres' };
const target = { host, port, user: 'postgres', database: dbName };
let available = false;
let reason = '';

/** Errors pools reported for idle connections; any fails the file in after.always. */
const poolErrors: string[] = [];
/** Per pool: one promise per connection it opened, settled when the server has closed that connection. */
const connectionsClosed = new WeakMap<pg.Pool, Promise<void>[]>();

/** A pool on the test database whose connections {@link endPool} waits for. */
function openPool(max: number, applicationName?: string): pg.Pool {
  const p = new pg.Pool({ ...target, max, ...(applicationName !== undefined ? { application_name: applicationName } : {}) });
  const closed: Promise<void>[] = [];
  p.on('connect', (c) => closed.push(new Promise((resolve) => c.once('end', () => resolve()))));
  p.on('error', (err) => poolErrors.push(`${applicationName ?? 'pool'}: ${err.message}`));
  connectionsClosed.set(p, closed);
  return p;
}

/**
 * Ends a pool and waits until the server has closed each of its
 * connections. `pool.end()` alone resolves once the terminate messages are
 * sent: a backend not yet gone would be killed by the forced drop of the
 * database, and its error would reach the pool after the tests.
 */
async function endPool(p: pg.Pool): Promise<void> {
  await p.end();
  await Promise.all(connectionsClosed.get(p) ?? []);
}

{
  const why = await createTestDatabase(admin, dbName);
  available = why === undefined;
  reason = why ?? '';
  if (!available && !process.env.CI) console.log(`# skipping PostgreSQL integrity tests: ${host}:${port} unavailable: ${reason}`);
}
const pool: pg.Pool | undefined = available ? openPool(12) : undefined;

test.after.always(async () => {
  if (pool !== undefined) await endPool(pool);
  if (!available) return;
  const c = new pg.Client(admin);
  await c.connect();
  let left: string[];
  try {
    // Every store, pool and client of the tests is closed by now: a backend still attached is a leak.
    left = (await c.query(
      `SELECT pid, state, application_name, query FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`,
      [dbName],
    )).rows.map((r) => `pid ${r.pid} (${r.application_name || 'no name'}, ${r.state}): ${r.query}`);
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  } finally {
    await c.end();
  }
  if (left.length > 0) throw new Error(`connections to ${dbName} were left open after the tests: ${left.join('; ')}`);
  if (poolErrors.length > 0) throw new Error(`pooled connections failed while idle: ${poolErrors.join('; ')}`);
});

const pgTest = (available || process.env.CI ? test : test.skip) as typeof test;

function pgTamper(p: pg.Pool, prefix: string): Tamper {
  const records = `${prefix}_records`;
  const chain = `${prefix}_chain`;
  return {
    records: async () => (await p.query(`SELECT seq, id, record::text AS json FROM ${records} ORDER BY seq`)).rows.map((r) => ({ seq: Number(r.seq), id: r.id as string, json: r.json as string })),
    setJson: async (seq, json) => void (await p.query(`UPDATE ${records} SET record = $1::json WHERE seq = $2`, [json, seq])),
    setColumn: async (seq, column, value) => void (await p.query(`UPDATE ${records} SET ${column} = $1 WHERE seq = $2`, [value, seq])),
    deleteRecord: async (seq) => void (await p.query(`DELETE FROM ${records} WHERE seq = $1`, [seq])),
    insertRecord: async (e: AuditEvent) => {
      const json = JSON.stringify(e);
      const r = await p.query(
        `INSERT INTO ${records} (id, kind, ts, flow_id, db_user, client_ip, db_type, risk, status, size, objects, canonical_objects, rule_ids, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, '{}', '{}', '{}', $10::json) RETURNING seq`,
        [e.id, e.kind, e.ts, e.flowId, e.user ?? null, e.client.ip, e.dbType, e.status, Buffer.byteLength(json), json],
      );
      return Number(r.rows[0].seq);
    },
    links: async () =>
      (await p.query(`SELECT * FROM ${chain} ORDER BY n`)).rows.map((r): RawLink => ({
        n: Number(r.n), kind: r.kind as LinkKind, at: Number(r.at), firstSeq: Number(r.first_seq), lastSeq: Number(r.last_seq),
        count: Number(r.count), keyId: r.key_id as string, prev: r.prev as Buffer, hash: r.hash as Buffer, body: r.body as Buffer,
      })),
    setLink: async (n, body, hash, prev, keyId) => {
      await p.query(`UPDATE ${chain} SET body = $1, hash = $2 WHERE n = $3`, [body, hash, n]);
      if (prev !== undefined) await p.query(`UPDATE ${chain} SET prev = $1 WHERE n = $2`, [prev, n]);
      if (keyId !== undefined) await p.query(`UPDATE ${chain} SET key_id = $1 WHERE n = $2`, [keyId, n]);
    },
    deleteLinksFrom: async (n) => void (await p.query(`DELETE FROM ${chain} WHERE n >= $1`, [n])),
  };
}

let n = 0;
async function openFixture(key?: string): Promise<IntegrityFixture> {
  if (!available) throw new Error(`PostgreSQL at ${host}:${port} unavailable: ${reason}`);
  const prefix = `i${++n}`;
  const store = await PostgresStore.open({ pool: pool!, prefix, ...(key !== undefined ? { integrity: { key } } : {}) });
  const others: PostgresStore[] = [];
  return {
    store,
    tamper: pgTamper(pool!, prefix),
    reopen: async (k) => {
      const s = await PostgresStore.open({ pool: pool!, prefix, ...(k !== undefined ? { integrity: { key: k } } : {}) });
      others.push(s);
      return s;
    },
    close: async () => {
      for (const s of others) await s.close();
      await store.close();
    },
  };
}

integrityContract(pgTest, 'postgres', openFixture);

pgTest('postgres: writers in several processes form one chain', async (t) => {
  const prefix = `i${++n}`;
  // Separate pools stand for separate server processes sharing the database.
  const pools = [0, 1, 2].map(() => openPool(2));
  const stores: PostgresStore[] = [];
  try {
    for (const p of pools) stores.push(await PostgresStore.open({ pool: p, prefix, integrity: { key: KEY } }));
    const logs = stores.map((_, i) => makeLog(12, 70 + i, T0 + i * DAY));
    // Every writer runs to its end before the stores and pools close, even when one fails.
    const writers = await Promise.allSettled(stores.map(async (s, i) => {
      const log = logs[i]!;
      for (let j = 0; j < log.length; j += 7) await s.append(log.slice(j, j + 7));
    }));
    for (const w of writers) if (w.status === 'rejected') throw w.reason;
    const total = logs.reduce((a, l) => a + l.length, 0);
    const r = await stores[0]!.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.records, total);
    t.is(r.links, logs.reduce((a, l) => a + Math.ceil(l.length / 7), 0));
  } finally {
    for (const s of stores) await s.close();
    for (const p of pools) await endPool(p);
  }
});

pgTest('postgres: partitions dropped whole by retention keep the chain verifiable', async (t) => {
  const f = await openFixture(KEY);
  try {
    const days = [0, 1, 2, 3].map((d) => makeLog(4, 80 + d, T0 + d * DAY));
    for (const l of days) await f.store.append(l);
    const now = T0 + 4 * DAY;
    const cutoff = T0 + 2 * DAY + 20 * 60_000_000;
    const res = await f.store.retention({ maxAgeDays: (now - cutoff) / DAY, now });
    t.is(res.droppedPartitions?.length, 2);
    const r = await f.store.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.start.link, 2, 'the links of the two dropped days were pruned');
    t.is(r.records, days.flat().filter((e) => e.ts >= cutoff).length);
    // A record slipped in behind the store's back is in no link.
    const back = await f.tamper.insertRecord({ ...days[3]![1]!, id: 'slipped-in' });
    const bad = await f.store.verify({ key: KEY });
    t.false(bad.ok);
    t.is(bad.problems[0]!.kind, 'record-inserted');
    t.is(bad.problems[0]!.seq, back);
    t.is(bad.problems[0]!.recordId, 'slipped-in');
  } finally {
    await f.close();
  }
});

pgTest('postgres: an append refused by the key check releases the chain lock and its connection', async (t) => {
  const prefix = `i${++n}`;
  const app = `dbtap-test-${prefix}`;
  const p = openPool(1, app);
  const holder = new pg.Client(target);
  const stores: PostgresStore[] = [];
  try {
    await holder.connect();
    const keyed = await PostgresStore.open({ pool: p, prefix, integrity: { key: KEY } });
    stores.push(keyed);
    const unkeyed = await PostgresStore.open({ pool: p, prefix });
    stores.push(unkeyed);
    await keyed.append(makeLog(2, 90));
    // The key check comes after the chain lock is taken (it needs the head).
    const err = await t.throwsAsync(unkeyed.append(makeLog(1, 91, T0 + DAY)));
    t.true(isDbtapError(err, 'DBTAP_E_INTEGRITY_KEY'), String(err));
    t.is(p.totalCount - p.idleCount, 0, 'the connection went back to the pool');
    const state = await holder.query(`SELECT state FROM pg_stat_activity WHERE application_name = $1`, [app]);
    t.deepEqual(state.rows.map((r) => r.state as string), ['idle'], 'in no transaction');
    await holder.query('BEGIN');
    const free = await holder.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [`dbtap-chain:${prefix}`]);
    await holder.query('ROLLBACK');
    t.true(free.rows[0].ok, 'nobody holds the chain lock');
    await keyed.append(makeLog(2, 92, T0 + DAY));
    const r = await keyed.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.links, 2);
  } finally {
    for (const s of stores) await s.close();
    await holder.end();
    await endPool(p);
  }
});

pgTest('postgres: an append whose connection is terminated while it waits for the chain lock fails cleanly', async (t) => {
  const prefix = `i${++n}`;
  const app = `dbtap-test-${prefix}`;
  const p = openPool(2, app);
  const holder = new pg.Client(target);
  const watcher = new pg.Client(target);
  let store: PostgresStore | undefined;
  try {
    await holder.connect();
    await watcher.connect();
    store = await PostgresStore.open({ pool: p, prefix, integrity: { key: KEY } });
    const first = makeLog(2, 93);
    await store.append(first);
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dbtap-chain:${prefix}`]);
    const second = makeLog(2, 94, T0 + DAY);
    const outcome = store.append(second).then(() => undefined, (e: unknown) => e);
    // Wait (bounded) until the append's connection is blocked on the lock, then end it as an administrator would.
    let pid: number | undefined;
    for (let i = 0; i < 1000 && pid === undefined; i++) {
      const w = await watcher.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'`, [app]);
      if (w.rows.length > 0) pid = w.rows[0].pid as number;
      else await delay(10);
    }
    if (pid === undefined) {
      await holder.query('ROLLBACK');
      await outcome;
      t.fail('the append never waited for the chain lock');
      return;
    }
    t.true((await watcher.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok);
    const err = await outcome;
    await holder.query('ROLLBACK');
    t.true(isDbtapError(err, 'DBTAP_E_STORE_FAILED'), String(err));
    t.is((err as { details?: { sqlState?: string } }).details?.sqlState, '57P01');
    t.is(p.totalCount - p.idleCount, 0, 'no connection is left checked out');
    // Nothing of the failed batch was stored: sending it again seals it once.
    await store.append(second);
    const r = await store.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.links, 2);
    t.is(r.records, first.length + second.length);
  } finally {
    await store?.close();
    await holder.end();
    await watcher.end();
    await endPool(p);
  }
});

// Tamper evidence of the PostgreSQL store against the local server: the
// shared contract, plus one chain from several concurrent writers and
// retention that drops whole partitions.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { AuditEvent } from '@dbtap/core';
import { PostgresStore } from '../src/store/index.js';
import { DAY, T0, makeLog } from './store-helpers.js';
import { KEY, integrityContract, type IntegrityFixture, type RawLink, type Tamper } from './integrity-helpers.js';
import type { LinkKind } from '../src/integrity/chain.js';

const host = process.env.DBTAP_PG_HOST ?? '127.0.0.1';
const port = Number(process.env.DBTAP_PG_PORT ?? 5432);
const dbName = `dbtap_integrity_test_${randomBytes(4).toString('hex')}`;
const admin = { host, port, user: 'postgres', database: 'postgres' };
let available = false;
let reason = '';
let pool: pg.Pool | undefined;

{
  const c = new pg.Client({ ...admin, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    available = true;
  } catch (err) {
    reason = (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
  if (available) pool = new pg.Pool({ host, port, user: 'postgres', database: dbName, max: 12 });
  else if (!process.env.CI) console.log(`# skipping PostgreSQL integrity tests: ${host}:${port} unavailable: ${reason}`);
}

test.after.always(async () => {
  await pool?.end();
  if (!available) return;
  const c = new pg.Client(admin);
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await c.end();
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
  const store = await PostgresStore.open({ pool, prefix, ...(key !== undefined ? { integrity: { key } } : {}) });
  const others: PostgresStore[] = [];
  return {
    store,
    tamper: pgTamper(pool!, prefix),
    reopen: async (k) => {
      const s = await PostgresStore.open({ pool, prefix, ...(k !== undefined ? { integrity: { key: k } } : {}) });
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
  const pools = [0, 1, 2].map(() => new pg.Pool({ host, port, user: 'postgres', database: dbName, max: 2 }));
  const stores = [];
  for (const p of pools) stores.push(await PostgresStore.open({ pool: p, prefix, integrity: { key: KEY } }));
  try {
    const logs = stores.map((_, i) => makeLog(12, 70 + i, T0 + i * DAY));
    await Promise.all(stores.map(async (s, i) => {
      const log = logs[i]!;
      for (let j = 0; j < log.length; j += 7) await s.append(log.slice(j, j + 7));
    }));
    const total = logs.reduce((a, l) => a + l.length, 0);
    const r = await stores[0]!.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.records, total);
    t.is(r.links, logs.reduce((a, l) => a + Math.ceil(l.length / 7), 0));
  } finally {
    for (const s of stores) await s.close();
    for (const p of pools) await p.end();
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

// The chain of a PostgresStore: its table, sealing inside the append
// transaction under an advisory lock (so that appends from several
// processes form one chain), retention checkpoints, and verification over
// a repeatable-read snapshot.
import type pg from 'pg';
import { DbtapError, type AuditEvent } from '@dbtap/core';
import {
  ADOPT_CHUNK,
  IntegrityErrorCodes,
  RangeBuilder,
  ZERO_HASH,
  chainKey,
  coveredCount,
  decodeCheckpoint,
  encodeCheckpoint,
  encodeEntries,
  indexedColumns,
  linkHash,
  objectKeys,
  rangesAbove,
  recordHash,
  ruleKeys,
  unionRanges,
  type ChainKey,
  type Checkpoint,
  type LinkKind,
  type LinkRow,
} from './chain.js';
import { verifyChain, type ChainSource } from './verify.js';
import type { IntegrityOptions, IntegrityReport, VerifyOptions } from './types.js';

type Row = Record<string, unknown>;

/** The chain head as an append or retention transaction sees it (under the chain lock). */
export interface PostgresChainHead {
  /** Link number (0 for an empty chain). */
  n: number;
  /** Its hash (zeros for an empty chain). */
  hash: Buffer;
  /** Highest record position any link names. */
  lastSeq: number;
}

const READ_CHUNK = 2000;
const LINK_CHUNK = 200;

function linkFromRow(r: Row): LinkRow {
  return {
    n: Number(r.n),
    // An unknown kind is kept as is: its hash then fails, reporting the link as altered.
    kind: r.kind as LinkKind,
    at: Number(r.at),
    firstSeq: Number(r.first_seq),
    lastSeq: Number(r.last_seq),
    count: Number(r.count),
    keyId: r.key_id as string,
    prev: r.prev as Buffer,
    hash: r.hash as Buffer,
    body: r.body as Buffer,
  };
}

/**
 * Runs `fn` in one transaction on a client of `pool`: `begin`, then `fn`,
 * then `COMMIT`; on any failure `ROLLBACK`, and the failure is rethrown.
 *
 * Appends and retention take the chain's transaction-scoped advisory lock
 * in such a transaction, so how the client goes back matters: it returns to
 * the pool only when its transaction is known to be over (committed or
 * rolled back), which also releases the lock. A client whose connection
 * failed, or whose rollback did not go through, is discarded instead, so no
 * pooled connection is ever handed out again inside a transaction that
 * holds the lock. While checked out the client has no listener of the
 * pool's, so the error it emits when the server ends its connection (an
 * administrator, a restart) is taken here: the query in flight fails with
 * the server's error, and the process is not brought down by an unhandled
 * `error` event.
 */
export async function chainTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken ??= err;
  };
  c.on('error', onError);
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    try {
      await c.query('ROLLBACK');
    } catch (rollbackErr) {
      broken ??= rollbackErr as Error;
    }
    throw err;
  } finally {
    // A discarded client keeps the listener: whatever else its dying connection reports is moot.
    if (broken === undefined) c.off('error', onError);
    c.release(broken);
  }
}

/**
 * The hash chain of one PostgreSQL audit store (table `<prefix>_chain`).
 * Every append and retention transaction takes a transaction-scoped
 * advisory lock first, so links are written one after the other even when
 * several servers share the database, and record positions (`seq`, from
 * the store's sequence) rise from one link to the next.
 */
export class PostgresChain {
  private readonly key: ChainKey | undefined;
  /** Table holding the links. */
  readonly table: string;
  private readonly lockName: string;

  /** @param records The records table. @param prefix The store's table prefix. */
  constructor(private readonly records: string, prefix: string, options: IntegrityOptions = {}) {
    this.key = options.key !== undefined ? chainKey(options.key) : undefined;
    this.table = `${prefix}_chain`;
    this.lockName = `dbtap-chain:${prefix}`;
  }

  /** Creates the chain table and the position index when missing, and seals records stored before the chain existed. */
  async init(pool: pg.Pool): Promise<void> {
    await chainTransaction(pool, async (c) => {
      await this.lock(c);
      await c.query(`
        CREATE TABLE IF NOT EXISTS ${this.table} (
          n bigint PRIMARY KEY,
          kind text NOT NULL,
          at bigint NOT NULL,
          first_seq bigint NOT NULL,
          last_seq bigint NOT NULL,
          count integer NOT NULL,
          key_id text NOT NULL,
          prev bytea NOT NULL,
          hash bytea NOT NULL,
          body bytea NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ${this.table}_retention ON ${this.table} (n) WHERE kind = 'retention';
        CREATE INDEX IF NOT EXISTS ${this.records}_seq ON ${this.records} (seq);
      `);
      let head = await this.head(c);
      if (head.n === 0) {
        let after = 0;
        for (;;) {
          const r = await c.query(`SELECT seq, record::text AS json FROM ${this.records} WHERE seq > $1 ORDER BY seq LIMIT ${ADOPT_CHUNK}`, [after]);
          if (r.rows.length === 0) break;
          const rows = r.rows as { seq: string; json: string }[];
          const entries = rows.map((x) => ({ seq: Number(x.seq), hash: recordHash(x.json) }));
          head = await this.write(c, head, 'adopt', entries[0]!.seq, entries[entries.length - 1]!.seq, entries.length, encodeEntries(entries));
          after = entries[entries.length - 1]!.seq;
        }
      }
    });
  }

  private async lock(c: pg.PoolClient): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.lockName]);
  }

  private async head(c: pg.PoolClient): Promise<PostgresChainHead & { keyId: string }> {
    const r = await c.query(`SELECT n, hash, key_id, last_seq FROM ${this.table} ORDER BY n DESC LIMIT 1`);
    const row = r.rows[0] as Row | undefined;
    return row === undefined ? { n: 0, hash: ZERO_HASH, keyId: '', lastSeq: 0 } : { n: Number(row.n), hash: row.hash as Buffer, keyId: row.key_id as string, lastSeq: Number(row.last_seq) };
  }

  private async write(c: pg.PoolClient, head: PostgresChainHead, kind: LinkKind, firstSeq: number, lastSeq: number, count: number, body: Buffer): Promise<PostgresChainHead & { keyId: string }> {
    const link = { n: head.n + 1, kind, at: Date.now() * 1000, firstSeq, lastSeq, count, keyId: this.key?.id ?? '', prev: head.hash, body };
    const hash = linkHash(link, this.key);
    await c.query(
      `INSERT INTO ${this.table} (n, kind, at, first_seq, last_seq, count, key_id, prev, hash, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [link.n, kind, link.at, firstSeq, lastSeq, count, link.keyId, link.prev, hash, body],
    );
    return { n: link.n, hash, keyId: link.keyId, lastSeq: Math.max(head.lastSeq, lastSeq) };
  }

  /**
   * Takes the chain lock and reads the head; call right after `BEGIN`, before
   * inserting records. Throws `DBTAP_E_INTEGRITY_KEY` when the chain is
   * signed with another key than this store's.
   */
  async begin(c: pg.PoolClient, what = 'append'): Promise<PostgresChainHead> {
    await this.lock(c);
    const head = await this.head(c);
    if (head.keyId !== '' && head.keyId !== this.key?.id) {
      throw new DbtapError(
        IntegrityErrorCodes.KEY,
        `${what}: the store's chain is signed with key id ${head.keyId}; ${this.key === undefined ? 'no key was given' : `the given key has id ${this.key.id}`}`,
        { keyId: head.keyId },
      );
    }
    return head;
  }

  /** Seals the records an append stored: (position, stored JSON) in any order. */
  async seal(c: pg.PoolClient, head: PostgresChainHead, stored: ReadonlyArray<{ seq: number; json: string }>): Promise<void> {
    if (stored.length === 0) return;
    const entries = stored.map((s) => ({ seq: s.seq, hash: recordHash(s.json) })).sort((a, b) => a.seq - b.seq);
    await this.write(c, head, 'batch', entries[0]!.seq, entries[entries.length - 1]!.seq, entries.length, encodeEntries(entries));
  }

  /**
   * Inside a retention transaction, after {@link PostgresChain.begin} and
   * before deleting: records the positions about to go (ascending), drops
   * the links at the chain's start whose records are then all gone, and
   * writes the checkpoint saying where the chain now starts. The deletion
   * commits with it or not at all.
   */
  async retention(c: pg.PoolClient, head: PostgresChainHead, seqs: Iterable<number>): Promise<void> {
    const b = new RangeBuilder();
    for (const s of seqs) b.add(s);
    if (b.ranges.length === 0) return;
    const last = (await c.query(`SELECT body FROM ${this.table} WHERE kind = 'retention' ORDER BY n DESC LIMIT 1`)).rows[0] as Row | undefined;
    const cp: Checkpoint = (last === undefined ? undefined : decodeCheckpoint(last.body as Buffer)) ?? { cutN: 0, cutHash: ZERO_HASH, cutSeq: 0, removed: [] };
    const removed = unionRanges(cp.removed, b.ranges);
    let cut: { n: number; hash: Buffer; lastSeq: number } | undefined;
    let after = cp.cutN;
    scan: for (;;) {
      const rows = (await c.query(`SELECT n, kind, first_seq, last_seq, count, hash FROM ${this.table} WHERE n > $1 ORDER BY n LIMIT ${LINK_CHUNK}`, [after])).rows as Row[];
      if (rows.length === 0) break;
      for (const r of rows) {
        const prunable = r.kind === 'retention' || coveredCount(removed, Number(r.first_seq), Number(r.last_seq)) === Number(r.count);
        if (!prunable) break scan;
        cut = { n: Number(r.n), hash: r.hash as Buffer, lastSeq: Number(r.last_seq) };
      }
      after = Number(rows[rows.length - 1]!.n);
    }
    const next: Checkpoint = cut === undefined ? { ...cp, removed } : { cutN: cut.n, cutHash: cut.hash, cutSeq: cut.lastSeq, removed: rangesAbove(removed, cut.lastSeq) };
    if (cut !== undefined) await c.query(`DELETE FROM ${this.table} WHERE n <= $1`, [cut.n]);
    const maxSeq = Number((await c.query(`SELECT coalesce(max(seq), 0) AS m FROM ${this.records}`)).rows[0].m);
    const high = Math.max(head.lastSeq, maxSeq);
    await this.write(c, head, 'retention', high, high, 0, encodeCheckpoint(next));
  }

  /** Verifies the chain over one repeatable-read snapshot. */
  async verify(pool: pg.Pool, options: VerifyOptions = {}): Promise<IntegrityReport> {
    return chainTransaction(pool, async (c) => {
      const exists = await c.query('SELECT to_regclass($1) IS NOT NULL AS ok', [this.table]);
      if (!(exists.rows[0] as { ok: boolean }).ok) throw new DbtapError(IntegrityErrorCodes.NO_CHAIN, `no chain table ${this.table}`);
      const { table, records } = this;
      const source: ChainSource = {
        latestRetention: async () => {
          const r = (await c.query(`SELECT * FROM ${table} WHERE kind = 'retention' ORDER BY n DESC LIMIT 1`)).rows[0] as Row | undefined;
          return r === undefined ? undefined : linkFromRow(r);
        },
        links: async function* (after: number) {
          for (;;) {
            const rows = (await c.query(`SELECT * FROM ${table} WHERE n > $1 ORDER BY n LIMIT ${LINK_CHUNK}`, [after])).rows as Row[];
            if (rows.length === 0) return;
            for (const r of rows) yield linkFromRow(r);
            after = Number(rows[rows.length - 1]!.n);
          }
        },
        records: async function* () {
          let after = -1;
          for (;;) {
            const rows = (await c.query(
              `SELECT seq, id, kind, ts, flow_id, audit_object, db_user, client_ip, program, db_type, stmt_type, risk, status, size,
                 objects, canonical_objects, rule_ids, record::text AS json
               FROM ${records} WHERE seq > $1 ORDER BY seq LIMIT ${READ_CHUNK}`,
              [after],
            )).rows as Row[];
            if (rows.length === 0) return;
            for (const r of rows) {
              const { json, seq, ts, ...columns } = r;
              yield { seq: Number(seq), json: json as string, columns: { ...columns, ts: Number(ts) } };
            }
            after = Number(rows[rows.length - 1]!.seq);
          }
        },
        expectedColumns: (e: AuditEvent, json: string) => {
          const keys = objectKeys(e);
          return {
            ...indexedColumns(e, json),
            objects: keys.map((k) => k.key),
            canonical_objects: keys.filter((k) => k.canonical).map((k) => k.key),
            rule_ids: ruleKeys(e),
          };
        },
      };
      return verifyChain(source, options);
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }
}

// The chain of a SqliteStore: its table, sealing inside the append
// transaction, retention checkpoints, and verification over a read-only
// snapshot.
import type Database from 'better-sqlite3';
import { DbtapError, ErrorCodes, type AuditEvent } from '@dbtap/core';
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
  rangesAbove,
  recordHash,
  unionRanges,
  type ChainKey,
  type Checkpoint,
  type LinkKind,
  encodePosition,
  type LinkRow,
} from './chain.js';
import { sqliteDriver } from '../store/native.js';
import { verifyChain, type ChainSource, type StoredRecord } from './verify.js';
import type { IntegrityOptions, IntegrityReport, VerifyOptions } from './types.js';

// One row per link. The body holds the sealed (seq, hash) entries or, for a
// retention link, the checkpoint (see chain.ts for both layouts).
const CHAIN_SCHEMA = `
CREATE TABLE IF NOT EXISTS chain (
  n INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  at INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  count INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  prev BLOB NOT NULL,
  hash BLOB NOT NULL,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chain_retention ON chain(n) WHERE kind = 'retention';
`;

/** The stored ingest positions (`meta` rows `ingest:<source>`), by source. */
const POSITIONS_SQL = "SELECT substr(key, 8) AS source, CAST(value AS INTEGER) AS seq FROM meta WHERE key LIKE 'ingest:%' ORDER BY key";
/** `meta` key set once the positions already stored have been sealed. */
const POSITIONS_SEALED = 'chain:positions';

const RECORD_COLUMNS = 'seq, id, kind, ts, flow_id, audit_object, db_user, client_ip, program, db_type, stmt_type, risk, status, size';
const READ_CHUNK = 2000;
const LINK_CHUNK = 200;

interface Head {
  n: number;
  hash: Buffer;
  keyId: string;
  lastSeq: number;
}

function linkFromRow(r: Record<string, unknown>): LinkRow {
  const kind = r.kind;
  return {
    n: r.n as number,
    // An unknown kind is kept as is: its hash then fails, reporting the link as altered.
    kind: kind as LinkKind,
    at: r.at as number,
    firstSeq: r.first_seq as number,
    lastSeq: r.last_seq as number,
    count: r.count as number,
    keyId: r.key_id as string,
    prev: r.prev as Buffer,
    hash: r.hash as Buffer,
    body: r.body as Buffer,
  };
}

/**
 * The hash chain of one SQLite audit store. Record positions (`seq`) are
 * assigned here, above every position ever used, so that a position is never
 * reused after retention removed the newest record.
 */
export class SqliteChain {
  private readonly key: ChainKey | undefined;
  private readonly head: () => Head | undefined;
  private readonly maxRecordSeq: () => number;
  private readonly insertLink: Database.Statement;
  private readonly latestRetentionLink: Database.Statement;
  private readonly storedPositions: Database.Statement;
  private pending: Array<{ seq: number; hash: Buffer }> = [];
  private current: Head | undefined;

  /** Creates the chain table when missing and seals records stored before it existed. */
  constructor(private readonly db: Database.Database, options: IntegrityOptions = {}) {
    this.key = options.key !== undefined ? chainKey(options.key) : undefined;
    db.exec(CHAIN_SCHEMA);
    const headStmt = db.prepare('SELECT n, hash, key_id, last_seq FROM chain ORDER BY n DESC LIMIT 1');
    this.head = () => {
      const r = headStmt.get() as { n: number; hash: Buffer; key_id: string; last_seq: number } | undefined;
      return r === undefined ? undefined : { n: r.n, hash: r.hash, keyId: r.key_id, lastSeq: r.last_seq };
    };
    const maxSeq = db.prepare('SELECT coalesce(max(seq), 0) FROM records').pluck();
    this.maxRecordSeq = () => maxSeq.get() as number;
    this.insertLink = db.prepare('INSERT INTO chain (n, kind, at, first_seq, last_seq, count, key_id, prev, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.latestRetentionLink = db.prepare("SELECT * FROM chain WHERE kind = 'retention' ORDER BY n DESC LIMIT 1");
    this.storedPositions = db.prepare(POSITIONS_SQL);
    if (this.head() === undefined) db.transaction(() => this.adopt()).immediate();
    // Positions stored before they were sealed are sealed once, as records are adopted.
    if (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(POSITIONS_SEALED) === undefined) {
      db.transaction(() => {
        this.sealPositions(this.writable('open'));
        db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(POSITIONS_SEALED, '1');
      }).immediate();
    }
  }

  /** Id of the key links are signed with, `''` when unsigned. */
  get keyId(): string {
    return this.key?.id ?? '';
  }

  /** Throws `DBTAP_E_INTEGRITY_KEY` now if appends would be refused (the chain is signed with another key, or with one and none was given). */
  assertWritable(): void {
    this.writable('open');
  }

  private writable(what: string): Head | undefined {
    const head = this.head();
    if (head !== undefined && head.keyId !== '' && head.keyId !== this.key?.id) {
      throw new DbtapError(
        IntegrityErrorCodes.KEY,
        `${what}: the store's chain is signed with key id ${head.keyId}; ${this.key === undefined ? 'no key was given' : `the given key has id ${this.key.id}`}`,
        { keyId: head.keyId },
      );
    }
    return head;
  }

  private write(head: Head | undefined, kind: LinkKind, firstSeq: number, lastSeq: number, count: number, body: Buffer): Head {
    const link = { n: (head?.n ?? 0) + 1, kind, at: Date.now() * 1000, firstSeq, lastSeq, count, keyId: this.keyId, prev: head?.hash ?? ZERO_HASH, body };
    const hash = linkHash(link, this.key);
    this.insertLink.run(link.n, kind, link.at, firstSeq, lastSeq, count, link.keyId, link.prev, hash, body);
    return { n: link.n, hash, keyId: link.keyId, lastSeq };
  }

  /** Seals every record of a store that has records but no chain yet (a store written before tamper evidence). */
  private adopt(): void {
    if (this.head() !== undefined) return;
    const page = this.db.prepare(`SELECT seq, json FROM records WHERE seq > ? ORDER BY seq LIMIT ${ADOPT_CHUNK}`);
    let head: Head | undefined;
    let after = 0;
    for (;;) {
      const rows = page.all(after) as { seq: number; json: string }[];
      if (rows.length === 0) break;
      const entries = rows.map((r) => ({ seq: r.seq, hash: recordHash(r.json) }));
      head = this.write(head, 'adopt', rows[0]!.seq, rows[rows.length - 1]!.seq, rows.length, encodeEntries(entries));
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * Starts sealing a batch; call inside the append transaction (which must
   * hold the write lock: `BEGIN IMMEDIATE`). Returns the first position to
   * give a record. Throws `DBTAP_E_INTEGRITY_KEY` when the chain is signed
   * with another key than this store's.
   */
  begin(): number {
    this.current = this.writable('append');
    this.pending = [];
    return Math.max(this.current?.lastSeq ?? 0, this.maxRecordSeq()) + 1;
  }

  /** Adds a stored record (positions ascending) to the batch being sealed. */
  add(seq: number, json: string): void {
    this.pending.push({ seq, hash: recordHash(json) });
  }

  /** Writes the batch's link (nothing when no record was stored, e.g. a retried batch). */
  seal(): void {
    const p = this.pending;
    this.pending = [];
    if (p.length === 0) return;
    this.write(this.current, 'batch', p[0]!.seq, p[p.length - 1]!.seq, p.length, encodeEntries(p));
  }

  /**
   * Seals an ingest position; call inside the append transaction that
   * stores it, after {@link SqliteChain.seal}.
   */
  position(source: string, seq: number): void {
    this.current = this.writePosition(this.head(), source, seq);
  }

  private writePosition(head: Head | undefined, source: string, seq: number): Head {
    // first/last seq carry the high-water position on, as retention links do: begin() continues from it
    const high = Math.max(head?.lastSeq ?? 0, this.maxRecordSeq());
    return this.write(head, 'position', high, high, 0, encodePosition(source, seq));
  }

  // Every stored position again, so each has a link after the start of the chain (after adoption and after retention pruned links).
  private sealPositions(head: Head | undefined): void {
    for (const p of this.storedPositions.all() as Array<{ source: string; seq: number }>) head = this.writePosition(head, p.source, p.seq);
  }

  private checkpoint(): Checkpoint {
    const row = this.latestRetentionLink.get() as Record<string, unknown> | undefined;
    const cp = row === undefined ? undefined : decodeCheckpoint(row.body as Buffer);
    return cp ?? { cutN: 0, cutHash: ZERO_HASH, cutSeq: 0, removed: [] };
  }

  /**
   * Records, before retention deletes anything, which positions it is about
   * to remove (ascending). Its own transaction; a crash after it leaves
   * records that are listed as removed but still there, which verify accepts.
   */
  retentionStart(seqs: Iterable<number>): void {
    // Read the positions first: a statement still stepping blocks BEGIN.
    const b = new RangeBuilder();
    for (const s of seqs) b.add(s);
    if (b.ranges.length === 0) return;
    this.db.transaction(() => {
      const head = this.writable('retention');
      const cp = this.checkpoint();
      const high = Math.max(head?.lastSeq ?? 0, this.maxRecordSeq());
      this.write(head, 'retention', high, high, 0, encodeCheckpoint({ ...cp, removed: unionRanges(cp.removed, b.ranges) }));
    }).immediate();
  }

  /**
   * After retention deleted its records: drops the links at the start of the
   * chain whose records are all gone, and writes a checkpoint recording
   * where the chain now starts.
   */
  retentionFinish(): void {
    this.db.transaction(() => {
      const head = this.writable('retention');
      const cp = this.checkpoint();
      let cut: { n: number; hash: Buffer; lastSeq: number } | undefined;
      for (const r of this.db.prepare('SELECT n, kind, first_seq, last_seq, count, hash FROM chain WHERE n > ? ORDER BY n').iterate(cp.cutN) as IterableIterator<Record<string, unknown>>) {
        const prunable = r.kind === 'retention' || coveredCount(cp.removed, r.first_seq as number, r.last_seq as number) === (r.count as number);
        if (!prunable) break;
        cut = { n: r.n as number, hash: r.hash as Buffer, lastSeq: r.last_seq as number };
      }
      if (cut === undefined) return;
      this.db.prepare('DELETE FROM chain WHERE n <= ?').run(cut.n);
      const next: Checkpoint = { cutN: cut.n, cutHash: cut.hash, cutSeq: cut.lastSeq, removed: rangesAbove(cp.removed, cut.lastSeq) };
      const high = Math.max(head?.lastSeq ?? 0, this.maxRecordSeq());
      this.sealPositions(this.write(head, 'retention', high, high, 0, encodeCheckpoint(next)));
    }).immediate();
  }
}

/** The filter columns a SqliteStore stores for a record. */
function expectedColumns(e: AuditEvent, json: string): Record<string, unknown> {
  return indexedColumns(e, json);
}

/**
 * Verifies the chain of a SQLite store through `db`. Reads in chunks inside
 * one read transaction (a consistent snapshot), yielding to the event loop
 * between chunks. `db` must not be used for anything else meanwhile unless
 * it is the store's own in-memory connection, which is then read without a
 * snapshot.
 */
export async function verifySqliteDatabase(db: Database.Database, options: VerifyOptions = {}, snapshot = true): Promise<IntegrityReport> {
  const hasChain = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chain'").get() !== undefined;
  const hasRecords = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").get() !== undefined;
  if (!hasRecords) throw new DbtapError(IntegrityErrorCodes.NO_CHAIN, 'not a dbtap audit store: no records table');
  if (!hasChain) throw new DbtapError(IntegrityErrorCodes.NO_CHAIN, 'the store has no integrity chain yet: open it once with this version of dbtap (which seals the records it holds)');
  const recPage = db.prepare(`SELECT ${RECORD_COLUMNS}, json FROM records WHERE seq > ? ORDER BY seq LIMIT ${READ_CHUNK}`);
  const linkPage = db.prepare(`SELECT * FROM chain WHERE n > ? ORDER BY n LIMIT ${LINK_CHUNK}`);
  const latest = db.prepare("SELECT * FROM chain WHERE kind = 'retention' ORDER BY n DESC LIMIT 1");
  const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const source: ChainSource = {
    latestRetention: async () => {
      const r = latest.get() as Record<string, unknown> | undefined;
      return r === undefined ? undefined : linkFromRow(r);
    },
    links: async function* (after: number) {
      for (;;) {
        const rows = linkPage.all(after) as Record<string, unknown>[];
        if (rows.length === 0) return;
        for (const r of rows) yield linkFromRow(r);
        after = rows[rows.length - 1]!.n as number;
        if (snapshot) await yieldNow();
      }
    },
    records: async function* () {
      let after = -1;
      for (;;) {
        const rows = recPage.all(after) as Record<string, unknown>[];
        if (rows.length === 0) return;
        for (const r of rows) {
          const { json, seq, ...columns } = r;
          yield { seq: seq as number, json: json as string, columns } satisfies StoredRecord;
        }
        after = rows[rows.length - 1]!.seq as number;
        if (snapshot) await yieldNow();
      }
    },
    expectedColumns,
    positions: async () => {
      const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
      const rows = hasMeta ? (db.prepare(POSITIONS_SQL).all() as Array<{ source: string; seq: number }>) : [];
      return new Map(rows.map((r) => [r.source, r.seq]));
    },
  };
  if (!snapshot) return verifyChain(source, options);
  db.exec('BEGIN');
  try {
    return await verifyChain(source, options);
  } finally {
    db.exec('COMMIT');
  }
}

/**
 * Verifies the chain of a SQLite store file, opened read-only (nothing in
 * the file is changed, so it can run beside the server or on a copy).
 *
 * @throws DbtapError `DBTAP_E_IO` when the file cannot be opened,
 *   `DBTAP_E_INTEGRITY_NO_CHAIN` when it holds no chain,
 *   `DBTAP_E_INTEGRITY_KEY` when the chain is signed and no key was given.
 */
export async function verifySqliteFile(path: string, options: VerifyOptions = {}): Promise<IntegrityReport> {
  let db: Database.Database;
  try {
    db = new (sqliteDriver())(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new DbtapError(ErrorCodes.IO, `cannot open store ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
  try {
    return await verifySqliteDatabase(db, options);
  } finally {
    db.close();
  }
}

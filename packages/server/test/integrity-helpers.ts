// Tamper evidence every store must show, run against each implementation:
// records edited, deleted or inserted behind the store's back (straight
// through the database driver, as an intruder with database access would)
// are named by verify; retention keeps verification green.
import type { ExecutionContext, TestFn } from 'ava';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import type { AuditStore } from '../src/store/index.js';
import { linkHash, recordHash, encodeEntries, entryCount, entrySeq, entryHash, type LinkRow } from '../src/integrity/chain.js';
import { DAY, T0, makeLog, tempDir } from './store-helpers.js';

/** A link as the database holds it: the stores' own row shape. */
export type RawLink = LinkRow;

/** Direct database access to one store, bypassing it. */
export interface Tamper {
  /** Every stored record: position and JSON text, ascending. */
  records(): Promise<Array<{ seq: number; id: string; json: string }>>;
  /** Replaces a record's JSON text. */
  setJson(seq: number, json: string): Promise<void>;
  /** Sets a filter column (db_user, ...). */
  setColumn(seq: number, column: string, value: string): Promise<void>;
  /** Deletes a record row. */
  deleteRecord(seq: number): Promise<void>;
  /** Inserts a record row the store never wrote; returns its position. */
  insertRecord(e: AuditEvent): Promise<number>;
  /** The links, ascending. */
  links(): Promise<RawLink[]>;
  /** Overwrites a link's body and hash (and optionally prev and key id). */
  setLink(n: number, body: Buffer, hash: Buffer, prev?: Buffer, keyId?: string): Promise<void>;
  /** Deletes the links numbered `n` and above. */
  deleteLinksFrom(n: number): Promise<void>;
}

/** How the contract opens a store and reaches its database. */
export interface IntegrityFixture {
  store: AuditStore;
  tamper: Tamper;
  /** Opens the same store again (another connection), with other integrity options. */
  reopen(key?: string): Promise<AuditStore>;
  close(): Promise<void>;
}

/** A key for the signed-chain cases. */
export const KEY = 'integrity-test-key-0123456789abcdef';

function forged(id: string): AuditEvent {
  return {
    id, kind: 'statement', flowId: 'forged-flow', ts: T0 + 5 * 60_000_000, client: { ip: '127.0.0.9', port: 1 }, server: { ip: '127.0.0.1', port: 3306 },
    dbType: 'mysql', user: 'alice', sql: 'SELECT 1', status: 'ok',
  };
}

async function fill(store: AuditStore, log: AuditEvent[], batch = 25): Promise<number> {
  let batches = 0;
  for (let i = 0; i < log.length; i += batch) {
    await store.append(log.slice(i, i + batch));
    batches++;
  }
  return batches;
}

/** Recomputes the chain unsigned from link `from` on, as an intruder without the key can. */
async function resealFrom(tamper: Tamper, from: number, newHashOf: (seq: number) => Buffer | undefined): Promise<void> {
  const links = await tamper.links();
  let prev: Buffer | undefined;
  for (const l of links) {
    if (l.n < from) {
      prev = l.hash;
      continue;
    }
    let body = l.body;
    if (l.kind !== 'retention') {
      const entries = [];
      for (let i = 0; i < entryCount(l.body); i++) {
        const seq = entrySeq(l.body, i);
        entries.push({ seq, hash: newHashOf(seq) ?? Buffer.from(entryHash(l.body, i)) });
      }
      body = encodeEntries(entries);
    }
    const p = prev ?? l.prev;
    const hash = linkHash({ ...l, keyId: '', prev: p, body }, undefined);
    await tamper.setLink(l.n, body, hash, p, '');
    prev = hash;
  }
}

/** Registers the tamper-evidence behaviour every store must show. */
export function integrityContract(test: TestFn, label: string, open: (key?: string) => Promise<IntegrityFixture>): void {
  const withFixture = (title: string, key: string | undefined, fn: (t: ExecutionContext, f: IntegrityFixture) => Promise<void>): void => {
    test(`${label}: ${title}`, async (t) => {
      const f = await open(key);
      try {
        await fn(t, f);
      } finally {
        await f.close();
      }
    });
  };

  withFixture('an intact store verifies, retried batches add no link', undefined, async (t, f) => {
    const log = makeLog(12, 31);
    const batches = await fill(f.store, log);
    await f.store.append(log.slice(0, 25)); // a retried batch: stored once, sealed once
    const r = await f.store.verify();
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.records, log.length);
    t.is(r.links, batches);
    t.is(r.mode, 'sha256');
    t.is(r.head?.link, batches);
    t.regex(r.head!.hash, /^[0-9a-f]{64}$/);
    t.deepEqual(r.problems, []);
  });

  withFixture('editing one row of the store is detected and named', undefined, async (t, f) => {
    const log = makeLog(10, 32);
    await fill(f.store, log);
    const rows = await f.tamper.records();
    const victim = rows.find((r) => r.json.includes('"user":"bob"'))!;
    await f.tamper.setJson(victim.seq, victim.json.replace('"user":"bob"', '"user":"eve"'));
    const r = await f.store.verify();
    t.false(r.ok);
    t.is(r.problemCount, 1);
    const p = r.problems[0]!;
    t.is(p.kind, 'record-altered');
    t.is(p.seq, victim.seq);
    t.is(p.recordId, victim.id);
    t.is(typeof p.link, 'number');
    t.regex(p.message, new RegExp(`record seq ${victim.seq} \\(id ${victim.id}\\), sealed in link ${p.link}, was altered`));
    // The filter column written with the record still says who it was.
    t.regex(p.message, /db_user "bob" -> "eve"/);
  });

  withFixture('a changed filter column is detected although the JSON is intact', undefined, async (t, f) => {
    await fill(f.store, makeLog(6, 33));
    const rows = await f.tamper.records();
    const victim = rows[7]!;
    await f.tamper.setColumn(victim.seq, 'db_user', 'nobody');
    const r = await f.store.verify();
    t.false(r.ok);
    t.is(r.problems[0]!.kind, 'column-altered');
    t.is(r.problems[0]!.column, 'db_user');
    t.is(r.problems[0]!.seq, victim.seq);
  });

  withFixture('a deleted row is reported missing, an inserted row as inserted', undefined, async (t, f) => {
    await fill(f.store, makeLog(10, 34));
    const rows = await f.tamper.records();
    const gone = rows[20]!;
    await f.tamper.deleteRecord(gone.seq);
    const fake = await f.tamper.insertRecord(forged('forged:1'));
    const r = await f.store.verify();
    t.false(r.ok);
    t.is(r.problemCount, 2);
    const missing = r.problems.find((p) => p.kind === 'record-missing')!;
    t.is(missing.seq, gone.seq);
    t.regex(missing.message, new RegExp(`record seq ${gone.seq}, sealed in link \\d+, is missing \\(it followed record id ${rows[19]!.id}\\)`));
    const inserted = r.problems.find((p) => p.kind === 'record-inserted')!;
    t.is(inserted.seq, fake);
    t.is(inserted.recordId, 'forged:1');
    // In chain order the deletion (an earlier position) comes first.
    t.is(r.problems[0]!.kind, 'record-missing');
  });

  withFixture('without a key a full recomputation passes, but a noted head exposes it', undefined, async (t, f) => {
    await fill(f.store, makeLog(8, 35));
    const before = await f.store.verify();
    t.true(before.ok);
    const anchor = { link: before.head!.link, hash: before.head!.hash };
    const rows = await f.tamper.records();
    const victim = rows.find((x) => x.json.includes('"status":"ok"'))!;
    const json = victim.json.replace('"status":"ok"', '"status":"error"');
    await f.tamper.setJson(victim.seq, json);
    await f.tamper.setColumn(victim.seq, 'status', 'error');
    await f.tamper.setColumn(victim.seq, 'size', String(Buffer.byteLength(json)));
    await resealFrom(f.tamper, 1, (seq) => (seq === victim.seq ? recordHash(json) : undefined));
    const r = await f.store.verify();
    t.true(r.ok, `an unsigned chain can be recomputed by whoever can write the database: ${JSON.stringify(r.problems)}`);
    const anchored = await f.store.verify({ anchors: [anchor] });
    t.false(anchored.ok);
    t.is(anchored.problems[0]!.kind, 'anchor-mismatch');
    t.is(anchored.problems[0]!.link, anchor.link);
  });

  withFixture('links cut from the end with their records are caught by an anchor', undefined, async (t, f) => {
    await fill(f.store, makeLog(10, 36));
    const r0 = await f.store.verify();
    const links = await f.tamper.links();
    const last = links[links.length - 1]!;
    for (const row of await f.tamper.records()) if (row.seq >= last.firstSeq) await f.tamper.deleteRecord(row.seq);
    await f.tamper.deleteLinksFrom(last.n);
    t.true((await f.store.verify()).ok, 'a shorter chain is self-consistent');
    const r = await f.store.verify({ anchors: [{ link: r0.head!.link, hash: r0.head!.hash }] });
    t.false(r.ok);
    t.regex(r.problems[0]!.message, /not in the chain, which ends at link \d+: links were removed from its end/);
  });

  withFixture('a link removed from the middle breaks the chain', undefined, async (t, f) => {
    await fill(f.store, makeLog(10, 37));
    const links = await f.tamper.links();
    const mid = links[2]!;
    for (const row of await f.tamper.records()) if (row.seq >= mid.firstSeq && row.seq <= mid.lastSeq) await f.tamper.deleteRecord(row.seq);
    // delete just that link: renumbering is not possible without breaking prev
    await f.tamper.setLink(mid.n, Buffer.alloc(0), Buffer.alloc(32), Buffer.alloc(32));
    const r = await f.store.verify();
    t.false(r.ok);
    t.true(r.problems.some((p) => p.link === mid.n && (p.kind === 'link-altered' || p.kind === 'link-malformed')));
    t.true(r.problems.some((p) => p.kind === 'link-missing' && p.link === mid.n + 1), 'the next link no longer continues it');
  });

  withFixture('a signed chain: recomputation without the key is detected', KEY, async (t, f) => {
    await fill(f.store, makeLog(8, 38));
    const ok = await f.store.verify({ key: KEY });
    t.true(ok.ok);
    t.is(ok.mode, 'hmac-sha256');
    t.regex(ok.keyId!, /^[0-9a-f]{16}$/);
    const noKey = await t.throwsAsync(f.store.verify());
    t.true(isDbtapError(noKey, 'DBTAP_E_INTEGRITY_KEY'), String(noKey));
    const wrong = await f.store.verify({ key: 'another-key-of-sufficient-length' });
    t.false(wrong.ok);
    t.regex(wrong.problems[0]!.message, /not the given key/);
    // The intruder edits a record and re-seals its link with SHA-256 (it has no key).
    const rows = await f.tamper.records();
    const victim = rows.find((x) => x.json.includes('"status":"ok"'))!;
    const json = victim.json.replace('"status":"ok"', '"status":"error"');
    await f.tamper.setJson(victim.seq, json);
    const links = await f.tamper.links();
    const l = links.find((x) => x.firstSeq <= victim.seq && victim.seq <= x.lastSeq)!;
    const entries = [];
    for (let i = 0; i < entryCount(l.body); i++) entries.push({ seq: entrySeq(l.body, i), hash: entrySeq(l.body, i) === victim.seq ? recordHash(json) : Buffer.from(entryHash(l.body, i)) });
    const body = encodeEntries(entries);
    await f.tamper.setLink(l.n, body, linkHash({ ...l, body }, undefined));
    const r = await f.store.verify({ key: KEY });
    t.false(r.ok);
    t.is(r.problems[0]!.kind, 'link-altered');
    t.is(r.problems[0]!.link, l.n);
    t.regex(r.problems[0]!.message, /HMAC does not match/);
  });

  withFixture('a signed chain refuses appends without its key; a key can be added later', undefined, async (t, f) => {
    await fill(f.store, makeLog(4, 39));
    // Later the operator sets a key: new links are signed and protect the earlier ones.
    const keyed = await f.reopen(KEY);
    await fill(keyed, makeLog(4, 40, T0 + DAY));
    const r = await keyed.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.mode, 'mixed');
    t.true(r.notes.some((n) => /unsigned \(written before the key was set\)/.test(n)));
    // Without the key (or with another) the store can no longer extend the chain.
    const unkeyed = await f.reopen();
    const err = await t.throwsAsync(unkeyed.append(makeLog(1, 41, T0 + 2 * DAY)));
    t.true(isDbtapError(err, 'DBTAP_E_INTEGRITY_KEY'), String(err));
    t.regex(err!.message, /signed with key id [0-9a-f]{16}; no key was given/);
    const other = await f.reopen('yet-another-key-0123456789');
    t.true(isDbtapError(await t.throwsAsync(other.append(makeLog(1, 42, T0 + 2 * DAY))), 'DBTAP_E_INTEGRITY_KEY'));
    // An intruder rewriting the whole chain unsigned is caught by verifying with the key.
    await resealFrom(f.tamper, 1, () => undefined);
    t.true((await keyed.verify()).ok, 'self-consistent when nobody asks for the key');
    const down = await keyed.verify({ key: KEY });
    t.false(down.ok);
    t.is(down.problems[down.problems.length - 1]!.kind, 'key-downgrade');
    t.regex(down.problems[down.problems.length - 1]!.message, /a key was given but the newest link \(\d+\) is unsigned/);
    for (const s of [keyed, unkeyed, other]) await s.close();
  });

  withFixture('retention keeps verification green and its cut cannot hide a deletion', KEY, async (t, f) => {
    const days = [0, 1, 2, 3].map((d) => makeLog(5, 50 + d, T0 + d * DAY));
    for (const l of days) await fill(f.store, l, 10);
    const tmp = tempDir('dbtap-integrity-ret-');
    try {
      const now = T0 + 4 * DAY;
      const cutoff = T0 + 2 * DAY + 15 * 60_000_000; // two whole days and part of the third
      const res = await f.store.retention({ maxAgeDays: (now - cutoff) / DAY, now, exportDir: tmp.dir });
      const removed = days.flat().filter((e) => e.ts < cutoff);
      t.is(res.removed, removed.length);
      const r = await f.store.verify({ key: KEY });
      t.true(r.ok, JSON.stringify(r.problems));
      t.true(r.start.link > 0, 'links whose records are all gone were pruned');
      t.true(r.notes.some((n) => /retention pruned links 1\.\.\d+/.test(n)));
      t.true(r.removedByRetention > 0, 'the third day was cut in the middle of its links');
      t.is(r.records, (await f.tamper.records()).length);
      // A second run (by size) prunes further and still verifies.
      await f.store.retention({ maxBytes: 4000 });
      const r2 = await f.store.verify({ key: KEY });
      t.true(r2.ok, JSON.stringify(r2.problems));
      t.true(r2.start.link >= r.start.link);
      // Deleting a record now is still named: the checkpoint does not list it.
      const rows = await f.tamper.records();
      await f.tamper.deleteRecord(rows[1]!.seq);
      const r3 = await f.store.verify({ key: KEY });
      t.false(r3.ok);
      t.is(r3.problems[0]!.kind, 'record-missing');
      t.is(r3.problems[0]!.seq, rows[1]!.seq);
      // Nor can the deletion be passed off as retention: the checkpoint is signed.
      const cp = (await f.tamper.links()).filter((l) => l.kind === 'retention').pop()!;
      const body = Buffer.concat([cp.body, Buffer.alloc(16)]);
      body.writeUInt32BE(Math.floor(rows[1]!.seq / 2 ** 32), cp.body.length);
      body.writeUInt32BE(rows[1]!.seq >>> 0, cp.body.length + 4);
      body.writeUInt32BE(Math.floor(rows[1]!.seq / 2 ** 32), cp.body.length + 8);
      body.writeUInt32BE(rows[1]!.seq >>> 0, cp.body.length + 12);
      await f.tamper.setLink(cp.n, body, cp.hash);
      const r4 = await f.store.verify({ key: KEY });
      t.false(r4.ok);
      t.true(r4.problems.some((p) => p.kind === 'link-altered' && p.link === cp.n));
    } finally {
      tmp.cleanup();
    }
  });
}

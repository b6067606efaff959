// Tamper evidence of the SQLite store: the shared contract, plus what only a
// file store has (a read-only verification that changes nothing, the
// `verify` command, positions that retention cannot make reused).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import { SqliteStore } from '../src/store/index.js';
import { verifySqliteFile } from '../src/integrity/index.js';
import { repoRoot } from '../../../test-support/corpus.js';
import { DAY, T0, makeLog, tempDir } from './store-helpers.js';
import { KEY, integrityContract, type IntegrityFixture, type RawLink, type Tamper } from './integrity-helpers.js';
import type { LinkKind } from '../src/integrity/chain.js';

function sqliteTamper(path: string): { tamper: Tamper; close: () => void } {
  const db = new Database(path);
  const tamper: Tamper = {
    records: async () => db.prepare('SELECT seq, id, json FROM records ORDER BY seq').all() as Array<{ seq: number; id: string; json: string }>,
    setJson: async (seq, json) => void db.prepare('UPDATE records SET json = ? WHERE seq = ?').run(json, seq),
    setColumn: async (seq, column, value) => void db.prepare(`UPDATE records SET ${column} = ? WHERE seq = ?`).run(value, seq),
    deleteRecord: async (seq) => void db.prepare('DELETE FROM records WHERE seq = ?').run(seq),
    insertRecord: async (e: AuditEvent) => {
      const json = JSON.stringify(e);
      const info = db.prepare(
        `INSERT INTO records (id, kind, ts, flow_id, audit_object, db_user, client_ip, program, db_type, stmt_type, risk, status, size, json)
         VALUES (?, ?, ?, ?, NULL, ?, ?, NULL, ?, NULL, 0, ?, ?, ?)`,
      ).run(e.id, e.kind, e.ts, e.flowId, e.user ?? null, e.client.ip, e.dbType, e.status, Buffer.byteLength(json), json);
      return Number(info.lastInsertRowid);
    },
    links: async () =>
      (db.prepare('SELECT * FROM chain ORDER BY n').all() as Record<string, unknown>[]).map((r): RawLink => ({
        n: r.n as number, kind: r.kind as LinkKind, at: r.at as number, firstSeq: r.first_seq as number, lastSeq: r.last_seq as number,
        count: r.count as number, keyId: r.key_id as string, prev: r.prev as Buffer, hash: r.hash as Buffer, body: r.body as Buffer,
      })),
    setLink: async (n, body, hash, prev, keyId) => {
      db.prepare('UPDATE chain SET body = ?, hash = ? WHERE n = ?').run(body, hash, n);
      if (prev !== undefined) db.prepare('UPDATE chain SET prev = ? WHERE n = ?').run(prev, n);
      if (keyId !== undefined) db.prepare('UPDATE chain SET key_id = ? WHERE n = ?').run(keyId, n);
    },
    deleteLinksFrom: async (n) => void db.prepare('DELETE FROM chain WHERE n >= ?').run(n),
  };
  return { tamper, close: () => db.close() };
}

async function openFixture(key?: string): Promise<IntegrityFixture & { path: string }> {
  const tmp = tempDir('dbtap-integrity-');
  const path = join(tmp.dir, 'audit.db');
  const store = new SqliteStore({ path, ...(key !== undefined ? { integrity: { key } } : {}) });
  const t = sqliteTamper(path);
  const others: SqliteStore[] = [];
  return {
    path,
    store,
    tamper: t.tamper,
    reopen: async (k) => {
      const s = new SqliteStore({ path, ...(k !== undefined ? { integrity: { key: k } } : {}) });
      others.push(s);
      return s;
    },
    close: async () => {
      t.close();
      for (const s of others) await s.close();
      await store.close();
      tmp.cleanup();
    },
  };
}

integrityContract(test, 'sqlite', openFixture);

test('sqlite: verifying a file changes nothing in it', async (t) => {
  const f = await openFixture();
  try {
    const log = makeLog(8, 61);
    await f.store.append(log);
    await f.store.close();
    // After a clean close the WAL is folded in: the main file is the whole store.
    const before = createHash('sha256').update(readFileSync(f.path)).digest('hex');
    const r = await verifySqliteFile(f.path);
    t.true(r.ok);
    t.is(r.records, log.length);
    t.is(createHash('sha256').update(readFileSync(f.path)).digest('hex'), before);
  } finally {
    await f.close();
  }
});

test('sqlite: a position freed by retention is never given to a new record', async (t) => {
  const f = await openFixture();
  try {
    // The newest position holds the oldest record: retention by age removes it first.
    await f.store.append(makeLog(3, 62, T0 + 10 * DAY));
    const late = makeLog(1, 63, T0)[0]!;
    await f.store.append([late]);
    const rows = await f.tamper.records();
    const maxSeq = rows[rows.length - 1]!.seq;
    t.is(rows[rows.length - 1]!.id, late.id);
    await f.store.retention({ maxAgeDays: 1, now: T0 + 5 * DAY });
    t.false((await f.tamper.records()).some((r) => r.id === late.id));
    await f.store.append(makeLog(1, 64, T0 + 10 * DAY));
    const after = await f.tamper.records();
    t.true(after[after.length - 1]!.seq > maxSeq, 'the removed position is not reused');
    const r = await f.store.verify();
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.removedByRetention, 1);
  } finally {
    await f.close();
  }
});

test('sqlite: retention interrupted between its checkpoint and the deletions still verifies', async (t) => {
  const f = await openFixture(KEY);
  try {
    await f.store.append(makeLog(6, 65));
    const rows = await f.tamper.records();
    const doomed = rows.slice(0, 10).map((r) => r.seq);
    // What retention does first, then a crash after deleting only some of the rows.
    (f.store as unknown as { chain: { retentionStart(seqs: number[]): void } }).chain.retentionStart(doomed);
    for (const seq of doomed.slice(0, 4)) await f.tamper.deleteRecord(seq);
    const r = await f.store.verify({ key: KEY });
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.removedByRetention, 4);
    t.is(r.records, rows.length - 4);
    // A record outside the checkpoint deleted the same way is not excused.
    await f.tamper.deleteRecord(rows[20]!.seq);
    const bad = await f.store.verify({ key: KEY });
    t.is(bad.problemCount, 1);
    t.is(bad.problems[0]!.seq, rows[20]!.seq);
  } finally {
    await f.close();
  }
});

test('sqlite: records stored before the chain existed are adopted and then protected', async (t) => {
  const f = await openFixture();
  try {
    const log = makeLog(6, 66);
    await f.store.append(log);
    await f.store.close();
    // A store as an earlier version wrote it: no chain table.
    const db = new Database(f.path);
    db.exec('DROP TABLE chain');
    db.close();
    t.true(isDbtapError(await t.throwsAsync(verifySqliteFile(f.path)), 'DBTAP_E_INTEGRITY_NO_CHAIN'));
    const again = await f.reopen();
    const r = await again.verify();
    t.true(r.ok);
    t.is(r.records, log.length);
    t.is(r.adopted?.records, log.length);
    t.true(r.notes.some((n) => /already stored when the chain was created/.test(n)));
    const rows = await f.tamper.records();
    await f.tamper.setJson(rows[2]!.seq, rows[2]!.json.replace('"kind":"', '"kind":"x'));
    t.is((await again.verify()).problems[0]!.kind, 'record-altered');
  } finally {
    await f.close();
  }
});

test('sqlite: dbtap verify prints the verdict and exits 0, 1 or 3', async (t) => {
  const f = await openFixture(KEY);
  const dir = join(f.path, '..');
  const keyFile = join(dir, 'chain.key');
  writeFileSync(keyFile, `${KEY}\n`);
  const run = (...args: string[]): { code: number; out: string; err: string } => {
    const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'verify', '--data-dir', dir, ...args], { encoding: 'utf8', cwd: repoRoot, env: { ...process.env, DBTAP_INTEGRITY_KEY: '' } });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  };
  try {
    const log = makeLog(5, 67);
    await f.store.append(log);
    const ok = run('--key-file', keyFile);
    t.is(ok.code, 0, ok.err);
    t.regex(ok.out, new RegExp(`^intact: .*audit\\.db: ${log.length} records in 1 links \\(HMAC-SHA-256, key id [0-9a-f]{16}\\)`, 'm'));
    const head = /--anchor (\d+:[0-9a-f]{64})/.exec(ok.out)![1]!;
    const noKey = run();
    t.is(noKey.code, 3);
    t.regex(noKey.err, /cannot verify: DBTAP_E_INTEGRITY_KEY: the chain is signed/);
    const rows = await f.tamper.records();
    await f.tamper.setJson(rows[4]!.seq, rows[4]!.json.replace('"flowId":"', '"flowId":"z'));
    const bad = run('--key-file', keyFile, '--anchor', head);
    t.is(bad.code, 1);
    t.regex(bad.out, new RegExp(`^NOT INTACT: .*: record seq ${rows[4]!.seq} \\(id ${rows[4]!.id}\\), sealed in link 1, was altered`, 'm'));
    const json = run('--key-file', keyFile, '--json');
    t.is(json.code, 1);
    t.is(JSON.parse(json.out).problems[0].kind, 'record-altered');
    t.is(run('--anchor', 'nonsense').code, 2);
    const none = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'verify', '--data-dir', join(dir, 'missing')], { encoding: 'utf8', cwd: repoRoot });
    t.is(none.status, 3);
    t.regex(none.stderr, /DBTAP_E_IO: no audit store/);
  } finally {
    await f.close();
  }
});

test('sqlite: a record put back below the retention cut is reported', async (t) => {
  const f = await openFixture();
  try {
    const old = makeLog(4, 68, T0);
    await f.store.append(old);
    await f.store.append(makeLog(4, 69, T0 + 10 * DAY));
    await f.store.retention({ maxAgeDays: 5, now: T0 + 12 * DAY });
    const r = await f.store.verify();
    t.true(r.ok, JSON.stringify(r.problems));
    t.is(r.start.link, 1, 'the first link went with all its records');
    // Put a removed record back where it was.
    const json = JSON.stringify(old[0]);
    const db = new Database(f.path);
    db.prepare(`INSERT INTO records (seq, id, kind, ts, flow_id, risk, status, size, json) VALUES (1, ?, ?, ?, ?, 0, ?, ?, ?)`).run(old[0]!.id, old[0]!.kind, old[0]!.ts, old[0]!.flowId, old[0]!.status, Buffer.byteLength(json), json);
    db.close();
    const bad = await f.store.verify();
    t.false(bad.ok);
    t.is(bad.problems[0]!.kind, 'record-inserted');
    t.is(bad.problems[0]!.seq, 1);
    t.regex(bad.problems[0]!.message, /is at or below the retention cut \(seq \d+\), whose records were all removed/);
  } finally {
    await f.close();
  }
});

// A position raised behind the store's back makes the server acknowledge and
// discard an agent's next batches as duplicates: it must not pass verify.
test('sqlite: ingest positions are sealed; a changed, added or removed position is reported, retention keeps them sealed', async (t) => {
  const f = await openFixture(KEY);
  const db = new Database(f.path);
  try {
    await f.store.append(makeLog(2, 67, T0), { position: { source: 'agent:db1/abc', seq: 7 } });
    await f.store.append([], { position: { source: 'agent:db1/abc', seq: 8 } });
    await f.store.append(makeLog(1, 68, T0 + 3 * DAY), { position: { source: 'agent:db2/def', seq: 1 } });
    t.true((await f.store.verify({ key: KEY })).ok);
    // retention prunes the early links, the positions they sealed are sealed again after the cut
    await f.store.retention({ maxAgeDays: 1, now: T0 + 3 * DAY + 1 });
    const kept = await f.store.verify({ key: KEY });
    t.true(kept.ok, JSON.stringify(kept.problems));
    t.true(kept.start.link > 0);

    db.prepare("UPDATE meta SET value = '4000000000' WHERE key = 'ingest:agent:db1/abc'").run();
    db.prepare("INSERT INTO meta (key, value) VALUES ('ingest:agent:db3/xyz', '99')").run();
    db.prepare("DELETE FROM meta WHERE key = 'ingest:agent:db2/def'").run();
    const bad = await f.store.verify({ key: KEY });
    t.false(bad.ok);
    t.deepEqual(
      bad.problems.map((p) => [p.kind, p.source]),
      [['position-altered', 'agent:db1/abc'], ['position-altered', 'agent:db3/xyz'], ['position-altered', 'agent:db2/def']],
    );
    t.regex(bad.problems[0]!.message, /says batch 4000000000, link \d+ sealed batch 8/);
    t.is(await f.store.ingestPosition('agent:db1/abc'), 4_000_000_000, 'the store reads what is there; verify is what notices');
  } finally {
    db.close();
    await f.close();
  }
});

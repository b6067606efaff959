import test from 'ava';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import { SqliteStore } from '../src/store/index.js';
import { recordJson } from '../src/store/query.js';
import { toNdjson } from '../src/format.js';
import { makeLog, storeContract, tempDir } from './store-helpers.js';

const dirs: (() => void)[] = [];
test.after.always(() => dirs.forEach((d) => d()));

storeContract(test, 'sqlite', async () => {
  const tmp = tempDir('dbtap-sqlite-');
  dirs.push(tmp.cleanup);
  return new SqliteStore({ path: join(tmp.dir, 'audit.db') });
});

// the same contract with the appends made by the writer thread on its own connection
storeContract(test, 'sqlite-writer-thread', async () => {
  const tmp = tempDir('dbtap-sqlite-');
  dirs.push(tmp.cleanup);
  return new SqliteStore({ path: join(tmp.dir, 'audit.db'), writerThread: true });
});

test('sqlite: records persist across reopen', async (t) => {
  const tmp = tempDir('dbtap-sqlite-');
  try {
    const path = join(tmp.dir, 'audit.db');
    const log = makeLog(10);
    const a = new SqliteStore(path);
    await a.append(log);
    await a.acknowledgeAlert(log.find((e) => e.kind === 'alert')!.id, 'ops');
    await a.close();
    const b = new SqliteStore({ path, synchronous: 'normal' });
    const stats = await b.stats();
    t.is(stats.records, log.length);
    t.is(stats.alerts - stats.unacknowledgedAlerts, 1);
    t.is((await b.search({ text: 'mallory', limit: 1000 })).records.length, log.filter((e) => e.sql?.includes('mallory')).length);
    await b.close();
  } finally {
    tmp.cleanup();
  }
});

test('sqlite: bad options are refused', (t) => {
  t.true(isDbtapError(t.throws(() => new SqliteStore({ path: '' })), 'DBTAP_E_BAD_QUERY'));
  t.true(isDbtapError(t.throws(() => new SqliteStore({ path: ':memory:', synchronous: 'off' as 'full' })), 'DBTAP_E_BAD_QUERY'));
  t.true(isDbtapError(t.throws(() => new SqliteStore('/proc/no/such/dir/audit.db')), 'DBTAP_E_STORE_FAILED'));
});

test('sqlite: appends made together share one commit, and each resolves once it is committed', async (t) => {
  const tmp = tempDir('dbtap-sqlite-');
  t.teardown(tmp.cleanup);
  const path = join(tmp.dir, 'audit.db');
  const log = makeLog(10);
  const store = new SqliteStore(path);
  t.teardown(() => store.close());
  const parts = [0, 1, 2, 3, 4].map((k) => log.filter((_, i) => i % 5 === k));
  // five sources at once, as five agents would send their batches
  const appends = parts.map((part, k) => store.append(part, { position: { source: `agent:a${k}`, seq: 10 + k } }));
  // what another connection sees committed
  const committed = (): number => {
    const reader = new Database(path, { readonly: true });
    try {
      return reader.prepare('SELECT count(*) FROM records').pluck().get() as number;
    } finally {
      reader.close();
    }
  };
  t.is(committed(), 0, 'nothing is committed before the group commit runs');
  await Promise.all(appends);
  // once resolved, another connection sees every record and position
  t.is(committed(), log.length);
  for (let k = 0; k < 5; k++) t.is(await store.ingestPosition(`agent:a${k}`), 10 + k);
  const report = await store.verify();
  t.true(report.ok);
  t.is(report.records, log.length);
  // one batch link seals the group's records; each source's new position has a position link of its own
  t.is(report.links, 1 + 5, 'one transaction, sealed by one batch link and the five position links');
  // awaited one by one, each append is its own transaction again
  const more = makeLog(4, 11);
  await store.append(more.slice(0, 10));
  await store.append(more.slice(10));
  t.is((await store.verify()).links, 6 + 2);
});

for (const writerThread of [false, true]) test(`sqlite: close commits the appends still waiting${writerThread ? ' (writer thread)' : ''}`, async (t) => {
  const tmp = tempDir('dbtap-sqlite-');
  t.teardown(tmp.cleanup);
  const path = join(tmp.dir, 'audit.db');
  const log = makeLog(6);
  const store = new SqliteStore({ path, writerThread });
  const pending = store.append(log, { position: { source: 'agent:x', seq: 3 } });
  await store.close();
  await t.notThrowsAsync(pending);
  await t.throwsAsync(store.append(log), { code: 'DBTAP_E_STORE_CLOSED' });
  const again = new SqliteStore(path);
  t.teardown(() => again.close());
  t.is((await again.stats()).records, log.length);
  t.is(await again.ingestPosition('agent:x'), 3);
  t.is((await again.search({ text: 'mallory', limit: 1000 })).records.length, log.filter((e) => e.sql?.includes('mallory')).length, 'text search sees every record');
});

// The child appends batches as fast as it can and prints the last record id
// of each batch once `append` has resolved; the parent kills it with SIGKILL
// mid-stream and then every printed batch must be in the file.
const childSource = (storeUrl: string, path: string, synchronous: string, writerThread: boolean): string => `
import { SqliteStore } from ${JSON.stringify(storeUrl)};
const store = new SqliteStore({ path: ${JSON.stringify(path)}, synchronous: ${JSON.stringify(synchronous)}, writerThread: ${writerThread} });
let n = 0;
for (let batch = 0; ; batch++) {
  const events = [];
  for (let i = 0; i < 50; i++, n++) {
    events.push({ id: 'k:' + n, kind: 'statement', flowId: 'k' + (n % 7), ts: 1700000000000000 + n, client: { ip: '127.0.0.1', port: 50000 }, server: { ip: '127.0.0.1', port: 3306 }, dbType: 'mysql', status: 'ok', sql: 'SELECT ' + n });
  }
  await store.append(events);
  process.stdout.write('acked ' + n + '\\n');
}
`;

for (const [synchronous, writerThread] of [['full', false], ['normal', false], ['full', true]] as const) {
  test(`sqlite: every acknowledged record survives kill -9 (synchronous=${synchronous}${writerThread ? ', writer thread' : ''})`, async (t) => {
    const tmp = tempDir('dbtap-kill-');
    try {
      const path = join(tmp.dir, 'audit.db');
      const storeUrl = pathToFileURL(join(import.meta.dirname, '../src/store/sqlite.ts')).href;
      const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', childSource(storeUrl, path, synchronous, writerThread)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let acked = 0;
      let buf = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) {
            const m = /^acked (\d+)$/.exec(l);
            if (m !== null) acked = Number(m[1]);
          }
          // Kill while the child is busy writing, after a good number of batches.
          if (acked >= 5000) {
            child.kill('SIGKILL');
            resolve();
          }
        });
        child.on('exit', () => reject(new Error(`child exited early: ${stderr}`)));
      });
      t.is(await exited, 'SIGKILL');
      const store = new SqliteStore(path);
      try {
        const stats = await store.stats();
        t.true(stats.records >= acked, `${stats.records} records stored, ${acked} acknowledged`);
        // Spot-check the ids: every acknowledged one is present, none is missing in between.
        const page = await store.search({ from: 1700000000000000, to: 1700000000000000 + acked, order: 'asc', limit: 10_000 });
        t.is(page.records.length, acked);
        t.deepEqual(
          page.records.map((e: AuditEvent) => e.id),
          Array.from({ length: acked }, (_, i) => 'k:' + i),
        );
        t.is((await store.search({ text: `${acked - 1}`, limit: 5 })).records[0]?.id, `k:${acked - 1}`);
      } finally {
        await store.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
}

test('sqlite: the stored JSON is the NDJSON line, with or without values that need converting', async (t) => {
  const base = makeLog(3).find((e) => e.kind === 'statement' && e.params === undefined) ?? { ...makeLog(3)[0]!, params: undefined };
  const cases: AuditEvent[] = [
    base,
    { ...base, id: 'p', params: [7n as unknown as number, 'x'] },
    { ...base, id: 'nested', alert: { ruleId: 'r', ruleName: 'R', severity: 'high', count: 3n } as unknown as AuditEvent['alert'] },
    { ...base, id: 'bytes', attributes: new Uint8Array([1, 255]) as unknown as Record<string, string> },
  ];
  for (const e of cases) t.is(recordJson(e), toNdjson(e), e.id);
  t.true(recordJson(cases[1]!).includes('"params":["7","x"]'));
  t.true(recordJson(cases[2]!).includes('"count":"3"'));
  t.true(recordJson(cases[3]!).includes('"attributes":"01ff"'));
});

test('sqlite: a new file has 8 KiB pages; a file with 4 KiB pages keeps them and works as before', async (t) => {
  const tmp = tempDir('dbtap-sqlite-');
  try {
    const fresh = join(tmp.dir, 'new.db');
    await new SqliteStore(fresh).close();
    const peek = (path: string): number => {
      const db = new Database(path, { readonly: true });
      try {
        return db.pragma('page_size', { simple: true }) as number;
      } finally {
        db.close();
      }
    };
    t.is(peek(fresh), 8192);
    const old = join(tmp.dir, 'old.db');
    const made = new Database(old);
    made.pragma('page_size = 4096');
    made.exec('CREATE TABLE earlier (x)');
    made.close();
    const log = makeLog(5);
    const store = new SqliteStore(old);
    await store.append(log);
    t.is((await store.search({ limit: 1000 })).records.length, log.length);
    t.true((await store.verify()).ok);
    await store.close();
    t.is(peek(old), 4096);
  } finally {
    tmp.cleanup();
  }
});

test('sqlite writer thread: an append the thread refuses fails with the store error code, and the store goes on', async (t) => {
  const tmp = tempDir('dbtap-sqlite-');
  t.teardown(tmp.cleanup);
  const path = join(tmp.dir, 'audit.db');
  const log = makeLog(4);
  const signed = new SqliteStore({ path, integrity: { key: 'a-signing-key-of-32-characters!!' } });
  await signed.append(log.slice(0, 2));
  await signed.close();
  const store = new SqliteStore({ path, writerThread: true });
  t.teardown(() => store.close());
  // the chain is signed and this store has no key: refused by the thread's connection
  await t.throwsAsync(store.append(log.slice(2)), { code: 'DBTAP_E_INTEGRITY_KEY' });
  t.is((await store.stats()).records, 2);
  const keyed = new SqliteStore({ path, writerThread: true, integrity: { key: 'a-signing-key-of-32-characters!!' } });
  await keyed.append(log.slice(2));
  t.is((await keyed.stats()).records, log.length);
  await keyed.close();
});

// The `store:` section of server.yaml, and every command against a
// PostgreSQL store named there.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import { repoRoot } from '../../../test-support/corpus.js';
import { withDbLogLock } from '../../../test-support/db-lock.js';
import { createTestDatabase, dropTestDatabase } from '../../../test-support/pg-testdb.js';
import { startProcess, waitFor } from '../../../test-support/process.js';
import { loadServerConfig } from '../src/config.js';
import { describeStore } from '../src/store/config.js';

const host = process.env.DBTAP_PG_HOST ?? '127.0.0.1';
const port = Number(process.env.DBTAP_PG_PORT ?? 5432);
const admin = { host, port, user: 'postgres', database: 'postgres' };
const dbName = `dbtap_store_${randomBytes(4).toString('hex')}`;
// Decided before any test is declared, so that the live test can be skipped
// (with the reason printed) without a server, and fail under CI.
const why = await createTestDatabase(admin, dbName);
if (why !== undefined && !process.env.CI) console.log(`# skipping the PostgreSQL store commands: ${host}:${port} unavailable: ${why}`);
const pgTest = (why === undefined || process.env.CI ? test : test.skip) as typeof test;

test.after.always(async () => {
  if (why === undefined) await dropTestDatabase(admin, dbName);
});

function dbtap(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** A config file in a directory of its own (given to `text`), removed after the test. */
function configFile(t: { teardown: (fn: () => void) => void }, text: string | ((dir: string) => string)): string {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-store-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'server.yaml');
  writeFileSync(file, typeof text === 'string' ? text : text(dir));
  return file;
}

/** The DBTAP_E_CONFIG message loading `text` fails with. */
function configError(t: ExecutionContext, text: string): string {
  const file = configFile(t, text);
  const err = t.throws(() => loadServerConfig(file, {}));
  t.true(isDbtapError(err, 'DBTAP_E_CONFIG'), String(err));
  return err!.message;
}

test('store: SQLite under the data directory by default; postgres with its keys', (t) => {
  t.deepEqual(loadServerConfig(undefined, {}).store, { type: 'sqlite' });
  const file = configFile(t, 'store: { type: sqlite, path: /var/lib/dbtap/a.db, synchronous: normal }\n');
  t.deepEqual(loadServerConfig(file, {}).store, { type: 'sqlite', path: '/var/lib/dbtap/a.db', synchronous: 'normal' });
  const pgFile = configFile(t, 'store:\n  type: postgres\n  url: postgres://dbtap@127.0.0.1:5432/audit\n  prefix: site1\n  partition: month\n');
  t.deepEqual(loadServerConfig(pgFile, {}).store, { type: 'postgres', url: 'postgres://dbtap@127.0.0.1:5432/audit', prefix: 'site1', partition: 'month' });
});

test('store: unknown keys, keys of the other type and bad values are DBTAP_E_CONFIG naming the key', (t) => {
  t.regex(configError(t, 'store: { type: sqlite, pth: x.db }\n'), /store\.pth must be one of type, path, synchronous \(unknown key; did you mean 'path'\?\)/);
  t.regex(configError(t, 'store: { type: sqlite, url: "postgres://h/db" }\n'), /store\.url must be one of type, path, synchronous/);
  t.regex(configError(t, 'store: { type: postgres, url: "postgres://h/db", path: x.db }\n'), /store\.path must be one of type, url, prefix, partition/);
  t.regex(configError(t, 'store: { type: mysql }\n'), /store\.type must be one of sqlite, postgres/);
  t.regex(configError(t, 'store: { type: postgres }\n'), /store\.url must be a postgres:\/\/ or postgresql:\/\/ URL/);
  t.regex(configError(t, 'store: { type: sqlite, synchronous: off }\n'), /store\.synchronous must be one of full, normal/);
  t.regex(configError(t, 'store: { type: postgres, url: "postgres://h/db", partition: week }\n'), /store\.partition must be one of day, month/);
  t.regex(configError(t, 'store: sqlite\n'), /store must be a mapping/);
});

test('store: a password in the URL is in no message', (t) => {
  const message = configError(t, 'store: { type: postgres, url: "postgres://u:s3cret-pw@h/db", prefix: Bad-Prefix }\n');
  t.regex(message, /store\.prefix/);
  t.false(message.includes('s3cret-pw'));
  const where = describeStore({ type: 'postgres', url: 'postgres://u:s3cret-pw@h:5432/db?password=s3cret-pw' }, '/data');
  t.false(where.includes('s3cret-pw'), where);
  t.regex(where, /^postgres:\/\/u:\*\*\*@h:5432\/db \(tables dbtap_\*\)$/);
  t.is(describeStore({ type: 'sqlite' }, '/data'), '/data/audit.db');
});

// ---- every command against a PostgreSQL store -------------------------------

pgTest('store: serve, import, report and verify work against a PostgreSQL store named in the config', async (t) => {
  if (why !== undefined) return t.fail(`PostgreSQL at ${host}:${port} unavailable: ${why}`);
  await withDbLogLock(async () => {
    const url = `postgres://postgres@${host}:${port}/${dbName}`;
    const cfg = configFile(
      t,
      (dir) => `dataDir: ${join(dir, 'data')}\nstore: { type: postgres, url: "${url}", prefix: cli }\nagents:\n  listen: [{ host: 127.0.0.1, port: 0 }]\napi:\n  port: 0\n`,
    );
    // report and verify never create a store: before any import there is none
    const none = dbtap('report', 'server', '--config', cfg);
    t.is(none.code, 1, none.err);
    t.regex(none.err, /DBTAP_E_IO: no audit store at postgres:\/\/postgres@.*\(tables cli_\*\)/);
    t.is(dbtap('verify', '--config', cfg).code, 3);

    const server = startProcess(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--config', cfg], repoRoot);
    t.teardown(() => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    });
    await waitFor(() => / info store /.test(server.out()), 'the start line', 60_000);
    t.regex(server.out(), / info store postgres:\/\/postgres@[^ ]+ \(tables cli_\*\); agents on /);
    // the running server and an import write to the same database
    const imported = dbtap('import', '--config', cfg, 'examples/captures/mariadb-session.pcap');
    t.is(imported.code, 0, imported.err);
    t.regex(imported.err, /14 records/);
    const api = /API on (http:\/\/\S+)/.exec(server.out())![1]!;
    const page = (await (await fetch(`${api}/api/records?limit=100`)).json()) as { records: AuditEvent[] };
    t.true(page.records.some((e) => e.sql === 'DROP TABLE customers'), 'the server reads what the import stored');
    server.child.kill('SIGTERM');
    t.is(await server.exited, 0, server.out());

    const c = new pg.Client({ ...admin, database: dbName });
    await c.connect();
    try {
      const stored = Number((await c.query('SELECT count(*) AS n FROM cli_records')).rows[0].n);
      t.true(stored >= 14, `${stored} records in PostgreSQL`);
      const report = dbtap('report', 'server', '--config', cfg);
      t.is(report.code, 0, report.err);
      t.true(JSON.stringify(JSON.parse(report.out)).includes('127.0.0.1'));
      const verified = dbtap('verify', '--config', cfg);
      t.is(verified.code, 0, verified.out + verified.err);
      t.regex(verified.out, /^intact: postgres:\/\/.*: \d+ records in \d+ links/);
      // tampering with a stored record is found
      await c.query("UPDATE cli_records SET record = replace(record::text, 'DROP TABLE customers', 'SELECT 1')::json WHERE record::text LIKE '%DROP TABLE customers%'");
      const tampered = dbtap('verify', '--config', cfg);
      t.is(tampered.code, 1, tampered.out + tampered.err);
      t.regex(tampered.out, /^NOT INTACT/);
    } finally {
      await c.end();
    }
  });
});

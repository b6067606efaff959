// Masked values never reach the store: real clients change passwords and
// write card numbers and national ids to the local MariaDB and PostgreSQL
// while the loopback is captured; the audit server stores the capture with
// masking on, and the raw secret bytes are searched for in the database
// file and its write-ahead log. The same capture stored without masking
// holds every one of them, so the search is known to find what is there.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { AuditEvent, Frame } from '@dbtap/core';
import { AuditServer, DEFAULT_MASKING, RecordMasker, auditFrames, loadRuleSelection, rulesProcessor, type MaskingConfig } from '../src/index.js';
import { canCapture, startLiveCapture } from '../../../test-support/live-capture.js';
import { withDbLogLock } from '../../../test-support/db-lock.js';

const tag = randomBytes(4).toString('hex');
const MASKING: MaskingConfig = {
  rules: [
    { type: 'password' },
    { type: 'pattern', builtin: 'card' },
    { type: 'column', columns: ['ssn'], replacement: 'hash' },
  ],
  hashKey: `live-mask-key-${tag}-0123456789`,
};

/** Skips (or fails under CI) when capture or the server is out of reach; true when the test can run. */
function ready(t: { log(...v: unknown[]): void; fail(m: string): void }, what: string, probe: () => boolean): boolean {
  let why: string | undefined;
  if (!canCapture()) why = 'no permission to capture on lo';
  else if (!probe()) why = `${what} is not reachable`;
  if (why === undefined) return true;
  if (process.env.CI) t.fail(why);
  else t.log(`skipped: ${why}`);
  return false;
}

function mariadb(args: string[], input: string): Promise<{ code: number; err: string }> {
  return new Promise((resolve) => {
    const child = execFile('mariadb', ['--protocol=TCP', '-h', '127.0.0.1', '-P', '3306', '-uroot', '--batch', '--force', ...args], { encoding: 'utf8' }, (err, _out, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, err: stderr });
    });
    child.stdin!.end(input);
  });
}

/** Stores the frames through the audit server (rules, then masking when given) and returns the bytes of the store's files while it is open. */
async function storeCapture(frames: Frame[], mask: RecordMasker | undefined): Promise<{ bytes: Buffer; records: AuditEvent[]; verified: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-mask-live-'));
  try {
    const rules = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
    const server = new AuditServer({ dataDir: dir, agentListen: [], processRecord: rules.process, ...(mask ? { mask: mask.mask } : {}) });
    await server.ingest('live', frames);
    await server.endSource('live');
    const path = join(dir, 'audit.db');
    // The write-ahead log holds the newest pages until a checkpoint: search both.
    const files = [path, `${path}-wal`].filter((f) => existsSync(f));
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    const records = (await server.store.search({ order: 'asc', limit: 10_000 })).records;
    const verified = (await server.store.verify()).ok;
    await server.stop();
    return { bytes: Buffer.concat([bytes, readFileSync(path)]), records, verified };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function present(bytes: Buffer, secrets: readonly string[]): string[] {
  return secrets.filter((s) => bytes.includes(Buffer.from(s, 'utf8')));
}

test('MariaDB: passwords, card numbers and ids are masked before they reach the store', async (t) => {
  if (!ready(t, 'MariaDB', () => spawnSync('mariadb', ['--protocol=TCP', '-h127.0.0.1', '-uroot', '-e', 'SELECT 1'], { encoding: 'utf8' }).status === 0)) return;
  const user = `dbtap_mask_${tag}`;
  const table = `test.dbtap_mask_${tag}`;
  const pw = [`Pw1-${tag}-first`, `Pw2-${tag}-second`, `Pw3-${tag}-third`];
  const ssn = [`ssn-${tag}-aa`, `ssn-${tag}-bb`];
  const cards = ['4539578763621486', '5425233430109903'];
  const secrets = [...pw, ...ssn, ...cards];
  const cap = startLiveCapture('tcp port 3306');
  const script = [
    `CREATE USER '${user}'@'localhost' IDENTIFIED BY '${pw[0]}';`,
    `ALTER USER '${user}'@'localhost' IDENTIFIED BY '${pw[1]}';`,
    `SET PASSWORD FOR '${user}'@'localhost' = PASSWORD('${pw[2]}');`,
    `CREATE TABLE ${table} (id INT PRIMARY KEY, ssn VARCHAR(40) UNIQUE, card VARCHAR(40), note VARCHAR(80));`,
    `INSERT INTO ${table} (id, ssn, card, note) VALUES (1, '${ssn[0]}', '${cards[0]}', 'first');`,
    `INSERT INTO ${table} (id, ssn, card, note) VALUES (2, '${ssn[0]}', 'x', 'duplicate ssn');`,
    `SELECT id, ssn, card FROM ${table} WHERE ssn = '${ssn[0]}';`,
    `DROP USER '${user}'@'localhost';`,
  ].join('\n');
  const cli = await mariadb([], script);
  // Prepared statements bind the values as parameters (COM_STMT_EXECUTE).
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: 'test' });
  try {
    await conn.execute(`INSERT INTO ${table} (id, ssn, card, note) VALUES (?, ?, ?, ?)`, [3, ssn[1], cards[1], 'bound']);
    await conn.execute(`SELECT ssn FROM ${table} WHERE ssn = ?`, [ssn[1]]);
    await conn.query(`DROP TABLE ${table}`);
  } finally {
    await conn.end();
  }
  const frames = await cap.stop();
  t.regex(cli.err, /Duplicate entry/, 'the duplicate insert failed, echoing the id');

  const plain = await storeCapture(frames, undefined);
  t.deepEqual(present(plain.bytes, secrets), secrets, 'without masking every secret is in the store');
  const masker = new RecordMasker(MASKING);
  const masked = await storeCapture(frames, masker);
  t.deepEqual(present(masked.bytes, secrets), [], 'no secret reaches the database file or its WAL');
  t.true(masked.verified);
  t.is(masked.records.length, plain.records.length);
  // What was stored instead: the statements with their shape, verbs and verdicts intact.
  const bySql = (re: RegExp): AuditEvent | undefined => masked.records.find((r) => r.kind === 'statement' && re.test(r.sql ?? ''));
  t.is(bySql(/^CREATE USER/)?.sql, `CREATE USER '${user}'@'localhost' IDENTIFIED BY '***'`);
  t.is(bySql(/^CREATE USER/)?.verb, 'CREATE USER');
  t.is(bySql(/^SET PASSWORD/)?.sql, `SET PASSWORD FOR '${user}'@'localhost' = PASSWORD('***')`);
  const dup = masked.records.find((r) => r.status === 'error' && /duplicate ssn/.test(r.sql ?? ''))!;
  t.regex(dup.sql!, /VALUES \(2, 'h:[0-9a-f]{16}', 'x', 'duplicate ssn'\)/);
  t.regex(dup.message!, /^Duplicate entry 'h:[0-9a-f]{16}' for key/);
  const bound = masked.records.find((r) => r.command === 'COM_STMT_EXECUTE' && /INSERT/.test(r.sql ?? ''))!;
  t.is(bound.params?.length, 4);
  t.is(bound.params![0], 3);
  t.regex(String(bound.params![1]), /^h:[0-9a-f]{16}$/);
  t.is(bound.params![2], '***');
  t.is(bound.params![3], 'bound');
  // Equal ids hash alike across records: the SELECT's parameter matches the INSERT's.
  const select = masked.records.find((r) => r.command === 'COM_STMT_EXECUTE' && /^SELECT/.test(r.sql ?? ''))!;
  t.is(select.params![0], bound.params![1]);
  t.true(masker.stats().masked >= 7);

  // Result rows (kept when configured) are masked by column name and by echoed value.
  const rows = auditFrames(frames, { maxRows: 10 }).events.map(masker.mask);
  const result = rows.find((r) => r.kind === 'statement' && /^SELECT id, ssn, card/.test(r.sql ?? ''))!;
  t.deepEqual(result.columns, ['id', 'ssn', 'card']);
  t.is(result.rows?.length, 1);
  t.is(result.rows![0]![0], '1');
  t.regex(result.rows![0]![1]!, /^h:[0-9a-f]{16}$/);
  t.is(result.rows![0]![2], '***');
  t.deepEqual(present(Buffer.from(JSON.stringify(rows)), secrets), []);
});

test('PostgreSQL: role passwords and bound card numbers are masked before they reach the store', async (t) => {
  const conf = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
  if (!ready(t, 'PostgreSQL', () => spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'test', '-Atc', 'SELECT 1'], { encoding: 'utf8' }).status === 0)) return;
  const role = `dbtap_mask_${tag}`;
  const pw = [`PgPw1-${tag}-one`, `PgPw2-${tag}-two`];
  const ssn = `pg-ssn-${tag}`;
  const card = '4916338506082832';
  const secrets = [...pw, ssn, card];
  const cap = startLiveCapture('tcp port 5432');
  const c = new pg.Client(conf);
  await c.connect();
  let dupMessage = '';
  try {
    await c.query(`CREATE ROLE ${role} WITH LOGIN PASSWORD '${pw[0]}'`);
    await c.query(`ALTER ROLE ${role} ENCRYPTED PASSWORD '${pw[1]}'`);
    await c.query('CREATE TEMP TABLE masked_t (ssn text UNIQUE, card text)');
    await c.query('INSERT INTO masked_t (ssn, card) VALUES ($1, $2)', [ssn, card]);
    await c.query('INSERT INTO masked_t (ssn, card) VALUES ($1, $2)', [ssn, 'x']).catch((err: Error) => {
      dupMessage = err.message;
    });
    await c.query(`DROP ROLE ${role}`);
  } finally {
    await c.end();
  }
  const frames = await cap.stop();
  t.regex(dupMessage, /duplicate key/);
  const plain = await storeCapture(frames, undefined);
  t.deepEqual(present(plain.bytes, secrets), secrets, 'without masking every secret is in the store');
  const masked = await storeCapture(frames, new RecordMasker(MASKING));
  t.deepEqual(present(masked.bytes, secrets), [], 'no secret reaches the database file or its WAL');
  t.true(masked.verified);
  const create = masked.records.find((r) => /^CREATE ROLE/.test(r.sql ?? ''))!;
  t.is(create.sql, `CREATE ROLE ${role} WITH LOGIN PASSWORD '***'`);
  t.is(create.statementType, 'dcl');
  const inserts = masked.records.filter((r) => /^INSERT INTO masked_t/.test(r.sql ?? '') && r.params !== undefined);
  t.is(inserts.length, 2);
  t.regex(String(inserts[0]!.params![0]), /^h:[0-9a-f]{16}$/);
  t.is(inserts[0]!.params![1], '***');
  t.is(inserts[1]!.params![0], inserts[0]!.params![0]);
  t.is(inserts[1]!.status, 'error');
});

test('MariaDB, default masking: secrets in result column names (PASSWORD(), AES_ENCRYPT()) never reach the store', async (t) => {
  if (!ready(t, 'MariaDB', () => spawnSync('mariadb', ['--protocol=TCP', '-h127.0.0.1', '-uroot', '-e', 'SELECT 1'], { encoding: 'utf8' }).status === 0)) return;
  const secrets = [`ColPw-${tag}-one`, `ColKey-${tag}-two`, `ColOld-${tag}-three`];
  await withDbLogLock(async () => {
    const cap = startLiveCapture('tcp port 3306');
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: 'test' });
    let names: string[] = [];
    try {
      // MariaDB names an unaliased column after the expression as written, secret included
      const [, fields] = await conn.query(`SELECT PASSWORD('${secrets[0]}'), HEX(AES_ENCRYPT('data', '${secrets[1]}')), OLD_PASSWORD('${secrets[2]}')`);
      names = fields.map((f) => f.name);
    } finally {
      await conn.end();
    }
    const frames = await cap.stop();
    t.deepEqual(names, [`PASSWORD('${secrets[0]}')`, `HEX(AES_ENCRYPT('data', '${secrets[1]}'))`, `OLD_PASSWORD('${secrets[2]}')`]);
    const plain = await storeCapture(frames, undefined);
    t.deepEqual(present(plain.bytes, secrets), secrets, 'without masking the secrets are in the store');
    const masked = await storeCapture(frames, new RecordMasker(DEFAULT_MASKING));
    t.deepEqual(present(masked.bytes, secrets), [], 'no secret reaches the database file or its WAL');
    const select = masked.records.find((r) => /^SELECT PASSWORD/.test(r.sql ?? ''))!;
    t.is(select.sql, "SELECT PASSWORD('***'), HEX(AES_ENCRYPT('data', '***')), OLD_PASSWORD('***')");
    t.deepEqual(select.columns, ["PASSWORD('***')", "HEX(AES_ENCRYPT('data', '***'))", "OLD_PASSWORD('***')"]);
  });
});

// The workload of the MySQL live tests: real clients (the mariadb command-line
// client, mysql2 and a raw protocol client) against the local MariaDB, run
// as users and in databases of the test's own, so that concurrent users of
// the server stay out of the comparison. What each client saw (connection
// ids, local ports, errors, probe results) is collected as ground truth
// beside the server's general log.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { admin } from './mysql-log.js';
import { RawClient, bin, cmd } from './mysql-raw.js';

/** Names and passwords of the test's users and databases (unique per process). */
export function liveNames(tag: string) {
  return {
    db: `dbtap_live_${tag}`,
    db2: `dbtap_live2_${tag}`,
    user: `dbtap_u_${tag}`,
    pass: 'pw-u-1',
    user2: `dbtap_v_${tag}`,
    pass2: 'pw-v-2',
    edUser: `dbtap_e_${tag}`,
    edPass: 'pw-e-3',
    ghost: `dbtap_x_${tag}`,
    /** SQL LIKE pattern matching every user name above. */
    userLike: `dbtap\\_%\\_${tag}`,
  };
}

/** Names of one run. */
export type LiveNames = ReturnType<typeof liveNames>;

/** A connection a client opened: server connection id and client port. */
export interface SeenConnection {
  thread: number;
  port: number;
  client: string;
}

/** An error a client received for a statement. */
export interface SeenError {
  thread: number;
  sql: string;
  code: number;
  sqlState: string;
  message: string;
}

/** The server's own answer to a probe statement run inside a session. */
export interface Probe {
  thread: number;
  port: number;
  database: string | null;
  user: string;
}

/** Everything the clients observed. */
export interface Observed {
  connections: SeenConnection[];
  errors: SeenError[];
  probes: Probe[];
  /** Failed logins: user, the connection id when the client learnt it, and the error text. */
  failedLogins: { user: string; thread?: number; port?: number; code: number; message: string }[];
  /** Statements of the burst that were sent. */
  burstStatements: number;
  /** Whether the ed25519 plugin was usable (installed by us or already there). */
  ed25519: boolean;
  /** Text and size of the large statements. */
  big: { thread: number; sql: string; resultLength: number }[];
  /** Raw-client facts: statement ids, long data, killed connection. */
  raw: { thread: number; longData: string; killed: number; cursorRows: number };
}

/** SQL that makes the server report the session's id, database, user and client host:port. */
export const PROBE =
  "SELECT CONNECTION_ID() AS id, DATABASE() AS db, CURRENT_USER() AS u, HOST AS host FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()";

function probeFrom(row: { id: number | string; db: string | null; u: string; host: string }): Probe {
  return { thread: Number(row.id), port: Number(String(row.host).split(':').pop()), database: row.db, user: String(row.u).split('@')[0]! };
}

// ---- the mariadb command-line client ------------------------------------------

interface CliResult {
  stdout: string;
  stderr: string;
}

/** Runs `mariadb` asynchronously (a blocked event loop would stop draining the capture). */
function cli(args: string[], input?: string, maxBuffer = 64 << 20): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile('mariadb', ['--protocol=TCP', '-h', '127.0.0.1', '-P', '3306', '--batch', '--raw', ...args], { maxBuffer, encoding: 'utf8' }, (_err, stdout, stderr) => {
      resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(input ?? '');
  });
}

/** Parses the probe's tab-separated output lines (`--batch --raw` with column names). */
function probesIn(stdout: string): Probe[] {
  const out: Probe[] = [];
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length - 1; i++) {
    if (lines[i] !== 'id\tdb\tu\thost') continue;
    const [id, db, u, host] = lines[i + 1]!.split('\t');
    out.push(probeFrom({ id: id!, db: db === 'NULL' ? null : db!, u: u!, host: host! }));
  }
  return out;
}

/** Parses `ERROR 1146 (42S02) at line 3: message` lines of the client's stderr. */
function cliErrors(stderr: string): { code: number; sqlState: string; message: string }[] {
  const out: { code: number; sqlState: string; message: string }[] = [];
  for (const m of stderr.matchAll(/^ERROR (\d+) \((\w{5})\)(?: at line \d+)?: (.*)$/gm)) out.push({ code: Number(m[1]), sqlState: m[2]!, message: m[3]! });
  return out;
}

// ---- setup / teardown ---------------------------------------------------------------

/** Creates the users and databases; installs the ed25519 plugin when missing. Returns whether ed25519 is usable, and whether we installed it. */
export async function createFixtures(n: LiveNames): Promise<{ ed25519: boolean; installedEd25519: boolean }> {
  return admin(async (c) => {
    await dropFixturesWith(c, n, false);
    await c.query(`CREATE DATABASE ${n.db}`);
    await c.query(`CREATE DATABASE ${n.db2}`);
    await c.query(`CREATE USER '${n.user}'@'%' IDENTIFIED BY '${n.pass}'`);
    await c.query(`CREATE USER '${n.user2}'@'%' IDENTIFIED BY '${n.pass2}'`);
    for (const u of [n.user, n.user2]) {
      await c.query(`GRANT ALL ON ${n.db}.* TO '${u}'@'%'`);
      await c.query(`GRANT ALL ON ${n.db2}.* TO '${u}'@'%'`);
    }
    let installed = false;
    let ed = false;
    const [plugins] = (await c.query("SELECT PLUGIN_STATUS AS s FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'")) as unknown as [{ s: string }[]];
    try {
      if (plugins.length === 0) {
        await c.query("INSTALL SONAME 'auth_ed25519'");
        installed = true;
      }
      await c.query(`CREATE USER '${n.edUser}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('${n.edPass}')`);
      await c.query(`GRANT ALL ON ${n.db}.* TO '${n.edUser}'@'%'`);
      ed = true;
    } catch {
      ed = false;
    }
    return { ed25519: ed, installedEd25519: installed };
  });
}

async function dropFixturesWith(c: mysql.Connection, n: LiveNames, uninstallEd25519: boolean): Promise<void> {
  for (const u of [n.user, n.user2, n.edUser]) await c.query(`DROP USER IF EXISTS '${u}'@'%'`);
  await c.query(`DROP DATABASE IF EXISTS ${n.db}`);
  await c.query(`DROP DATABASE IF EXISTS ${n.db2}`);
  if (uninstallEd25519) {
    // Only when no other account still uses the plugin.
    const [[row]] = (await c.query("SELECT COUNT(*) AS n FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.plugin') = 'ed25519'")) as unknown as [{ n: number }[]];
    if (Number(row!.n) === 0) await c.query("UNINSTALL SONAME 'auth_ed25519'").catch(() => undefined);
  }
}

/** Drops what {@link createFixtures} made. */
export async function dropFixtures(n: LiveNames, uninstallEd25519: boolean): Promise<void> {
  await admin((c) => dropFixturesWith(c, n, uninstallEd25519));
}

// ---- the workload -----------------------------------------------------------------

/** A string of `n` bytes for the payloads of 16 MiB and more. */
const BIG = 17 * 1024 * 1024 + 123;

/** Runs every client; returns what they observed. */
export async function runWorkload(n: LiveNames, opts: { ed25519: boolean; burst: number }): Promise<Observed> {
  const obs: Observed = { connections: [], errors: [], probes: [], failedLogins: [], burstStatements: 0, ed25519: opts.ed25519, big: [], raw: { thread: 0, longData: '', killed: 0, cursorRows: 0 } };
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-live-'));
  try {
    await cliSessions(n, obs, dir);
    await mysql2Sessions(n, obs);
    await rawSession(n, obs);
    await burst(n, obs, opts.burst);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return obs;
}

async function cliSessions(n: LiveNames, obs: Observed, dir: string): Promise<void> {
  const base = ['-u', n.user, `-p${n.pass}`];
  const collect = (r: CliResult, client: string): Probe[] => {
    const probes = probesIn(r.stdout);
    obs.probes.push(...probes);
    if (probes[0]) obs.connections.push({ thread: probes[0].thread, port: probes[0].port, client });
    for (const e of cliErrors(r.stderr)) obs.errors.push({ thread: probes[0]?.thread ?? -1, sql: '', ...e });
    return probes;
  };
  // Schema, rows, a result set, multi-line statements, a comment, an SQL error (--force goes on), USE.
  const script = [
    `${PROBE};`,
    'CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), v DOUBLE, d DATETIME, b BLOB);',
    "INSERT INTO t (name, v, d) VALUES ('alpha', 1.5, '2024-01-02 03:04:05'), ('beta', -2, NULL), ('gämma ✓', 0, '1999-12-31 23:59:59');",
    'SELECT id, name,\n  v, d\nFROM t\nWHERE id > 0\nORDER BY id;',
    '/* a comment */ SELECT COUNT(*) FROM t;',
    'SELECT * FROM no_such_table_dbtap;',
    'UPDATE t SET v = v + 1 WHERE name = \'beta\';',
    'INSERT INTO t (id, name) VALUES (1, \'dup\');',
    `use ${n.db2}`,
    'CREATE TABLE u2 (k INT);',
    `${PROBE};`,
    'SELEC oops;',
    'DELETE FROM u2;',
  ].join('\n');
  collect(await cli([...base, '--force', n.db], script), 'mariadb');
  // Compressed protocol, with a result set large enough to span compressed packets.
  const cscript = [
    `${PROBE};`,
    'SELECT seq, REPEAT(CHAR(65 + seq % 26), 200) AS filler FROM seq_1_to_500;',
    `SELECT * FROM ${n.db}.t ORDER BY id;`,
    'SELECT nothing_here FROM t;',
    'SELECT 1;',
  ].join('\n');
  collect(await cli([...base, '--compress', '--force', n.db], cscript), 'mariadb --compress');
  // LOAD DATA LOCAL INFILE.
  const file = join(dir, 'rows.csv');
  writeFileSync(file, Array.from({ length: 300 }, (_, i) => `${1000 + i},row-${i},${i / 4}`).join('\n') + '\n');
  collect(await cli([...base, '--local-infile=1', n.db], `${PROBE};\nLOAD DATA LOCAL INFILE '${file}' INTO TABLE t FIELDS TERMINATED BY ',' (id, name, v);\nSELECT COUNT(*) FROM t;\n`), 'mariadb --local-infile');
  // ed25519: the client starts with mysql_native_password and is switched.
  if (obs.ed25519) collect(await cli(['-u', n.edUser, `-p${n.edPass}`, n.db], `${PROBE};\nSELECT 'ed25519 ok';\n`), 'mariadb ed25519');
  // Failed logins: a wrong password, an unknown user.
  for (const [user, pass] of [[n.user, 'wrong-password'], [n.ghost, 'whatever']] as const) {
    const r = await cli(['-u', user, `-p${pass}`, n.db], 'SELECT 1;\n');
    const e = cliErrors(r.stderr)[0];
    if (e) obs.failedLogins.push({ user, code: e.code, message: e.message });
  }
}

async function mysql2Sessions(n: LiveNames, obs: Observed): Promise<void> {
  const opts = { host: '127.0.0.1', port: 3306, user: n.user, password: n.pass, database: n.db, connectAttributes: { program_name: 'dbtap-live-mysql2' } };
  const track = (c: mysql.Connection, client: string): void => {
    const inner = (c as unknown as { connection: { threadId: number; stream: { localPort: number } } }).connection;
    obs.connections.push({ thread: inner.threadId, port: inner.stream.localPort, client });
  };
  const probe = async (c: mysql.Connection | mysql.PoolConnection): Promise<void> => {
    const [rows] = (await c.query(PROBE)) as unknown as [{ id: number; db: string | null; u: string; host: string }[]];
    obs.probes.push(probeFrom(rows[0]!));
  };
  const expectError = async (c: mysql.Connection | mysql.PoolConnection, thread: number, sql: string, values?: unknown[], prepared = false): Promise<void> => {
    try {
      if (prepared) await c.execute(sql, values as never);
      else await c.query(sql, values);
    } catch (e) {
      const x = e as { errno: number; sqlState: string; sqlMessage: string; sql?: string };
      obs.errors.push({ thread, sql: x.sql ?? sql, code: x.errno, sqlState: x.sqlState, message: x.sqlMessage });
      return;
    }
    throw new Error(`expected an error from ${sql}`);
  };

  // One connection: text and prepared statements, errors, change user, ping.
  const c = await mysql.createConnection({ ...opts, multipleStatements: true });
  track(c, 'mysql2');
  const tid = c.threadId;
  await probe(c);
  await c.query('CREATE TABLE p (id BIGINT PRIMARY KEY, name VARCHAR(200), price DOUBLE, born DATE, at DATETIME(6), blobby VARBINARY(64), note TEXT)');
  await c.query('INSERT INTO p (id, name, price) VALUES (?, ?, ?)', [1, "O'Brien \\ back", 9.99]);
  await c.execute('INSERT INTO p (id, name, price, born, at, blobby, note) VALUES (?, ?, ?, ?, ?, ?, ?)', [2, 'Zoë', 12.5, '2020-02-29', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), Buffer.from([0x00, 0x01, 0xfe, 0xff]), null]);
  await c.execute('INSERT INTO p (id, name, price, born, at, blobby, note) VALUES (?, ?, ?, ?, ?, ?, ?)', [3, 'line\nbreak\ttab', -0.25, null, null, null, 'x'.repeat(300)]);
  await c.execute('SELECT id, name, price FROM p WHERE id >= ? AND name <> ? ORDER BY id', [1, 'nobody']);
  await c.execute('SELECT id, name, price FROM p WHERE id >= ? AND name <> ? ORDER BY id', [2, 'nobody']);
  await c.execute('SELECT ? + 0 AS big, ? AS neg', [9007199254740993n.toString(), -42]);
  await c.query('SELECT 1 AS a; SELECT 2 AS b, 3 AS c; UPDATE p SET price = price * 2 WHERE id = 1');
  await expectError(c, tid, 'INSERT INTO p (id, name) VALUES (1, ?)', ['dup']);
  await expectError(c, tid, 'SELECT * FROM missing_table_dbtap WHERE id = ?', [5], true);
  await expectError(c, tid, 'SELEKT 1');
  await c.ping();
  c.unprepare('SELECT id, name, price FROM p WHERE id >= ? AND name <> ? ORDER BY id');
  await c.changeUser({ user: n.user2, password: n.pass2, database: n.db2 });
  await probe(c);
  await c.query('CREATE TABLE IF NOT EXISTS v2 (x INT)');
  await c.execute('INSERT INTO v2 VALUES (?)', [7]);
  await c.query(`USE ${n.db}`);
  await probe(c);
  await c.end();

  // The compressed protocol from a second client implementation.
  const z = await mysql.createConnection({ ...opts, compress: true });
  track(z, 'mysql2 compress');
  await probe(z);
  await z.query('SELECT id, name FROM p ORDER BY id');
  await z.execute('SELECT name FROM p WHERE id = ?', [2]);
  await expectError(z, z.threadId, 'SELECT broken FROM p');
  await z.query("SELECT REPEAT('z', 70000) AS long_value");
  await z.end();

  // A pool: concurrent sessions, statements interleaved in time.
  const pool = mysql.createPool({ ...opts, connectionLimit: 3 });
  const seen = new Set<number>();
  pool.on('connection', (pc) => {
    const inner = pc as unknown as { threadId: number; stream: { localPort: number } };
    if (!seen.has(inner.threadId)) {
      seen.add(inner.threadId);
      obs.connections.push({ thread: inner.threadId, port: inner.stream.localPort, client: 'mysql2 pool' });
    }
  });
  await Promise.all(
    Array.from({ length: 30 }, async (_, i) => {
      if (i % 3 === 0) await pool.execute('SELECT id, name FROM p WHERE id = ?', [i % 4]);
      else if (i % 3 === 1) await pool.query('SELECT COUNT(*) AS n FROM p WHERE price > ?', [i]);
      else {
        const pc = await pool.getConnection();
        try {
          await probe(pc);
        } finally {
          pc.release();
        }
      }
    }),
  );
  await pool.end();

  // A wrong password from mysql2 (its own handshake code).
  try {
    const bad = await mysql.createConnection({ ...opts, password: 'not-the-password' });
    await bad.end();
  } catch (e) {
    const x = e as { errno: number; sqlMessage: string };
    obs.failedLogins.push({ user: n.user, code: x.errno, message: x.sqlMessage });
  }
}

async function rawSession(n: LiveNames, obs: Observed): Promise<void> {
  const victim = await mysql.createConnection({ host: '127.0.0.1', user: n.user, password: n.pass, database: n.db });
  const inner = (victim as unknown as { connection: { threadId: number; stream: { localPort: number } } }).connection;
  obs.connections.push({ thread: inner.threadId, port: inner.stream.localPort, client: 'mysql2 victim' });
  victim.on('error', () => undefined);
  await victim.query('SELECT 1 AS before_kill');

  const r = await RawClient.connect({ user: n.user, password: n.pass, database: n.db });
  obs.connections.push({ thread: r.connectionId, port: r.localPort, client: 'raw' });
  obs.raw.thread = r.connectionId;
  const must = (res: { err?: { message: string } }, what: string): void => {
    if (res.err) throw new Error(`${what}: ${res.err.message}`);
  };
  must(await r.command(cmd.query('CREATE TABLE docs (id INT PRIMARY KEY, body MEDIUMTEXT, at DATETIME, dur TIME)')), 'create docs');
  // COM_STMT_SEND_LONG_DATA in three pieces, then EXECUTE with the remaining values.
  const prep = await r.command(cmd.prepare('INSERT INTO docs (id, body, at, dur) VALUES (?, ?, ?, ?)'), 'prepare');
  must(prep, 'prepare docs');
  const id = prep.prepared!.statementId;
  const pieces = ['first piece, ', "second 'piece', ", 'third piece ✓'];
  for (const p of pieces) await r.command(cmd.sendLongData(id, 1, Buffer.from(p, 'utf8')), 'none');
  obs.raw.longData = pieces.join('');
  must(await r.command(cmd.execute(id, 0, [0x03, 0xfc, 0x0c, 0x0b], [false, false, false, false], [bin.long(1), bin.datetime(2023, 7, 8, 9, 10, 11), bin.time(true, 1, 2, 3, 4)])), 'execute docs');
  // COM_STMT_RESET discards long data; the next EXECUTE binds everything inline.
  await r.command(cmd.sendLongData(id, 1, Buffer.from('discarded')), 'none');
  must(await r.command(cmd.reset(id)), 'reset');
  must(await r.command(cmd.execute(id, 0, [0x08, 0xfd, 0x06, 0x06], [false, false, true, true], [bin.longlong(2n), bin.str('inline body')])), 'execute docs 2');
  await r.command(cmd.close(id), 'none');
  // A cursor: EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH.
  const sel = await r.command(cmd.prepare('SELECT id, body FROM docs WHERE id > ? ORDER BY id'), 'prepare');
  must(sel, 'prepare select');
  const sid = sel.prepared!.statementId;
  must(await r.command(cmd.execute(sid, 0x01, [0x03], [false], [bin.long(0)]), 'cursor'), 'execute cursor');
  const fetched = await r.command(cmd.fetch(sid, 10), 'fetch');
  must(fetched, 'fetch');
  obs.raw.cursorRows = fetched.rows.length;
  await r.command(cmd.close(sid), 'none');
  // Field list, statistics, init db, set option + multi statements, kill, ping, reset connection.
  must(await r.command(cmd.fieldList('docs'), 'fieldList'), 'field list');
  await r.command(cmd.statistics(), 'statistics');
  must(await r.command(cmd.initDb(n.db2)), 'init db');
  must(await r.command(cmd.query(PROBE)), 'probe');
  must(await r.command(cmd.setOption(true)), 'set option');
  must(await r.command(cmd.query(`SELECT 1 AS one; SELECT 2 AS two; SELECT id FROM ${n.db}.docs`)), 'multi');
  const bad = await r.command(cmd.query('SELECT * FROM nope_raw'));
  if (bad.err) obs.errors.push({ thread: r.connectionId, sql: 'SELECT * FROM nope_raw', ...bad.err });
  must(await r.command(cmd.processKill(inner.threadId)), 'kill');
  obs.raw.killed = inner.threadId;
  must(await r.command(cmd.ping()), 'ping');
  must(await r.command(cmd.resetConnection()), 'reset connection');
  must(await r.command(cmd.query('SELECT 3 AS after_reset')), 'after reset');
  await r.quit();
  await victim.end().catch(() => undefined);

  // A failed login whose connection id and port the client knows.
  try {
    await RawClient.connect({ user: n.ghost, password: 'x', database: n.db });
  } catch (e) {
    const m = /login failed: (\d+) (.*)$/.exec((e as Error).message);
    obs.failedLogins.push({ user: n.ghost, code: Number(m?.[1]), message: m?.[2] ?? (e as Error).message });
  }
}

/**
 * Statements and results of more than 16 MiB, plain (mysql2) and over the
 * compressed protocol (mariadb --compress); their facts go into `obs.big`.
 */
export async function bigPayloads(n: LiveNames, obs: Observed): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-live-'));
  try {
    await bigPayloadsIn(n, obs, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bigPayloadsIn(n: LiveNames, obs: Observed, dir: string): Promise<void> {
  // A statement and a result of more than 16 MiB each, plain (mysql2) ...
  const c = await mysql.createConnection({ host: '127.0.0.1', user: n.user, password: n.pass, database: n.db, maxPreparedStatements: 4 });
  const inner = (c as unknown as { connection: { threadId: number; stream: { localPort: number } } }).connection;
  obs.connections.push({ thread: inner.threadId, port: inner.stream.localPort, client: 'mysql2 big' });
  const sql = `SELECT LENGTH('${'q'.repeat(BIG)}') AS n`;
  await c.query(sql);
  await c.query(`SELECT REPEAT('r', ${BIG}) AS big`);
  obs.big.push({ thread: inner.threadId, sql, resultLength: BIG });
  await c.end();
  // ... and over the compressed protocol (mariadb --compress).
  const file = join(dir, 'big.sql');
  const csql = `SELECT LENGTH('${'c'.repeat(BIG)}') AS n`;
  writeFileSync(file, `${PROBE};\n${csql};\nSELECT REPEAT('d', ${BIG}) AS big;\n`);
  const r = await new Promise<CliResult>((resolve) => {
    execFile('sh', ['-c', `mariadb --protocol=TCP -h 127.0.0.1 -P 3306 --batch --raw --compress --max-allowed-packet=64M -u ${n.user} -p${n.pass} ${n.db} < ${file}`], { maxBuffer: 64 << 20 }, (_e, stdout, stderr) =>
      resolve({ stdout: String(stdout), stderr: String(stderr) }),
    );
  });
  const probes = probesIn(r.stdout);
  obs.probes.push(...probes);
  if (probes[0]) {
    obs.connections.push({ thread: probes[0].thread, port: probes[0].port, client: 'mariadb --compress big' });
    obs.big.push({ thread: probes[0].thread, sql: csql, resultLength: BIG });
  }
}

async function burst(n: LiveNames, obs: Observed, total: number): Promise<void> {
  const pool = mysql.createPool({ host: '127.0.0.1', user: n.user, password: n.pass, database: n.db, connectionLimit: 4, connectAttributes: { program_name: 'dbtap-live-burst' } });
  const seen = new Set<number>();
  pool.on('connection', (pc) => {
    const inner = pc as unknown as { threadId: number; stream: { localPort: number } };
    if (!seen.has(inner.threadId)) {
      seen.add(inner.threadId);
      obs.connections.push({ thread: inner.threadId, port: inner.stream.localPort, client: 'burst' });
    }
  });
  await pool.query('CREATE TABLE burst (id INT PRIMARY KEY, k INT, s VARCHAR(64), INDEX (k))');
  let sent = 1;
  const one = async (i: number): Promise<void> => {
    sent++;
    switch (i % 8) {
      case 0:
        await pool.query('INSERT INTO burst (id, k, s) VALUES (?, ?, ?)', [i, i % 97, `s-${i}`]);
        break;
      case 1:
        await pool.execute('SELECT id, k, s FROM burst WHERE k = ? LIMIT 5', [i % 97]);
        break;
      case 2:
        await pool.query(`UPDATE burst SET s = CONCAT(s, '+') WHERE id = ${i - 2}`);
        break;
      case 3:
        await pool.execute('INSERT INTO burst (id, k, s) VALUES (?, ?, ?)', [i, i % 13, i % 2 ? `x${i}` : null]);
        break;
      case 4:
        await pool.query('SELECT COUNT(*) AS n, MAX(id) AS m FROM burst');
        break;
      case 5:
        await pool.execute('UPDATE burst SET k = k + ? WHERE id = ?', [1, i - 2]);
        break;
      case 6:
        if (i % 400 === 6) {
          const sql = `INSERT INTO burst (id, k) VALUES (0, ${i}), (0, ${i})`;
          await pool.query(sql).then(
            () => {
              throw new Error(`expected a duplicate key error from ${sql}`);
            },
            (e: { errno: number; sqlState: string; sqlMessage: string }) => {
              obs.errors.push({ thread: -1, sql, code: e.errno, sqlState: e.sqlState, message: e.sqlMessage });
            },
          );
        }
        else await pool.query(`DELETE FROM burst WHERE id = ${i - 6}`);
        break;
      default:
        await pool.query(`SELECT s FROM burst WHERE id BETWEEN ${i - 50} AND ${i} ORDER BY id`);
    }
  };
  // Bounded concurrency: a few statements in flight on each connection of the pool.
  const inFlight = 8;
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) await one(next++);
  }));
  await pool.query('DROP TABLE burst');
  sent++;
  obs.burstStatements = sent;
  await pool.end();
}

// ---- a file capture for payloads larger than one loopback frame -------------------

/**
 * Captures `lo` into `file` with dumpcap. The live-capture helper's `cap`
 * binding fixes the snapshot length at 65,535 bytes, but a bulk transfer on
 * loopback sends frames of up to 65,549 bytes (MTU 65,536 plus the link
 * header): their last bytes would be cut. dumpcap keeps whole frames.
 */
export async function startDumpcap(filter: string, file: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn('dumpcap', ['-i', 'lo', '-f', filter, '-s', '262144', '-B', '128', '-P', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/File: /.test(err)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`dumpcap exited (${code}): ${err}`)));
  });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 300));
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

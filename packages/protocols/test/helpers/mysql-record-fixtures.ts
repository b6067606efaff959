// Records the real-traffic fixtures of mysql-fixtures.ts: short sessions of
// real clients against the local MariaDB, captured on lo with dumpcap and
// cut into per-direction chunks by tshark. Run as root, with MariaDB on
// 127.0.0.1:3306:
//
//   npx tsx packages/protocols/test/helpers/mysql-record-fixtures.ts
//
// It rewrites packages/protocols/test/helpers/mysql-fixtures.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { followStreams } from './mysql.js';
import { admin } from './mysql-log.js';
import { startDumpcap } from './mysql-live.js';
import { RawClient, bin, cmd } from './mysql-raw.js';

const U = 'dbtap_fixture';
const P = 'pw-fixture';
const ED = 'dbtap_fixture_ed';
const DB = 'dbtap_fixture';

function cli(args: string[], input: string): Promise<void> {
  return new Promise((resolve) => {
    const child = execFile('mariadb', ['--protocol=TCP', '-h', '127.0.0.1', '-P', '3306', ...args], { maxBuffer: 64 << 20 }, () => resolve());
    child.stdin?.end(input);
  });
}

interface Session {
  name: string;
  doc: string;
  run: (dir: string) => Promise<void>;
}

const sessions: Session[] = [
  {
    name: 'compressedSession',
    doc: '`mariadb --compress`: login, a 40-row result, an SQL error, a query, COM_QUIT; zlib-compressed after the login OK',
    run: () => cli(['--compress', '--force', '-u', U, `-p${P}`, DB], "SELECT seq, REPEAT('x', 30) AS pad FROM seq_1_to_40;\nSELECT nope FROM t;\nSELECT 'last';\n"),
  },
  {
    name: 'localInfileSession',
    doc: '`mariadb --local-infile`: LOAD DATA LOCAL INFILE of five rows (file request, file content, empty packet, OK), then a query',
    run: async (dir) => {
      const file = join(dir, 'rows.csv');
      writeFileSync(file, '1,one\n2,two\n3,three\n4,four\n5,five\n');
      await cli(['--local-infile=1', '-u', U, `-p${P}`, DB], `LOAD DATA LOCAL INFILE '${file}' INTO TABLE t FIELDS TERMINATED BY ',' (id, name);\nSELECT 'last';\n`);
    },
  },
  {
    name: 'ed25519Session',
    doc: '`mariadb` as an ed25519 user: mysql_native_password first, AuthSwitchRequest to client_ed25519, signature, OK, a query',
    run: () => cli(['-u', ED, `-p${P}`, DB], "SELECT 'last';\n"),
  },
  {
    name: 'mysql2Session',
    doc: 'mysql2: prepared statements with typed and NULL parameters, re-execute, multi-statements, an error, COM_PING, COM_CHANGE_USER, COM_STMT_CLOSE, COM_QUIT',
    run: async () => {
      const c = await mysql.createConnection({ host: '127.0.0.1', user: U, password: P, database: DB, multipleStatements: true });
      await c.execute('INSERT INTO t (id, name, v, d) VALUES (?, ?, ?, ?)', [10, 'ten', 1.25, new Date(Date.UTC(2024, 1, 29, 12, 0, 0))]);
      await c.execute('INSERT INTO t (id, name, v, d) VALUES (?, ?, ?, ?)', [11, null, -3, null]);
      await c.execute('SELECT id, name FROM t WHERE id > ? ORDER BY id', [1]);
      await c.query('SELECT 1 AS a; SELECT 2 AS b; DELETE FROM t WHERE id = 11');
      await c.query('SELECT * FROM missing').catch(() => undefined);
      await c.ping();
      await c.changeUser({ user: U, password: P, database: DB });
      await c.query("SELECT 'last'");
      await c.end();
    },
  },
  {
    name: 'rawCommandsSession',
    doc: 'a raw client: COM_STMT_SEND_LONG_DATA, EXECUTE, COM_STMT_RESET, a cursor with COM_STMT_FETCH, COM_FIELD_LIST, COM_STATISTICS, COM_INIT_DB, COM_SET_OPTION and multiple result sets, COM_PROCESS_KILL of an unknown id, COM_RESET_CONNECTION',
    run: async () => {
      const r = await RawClient.connect({ user: U, password: P, database: DB, program: 'fixture' });
      const prep = await r.command(cmd.prepare('INSERT INTO t (id, name, d) VALUES (?, ?, ?)'), 'prepare');
      const id = prep.prepared!.statementId;
      await r.command(cmd.sendLongData(id, 1, Buffer.from('long ')), 'none');
      await r.command(cmd.sendLongData(id, 1, Buffer.from('data')), 'none');
      await r.command(cmd.execute(id, 0, [0x03, 0xfc, 0x0c], [false, false, false], [bin.long(20), bin.datetime(2023, 7, 8, 9, 10, 11)]));
      await r.command(cmd.reset(id));
      await r.command(cmd.close(id), 'none');
      const sel = await r.command(cmd.prepare('SELECT id, name FROM t WHERE id >= ? ORDER BY id'), 'prepare');
      const sid = sel.prepared!.statementId;
      await r.command(cmd.execute(sid, 0x01, [0x03], [false], [bin.long(1)]), 'cursor');
      await r.command(cmd.fetch(sid, 2), 'fetch');
      await r.command(cmd.close(sid), 'none');
      await r.command(cmd.fieldList('t'), 'fieldList');
      await r.command(cmd.statistics(), 'statistics');
      await r.command(cmd.initDb(DB));
      await r.command(cmd.setOption(true));
      await r.command(cmd.query('SELECT 1 AS one; SELECT 2 AS two'));
      await r.command(cmd.processKill(999_999_999));
      await r.command(cmd.resetConnection());
      await r.command(cmd.query("SELECT 'last'"));
      await r.quit();
    },
  },
  {
    name: 'deprecateEofSession',
    doc: 'a raw client with CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK and CLIENT_MULTI_STATEMENTS: result sets ended by OK packets, multiple results, USE and SET with session-state tracking, PREPARE without EOF packets, binary rows, a cursor with COM_STMT_FETCH, an SQL error',
    run: async () => {
      const r = await RawClient.connect({ user: U, password: P, database: DB, program: 'fixture', extraCaps: 0x1000000 | 0x800000 | 0x10000 });
      await r.command(cmd.query('SELECT id, name FROM t ORDER BY id'));
      await r.command(cmd.query('SELECT 1 AS a; SELECT 2 AS b; UPDATE t SET v = 1 WHERE id = 10'));
      await r.command(cmd.query(`USE ${DB}`));
      await r.command(cmd.query('SET autocommit = 0, time_zone = \'+01:00\''));
      await r.command(cmd.query('SET autocommit = 1'));
      const sel = await r.command(cmd.prepare('SELECT id, name, d FROM t WHERE id > ? ORDER BY id'), 'prepare');
      const sid = sel.prepared!.statementId;
      await r.command(cmd.execute(sid, 0, [0x03], [false], [bin.long(0)]));
      await r.command(cmd.execute(sid, 0x01, [0x03], [false], [bin.long(0)]), 'cursor');
      await r.command(cmd.fetch(sid, 1), 'fetch');
      await r.command(cmd.close(sid), 'none');
      await r.command(cmd.query('SELECT * FROM nope'));
      await r.command(cmd.query("SELECT 'last'"));
      await r.quit();
    },
  },
  {
    name: 'refusedLoginSession',
    doc: '`mariadb` with a wrong password: ERR 1045 ends the connection',
    run: () => cli(['-u', U, '-pwrong', DB], 'SELECT 1;\n'),
  },
  {
    name: 'bigCompressedSession',
    doc: '`mariadb --compress`: a 16 MiB + 1000 byte statement and result, each a chain of 0xffffff-byte packets inside compressed packets',
    run: async (dir) => {
      const n = 16 * 1024 * 1024 + 1000;
      const file = join(dir, 'big.sql');
      writeFileSync(file, `SELECT LENGTH('${'b'.repeat(n)}') AS n;\nSELECT REPEAT('B', ${n}) AS big;\nSELECT 'last';\n`);
      await new Promise<void>((resolve) => {
        execFile('sh', ['-c', `mariadb --protocol=TCP -h 127.0.0.1 -P 3306 --compress --max-allowed-packet=64M -u ${U} -p${P} ${DB} < ${file}`], { maxBuffer: 64 << 20 }, () => resolve());
      });
    },
  },
];

function printable(b: Buffer): string {
  return b
    .subarray(0, 60)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.')
    .replace(/\*\//g, '*.');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-fixtures-'));
  let installed = false;
  let maxPacket = 0;
  await admin(async (c) => {
    const [[m]] = (await c.query('SELECT @@global.max_allowed_packet AS m')) as unknown as [{ m: number }[]];
    maxPacket = Number(m!.m);
    await c.query(`DROP DATABASE IF EXISTS ${DB}`);
    await c.query(`CREATE DATABASE ${DB}`);
    await c.query(`CREATE TABLE ${DB}.t (id INT PRIMARY KEY, name VARCHAR(50), v DOUBLE, d DATETIME)`);
    await c.query(`CREATE OR REPLACE USER '${U}'@'%' IDENTIFIED BY '${P}'`);
    await c.query(`GRANT ALL ON ${DB}.* TO '${U}'@'%'`);
    const [rows] = (await c.query("SELECT 1 FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'")) as unknown as [unknown[]];
    if (rows.length === 0) {
      await c.query("INSTALL SONAME 'auth_ed25519'");
      installed = true;
    }
    await c.query(`CREATE OR REPLACE USER '${ED}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('${P}')`);
    await c.query(`GRANT ALL ON ${DB}.* TO '${ED}'@'%'`);
    if (maxPacket < 64 << 20) await c.query(`SET GLOBAL max_allowed_packet = ${64 << 20}`);
  });
  const out: string[] = [
    '// Real MySQL-protocol traffic for the split, truncation and fuzz tests:',
    '// sessions of real clients against MariaDB, captured on loopback and cut',
    '// into per-direction chunks as the TCP segments carried them.',
    '// Generated by mysql-record-fixtures.ts (do not edit by hand).',
    '',
    '/** One recorded session: chunks in stream order, 0 = client to server, 1 = server to client. */',
    'export interface RecordedSession {',
    '  readonly name: string;',
    '  readonly server: string;',
    '  readonly chunks: readonly (readonly [0 | 1, string])[];',
    '}',
    '',
  ];
  try {
    const [[v]] = (await admin((c) => c.query('SELECT VERSION() AS v'))) as unknown as [{ v: string }[]];
    for (const s of sessions) {
      const file = join(dir, `${s.name}.pcap`);
      const cap = await startDumpcap('tcp port 3306', file);
      try {
        await s.run(dir);
      } finally {
        await cap.stop();
      }
      // The session is the stream with a user of ours in its login; other traffic is ignored.
      const streams = followStreams(file).filter((f) => f.chunks.some(([d, b]) => d === 0 && typeof b !== 'number' && Buffer.from(b).includes(Buffer.from(U))));
      if (streams.length !== 1) throw new Error(`${s.name}: ${streams.length} matching streams`);
      const st = streams[0]!;
      out.push(`/** ${s.doc} (MariaDB ${v!.v}). */`);
      out.push(`export const ${s.name}: RecordedSession = {`);
      out.push(`  name: '${s.name}',`);
      out.push(`  server: '${v!.v}',`);
      out.push('  chunks: [');
      for (const [d, b] of st.chunks) {
        if (typeof b === 'number') throw new Error(`${s.name}: capture lost ${b} bytes`);
        const buf = Buffer.from(b);
        out.push(`    // ${d === 0 ? 'C' : 'S'} ${buf.length} bytes: ${printable(buf)}`);
        out.push(`    [${d}, '${buf.toString('hex')}'],`);
      }
      out.push('  ],');
      out.push('};');
      out.push('');
    }
  } finally {
    await admin(async (c) => {
      if (maxPacket < 64 << 20) await c.query(`SET GLOBAL max_allowed_packet = ${maxPacket}`);
      await c.query(`DROP USER IF EXISTS '${U}'@'%'`);
      await c.query(`DROP USER IF EXISTS '${ED}'@'%'`);
      await c.query(`DROP DATABASE IF EXISTS ${DB}`);
      if (installed) await c.query("UNINSTALL SONAME 'auth_ed25519'");
    });
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(fileURLToPath(new URL('./mysql-fixtures.ts', import.meta.url)), out.join('\n'));
}

await main();

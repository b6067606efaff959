// Live proof against a real DRDA server: Apache Derby's Network Server on
// 127.0.0.1, with Derby's own DRDA clients (a JDBC program on derbyclient.jar
// and ij) while we capture on lo. derby.log, written with
// derby.language.logStatementText, is the ground truth: every statement in
// it must be one record with its text, parameters, user, database and
// result, and no statement record may stand for nothing in the log.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, Frame } from '@dbtap/core';
import { auditFrames } from '@dbtap/server';
import { derbyMissing, startDerby, type Derby } from '../../../test-support/derby.js';
import { startLiveCapture, type LiveCapture } from '../../../test-support/live-capture.js';
import { matchDerbyLog, parseDerbyLog, type DerbyStatement, type LogMatch } from './helpers/derby-log.js';

const users = { app: 'apppw', bob: 'bobpw' };
const dbUsers = { appdb: 'app', otherdb: 'bob', ijdb: 'app' };
const missing = derbyMissing() ?? (process.getuid?.() === 0 ? undefined : 'needs root to capture on lo');
const keepAlive: LiveCapture[] = [];

if (missing !== undefined && process.env.CI) {
  test('drda live: Derby and capture rights are available', (t) => t.fail(missing));
} else if (missing !== undefined) {
  console.log(`skipping live DRDA tests: ${missing}`);
}
const liveTest = missing === undefined ? test.serial : test.skip;

let events: AuditEvent[] = [];
let frames: Frame[] = [];
let entries: DerbyStatement[] = [];
let match: LogMatch;
let output = '';

const IJ = (port: number): string => `connect 'jdbc:derby://127.0.0.1:${port}/ijdb;create=true;user=app;password=apppw';
autocommit off;
create table notes (id int, txt varchar(100));
insert into notes values (1, 'one'), (2, 'two');
prepare p as 'update notes set txt = ? where id = ?';
execute p using 'values (''uno'', 1)';
commit;
select * from notes order by id;
delete from notes;
rollback;
select count(*) from notes;
call syscs_util.syscs_checkpoint_database();
drop table no_such_table;
commit;
disconnect;
exit;
`;

test.before(async () => {
  if (missing !== undefined) return;
  const derby: Derby = await startDerby({ users });
  try {
    const cap = startLiveCapture(`tcp port ${derby.port}`);
    keepAlive.push(cap);
    try {
      const source = readFileSync(join(import.meta.dirname, 'helpers', 'DrdaWorkload.java'), 'utf8');
      output = await derby.java('DrdaWorkload', source, [String(derby.port)]);
      output += await derby.ij(IJ(derby.port));
    } finally {
      frames = await cap.stop();
      events = auditFrames(frames, { ports: [derby.port], maxRows: 3 }).events;
    }
    entries = parseDerbyLog(derby.log());
    match = matchDerbyLog(entries, events, dbUsers);
  } finally {
    await derby.stop();
  }
});

liveTest('every statement in derby.log is one record with its text, parameters, user, database and result', (t) => {
  t.true(entries.length > 1000, `${entries.length} statements in derby.log`);
  const bad = match.matched.filter((m) => m.problems.length > 0).map((m) => `${m.entry.sql.slice(0, 80)}: ${m.problems.join('; ')}`);
  const pct = (100 * (match.matched.length - bad.length)) / entries.length;
  console.log(`derby.log: ${entries.length} statements, ${match.matched.length - bad.length} matched exactly (${pct.toFixed(1)}%)`);
  t.deepEqual(match.missing.map((e) => e.sql), [], 'statements in derby.log without a record');
  t.deepEqual(bad.slice(0, 20), [], 'records that differ from derby.log');
  t.is(pct, 100);
});

liveTest('no statement record stands for nothing in derby.log', (t) => {
  t.deepEqual(
    match.invented.map((e) => `${e.command} ${e.sql}`),
    [],
  );
  // The rest are commits and rollbacks, each answered.
  const rest = events.filter((e) => e.kind === 'statement' && !match.matched.some((m) => m.event === e));
  t.true(rest.length > 0);
  for (const e of rest) {
    t.true(e.command === 'RDBCMM' || e.command === 'RDBRLLBCK', `${e.command} ${e.sql}`);
    t.is(e.status, 'ok');
  }
  t.true(rest.some((e) => e.command === 'RDBRLLBCK'));
});

liveTest('logins: two users and databases, a wrong password, an unknown database; no password anywhere', (t) => {
  const logins = events.filter((e) => e.kind === 'login');
  t.deepEqual(
    logins.map((e) => [e.status, e.user, e.database, e.errorCode ?? '', e.sqlState ?? '']),
    [
      ['ok', 'app', 'appdb', '', ''],
      ['ok', 'bob', 'otherdb', '', ''],
      ['error', 'app', 'appdb', 'SECCHKCD 0x13', '08004'],
      ['error', 'app', 'nosuchdb', 'RDBNFNRM', 'XJ004'],
      ['ok', 'app', 'ijdb', '', ''],
    ],
  );
  t.regex(output, /login 08004\nlogin 08004/);
  for (const e of logins) {
    t.is(e.dbProduct, 'derby');
    t.regex(e.serverVersion ?? '', /^CSS10\d{3}\/10\./);
    t.regex(e.clientLibrary ?? '', /^DNC10\d{3}/);
    t.is(e.attributes?.secmec, '3');
  }
  t.is(logins[3]!.message, "Database 'nosuchdb' not found.");
  const all = JSON.stringify(events, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  for (const pw of [...Object.values(users), 'wrong-password']) t.false(all.includes(pw), `password ${pw} in a record`);
  t.is(events.filter((e) => e.kind === 'logout').length, 3);
});

liveTest('parameters of every type decode to their values', (t) => {
  const ins = events.filter((e) => e.sql === 'INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  t.is(ins.length, 4);
  t.deepEqual(ins[1]!.params, [
    2,
    'item 2 caf\u00e9 \u65e5\u672c',
    14,
    9000000000000000002n,
    { type: 'decimal', text: '-1234.52' },
    0.5,
    1.5,
    'C2',
    '2024-02-02',
    '12:34:52',
    '2024-02-03 04:05:06.789000000',
    { type: 'binary', hex: '0102fe02' },
    true,
  ]);
  t.deepEqual(ins[3]!.params, [4, ...Array(12).fill(null)]);
  t.is(ins[0]!.affectedRows, 1);
  t.is(ins[0]!.statementId?.startsWith('NULLID.'), true);
});

liveTest('queries: rows across continuation fetches, first rows, counts, errors', (t) => {
  const all = events.find((e) => e.sql === 'SELECT * FROM items ORDER BY id')!;
  t.regex(output, /rows 1009/);
  t.is(all.rowsReturned, 1009);
  t.is(all.rows?.length, 3);
  t.is(all.rows?.[0]?.[0], '1');
  t.deepEqual(all.columns, ['ID', 'NAME', 'QTY', 'BIG', 'PRICE', 'RATIO', 'R', 'CODE', 'BORN', 'TM', 'STAMP', 'RAW', 'FLAG']);
  t.deepEqual(events.find((e) => e.sql === 'SELECT id, name FROM items WHERE qty = ? AND id > ?')!.columns, ['ID', 'NAME']);
  const upd = events.find((e) => e.sql === 'UPDATE items SET qty = 0 WHERE id >= 1000')!;
  t.is(upd.affectedRows, 100);
  t.is(events.find((e) => e.sql === 'DELETE FROM items WHERE id BETWEEN 1050 AND 1059')!.affectedRows, 10);
  const dup = events.find((e) => e.sql === 'INSERT INTO items (id) VALUES (1)')!;
  t.like(dup, { status: 'error', sqlState: '23505', errorCode: -20001 });
  // SQLERRMC tokens (Derby's own text comes later, from the SYSIBM.SQLCAMESSAGE call its client makes).
  t.like(events.find((e) => e.sql === 'SELEKT 1 FROM items')!, { status: 'error', sqlState: '42X01', message: 'Encountered "SELEKT" at line 1, column 1' });
  t.like(events.find((e) => e.sql === 'SELECT * FROM missing_table WHERE id = ?')!, { status: 'error', sqlState: '42X05', command: 'PRPSQLSTT' });
  const docs = events.find((e) => e.sql === 'SELECT id, body, bin FROM docs ORDER BY id')!;
  t.is(docs.rowsReturned, 2);
  const big = events.filter((e) => e.sql === 'INSERT INTO docs VALUES (?, ?, ?)')[1]!;
  t.deepEqual(big.params?.slice(1), [
    { type: 'clob', text: '50000 bytes' },
    { type: 'blob', text: '70000 bytes' },
  ]);
  t.true((big.bytesIn ?? 0) > 120_000, 'the LOBs travelled in DSSs continued past 32 KiB');
  const batch = events.filter((e) => e.sql === 'INSERT INTO items (id, name, qty) VALUES (?, ?, ?)');
  t.is(batch.length, 1000);
  t.true(batch.every((e) => e.status === 'ok' && e.affectedRows === 1));
});

liveTest('Derby with -ssl basic: TLS from the first byte is one login record with tls: true, nothing decoded', async (t) => {
  const derby = await startDerby({ users, tls: true });
  try {
    const cap = startLiveCapture(`tcp port ${derby.port}`);
    keepAlive.push(cap);
    let printed = '';
    try {
      printed = await derby.ij(`connect 'jdbc:derby://127.0.0.1:${derby.port}/tlsdb;create=true;ssl=basic;user=app;password=apppw';
create table secret_table (x int);
select * from secret_table;
disconnect;
exit;
`);
    } finally {
      const frames = await cap.stop();
      // Content cannot say DRDA under TLS: the port is configured as DRDA, as an audit object would.
      const tls = auditFrames(frames, { ports: new Map([[derby.port, 'drda']]) }).events;
      t.notRegex(printed, /ERROR/);
      t.true(derby.log().includes('create table secret_table'), 'the statements ran');
      t.deepEqual(
        tls.map((e) => [e.kind, e.tls, e.status]),
        [
          ['login', true, 'unknown'],
          ['connection', true, 'ok'],
        ],
      );
      // What TLS showed in clear: Derby (Java) chose a version and a cipher suite.
      t.regex(tls[1]!.tlsFacts?.version ?? '', /^TLS 1\.[23]$/);
      t.truthy(tls[1]!.tlsFacts?.cipherSuite);
      t.false(JSON.stringify(tls).includes('secret_table'));
    }
  } finally {
    await derby.stop();
  }
});

liveTest('security mechanisms: one the server refuses (SECCHKCD 0x01), and the password substitute (SECMEC 8)', async (t) => {
  const derby = await startDerby({ users, properties: ['derby.drda.securityMechanism=STRONG_PASSWORD_SUBSTITUTE_SECURITY'] });
  try {
    const cap = startLiveCapture(`tcp port ${derby.port}`);
    keepAlive.push(cap);
    let printed = '';
    try {
      const url = `jdbc:derby://127.0.0.1:${derby.port}/secdb;create=true;user=app;password=apppw`;
      printed = await derby.ij(`connect '${url}';\nconnect '${url};securityMechanism=8';\nvalues 1;\nexit;\n`);
    } finally {
      const frames = await cap.stop();
      const logins = auditFrames(frames, { ports: [derby.port] }).events.filter((e) => e.kind === 'login');
      t.regex(printed, /ERROR 08004: .*Security mechanism not supported/);
      t.deepEqual(
        logins.map((e) => [e.status, e.user, e.database, e.errorCode, e.sqlState, e.attributes?.secmec]),
        [
          // ACCSEC asked for USRIDPWD (3) and the server said no: SECCHK (with the user id) never followed.
          ['error', undefined, 'secdb', 'SECCHKCD 0x01', '08004', '3'],
          ['ok', 'app', 'secdb', undefined, undefined, '8'],
        ],
      );
      t.is(logins[0]!.message, 'security check failed: security mechanism not supported');
      t.false(JSON.stringify(logins).includes('apppw'));
    }
  } finally {
    await derby.stop();
  }
});

liveTest('the same traffic picked up in the middle: statements decode, marked midSession, none that Derby did not run', (t) => {
  const port = events[0]!.server.port;
  // Start with the frame that carries row 600 of the 1,000-row batch: inside its chain, maybe inside a DSS.
  const needle = Buffer.from('row 600 padding');
  const at = frames.findIndex((f) => Buffer.from(f.data).includes(needle));
  t.true(at > 0);
  const half = auditFrames(frames.slice(at), { ports: [port] });
  const all = half.events.filter((e) => e.kind === 'statement' && e.command !== 'RDBCMM' && e.command !== 'RDBRLLBCK');
  // Executes of sections prepared before the pickup carry their section, not their text (it was not seen).
  const blind = all.filter((e) => e.sql === undefined);
  t.true(blind.length >= 390, `${blind.length} executes of sections prepared before the pickup`);
  t.true(blind.every((e) => e.command === 'EXCSQLSTT' && e.statementId !== undefined && e.status === 'ok' && e.affectedRows === 1));
  const statements = all.filter((e) => e.sql !== undefined);
  t.true(statements.length > 40, `${statements.length} statements with text after the pickup`);
  const logged = new Set(entries.map((e) => e.sql));
  t.deepEqual(statements.filter((e) => !logged.has(e.sql!)).map((e) => e.sql), []);
  // The connection picked up in the middle has no login; the ones that start later do.
  const first = half.events[0]!;
  t.true(first.midSession === true && first.kind !== 'login');
  t.true(half.events.some((e) => e.kind === 'login' && e.user === 'bob' && e.midSession === undefined));
  t.is(half.summary.undetectedFlows, 0);
});

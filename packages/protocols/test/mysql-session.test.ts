import test from 'ava';
import { Confidence, mysql } from '@dbtap/protocols';
import {
  BASE_CAPS, C, CAP, S, bigPkt, colDef, compressed, concat, cstr, eof, err, feed, greeting, lenenc, loginReq, loginScript, lstr, newSession, ok, pkt, query, resultSet, str, textRow, u16, u32,
} from './helpers/mysql.js';

const SERVER_MORE_RESULTS = 0x8;

test('login: greeting + HandshakeResponse41 + OK gives a login record with who/where/tool', (t) => {
  const h = newSession();
  feed(h, loginScript({ db: 'shop', version: '5.5.5-10.11.19-MariaDB-0+deb12u1' }));
  t.is(h.events.length, 1);
  const e = h.events[0]!;
  t.like(e, {
    id: 'f1:1', kind: 'login', status: 'ok', dbType: 'mysql', dbProduct: 'mariadb', serverVersion: '5.5.5-10.11.19-MariaDB-0+deb12u1', sessionId: '42',
    user: 'alice', database: 'shop', clientProgram: 'mysql', clientLibrary: 'libmysql 8.0.36', osUser: 'alice', clientPid: '1234', tls: false,
    ts: 1_000_100, endTs: 1_000_200, durationUs: 100,
  });
  t.deepEqual(e.attributes, { _os: 'Linux', authPlugin: 'caching_sha2_password', clientCharset: 'utf-8' });
  t.is(e.client.port, 50000);
  t.is(h.session.stats.malformed, 0);
});

test('login: auth switch and auth-more-data are followed to the final OK', (t) => {
  const h = newSession();
  feed(h, [
    [S, pkt(0, greeting({ plugin: 'caching_sha2_password' }))],
    [C, pkt(1, loginReq({ db: 'test' }))],
    [S, pkt(2, concat([0xfe], cstr('mysql_native_password'), str('12345678901234567890'), [0]))],
    [C, pkt(3, new Uint8Array(20).fill(1))],
    [S, pkt(4, [0x01, 0x03])], // fast auth success
    [S, pkt(5, ok())],
  ]);
  t.is(h.events.length, 1);
  t.is(h.events[0]!.status, 'ok');
  t.is(h.events[0]!.attributes?.authPlugin, 'mysql_native_password');
});

test('login: failure is an error login record with code, SQLSTATE and message; no logout follows', (t) => {
  const h = newSession();
  feed(h, [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq({ user: 'intruder' }))],
    [S, pkt(2, err(1045, '28000', "Access denied for user 'intruder'@'localhost' (using password: YES)"))],
  ]);
  h.session.close('fin', 2_000_000);
  t.is(h.events.length, 1);
  t.like(h.events[0], { kind: 'login', status: 'error', user: 'intruder', errorCode: 1045, sqlState: '28000' });
  t.regex(h.events[0]!.message!, /Access denied/);
});

test('login: ERR instead of a greeting (too many connections) is a failed login', (t) => {
  const h = newSession();
  feed(h, [[S, pkt(0, concat([0xff], u16(1040), str('Too many connections')))]]);
  t.is(h.events.length, 1);
  t.like(h.events[0], { kind: 'login', status: 'error', errorCode: 1040, message: 'Too many connections' });
});

test('login: SSL request marks the session encrypted and stops decoding cleanly', (t) => {
  const h = newSession();
  const ssl = concat(u32(BASE_CAPS | CAP.SSL), u32(1 << 24), [45], new Array(23).fill(0));
  feed(h, [
    [S, pkt(0, greeting())],
    [C, pkt(1, ssl)],
    [C, Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])],
    [S, Uint8Array.from([0x16, 0x03, 0x03, 0x00, 0x7a, 0x02])],
  ]);
  h.session.close('fin', 3_000_000);
  t.is(h.events.length, 2);
  t.like(h.events[0], { kind: 'login', tls: true, status: 'unknown', serverVersion: '8.0.36' });
  t.is(h.events[0]!.user, undefined);
  t.like(h.events[1], { kind: 'connection', tls: true, status: 'ok', serverVersion: '8.0.36', closeReason: 'fin' });
  t.is(h.session.stats.malformed, 0);
});

test('COM_QUERY: OK carries affected rows, last insert id, warnings and info', (t) => {
  const h = newSession();
  const req = pkt(0, query('INSERT INTO t VALUES (1),(2)'));
  const resp = pkt(1, ok({ affected: 2, insertId: 7, warnings: 1, info: 'Records: 2  Duplicates: 0  Warnings: 1' }));
  feed(h, [...loginScript(), [C, req], [S, resp]]);
  const e = h.events[1]!;
  t.like(e, { kind: 'statement', command: 'COM_QUERY', sql: 'INSERT INTO t VALUES (1),(2)', status: 'ok', affectedRows: 2, lastInsertId: 7, warnings: 1, user: 'alice', database: 'test', bytesIn: req.length, bytesOut: resp.length, durationUs: 100 });
  t.is(e.message, 'Records: 2  Duplicates: 0  Warnings: 1');
});

test('COM_QUERY: text result set with EOF packets counts rows and keeps the first N', (t) => {
  const h = newSession({ maxRows: 2 });
  const rs = resultSet(['id', 'name'], [['1', 'a'], ['2', null], ['3', 'c']]);
  feed(h, [...loginScript(), [C, pkt(0, query('SELECT id, name FROM t'))], [S, rs]]);
  const e = h.events[1]!;
  t.like(e, { status: 'ok', rowsReturned: 3, bytesOut: rs.length });
  t.deepEqual(e.columns, ['id', 'name']);
  t.deepEqual(e.rows, [['1', 'a'], ['2', null]]);
});

test('COM_QUERY: result set under CLIENT_DEPRECATE_EOF (OK terminator)', (t) => {
  const caps = BASE_CAPS | CAP.DEPRECATE_EOF;
  const h = newSession({ maxRows: 5 });
  feed(h, [...loginScript({ caps }), [C, pkt(0, query('SELECT 1'))], [S, resultSet(['1'], [['1']], { deprecateEof: true })], [C, pkt(0, query('SELECT 2'))], [S, pkt(1, ok())]]);
  t.is(h.events.length, 3);
  t.like(h.events[1], { status: 'ok', rowsReturned: 1, sql: 'SELECT 1' });
  t.deepEqual(h.events[1]!.rows, [['1']]);
  t.like(h.events[2], { status: 'ok', sql: 'SELECT 2' });
});

test('COM_QUERY: multi-statements with several result sets and a final OK make one record', (t) => {
  const h = newSession();
  const first = resultSet(['a'], [['1']], { status: 2 | SERVER_MORE_RESULTS });
  const second = resultSet(['b'], [['2'], ['3']], { status: 2 | SERVER_MORE_RESULTS, startSeq: 5 });
  const last = pkt(10, ok({ affected: 4 }));
  feed(h, [...loginScript(), [C, pkt(0, query('SELECT 1; SELECT 2; DELETE FROM t'))], [S, concat(first, second, last)], [C, pkt(0, query('SELECT 3'))], [S, pkt(1, ok())]]);
  t.is(h.events.length, 3);
  t.like(h.events[1], { status: 'ok', rowsReturned: 3, affectedRows: 4 });
  t.deepEqual(h.events[1]!.columns, ['a']);
  t.is(h.events[2]!.sql, 'SELECT 3');
});

test('COM_QUERY: ERR and an ERR in the middle of rows', (t) => {
  const h = newSession();
  feed(h, [
    ...loginScript(),
    [C, pkt(0, query('SELECT * FROM nope'))],
    [S, pkt(1, err(1146, '42S02', "Table 'test.nope' doesn't exist"))],
    [C, pkt(0, query('SELECT slow()'))],
    [S, concat(pkt(1, [1]), pkt(2, colDef('x')), pkt(3, eof()), pkt(4, textRow('1')), pkt(5, err(1317, '70100', 'Query execution was interrupted')))],
  ]);
  t.like(h.events[1], { status: 'error', errorCode: 1146, sqlState: '42S02', message: "Table 'test.nope' doesn't exist" });
  t.like(h.events[2], { status: 'error', errorCode: 1317, rowsReturned: 1 });
});

test('database follows COM_INIT_DB, USE and session-state tracking', (t) => {
  const caps = BASE_CAPS | CAP.SESSION_TRACK;
  const h = newSession();
  const trackedOk = concat([0], [0], [0], u16(2 | 0x4000), u16(0), lstr(''), lstr(concat([1], lstr(lstr('gamma')))));
  feed(h, [
    ...loginScript({ caps }),
    [C, pkt(0, concat([0x02], str('alpha')))],
    [S, pkt(1, ok())],
    [C, pkt(0, query('SELECT 1'))],
    [S, pkt(1, ok())],
    [C, pkt(0, query('use `beta`'))],
    [S, pkt(1, ok())],
    [C, pkt(0, query('SELECT 2'))],
    [S, pkt(1, ok())],
    [C, pkt(0, query('CALL p()'))],
    [S, pkt(1, trackedOk)],
    [C, pkt(0, query('SELECT 3'))],
    [S, pkt(1, ok())],
  ]);
  const byCmd = h.events.slice(1).map((e) => [e.command, e.sql ?? null, e.database]);
  t.deepEqual(byCmd, [
    ['COM_INIT_DB', null, 'alpha'],
    ['COM_QUERY', 'SELECT 1', 'alpha'],
    ['COM_QUERY', 'use `beta`', 'alpha'],
    ['COM_QUERY', 'SELECT 2', 'beta'],
    ['COM_QUERY', 'CALL p()', 'beta'],
    ['COM_QUERY', 'SELECT 3', 'gamma'],
  ]);
});

function prepareOk(id: number, cols: number, params: number): Uint8Array {
  return concat([0], u32(id), u16(cols), u16(params), [0], u16(0));
}

test('prepared statements: PREPARE, EXECUTE with typed parameters, binary rows, re-EXECUTE, CLOSE', (t) => {
  const h = newSession({ maxRows: 5 });
  const sql = 'SELECT id, name FROM t WHERE id > ? AND name <> ? AND x IS ? AND y < ? AND d = ?';
  const prep = concat(
    pkt(1, prepareOk(5, 2, 5)),
    ...[2, 3, 4, 5, 6].map((s) => pkt(s, colDef('?', 0xfd))),
    pkt(7, eof()),
    pkt(8, colDef('id', 0x08)),
    pkt(9, colDef('name', 0xfd)),
    pkt(10, eof()),
  );
  // EXECUTE: id, flags 0, iterations 1, null bitmap (param 2 NULL), new-params-bound, types, values
  const exec1 = concat(
    [0x17], u32(5), [0], u32(1), [0b0000_0100], [1],
    u16(0x08), u16(0xfd), u16(0x06), u16(0x05), u16(0x0c),
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // -1 as longlong
    lstr('bob'),
    [0, 0, 0, 0, 0, 0, 0xf8, 0x3f], // 1.5 double
    [7, ...u16(2024), 2, 29, 13, 14, 15], // datetime
  );
  const binRow = concat([0x00], [0b0000_0000], [42, 0, 0, 0, 0, 0, 0, 0], lstr('zed'));
  const execResp = concat(pkt(1, [2]), pkt(2, colDef('id', 0x08)), pkt(3, colDef('name', 0xfd)), pkt(4, eof()), pkt(5, binRow), pkt(6, eof()));
  // re-EXECUTE without new-params-bound: the earlier types apply
  const exec2 = concat([0x17], u32(5), [0], u32(1), [0], [0], [5, 0, 0, 0, 0, 0, 0, 0], lstr('al'), [0, 0, 0, 0, 0, 0, 0, 0x40], [4, ...u16(2000), 1, 2], );
  feed(h, [
    ...loginScript(),
    [C, pkt(0, concat([0x16], str(sql)))],
    [S, prep],
    [C, pkt(0, exec1)],
    [S, execResp],
    [C, pkt(0, exec2)],
    [S, pkt(1, ok())],
    [C, pkt(0, concat([0x19], u32(5)))],
    [C, pkt(0, query('SELECT 1'))],
    [S, pkt(1, ok())],
  ]);
  const [, p, e1, e2, close, q] = h.events;
  t.like(p, { command: 'COM_STMT_PREPARE', sql, statementId: '5', status: 'ok' });
  t.like(e1, { command: 'COM_STMT_EXECUTE', sql, statementId: '5', status: 'ok', rowsReturned: 1 });
  t.deepEqual(e1!.params, [-1, 'bob', null, 1.5, '2024-02-29 13:14:15']);
  t.deepEqual(e1!.rows, [['42', 'zed']]);
  t.deepEqual(e2!.params, [5, 'al', null, 2, '2000-01-02 00:00:00']);
  t.like(close, { command: 'COM_STMT_CLOSE', statementId: '5', status: 'ok', sql });
  t.like(q, { sql: 'SELECT 1' });
  t.is(h.session.stats.malformed, 0);
});

test('prepared statements: SEND_LONG_DATA values appear in the EXECUTE parameters', (t) => {
  const h = newSession();
  feed(h, [
    ...loginScript(),
    [C, pkt(0, concat([0x16], str('INSERT INTO docs VALUES (?, ?)')))],
    [S, concat(pkt(1, prepareOk(9, 0, 2)), pkt(2, colDef('?')), pkt(3, colDef('?')), pkt(4, eof()))],
    [C, pkt(0, concat([0x18], u32(9), u16(1), str('hello ')))],
    [C, pkt(0, concat([0x18], u32(9), u16(1), str('world')))],
    [C, pkt(0, concat([0x17], u32(9), [0], u32(1), [0], [1], u16(0x03), u16(0xfc), u32(77)))],
    [S, pkt(1, ok({ affected: 1 }))],
  ]);
  const cmds = h.events.map((e) => e.command);
  t.deepEqual(cmds, [undefined, 'COM_STMT_PREPARE', 'COM_STMT_SEND_LONG_DATA', 'COM_STMT_SEND_LONG_DATA', 'COM_STMT_EXECUTE']);
  t.deepEqual(h.events[4]!.params, [77, 'hello world']);
  t.is(h.events[4]!.affectedRows, 1);
});

test('prepared statements: an EXECUTE of a statement prepared before the capture is recorded without values', (t) => {
  const h = newSession({ midStream: true });
  feed(h, [[C, pkt(0, concat([0x17], u32(3), [0], u32(1), [0], [1], u16(3), u32(1)))], [S, pkt(1, ok())]]);
  t.is(h.events.length, 1);
  t.like(h.events[0], { command: 'COM_STMT_EXECUTE', statementId: '3', midSession: true, status: 'ok', truncated: true });
  t.is(h.events[0]!.sql, undefined);
});

test('query attributes (CLIENT_QUERY_ATTRIBUTES) on COM_QUERY', (t) => {
  const caps = BASE_CAPS | CAP.QUERY_ATTRIBUTES;
  const h = newSession();
  const q = concat([0x03], lenenc(1), lenenc(1), [0], [1], u16(0xfe), lstr('trace_id'), lstr('abc-123'), str('SELECT 1'));
  const q0 = concat([0x03], lenenc(0), lenenc(1), str('SELECT 2'));
  feed(h, [...loginScript({ caps }), [C, pkt(0, q)], [S, pkt(1, ok())], [C, pkt(0, q0)], [S, pkt(1, ok())]]);
  t.like(h.events[1], { sql: 'SELECT 1', attributes: { trace_id: 'abc-123' } });
  t.like(h.events[2], { sql: 'SELECT 2' });
});

test('compressed protocol: zlib and stored compressed packets after the login OK', (t) => {
  const caps = BASE_CAPS | CAP.COMPRESS;
  const h = newSession({ maxRows: 1 });
  const rs = resultSet(['n'], [['1'], ['2']]);
  feed(h, [
    ...loginScript({ caps }),
    [C, compressed(0, pkt(0, query('SELECT n FROM numbers')), false)],
    [S, compressed(0, rs)],
    [C, compressed(0, pkt(0, query('SELECT ' + 'x'.repeat(200))))],
    [S, compressed(0, pkt(1, ok()))],
  ]);
  t.is(h.events.length, 3);
  t.like(h.events[0], { attributes: { compression: 'zlib' } });
  t.like(h.events[1], { sql: 'SELECT n FROM numbers', rowsReturned: 2, status: 'ok' });
  t.deepEqual(h.events[1]!.rows, [['1']]);
  t.like(h.events[2], { sql: 'SELECT ' + 'x'.repeat(200), status: 'ok' });
});

test('payloads of 16 MiB and more are joined from several packets', (t) => {
  const h = newSession({ maxSqlLength: 1000 });
  const sql = 'SELECT ' + "'".padEnd(17 * 1024 * 1024, 'a') + "'";
  const big = bigPkt(0, concat([0x03], str(sql)));
  feed(h, [...loginScript(), [C, big.subarray(0, 5_000_000)], [C, big.subarray(5_000_000)], [S, pkt(2, ok())]]);
  t.is(h.events.length, 2);
  t.is(h.events[1]!.sql, sql.slice(0, 1000));
  t.like(h.events[1], { truncated: true, status: 'ok', bytesIn: big.length });
});

test('LOAD DATA LOCAL INFILE: file request, file content, empty packet, OK', (t) => {
  const h = newSession();
  const req = pkt(0, query("LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t"));
  feed(h, [
    ...loginScript(),
    [C, req],
    [S, pkt(1, concat([0xfb], str('/tmp/x.csv')))],
    [C, concat(pkt(2, str('1,a\n2,b\n')), pkt(3, []))],
    [S, pkt(4, ok({ affected: 2 }))],
    [C, pkt(0, query('SELECT 1'))],
    [S, pkt(1, ok())],
  ]);
  t.like(h.events[1], { status: 'ok', affectedRows: 2, attributes: { localInfile: '/tmp/x.csv' } });
  t.is(h.events[1]!.bytesIn, req.length + 4 + 8 + 4);
  t.is(h.events[2]!.sql, 'SELECT 1');
});

test('COM_CHANGE_USER is a login record and changes the user for later records', (t) => {
  const h = newSession();
  const cu = concat([0x11], cstr('bob'), [20], new Uint8Array(20).fill(3), cstr('other'), u16(45), cstr('mysql_native_password'));
  feed(h, [...loginScript(), [C, pkt(0, cu)], [S, pkt(1, ok())], [C, pkt(0, query('SELECT USER()'))], [S, pkt(1, ok())]]);
  t.like(h.events[1], { kind: 'login', command: 'COM_CHANGE_USER', user: 'bob', database: 'other', status: 'ok' });
  t.like(h.events[2], { user: 'bob', database: 'other' });
});

test('COM_PING, COM_STATISTICS, COM_PROCESS_KILL, COM_QUIT', (t) => {
  const h = newSession();
  feed(h, [
    ...loginScript(),
    [C, pkt(0, [0x0e])],
    [S, pkt(1, ok())],
    [C, pkt(0, [0x09])],
    [S, pkt(1, str('Uptime: 10  Threads: 1'))],
    [C, pkt(0, concat([0x0c], u32(77)))],
    [S, pkt(1, err(1094, 'HY000', 'Unknown thread id: 77'))],
    [C, pkt(0, [0x01])],
  ]);
  h.session.close('fin', 9_000_000);
  t.deepEqual(h.events.map((e) => [e.kind, e.command, e.status]), [
    ['login', undefined, 'ok'],
    ['statement', 'COM_PING', 'ok'],
    ['statement', 'COM_STATISTICS', 'ok'],
    ['statement', 'COM_PROCESS_KILL', 'error'],
    ['logout', 'COM_QUIT', 'ok'],
  ]);
  t.is(h.events[2]!.message, 'Uptime: 10  Threads: 1');
  t.deepEqual(h.events[3]!.attributes, { connectionId: '77' });
});

test('connection closed without COM_QUIT yields a logout; pending requests are flushed as unknown', (t) => {
  const h = newSession();
  feed(h, [...loginScript(), [C, pkt(0, query('SELECT SLEEP(100)'))]]);
  h.session.close('rst', 5_000_000);
  t.deepEqual(h.events.map((e) => [e.kind, e.status]), [['login', 'ok'], ['statement', 'unknown'], ['logout', 'ok']]);
  t.is(h.session.stats.unmatchedRequests, 1);
  t.is(h.events[1]!.endTs, undefined);
});

test('mid-stream: the tail of an old response is skipped and decoding starts at the next command', (t) => {
  const h = newSession({ midStream: true });
  const oldTail = concat(pkt(7, textRow('x', 'y')), pkt(8, eof()));
  feed(h, [[S, oldTail.subarray(3)], [C, pkt(0, query('SELECT a FROM b'))], [S, resultSet(['a'], [['1']])]]);
  t.is(h.events.length, 1);
  t.like(h.events[0], { sql: 'SELECT a FROM b', status: 'ok', rowsReturned: 1, midSession: true });
  t.is(h.events[0]!.user, undefined);
  t.true(h.session.stats.skippedBytes > 0);
});

test('mid-stream: a command that starts inside a chunk is found by scanning', (t) => {
  const h = newSession({ midStream: true });
  const junk = Uint8Array.from([0x41, 0x42, 0x00, 0x13, 0x99, 0x00]);
  feed(h, [[C, concat(junk, pkt(0, query('DELETE FROM t WHERE id = 4')))], [S, pkt(1, ok({ affected: 1 }))]]);
  t.is(h.events.length, 1);
  t.like(h.events[0], { sql: 'DELETE FROM t WHERE id = 4', affectedRows: 1, midSession: true });
});

test('mid-stream: compressed protocol is recognised without the handshake', (t) => {
  const h = newSession({ midStream: true });
  feed(h, [[C, compressed(0, pkt(0, query('SELECT * FROM compressed_table')))], [S, compressed(0, resultSet(['c'], [['1'], ['2']]))]]);
  t.is(h.events.length, 1);
  t.like(h.events[0], { sql: 'SELECT * FROM compressed_table', rowsReturned: 2, midSession: true });
});

test('gap inside a row packet: the response still completes, marked truncated and gap-before', (t) => {
  const h = newSession();
  const rs = resultSet(['v'], [['a'.repeat(100)], ['b'.repeat(100)], ['c']]);
  // the second row starts at: header(5)+col(…)…; cut 50 bytes inside the first row's body
  const firstRowAt = rs.indexOf(0x61); // first 'a'
  feed(h, [...loginScript(), [C, pkt(0, query('SELECT v FROM t'))], [S, rs.subarray(0, firstRowAt + 10)]]);
  h.session.gap(S, 50, 2_000_000);
  h.session.data(S, rs.subarray(firstRowAt + 60), 2_000_100);
  feed(h, [[C, pkt(0, query('SELECT 2'))], [S, pkt(1, ok())]], 3_000_000);
  t.like(h.events[1], { status: 'ok', rowsReturned: 3, truncated: true, gapBefore: true });
  t.like(h.events[2], { sql: 'SELECT 2', status: 'ok' });
  t.is(h.session.stats.gaps, 1);
});

test('gap across packet boundaries in a response: resynchronises on the rows that follow', (t) => {
  const h = newSession();
  const rows = Array.from({ length: 50 }, (_, i) => [`row-${i}`]);
  const rs = resultSet(['v'], rows);
  feed(h, [...loginScript(), [C, pkt(0, query('SELECT v FROM t'))], [S, rs.subarray(0, 100)]]);
  // lose bytes 100..300, then deliver from a packet boundary onwards
  let p = 0;
  while (p < 300) p += 4 + (rs[p]! | (rs[p + 1]! << 8));
  h.session.gap(S, p - 100, 2_000_000);
  h.session.data(S, rs.subarray(p), 2_000_100);
  feed(h, [[C, pkt(0, query('SELECT 2'))], [S, pkt(1, ok())]], 3_000_000);
  t.like(h.events[1], { status: 'ok', truncated: true, gapBefore: true });
  t.true(h.events[1]!.rowsReturned! > 30 && h.events[1]!.rowsReturned! < 50);
  t.like(h.events[2], { sql: 'SELECT 2', status: 'ok' });
});

test('gap in the client stream: the next command is found and marked gap-before', (t) => {
  const h = newSession();
  const q1 = pkt(0, query('SELECT 1 FROM dual WHERE 1 = 1'));
  feed(h, [...loginScript(), [C, q1.subarray(0, 10)]]);
  h.session.gap(C, q1.length - 10 + 500, 2_000_000);
  feed(h, [[S, pkt(1, ok())], [C, pkt(0, query('SELECT 2'))], [S, pkt(1, ok())]], 3_000_000);
  const last = h.events[h.events.length - 1]!;
  t.like(last, { sql: 'SELECT 2', status: 'ok' });
  t.true(h.events.some((e) => e.gapBefore === true));
});

test('detect: greeting is High, a query is Medium, other bytes None', (t) => {
  t.is(mysql.detect(new Uint8Array(0), pkt(0, greeting())), Confidence.High);
  t.is(mysql.detect(pkt(0, query('select @@version_comment limit 1'))), Confidence.Medium);
  t.is(mysql.detect(pkt(0, [0x0e])), Confidence.Low);
  t.is(mysql.detect(pkt(1, loginReq())), Confidence.Medium);
  // PostgreSQL StartupMessage and SSLRequest
  t.is(mysql.detect(Uint8Array.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f])), Confidence.None);
  t.is(mysql.detect(concat([0, 0, 0, 0x25, 0, 3, 0, 0], cstr('user'), cstr('postgres'), [0])), Confidence.None);
  t.is(mysql.detect(str('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), Confidence.None);
});

test('regression: a refused login counts the ERR once in bytesOut', (t) => {
  const h = newSession();
  const g = pkt(0, greeting());
  const e = pkt(2, err(1045, '28000', "Access denied for user 'x'@'h' (using password: YES)"));
  feed(h, [[S, g], [C, pkt(1, loginReq({ user: 'x' }))], [S, e]]);
  t.is(h.events[0]!.bytesOut, g.length + e.length);
});

test('connection attribute names such as __proto__ stay plain attributes', (t) => {
  const h = newSession();
  feed(h, [[S, pkt(0, greeting())], [C, pkt(1, loginReq({ attrs: { __proto__x: 'a', constructor: 'b', _client_name: 'c' } }))], [S, pkt(2, ok())]]);
  const raw = concat(u32(BASE_CAPS & ~CAP.CONNECT_WITH_DB), u32(1 << 24), [45], new Array(23).fill(0), cstr('alice'), lstr(new Uint8Array(20)), cstr('caching_sha2_password'), lstr(concat(lstr('__proto__'), lstr('polluted'), lstr('program_name'), lstr('app'))));
  const h2 = newSession();
  feed(h2, [[S, pkt(0, greeting())], [C, pkt(1, raw)], [S, pkt(2, ok())]]);
  const a = h2.events[0]!.attributes!;
  t.is(Object.getPrototypeOf(a), Object.prototype);
  t.true(Object.keys(a).includes('__proto__'));
  t.is(h2.events[0]!.clientProgram, 'app');
  t.is(h.events[0]!.attributes?.constructor as unknown, 'b');
});

test('regression: a false packet start found while resynchronising a response cannot swallow the responses that follow', (t) => {
  // The first result set of a multi-result response is lost; the second one's
  // column definition holds bytes that read as a response header (length 16140,
  // sequence 1, OK). Accepting it would take the next 16 KB as its body.
  const h = newSession();
  const colDef2 = pkt(7, colDef('b'));
  feed(h, [
    ...loginScript(),
    [C, pkt(0, query('SELECT 1 AS a; SELECT 2 AS b'))],
    [S, 60], // the first result set, lost
    [S, concat(pkt(6, [1]), colDef2, pkt(8, eof(2 | 8)), pkt(9, textRow('2')), pkt(10, eof()), Uint8Array.of(0x0c, 0x3f, 0x00, 0x01, 0x00, 0x00, 0x00))],
    [C, pkt(0, query('SELECT 3'))],
    [S, pkt(1, ok())],
    [C, pkt(0, query("SELECT 'last'"))],
    [S, pkt(1, ok())],
  ]);
  t.like(h.events.find((e) => e.sql === 'SELECT 1 AS a; SELECT 2 AS b'), { status: 'unknown', truncated: true, gapBefore: true });
  t.like(h.events.find((e) => e.sql === 'SELECT 3'), { status: 'ok' });
  t.like(h.events.find((e) => e.sql === "SELECT 'last'"), { status: 'ok' });
});

test('column definitions repeated across statements: each record names its own columns and tables', (t) => {
  // Six statements whose first columns differ (more than are remembered per position), run twice,
  // then a column whose bytes differ from a remembered one only in its table.
  const tables = ['a', 'b', 'c', 'd', 'e', 'f'];
  const result = (table: string, cols: string[]): Uint8Array =>
    concat(pkt(1, lenenc(cols.length)), ...cols.map((c, i) => pkt(2 + i, colDef(c, 0xfd, { table }))), pkt(2 + cols.length, eof()), pkt(3 + cols.length, textRow(...cols)), pkt(4 + cols.length, eof(2)));
  const script: [0 | 1, Uint8Array][] = [...loginScript()];
  const expected: [string[], string][] = [];
  for (let round = 0; round < 2; round++) {
    for (const tb of tables) {
      const cols = [`id_${tb}`, 'name'];
      script.push([C, pkt(0, query(`SELECT id_${tb}, name FROM ${tb}`))], [S, result(tb, cols)]);
      expected.push([cols, `test.${tb}`]);
    }
  }
  script.push([C, pkt(0, query('SELECT id_a, name FROM z'))], [S, result('z', ['id_a', 'name'])]);
  expected.push([['id_a', 'name'], 'test.z']);
  for (const maxRows of [0, 1]) {
    const h = newSession({ maxRows });
    feed(h, script);
    const statements = h.events.filter((e) => e.kind === 'statement');
    t.deepEqual(statements.map((e) => [e.columns, e.attributes?.resultTables]), expected);
    if (maxRows > 0) t.deepEqual(statements.map((e) => e.rows), expected.map(([cols]) => [cols]));
  }
});

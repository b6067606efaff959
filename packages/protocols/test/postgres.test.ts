import test from 'ava';
import { Direction, type AuditEvent } from '@dbtap/core';
import { Confidence, postgres } from '@dbtap/protocols';
import {
  authCleartext,
  authMd5,
  authOk,
  authSasl,
  backendKey,
  bind,
  bindComplete,
  cancelRequest,
  cat,
  close,
  closeComplete,
  complete,
  copyData,
  copyDone,
  copyInResponse,
  copyOutResponse,
  cstr,
  dataRow,
  describe,
  emptyQuery,
  errorMsg,
  execute,
  flush,
  gssEncRequest,
  Harness,
  i16,
  i32,
  msg,
  noData,
  notice,
  paramDesc,
  paramStatus,
  parse,
  parseComplete,
  password,
  portalSuspended,
  query,
  ready,
  rowDesc,
  sslRequest,
  startup,
  sync,
  terminate,
} from './helpers/postgres.js';
import { makeCertificate, recordTls } from '../../../test-support/tls-recorder.js';
import { binaryValue } from '../src/postgres/values.js';

// ---- detection ---------------------------------------------------------------

test('detect: startup-phase packets and the server auth request are High', (t) => {
  t.is(postgres.detect(startup({ user: 'u' })), Confidence.High);
  t.is(postgres.detect(sslRequest()), Confidence.High);
  t.is(postgres.detect(cancelRequest(1, 2)), Confidence.High);
  t.is(postgres.detect(new Uint8Array(0), authMd5()), Confidence.High);
  t.is(postgres.detect(startup({ user: 'u', database: 'd' }).subarray(0, 12)), Confidence.High);
});

test('detect: a frontend message stream is Medium, other bytes None', (t) => {
  t.is(postgres.detect(query('select 1')), Confidence.Medium);
  t.is(postgres.detect(cat(parse('', 'select $1'), bind('', '', ['1']))), Confidence.Medium);
  t.is(postgres.detect(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), Confidence.None);
  // A MySQL server greeting.
  t.is(postgres.detect(new Uint8Array(0), Uint8Array.from([0x4a, 0, 0, 0, 0x0a, 0x35, 0x2e, 0x35, 0x2e, 0x35])), Confidence.None);
  t.is(postgres.detect(new Uint8Array(0)), Confidence.None);
});

// ---- startup and authentication ------------------------------------------------

test('trust login: one ok login record with user, database, program, version, backend pid', (t) => {
  const h = new Harness().login({ user: 'alice', database: 'shop', application_name: 'psql', client_encoding: 'UTF8' });
  t.is(h.events.length, 1);
  const e = h.events[0]!;
  t.like(e, { id: 'f1:1', kind: 'login', status: 'ok', user: 'alice', database: 'shop', clientProgram: 'psql', serverVersion: '15.20', sessionId: '4242', dbType: 'postgres', tls: false, command: 'StartupMessage' });
  t.is(e.attributes?.protocol, '3.0');
  t.is(e.attributes?.client_encoding, 'UTF8');
  t.is(e.attributes?.authMethod, 'trust');
  t.true(e.endTs! > e.ts);
  t.is(e.durationUs, e.endTs! - e.ts);
  t.true(e.bytesIn! > 0 && e.bytesOut! > 0);
  t.is(e.midSession, undefined);
});

test('database defaults to the user name', (t) => {
  const h = new Harness().login({ user: 'bob' });
  t.is(h.events[0]!.database, 'bob');
});

test('md5 login with a wrong password: error login record with SQLSTATE 28P01', (t) => {
  const h = new Harness()
    .c(startup({ user: 'alice', database: 'shop' }))
    .s(authMd5())
    .c(password('md5' + 'a'.repeat(32)))
    .s(errorMsg('28P01', 'password authentication failed for user "alice"', 'FATAL'))
    .close();
  t.is(h.events.length, 1, 'no logout after a failed login');
  t.like(h.events[0]!, { kind: 'login', status: 'error', user: 'alice', sqlState: '28P01', errorCode: '28P01', message: 'password authentication failed for user "alice"' });
  t.is(h.events[0]!.attributes?.authMethod, 'md5');
  t.is(h.events[0]!.attributes?.severity, 'FATAL');
  t.false(JSON.stringify(h.events).includes('aaaa'), 'password hash not recorded');
});

test('cleartext password is never recorded', (t) => {
  const h = new Harness().c(startup({ user: 'u' })).s(authCleartext()).c(password('s3cret')).s(authOk(), ready());
  t.is(h.events[0]!.attributes?.authMethod, 'cleartext');
  t.false(JSON.stringify(h.events).includes('s3cret'));
});

test('SCRAM exchange: sasl method and mechanism', (t) => {
  const scramInit = msg('p', cstr('SCRAM-SHA-256'), i32(20), new TextEncoder().encode('n,,n=,r=abcdefghijkl'));
  const h = new Harness()
    .c(startup({ user: 'u', database: 'd' }))
    .s(authSasl('SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'))
    .c(scramInit)
    .s(msg('R', i32(11), new TextEncoder().encode('r=abc,s=xyz,i=4096')))
    .c(msg('p', new TextEncoder().encode('c=biws,r=abc,p=proof')))
    .s(msg('R', i32(12), new TextEncoder().encode('v=sig')), authOk(), ready());
  const e = h.events[0]!;
  t.like(e, { kind: 'login', status: 'ok' });
  t.is(e.attributes?.authMethod, 'sasl');
  t.is(e.attributes?.saslMechanisms, 'SCRAM-SHA-256-PLUS,SCRAM-SHA-256');
  t.is(e.attributes?.saslMechanism, 'SCRAM-SHA-256');
  t.is(e.dbProduct, undefined);
});

test('accepted SSLRequest: login record marked tls, decoding stops cleanly', (t) => {
  const h = new Harness().c(sslRequest()).s(Uint8Array.of(0x53));
  // TLS records follow; they must not be decoded as anything.
  h.c(Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])).s(Uint8Array.from([0x16, 0x03, 0x03, 0x00, 0x7a])).close();
  // The login attempt, then at close the kit's connection record of the encrypted rest.
  t.deepEqual(h.events.map((e) => e.kind), ['login', 'connection']);
  t.like(h.events[0]!, { kind: 'login', tls: true, status: 'unknown' });
  t.is(h.events[0]!.attributes?.sslResponse, 'S');
  t.like(h.events[1]!, { tls: true, user: undefined, attributes: { undecoded: 'ssl' } });
  t.is(h.session.stats.malformed, 0);
});

test('refused SSLRequest: plaintext login follows', (t) => {
  const h = new Harness().c(sslRequest()).s(Uint8Array.of(0x4e)).login({ user: 'u', database: 'd' });
  t.is(h.events.length, 1);
  t.like(h.events[0]!, { kind: 'login', status: 'ok', tls: false, user: 'u' });
  t.is(h.events[0]!.attributes?.sslResponse, 'N');
});

test('direct TLS (no SSLRequest) is recorded as an encrypted attempt', (t) => {
  const h = new Harness().c(Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c]));
  t.like(h.events[0]!, { kind: 'login', tls: true });
});

test('CancelRequest: a statement record naming the target backend', (t) => {
  const h = new Harness().c(cancelRequest(4242, 99)).close();
  t.is(h.events.length, 1);
  t.like(h.events[0]!, { kind: 'statement', command: 'CancelRequest', statementId: '4242', status: 'ok' });
});

test('openGauss protocol 3.51 and sha256 auth mark the product', (t) => {
  // openGauss AUTH_REQ_SHA256 (10) carries binary salt material, not SASL mechanism names.
  const sha = msg('R', i32(10), i32(2), new Uint8Array(64).fill(0x41), new Uint8Array(8).fill(0x42), i32(10000));
  const h = new Harness().c(startup({ user: 'omm', database: 'postgres' }, 51)).s(sha).c(password('x'.repeat(64))).s(authOk(), paramStatus('server_version', '9.2.4'), ready());
  t.like(h.events[0]!, { kind: 'login', status: 'ok', dbProduct: 'opengauss' });
  t.is(h.events[0]!.attributes?.authMethod, 'sha256');
  t.is(h.events[0]!.attributes?.protocol, '3.51');
});

test('product from ParameterStatus (KingbaseES)', (t) => {
  const h = new Harness().c(startup({ user: 'system', database: 'test' })).s(authOk(), paramStatus('server_version', 'KingbaseES V008R006'), ready());
  t.is(h.events[0]!.dbProduct, 'kingbase');
});

// ---- simple query --------------------------------------------------------------

test('simple query with rows: columns, row count, first rows, bytes, duration', (t) => {
  const h = new Harness({ options: { maxRows: 1 } }).login();
  const q = query('SELECT id, name FROM t');
  const resp = cat(rowDesc(['id', 'name'], [23, 25]), dataRow(['1', 'a']), dataRow(['2', null]), complete('SELECT 2'), ready());
  h.c(q).s(resp);
  const e = h.events[1]!;
  t.like(e, { kind: 'statement', command: 'Query', sql: 'SELECT id, name FROM t', status: 'ok', rowsReturned: 2, user: 'alice', database: 'shop', clientProgram: 'psql' });
  t.deepEqual(e.columns, ['id', 'name']);
  t.deepEqual(e.rows, [['1', 'a']]);
  t.is(e.bytesIn, q.length);
  t.is(e.bytesOut, resp.length);
  t.is(e.durationUs, 100);
  t.is(e.attributes?.commandTag, 'SELECT 2');
  t.is(e.affectedRows, undefined);
});

test('several statements in one Query: one record, each CommandComplete counted', (t) => {
  const h = new Harness().login();
  h.c(query("INSERT INTO t VALUES (1),(2); UPDATE t SET a=1; SELECT 1; CREATE TABLE x AS SELECT 1 FROM generate_series(1,5)"));
  h.s(complete('INSERT 0 2'), complete('UPDATE 2'), rowDesc(['?column?']), dataRow(['1']), complete('SELECT 1'), complete('SELECT 5'), ready());
  const e = h.events[1]!;
  t.is(e.affectedRows, 2 + 2 + 5);
  t.is(e.rowsReturned, 1);
  t.is(e.attributes?.commandTag, 'INSERT 0 2;UPDATE 2;SELECT 1;SELECT 5');
});

test('SQL error in a simple query: SQLSTATE, message, detail, position', (t) => {
  const h = new Harness().login();
  h.c(query('SELECT * FROM missing_table')).s(errorMsg('42P01', 'relation "missing_table" does not exist', 'ERROR', { P: '15' }), ready());
  t.like(h.events[1]!, { status: 'error', sqlState: '42P01', errorCode: '42P01', message: 'relation "missing_table" does not exist' });
  t.is(h.events[1]!.attributes?.position, '15');
});

test('error in the second statement of a multi-statement Query', (t) => {
  const h = new Harness().login();
  h.c(query('INSERT INTO t VALUES (1); SELECT 1/0')).s(complete('INSERT 0 1'), errorMsg('22012', 'division by zero'), ready('I'));
  t.like(h.events[1]!, { status: 'error', sqlState: '22012', affectedRows: 1 });
});

test('empty query and notices', (t) => {
  const h = new Harness().login();
  h.c(query('')).s(emptyQuery(), ready());
  h.c(query('DROP TABLE IF EXISTS nope')).s(notice('table "nope" does not exist, skipping'), complete('DROP TABLE'), ready());
  t.like(h.events[1]!, { sql: '', status: 'ok' });
  t.is(h.events[1]!.attributes?.emptyQuery, 'true');
  t.is(h.events[2]!.attributes?.notice, 'table "nope" does not exist, skipping');
});

test('application_name change via ParameterStatus follows', (t) => {
  const h = new Harness().login();
  h.c(query("SET application_name = 'etl'")).s(complete('SET'), paramStatus('application_name', 'etl'), ready());
  h.c(query('SELECT 1')).s(complete('SELECT 0'), ready());
  t.is(h.events[1]!.clientProgram, 'psql');
  t.is(h.events[2]!.clientProgram, 'etl');
});

// ---- extended query --------------------------------------------------------------

test('extended query: one record per Execute with SQL and text parameters', (t) => {
  const h = new Harness().login();
  h.c(parse('', 'SELECT * FROM t WHERE id = $1 AND name = $2'), bind('', '', ['42', null]), describe('P', ''), execute(''), sync());
  h.s(parseComplete(), bindComplete(), rowDesc(['id', 'name'], [23, 25]), dataRow(['42', 'x']), complete('SELECT 1'), ready());
  t.is(h.events.length, 2);
  const e = h.events[1]!;
  t.like(e, { command: 'Execute', sql: 'SELECT * FROM t WHERE id = $1 AND name = $2', status: 'ok', rowsReturned: 1 });
  t.deepEqual(e.params, ['42', null]);
  t.deepEqual(e.columns, ['id', 'name']);
  t.is(e.statementId, undefined);
});

test('named statement reused across executions; statementId is its name', (t) => {
  const h = new Harness().login();
  h.c(parse('s1', 'UPDATE t SET a = $1 WHERE id = $2', [23, 23]), describe('S', 's1'), sync());
  h.s(parseComplete(), paramDesc([23, 23]), noData(), ready());
  t.is(h.events.length, 1, 'a Parse alone is not a statement record');
  for (let i = 1; i <= 2; i++) {
    h.c(bind('', 's1', [i32(i * 10), i32(i)]), execute(''), sync());
    h.s(bindComplete(), complete(`UPDATE ${i}`), ready());
  }
  const ex = h.of('statement');
  t.is(ex.length, 2);
  t.deepEqual(ex.map((e) => e.params), [[10, 1], [20, 2]]);
  t.deepEqual(ex.map((e) => e.statementId), ['s1', 's1']);
  t.deepEqual(ex.map((e) => e.affectedRows), [1, 2]);
  t.true(ex.every((e) => e.sql === 'UPDATE t SET a = $1 WHERE id = $2'));
});

test('binary parameters of the common types', (t) => {
  const h = new Harness().login();
  const types = [21, 23, 20, 700, 701, 16, 25, 17, 2950, 1114, 1700, 1700, 1082, 9999];
  const f8 = new Uint8Array(8);
  new DataView(f8.buffer).setFloat64(0, 2.5);
  const f4 = new Uint8Array(4);
  new DataView(f4.buffer).setFloat32(0, 1.5);
  const i64 = new Uint8Array(8);
  new DataView(i64.buffer).setBigInt64(0, -9007199254740993n);
  const ts = new Uint8Array(8);
  // 2024-01-02 03:04:05.678901 = 757479845678901 µs after 2000-01-01.
  new DataView(ts.buffer).setBigInt64(0, 757_479_845_678_901n);
  // numeric -12345.678: ndigits 3, weight 1, sign 0x4000, dscale 3, digits 1 2345 6780
  const num = cat(i16(3), i16(1), Uint8Array.of(0x40, 0), i16(3), i16(1), i16(2345), i16(6780));
  // numeric 0.0001: ndigits 1, weight -1, dscale 4, digit 1
  const small = cat(i16(1), i16(-1), i16(0), i16(4), i16(1));
  const date = i32(8766); // 2024-01-01
  const uuid = Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
  const vals = [i16(-7), i32(123456), i64, f4, f8, Uint8Array.of(1), new TextEncoder().encode('héllo'), Uint8Array.of(0xde, 0xad), uuid, ts, num, small, date, Uint8Array.of(1, 2)];
  h.c(parse('', 'SELECT 1', types), bind('', '', vals), execute(''), sync());
  h.s(parseComplete(), bindComplete(), dataRow(['1']), complete('SELECT 1'), ready());
  t.deepEqual(h.events[1]!.params, [
    -7,
    123456,
    -9007199254740993n,
    1.5,
    2.5,
    true,
    'héllo',
    { type: 'bytea', hex: 'dead' },
    '12345678-9abc-def0-0123-456789abcdef',
    '2024-01-02 03:04:05.678901',
    '-12345.678',
    '0.0001',
    '2024-01-01',
    { type: 'oid:9999', hex: '0102' },
  ]);
});

test('pipelining: many Bind/Execute before one Sync, each its own record', (t) => {
  const h = new Harness().login();
  const req = [parse('ins', 'INSERT INTO t VALUES ($1)')];
  for (let i = 0; i < 5; i++) req.push(bind('', 'ins', [String(i)]), execute(''));
  req.push(sync());
  h.c(...req);
  const resp = [parseComplete()];
  for (let i = 0; i < 5; i++) resp.push(bindComplete(), complete('INSERT 0 1'));
  resp.push(ready());
  h.s(...resp);
  const ex = h.of('statement');
  t.is(ex.length, 5);
  t.deepEqual(ex.map((e) => e.params), [['0'], ['1'], ['2'], ['3'], ['4']]);
  t.true(ex.every((e) => e.affectedRows === 1 && e.status === 'ok' && e.statementId === 'ins'));
  const total = cat(...req).length;
  t.is(ex.reduce((s, e) => s + (e.bytesIn ?? 0), 0), total, 'request bytes are all attributed');
});

test('syntax error at Parse: one error record with the SQL; the batch is skipped', (t) => {
  const h = new Harness().login();
  h.c(parse('', "SELEC * FROM t WHERE a = '1' OR 1=1 --"), bind('', '', []), execute(''), sync());
  h.s(errorMsg('42601', 'syntax error at or near "SELEC"'), ready());
  h.c(query('SELECT 1')).s(rowDesc(['x']), dataRow(['1']), complete('SELECT 1'), ready());
  const ex = h.of('statement');
  t.is(ex.length, 2);
  t.like(ex[0]!, { status: 'error', sqlState: '42601', sql: "SELEC * FROM t WHERE a = '1' OR 1=1 --", command: 'Execute' });
  t.like(ex[1]!, { status: 'ok', sql: 'SELECT 1' });
});

test('Parse error without an Execute: a Parse record', (t) => {
  const h = new Harness().login();
  h.c(parse('bad', 'SELEC 1'), sync()).s(errorMsg('42601', 'syntax error'), ready());
  t.like(h.events[1]!, { command: 'Parse', sql: 'SELEC 1', statementId: 'bad', status: 'error' });
});

test('error at the first of several pipelined Executes skips the rest', (t) => {
  const h = new Harness().login();
  h.c(parse('', 'SELECT 1/$1'), bind('', '', ['0']), execute(''), bind('', '', ['1']), execute(''), sync());
  h.s(parseComplete(), bindComplete(), errorMsg('22012', 'division by zero'), ready('I'));
  h.c(query('SELECT 2')).s(complete('SELECT 0'), ready());
  const ex = h.of('statement');
  t.is(ex.length, 2);
  t.like(ex[0]!, { status: 'error', sqlState: '22012' });
  t.deepEqual(ex[0]!.params, ['0']);
  t.is(ex[1]!.sql, 'SELECT 2');
});

test('portal suspension: one record per Execute', (t) => {
  const h = new Harness().login();
  h.c(parse('', 'SELECT g FROM generate_series(1,3) g'), bind('c1', '', []), describe('P', 'c1'), execute('c1', 2), flush());
  h.s(parseComplete(), bindComplete(), rowDesc(['g'], [23]), dataRow(['1']), dataRow(['2']), portalSuspended());
  h.c(execute('c1', 2), sync());
  h.s(dataRow(['3']), complete('SELECT 1'), ready());
  const ex = h.of('statement');
  t.is(ex.length, 2);
  t.like(ex[0]!, { rowsReturned: 2, status: 'ok' });
  t.is(ex[0]!.attributes?.portalSuspended, 'true');
  t.is(ex[0]!.attributes?.portal, 'c1');
  t.like(ex[1]!, { rowsReturned: 1, status: 'ok', sql: 'SELECT g FROM generate_series(1,3) g' });
});

test('Close statement and portal', (t) => {
  const h = new Harness().login();
  h.c(parse('s', 'SELECT 1'), sync()).s(parseComplete(), ready());
  h.c(close('S', 's'), sync()).s(closeComplete(), ready());
  h.c(bind('', 's', []), execute(''), sync()).s(errorMsg('26000', 'prepared statement "s" does not exist'), ready());
  const ex = h.of('statement');
  t.is(ex.length, 1);
  t.like(ex[0]!, { status: 'error', sqlState: '26000', statementId: 's' });
  t.is(ex[0]!.sql, undefined);
});

test('binary result columns are rendered as text in first rows', (t) => {
  const h = new Harness({ options: { maxRows: 5 } }).login();
  h.c(parse('', 'SELECT 1::int4, true'), bind('', '', [], [], [1]), describe('P', ''), execute(''), sync());
  h.s(parseComplete(), bindComplete(), rowDesc(['a', 'b'], [23, 16], [1, 1]), dataRow([i32(1), Uint8Array.of(1)]), complete('SELECT 1'), ready());
  t.deepEqual(h.events[1]!.rows, [['1', 'true']]);
});

// ---- COPY, function call, logout -------------------------------------------------

test('COPY FROM STDIN: rows and bytes', (t) => {
  const h = new Harness().login();
  h.c(query('COPY t FROM STDIN')).s(copyInResponse(2));
  h.c(copyData('1\ta\n'), copyData('2\tb\n'), copyDone()).s(complete('COPY 2'), ready());
  const e = h.events[1]!;
  t.like(e, { sql: 'COPY t FROM STDIN', affectedRows: 2, status: 'ok' });
  t.like(e.attributes!, { copy: 'in', copyMessages: '2', copyBytes: '8' });
});

test('COPY TO STDOUT: rows returned and first rows', (t) => {
  const h = new Harness({ options: { maxRows: 1 } }).login();
  h.c(query('COPY t TO STDOUT')).s(copyOutResponse(2), msg('d', new TextEncoder().encode('1\ta\n')), msg('d', new TextEncoder().encode('2\tb\n')), msg('c'), complete('COPY 2'), ready());
  const e = h.events[1]!;
  t.like(e, { rowsReturned: 2, status: 'ok' });
  t.deepEqual(e.rows, [['1\ta']]);
  t.is(e.attributes?.copy, 'out');
});

test('COPY failure from the client', (t) => {
  const h = new Harness().login();
  h.c(query('COPY t FROM STDIN')).s(copyInResponse(1));
  h.c(copyData('x\n'), msg('f', cstr('aborted by user'))).s(errorMsg('57014', 'COPY from stdin failed: aborted by user'), ready());
  t.like(h.events[1]!, { status: 'error', sqlState: '57014' });
  t.is(h.events[1]!.attributes?.copyFail, 'aborted by user');
});

test('FunctionCall: a record with the function oid and arguments', (t) => {
  const h = new Harness().login();
  h.c(msg('F', i32(1598), i16(1), i16(1), i16(1), i32(4), i32(7), i16(1))).s(msg('V', i32(4), i32(1)), ready());
  t.like(h.events[1]!, { command: 'FunctionCall', statementId: '1598', status: 'ok' });
  t.deepEqual(h.events[1]!.params, [{ type: 'binary', hex: '00000007' }]);
});

test('Terminate: a logout record; no second one at FIN', (t) => {
  const h = new Harness().login().c(terminate()).close('fin');
  t.deepEqual(h.events.map((e) => e.kind), ['login', 'logout']);
  t.like(h.events[1]!, { command: 'Terminate', status: 'ok', user: 'alice' });
});

test('FIN without Terminate after login: logout with the close reason; pending statement flushed', (t) => {
  const h = new Harness().login().c(query('SELECT pg_sleep(100)')).close('rst');
  t.deepEqual(h.events.map((e) => e.kind), ['login', 'statement', 'logout']);
  t.like(h.events[1]!, { status: 'unknown', truncated: true });
  t.is(h.events[2]!.attributes?.closeReason, 'rst');
  t.is(h.session.stats.unmatchedRequests, 1);
});

test('FATAL while idle goes on the logout', (t) => {
  const h = new Harness().login().s(errorMsg('57P01', 'terminating connection due to administrator command', 'FATAL')).close('fin');
  t.like(h.events[1]!, { kind: 'logout', status: 'error', sqlState: '57P01' });
});

test('record ids count within the flow', (t) => {
  const h = new Harness().login();
  h.c(query('SELECT 1')).s(complete('SELECT 0'), ready()).c(terminate());
  t.deepEqual(h.events.map((e) => e.id), ['f1:1', 'f1:2', 'f1:3']);
});

// ---- splitting, truncation, gaps, mid-stream --------------------------------------

function conversation(): { client: Uint8Array; server: Uint8Array; steps: [Direction, Uint8Array][] } {
  const steps: [Direction, Uint8Array][] = [
    [Direction.ToServer, startup({ user: 'alice', database: 'shop', application_name: 'app' })],
    [Direction.ToClient, cat(authOk(), paramStatus('server_version', '15.20'), backendKey(1, 2), ready())],
    [Direction.ToServer, query('SELECT a FROM t')],
    [Direction.ToClient, cat(rowDesc(['a']), dataRow(['1']), dataRow(['2']), complete('SELECT 2'), ready())],
    [Direction.ToServer, cat(parse('', 'UPDATE t SET a = $1'), bind('', '', ['5']), execute(''), sync())],
    [Direction.ToClient, cat(parseComplete(), bindComplete(), complete('UPDATE 3'), ready())],
    [Direction.ToServer, query('SELECT * FROM nope')],
    [Direction.ToClient, cat(errorMsg('42P01', 'relation "nope" does not exist'), ready())],
    [Direction.ToServer, terminate()],
  ];
  return { client: cat(...steps.filter((s) => s[0] === Direction.ToServer).map((s) => s[1])), server: cat(...steps.filter((s) => s[0] === Direction.ToClient).map((s) => s[1])), steps };
}

function strip(events: AuditEvent[]): unknown[] {
  return events.map(({ ts: _ts, endTs: _e, durationUs: _d, ...rest }) => rest);
}

test('every message split at every offset gives the same records', (t) => {
  const { steps } = conversation();
  const whole = new Harness();
  for (const [dir, b] of steps) dir === Direction.ToServer ? whole.c(b) : whole.s(b);
  t.is(whole.events.length, 5);
  const expected = strip(whole.events);
  for (let i = 0; i < steps.length; i++) {
    const [, bytes] = steps[i]!;
    for (let cut = 1; cut < bytes.length; cut++) {
      const h = new Harness();
      for (let j = 0; j < steps.length; j++) {
        const [dir, b] = steps[j]!;
        const send = (x: Uint8Array) => (dir === Direction.ToServer ? h.c(x) : h.s(x));
        if (j === i) {
          send(b.subarray(0, cut));
          send(b.subarray(cut));
        } else send(b);
      }
      t.deepEqual(strip(h.events), expected, `step ${i} cut at ${cut}`);
    }
  }
});

test('byte-at-a-time delivery gives the same records', (t) => {
  const { steps } = conversation();
  const whole = new Harness();
  for (const [dir, b] of steps) dir === Direction.ToServer ? whole.c(b) : whole.s(b);
  const h = new Harness();
  for (const [dir, b] of steps) for (let k = 0; k < b.length; k++) dir === Direction.ToServer ? h.c(b.subarray(k, k + 1)) : h.s(b.subarray(k, k + 1));
  t.deepEqual(strip(h.events), strip(whole.events));
});

test('truncated at every offset: never throws, records flagged', (t) => {
  const { steps } = conversation();
  const all = cat(...steps.map((s) => s[1]));
  for (let cut = 0; cut <= all.length; cut++) {
    const h = new Harness();
    let left = cut;
    for (const [dir, b] of steps) {
      if (left <= 0) break;
      const part = b.subarray(0, Math.min(left, b.length));
      left -= part.length;
      dir === Direction.ToServer ? h.c(part) : h.s(part);
    }
    t.notThrows(() => h.close('end-of-capture'));
    for (const e of h.events) t.true(e.status !== 'unknown' || e.truncated === true || e.tls === true || e.kind === 'login', `cut ${cut}: ${JSON.stringify(e)}`);
  }
});

test('gap inside a Query keeps sync: truncated SQL prefix, next statement intact', (t) => {
  const h = new Harness().login();
  const q = query('SELECT * FROM accounts WHERE owner = 1234567890');
  h.c(q.subarray(0, 20)).gap(Direction.ToServer, 10).c(q.subarray(30));
  h.s(rowDesc(['a']), complete('SELECT 0'), ready());
  h.c(query('SELECT 2')).s(complete('SELECT 0'), ready());
  const ex = h.of('statement');
  t.is(ex.length, 2);
  t.like(ex[0]!, { sql: 'SELECT * FROM a', truncated: true });
  t.like(ex[1]!, { sql: 'SELECT 2', status: 'ok' });
  t.is(h.session.stats.skippedBytes, 0);
});

test('gap across message boundaries: resynchronises at the next message', (t) => {
  const h = new Harness().login();
  const lost = cat(query('SELECT lost'), parse('', 'SELECT $1'));
  h.c(lost.subarray(0, 7)).gap(Direction.ToServer, lost.length - 7 + 3);
  // The rest of the Parse (after the 3 missing bytes of it) then a new Query.
  h.c(cat(lost.subarray(lost.length).subarray(0), query('SELECT after')));
  h.s(errorMsg('42601', 'lost one'), ready(), complete('SELECT 0'), ready());
  const ex = h.of('statement');
  t.true(ex.some((e) => e.sql === 'SELECT after' && e.gapBefore === true), JSON.stringify(ex));
  t.true(h.session.stats.gaps === 1);
});

test('mid-stream pickup: starts inside a message, finds the next boundary', (t) => {
  const h = new Harness({ midStream: true });
  const first = query('SELECT half_seen');
  h.c(cat(first.subarray(6), query('SELECT 1')));
  h.s(cat(dataRow(['x']).subarray(3), complete('SELECT 1'), ready(), rowDesc(['?column?']), dataRow(['1']), complete('SELECT 1'), ready()));
  const ex = h.of('statement');
  t.is(ex.length, 1);
  t.like(ex[0]!, { sql: 'SELECT 1', midSession: true, status: 'ok' });
  t.is(h.events.filter((e) => e.kind === 'login').length, 0);
});

test('mid-stream pickup at a message boundary with Bind of an unknown statement', (t) => {
  const h = new Harness({ midStream: true });
  h.c(bind('', 'S_3', ['7']), execute(''), sync());
  h.s(bindComplete(), dataRow(['a']), complete('SELECT 1'), ready('T'));
  t.like(h.events[0]!, { command: 'Execute', statementId: 'S_3', midSession: true, rowsReturned: 1, status: 'ok' });
  t.deepEqual(h.events[0]!.params, ['7']);
  h.close('fin');
  t.is(h.events[1]!.kind, 'logout');
});

test('mid-stream pickup that sees the startup still records the login', (t) => {
  const h = new Harness({ midStream: true }).login();
  t.like(h.events[0]!, { kind: 'login', status: 'ok', user: 'alice' });
  t.is(h.events[0]!.midSession, undefined);
});

test('maxSqlLength truncates and flags', (t) => {
  const h = new Harness({ options: { maxSqlLength: 8 } }).login();
  h.c(query('SELECT 123456789')).s(complete('SELECT 1'), ready());
  t.like(h.events[1]!, { sql: 'SELECT 1', truncated: true });
});

test('maxMessageBytes: an oversized Query keeps its prefix and the stream stays in sync', (t) => {
  const h = new Harness({ options: { maxMessageBytes: 64 } }).login();
  h.c(query('SELECT ' + 'x'.repeat(200)), query('SELECT 2'));
  h.s(complete('SELECT 0'), ready(), complete('SELECT 0'), ready());
  const ex = h.of('statement');
  t.is(ex.length, 2);
  t.true(ex[0]!.sql!.startsWith('SELECT xxx'));
  t.true(ex[0]!.truncated);
  t.is(ex[1]!.sql, 'SELECT 2');
});

test('client_encoding GBK decodes query text', (t) => {
  const h = new Harness().c(startup({ user: 'u', database: 'd', client_encoding: 'GBK' })).s(authOk(), paramStatus('client_encoding', 'GBK'), ready());
  // "SELECT '中文'" in GBK.
  const sql = Uint8Array.from([...new TextEncoder().encode("SELECT '"), 0xd6, 0xd0, 0xce, 0xc4, 0x27]);
  h.c(msg('Q', sql, Uint8Array.of(0))).s(complete('SELECT 1'), ready());
  t.is(h.events[1]!.sql, "SELECT '中文'");
});

test('malformed lengths and garbage never throw and are counted', (t) => {
  const h = new Harness().login();
  h.c(Uint8Array.from([0x51, 0, 0, 0, 1, 0x41, 0x42]));
  h.c(query('SELECT 1')).s(complete('SELECT 1'), ready());
  t.true(h.session.stats.malformed >= 1);
  t.true(h.of('statement').some((e) => e.sql === 'SELECT 1'));
});

test('fuzz: random and mutated streams never throw', (t) => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const { steps } = conversation();
  for (let iter = 0; iter < 1500; iter++) {
    const h = new Harness({ midStream: iter % 3 === 0, options: { maxRows: 2 } });
    for (const [dir, b] of steps) {
      const m = Uint8Array.from(b);
      const flips = rnd(4);
      for (let k = 0; k < flips; k++) m[rnd(m.length)] = rnd(256);
      const chunks: Uint8Array[] = [];
      let o = 0;
      while (o < m.length) {
        const n = 1 + rnd(m.length);
        chunks.push(m.subarray(o, o + n));
        o += n;
      }
      for (const c of chunks) {
        if (rnd(20) === 0) h.gap(dir, 1 + rnd(30));
        if (rnd(30) === 0) {
          const junk = new Uint8Array(rnd(40));
          for (let k = 0; k < junk.length; k++) junk[k] = rnd(256);
          dir === Direction.ToServer ? h.c(junk) : h.s(junk);
        }
        dir === Direction.ToServer ? h.c(c) : h.s(c);
      }
    }
    h.close('fin');
    for (const e of h.events) t.true(typeof e.id === 'string' && e.flowId === 'f1');
  }
  t.pass();
});

test('stats count messages and events', (t) => {
  const h = new Harness().login();
  h.c(query('SELECT 1')).s(complete('SELECT 1'), ready());
  t.is(h.session.stats.events, 2);
  t.is(h.session.stats.messages, 1 + 5 + 1 + 2);
  t.is(h.session.stats.malformed, 0);
});

test('notice with cstr helpers is well-formed', (t) => {
  // Sanity of the builders themselves against a hand-written dump:
  // Q 00 00 00 0d 'SELECT 1' 00
  t.deepEqual([...query('SELECT 1')], [0x51, 0, 0, 0, 13, ...new TextEncoder().encode('SELECT 1'), 0]);
});

test('GSSENCRequest refused, NegotiateProtocolVersion recorded, notifications ignored', (t) => {
  const h = new Harness()
    .c(gssEncRequest())
    .s(Uint8Array.of(0x4e))
    .c(startup({ user: 'u', database: 'd', _pq_: 'x' }, 2))
    .s(msg('v', i32(0), i32(1), cstr('_pq_.x')), authOk(), ready());
  h.s(msg('A', i32(77), cstr('chan'), cstr('payload')));
  h.c(query('LISTEN chan')).s(complete('LISTEN'), ready());
  const login = h.events[0]!;
  t.is(login.attributes?.gssEncResponse, 'N');
  t.is(login.attributes?.negotiatedMinor, '0');
  t.is(login.attributes?.protocol, '3.2');
  t.like(h.events[1]!, { sql: 'LISTEN chan', status: 'ok' });
  t.is(h.session.stats.unmatchedResponses, 0);
});

test('mid-stream pickup inside a long result: rows are skipped until a boundary, next statement decoded', (t) => {
  const h = new Harness({ midStream: true });
  const rows = cat(...Array.from({ length: 50 }, (_, i) => dataRow([String(i), 'x'.repeat(i)])));
  // Start 3 bytes into the row stream: the scan must land on a DataRow boundary.
  h.s(rows.subarray(3), complete('SELECT 50'), ready());
  h.c(query('SELECT 2')).s(rowDesc(['v']), dataRow(['2']), complete('SELECT 1'), ready());
  t.is(h.of('statement').length, 1);
  t.like(h.events[0]!, { sql: 'SELECT 2', rowsReturned: 1, midSession: true });
  t.true(h.session.stats.skippedBytes > 0 && h.session.stats.skippedBytes < 40);
});

test('mid-stream pickup of a Query split over many segments (scan waits for the whole candidate)', (t) => {
  const big = query(`SELECT '${'y'.repeat(100_000)}'`);
  const h = new Harness({ midStream: true });
  for (let o = 0; o < big.length; o += 1460) h.c(big.subarray(o, o + 1460));
  h.s(complete('SELECT 1'), ready());
  t.is(h.events.length, 1);
  t.is(h.events[0]!.sql!.length, 100_000 + 9);
});

test('resync does not wait forever on a false candidate: a confirmed pair of messages wins', (t) => {
  const h = new Harness().login();
  // Garbage that looks like the start of a 60 KB Describe ('D', length 0x0000f000), then real messages.
  const junk = Uint8Array.from([0x44, 0x00, 0x00, 0xf0, 0x00, 0x53]);
  h.c(query('SELECT 1').subarray(0, 4)).gap(Direction.ToServer, 100);
  h.c(cat(junk, query('SELECT after'), sync()));
  h.s(complete('SELECT 0'), ready());
  t.true(h.of('statement').some((e) => e.sql === 'SELECT after' && e.gapBefore === true));
});

test('a server gap inside a DataRow stream keeps counting the statement', (t) => {
  const h = new Harness().login();
  h.c(query('SELECT a FROM t'));
  const resp = cat(rowDesc(['a']), ...Array.from({ length: 10 }, (_, i) => dataRow([`value-${i}`])), complete('SELECT 10'), ready());
  h.s(resp.subarray(0, 40)).gap(Direction.ToClient, 12).s(resp.subarray(52));
  const e = h.events[1]!;
  t.like(e, { sql: 'SELECT a FROM t', rowsReturned: 10, status: 'ok', truncated: true });
});

test('maxSqlLength also applies to Parse: the Execute record is truncated', (t) => {
  const h = new Harness({ options: { maxSqlLength: 10 } }).login();
  h.c(parse('', 'SELECT * FROM long_table_name'), bind('', '', []), execute(''), sync()).s(parseComplete(), bindComplete(), complete('SELECT 0'), ready());
  t.like(h.events[1]!, { sql: 'SELECT * F', truncated: true });
});

test('client-chosen startup parameter names stay plain attributes', (t) => {
  // JSON.parse makes "__proto__" an own key, as a StartupMessage can.
  const params = JSON.parse('{"user":"u","__proto__":"x","constructor":"y"}') as Record<string, string>;
  const h = new Harness().c(startup(params)).s(authOk(), ready());
  const a = h.events[0]!.attributes!;
  t.is(Object.getPrototypeOf(a), Object.prototype);
  t.true(Object.keys(a).includes('__proto__'));
  t.true(Object.keys(a).includes('constructor'));
});

test('regression: the audit object charset (gbk) survives a client_encoding ParameterStatus', (t) => {
  // The audit object says GBK; the connection claims UTF8 at startup and again in a ParameterStatus
  // after a SET (the MySQL SET NAMES bug: the negotiated charset must not win over the object's).
  const h = new Harness({ options: { charset: 'gbk' } }).c(startup({ user: 'u', database: 'd', client_encoding: 'UTF8' })).s(authOk(), paramStatus('client_encoding', 'UTF8'), ready());
  h.c(query("SET client_encoding = 'UTF8'")).s(complete('SET'), paramStatus('client_encoding', 'UTF8'), ready());
  // "SELECT '中文'" in GBK.
  const sql = Uint8Array.from([...new TextEncoder().encode("SELECT '"), 0xd6, 0xd0, 0xce, 0xc4, 0x27]);
  h.c(msg('Q', sql, Uint8Array.of(0))).s(complete('SELECT 1'), ready());
  h.c(parse('', 'SELECT $1'), bind('', '', [Uint8Array.of(0xd6, 0xd0)], [0]), execute(''), sync()).s(parseComplete(), bindComplete(), complete('SELECT 1'), ready());
  const ex = h.of('statement');
  t.is(ex[1]!.sql, "SELECT '中文'");
  t.deepEqual(ex[2]!.params, ['中']);
});

test('a server that answers the StartupMessage with an ErrorResponse: an error login record', (t) => {
  // The server's first byte is where an SSL answer could be: here it starts a typed message.
  const h = new Harness().c(startup({ user: 'u', database: 'd' })).s(errorMsg('53300', 'sorry, too many clients already', 'FATAL')).close();
  t.is(h.events.length, 1);
  t.like(h.events[0]!, { kind: 'login', status: 'error', sqlState: '53300', user: 'u' });
  t.is(h.session.stats.malformed, 0);
});

test('an SSLRequest the capture lost: the N answer is still recognised and the login decoded', (t) => {
  const h = new Harness().s(Uint8Array.of(0x4e)).login({ user: 'u', database: 'd' });
  h.c(query('SELECT 1')).s(complete('SELECT 1'), ready());
  t.like(h.events[0]!, { kind: 'login', status: 'ok', user: 'u' });
  t.like(h.events[1]!, { kind: 'statement', status: 'ok', sql: 'SELECT 1' });
  t.is(h.session.stats.malformed, 0);
});

test('SSLRequest accepted, then a real TLS handshake: the connection record carries what TLS shows in clear', async (t) => {
  const cert = makeCertificate('/CN=pg.example.test', 30);
  if (cert === undefined) return t.pass('openssl is missing: skipped');
  const tls = await recordTls(cert, { servername: 'pg.example.test' });
  for (const how of ['ssl', 'direct-tls'] as const) {
    const h = new Harness();
    if (how === 'ssl') h.c(sslRequest()).s(Uint8Array.of(0x53));
    for (const [dir, b] of tls) dir === Direction.ToServer ? h.c(b) : h.s(b);
    h.close();
    t.deepEqual(h.events.map((e) => e.kind), ['login', 'connection'], how);
    t.like(h.events[0]!, { tls: true, attributes: { encryption: how } });
    t.like(h.events[1]!, { tls: true, attributes: { undecoded: how }, tlsFacts: { sni: 'pg.example.test' } });
    t.is(h.session.stats.malformed, 0);
  }
});

test('binary int8 values are numbers while they are safe integers and BigInt beyond, at every boundary', (t) => {
  const int8 = (v: bigint): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, v);
    return b;
  };
  const INT8 = 20;
  const safe = [0n, 1n, -1n, 4294967295n, 4294967296n, -4294967296n, -4294967297n, 9007199254740991n, -9007199254740991n, 123456789012345n];
  for (const v of safe) t.is(binaryValue(int8(v), INT8, 'utf-8'), Number(v), String(v));
  const big = [9007199254740992n, -9007199254740992n, 9223372036854775807n, -9223372036854775808n, 18014398509481984n];
  for (const v of big) t.is(binaryValue(int8(v), INT8, 'utf-8'), v, String(v));
  // time of day (µs) is never beyond 2^53
  t.is(binaryValue(int8(45_296_789_000n), 1083, 'utf-8'), '12:34:56.789');
});

// Oracle decoder units: value formats, connect descriptors, detection,
// listener refusals, native encryption and TLS, hostile input.
import test from 'ava';
import { join } from 'node:path';
import { Direction, type AuditEvent } from '@dbtap/core';
import { Confidence, defaultSessionOptions, oracle } from '@dbtap/protocols';
import { descriptorValue } from '../src/oracle/decoder.js';
import { findSql, keyValues, Rep } from '../src/oracle/ttc.js';
import { countBinds } from '../src/oracle/binds.js';
import { describeV7, rowsAfter } from '../src/oracle/rows.js';
import { bindValue, decodeDate, decodeNumber, versionText } from '../src/oracle/values.js';
import { corpusDir, corpusTest } from '../../../test-support/corpus.js';
import { auditOracleCapture } from './helpers/oracle-pcap.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** A TNS packet with a 16-bit length: header (length, zero checksums, type, flags) + body. */
function tns(type: number, body: Uint8Array): Uint8Array {
  const p = new Uint8Array(8 + body.length);
  p[0] = p.length >> 8;
  p[1] = p.length & 0xff;
  p[4] = type;
  p.set(body, 8);
  return p;
}

/** A CONNECT carrying `descriptor` (version 314, SDU 8192, data at offset 58 as sqlplus 11g sends it). */
function connectPacket(descriptor: string): Uint8Array {
  const data = Buffer.from(descriptor, 'latin1');
  const body = new Uint8Array(50 + data.length);
  const v = new DataView(body.buffer);
  v.setUint16(0, 314);
  v.setUint16(2, 300);
  v.setUint16(6, 8192);
  v.setUint16(8, 32767);
  v.setUint16(16, data.length);
  v.setUint16(18, 58);
  body.set(data, 50);
  return tns(1, body);
}

function session(midStream = false): { s: ReturnType<typeof oracle.createSession>; events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  const s = oracle.createSession({
    flowId: 'f',
    client: { ip: '127.0.0.1', port: 40000 },
    server: { ip: '127.0.0.1', port: 1521 },
    midStream,
    options: { ...defaultSessionOptions, maxRows: 3 },
    emit: (e) => events.push(e),
  });
  return { s, events };
}

const descriptor = '(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=sales)(CID=(PROGRAM=sqlplus@app1)(HOST=app1)(USER=batch)))(ADDRESS=(PROTOCOL=TCP)(HOST=127.0.0.1)(PORT=1521)))';

test('NUMBER in base 100: integers, fractions, negatives, zero', (t) => {
  t.is(decodeNumber(hex('80')), '0');
  t.is(decodeNumber(hex('c1 02')), '1');
  t.is(decodeNumber(hex('c2 02 21')), '132'); // the TOAD capture's "select sid" row (frame 27)
  t.is(decodeNumber(hex('c3 02 01 01')), '10000');
  t.is(decodeNumber(hex('c1 02 33')), '1.5');
  t.is(decodeNumber(hex('c0 0d')), '0.12');
  t.is(decodeNumber(hex('3e 64 66')), '-1');
  t.is(decodeNumber(hex('3d 63 66')), '-200');
  t.is(decodeNumber(hex('3e 64 33 66')), '-1.5');
  t.is(decodeNumber(hex('c1 ff')), undefined);
});

test('DATE and TIMESTAMP in their 7- and 11-byte forms', (t) => {
  t.is(decodeDate(hex('78 70 09 1d 16 2b 20')), '2012-09-29 21:42:31'); // "xp..." in the Oracle-good describe (frame 26)
  t.is(decodeDate(hex('78 7c 0c 01 01 01 01 00 00 00 64')), '2024-12-01 00:00:00.0000001');
  t.is(decodeDate(hex('78 7c')), undefined);
});

test('bind values by type, NULL for an empty value', (t) => {
  const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
  t.is(bindValue(1, hex('53514c2a506c7573'), text), 'SQL*Plus');
  t.is(bindValue(2, hex('c2 02 21'), text), '132');
  t.is(bindValue(12, hex('78 70 09 1d 16 2b 20'), text), '2012-09-29 21:42:31');
  t.deepEqual(bindValue(23, hex('dead'), text), { type: 'raw', hex: 'dead' });
  t.deepEqual(bindValue(113, hex('0001'), text), { type: 'lob-locator', hex: '0001' });
  t.is(bindValue(1, new Uint8Array(0), text), null);
  t.is(bindValue(2, undefined, text), null);
  t.is(countBinds("BEGIN DBMS_APPLICATION_INFO.SET_MODULE(:1,NULL); END;"), 1);
  t.is(countBinds("select ':x' from t where a = :a and b = :B and c = :a -- :zz"), 2);
});

test('packed version numbers', (t) => {
  t.is(versionText(0x0b100700), '11.1.0.7.0'); // AUTH_VERSION_NO 185599744 in Oracle-good
  t.is(versionText(0), undefined);
});

test('connect descriptor values, CID section first', (t) => {
  t.is(descriptorValue(descriptor, 'SERVICE_NAME'), 'sales');
  t.is(descriptorValue(descriptor, 'HOST', 'CID'), 'app1');
  t.is(descriptorValue(descriptor, 'HOST'), 'app1');
  t.is(descriptorValue(descriptor, 'USER', 'CID'), 'batch');
  t.is(descriptorValue(descriptor, 'SID'), undefined);
});

test('detection: a CONNECT with a descriptor is High, an ACCEPT Medium, other protocols None', (t) => {
  t.is(oracle.detect(connectPacket(descriptor)), Confidence.High);
  t.is(oracle.detect(new Uint8Array(0), hex('0020 0000 0200 0000 013a 0841 2000 7fff 0100 0000 0020 6141 0000 0000 0000 0000')), Confidence.Medium);
  t.is(oracle.detect(Buffer.from('GET / HTTP/1.1\r\n\r\n')), Confidence.None);
  t.is(oracle.detect(hex('0000 0008 0400 0000 0000 0000')), Confidence.None); // a PostgreSQL SSLRequest
  t.is(oracle.detect(hex('16 0301 0200 0100')), Confidence.None);
});

test('a listener REFUSE is a failed login with the ORA- code, the service and the client program', (t) => {
  const { s, events } = session();
  s.data(Direction.ToServer, connectPacket(descriptor), 1000);
  // REFUSE body (packet-tns.c): user reason, system reason, u16 data length, the listener's descriptor.
  const text = Buffer.from('(DESCRIPTION=(TMP=)(VSNNUM=318767104)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))', 'latin1');
  const body = new Uint8Array(4 + text.length);
  body[0] = 0x22;
  body[2] = text.length >> 8;
  body[3] = text.length & 0xff;
  body.set(text, 4);
  s.data(Direction.ToClient, tns(4, body), 2000);
  s.close('fin', 3000);
  t.is(events.length, 1);
  t.like(events[0], {
    kind: 'login', status: 'error', command: 'CONNECT', errorCode: 'ORA-12514', database: 'sales', clientProgram: 'sqlplus@app1', clientHost: 'app1', osUser: 'batch',
    message: 'TNS:listener does not currently know of service requested in connect descriptor', durationUs: 1000,
  });
  t.is(events[0]!.attributes?.serviceName, 'sales');
});

test('a CONNECT that never authenticates is one login record with status unknown', (t) => {
  const { s, events } = session();
  s.data(Direction.ToServer, connectPacket(descriptor), 1000);
  s.close('rst', 2000);
  t.deepEqual(events.map((e) => [e.kind, e.status, e.command, e.database]), [['login', 'unknown', 'CONNECT', 'sales']]);
});

test('TCPS: a TLS ClientHello first is a login record marked tls, and nothing after it is decoded', (t) => {
  const { s, events } = session();
  s.data(Direction.ToServer, hex('16 0303 0050 01 00004c 0303'), 1000);
  s.data(Direction.ToServer, connectPacket(descriptor), 1100);
  s.close('fin', 2000);
  t.is(events.length, 2);
  t.like(events[0], { kind: 'login', tls: true, status: 'unknown' });
  t.is(events[0]!.attributes?.encryption, 'tls');
  t.like(events[1], { kind: 'connection', dbType: 'oracle', tls: true, closeReason: 'fin' }); // the ClientHello here is cut: no TLS facts
  t.true(s.stats.skippedBytes > 0);
});

test('hostile input: absurd lengths and garbage cost no exception and stay bounded', (t) => {
  const { s, events } = session(true);
  const junk = new Uint8Array(70000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + 7) & 0xff;
  s.data(Direction.ToServer, junk, 1);
  s.data(Direction.ToClient, hex('ffff ffff 0600 0000 0000 0376 01'), 2);
  s.data(Direction.ToServer, hex('7fff 0000 0600 0000 0000 035e 01'), 3);
  s.close('end-of-capture', 4);
  t.true(events.length <= 2);
  t.is(s.stats.events, events.length);
});

/** One column of the describe OCI 8 clients get for a bundled parse (see describeV7), little-endian. */
function v7Column(type: number, size: number, form: number, name: string): number[] {
  const le4 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24];
  const quoted = [...Buffer.from(name.replace(/'/g, "''"), 'latin1'), 0x22];
  return [
    type, 0x80, 0, 0, ...le4(size), ...le4(0), ...le4(0), ...le4(0), 0, 0, form === 0 ? 0 : 0x69, form === 0 ? 0 : 0x03, form, ...le4(size), 1, name.length,
    ...le4(0), ...le4(0), ...le4(0), quoted.length, 0, quoted.length, ...quoted,
  ];
}

test('OCI 8 describe: several columns, quoted names, and what does not fit the layout gives no columns', (t) => {
  const cols = [...v7Column(2, 22, 0, 'ID'), ...v7Column(1, 30, 1, "'A'"), ...v7Column(12, 7, 0, 'CREATED')];
  const msg = Uint8Array.from([0x08, 1, 0, 3, 0, ...cols, 0x04]);
  const d = describeV7(msg, 0);
  t.deepEqual(d?.columns.map((c) => [c.name, c.type, c.form]), [['ID', 2, 0], ["'A'", 1, 1], ['CREATED', 12, 0]]);
  t.is(d?.next, msg.length - 1);
  // Every cut of the message, and a name length that disagrees with the name, give nothing.
  for (let n = 0; n < msg.length - 1; n++) t.is(describeV7(msg.subarray(0, n), 0), undefined, `cut at ${n}`);
  const wrong = msg.slice();
  wrong[5 + 30] = 3; // "ID" announced as 3 characters
  t.is(describeV7(wrong, 0), undefined);
  // Rows of these columns, each ending with the zero u16 of OCI 8 rows; a row whose DATE is malformed is left out.
  const row = (id: number[], a: string, date: number[]): number[] => [0x07, id.length, ...id, a.length, ...Buffer.from(a), date.length, ...date, 0, 0];
  const answer = Uint8Array.from([
    ...row([0xc1, 0x02], 'x', [120, 126, 12, 2, 1, 1, 1]),
    ...row([0xc1, 0x03], 'y', [120, 126, 13, 2, 1, 1, 1]), // month 13
    ...row([0xc1, 0x04], '', [120, 126, 12, 4, 1, 1, 1]),
    0x04,
  ]);
  const rows = rowsAfter(answer, 0, d!.columns.map((c) => c.type), 10, true);
  t.deepEqual(rows.map((r) => r.map((v) => (v === undefined ? null : Buffer.from(v).toString('hex')))), [
    ['c102', '78', '787e0c02010101'],
    ['c104', '', '787e0c04010101'],
  ]);
  // Without the trailer flag (the 11g layout) the same bytes are no rows.
  t.is(rowsAfter(answer, 0, d!.columns.map((c) => c.type), 10).length, 0);
});

test('row scan: a few failed candidates with chunked values are passed over, more than 64 end the scan', (t) => {
  // "07 fe 01 41 00 99": a chunked value "A" not followed by the row's end; then a real OCI 8 row "07 01 42 00 00" and a status.
  const answer = (misses: number): Uint8Array =>
    Uint8Array.from([...Array.from({ length: misses }, () => [0x07, 0xfe, 0x01, 0x41, 0x00, 0x99]).flat(), 0x07, 0x01, 0x42, 0x00, 0x00, 0x04]);
  const text = (rows: (Uint8Array | undefined)[][]): string[][] => rows.map((r) => r.map((v) => Buffer.from(v ?? []).toString('latin1')));
  t.deepEqual(text(rowsAfter(answer(10), 0, [1], 3, true)), [['B']]);
  t.deepEqual(text(rowsAfter(answer(64), 0, [1], 3, true)), [['B']]);
  t.deepEqual(rowsAfter(answer(65), 0, [1], 3, true), []);
});

test('key/value lists: representation learnt from the length field, secrets dropped, SQL found by shape', (t) => {
  // The AUTH phase 1 of Oracle-good (frame 18), from the user name on: native little-endian ub4.
  const b = hex('08 6f70656e77616c6c 0d000000 0d 415554485f5445524d494e414c 05000000 05 7074732f33 00000000 0c000000 0c 415554485f534553534b4559 04000000 04 41424344 00000000');
  const kv = keyValues(b, 0, b.length)!;
  t.is(kv.rep, Rep.Le);
  t.is(kv.start, 9);
  t.is(kv.pairs.get('AUTH_TERMINAL'), 'pts/3');
  t.true(kv.pairs.has('AUTH_SESSKEY'));
  t.is(kv.pairs.get('AUTH_SESSKEY'), undefined);
  // A 64-byte chunked text: 0xFE, 0x40 + 64 bytes, 0x05 + 5 bytes, 0x00.
  const sql = 'select sid from V$SESSION  where audsid = ( select USERENV(\'SESSIONID\') from dual )';
  const s = Buffer.from(sql, 'latin1');
  const chunked = new Uint8Array([0, 0, 0, 0xfe, 0x40, ...s.subarray(0, 64), s.length - 64, ...s.subarray(64), 0]);
  t.is(Buffer.from(findSql(chunked, 0)!.bytes).toString('latin1'), sql);
});

corpusTest('native encryption: an ANO answer that turns encryption on ends decoding with a login record that says so', async (t) => {
  const r = await auditOracleCapture(join(corpusDir, 'oracle', 'johnsamples_Oracle-good.pcap'));
  const chunks = r.flows[0]!.chunks.map(([d, b]) => [d, b.slice()] as [Direction, Uint8Array]);
  // Chunk 5 is the server's ANO answer (frame 10); its encryption service (type 2) answers
  // "00 01 00 02 00": one byte, algorithm 0 (none). Set it to 17 as a server requiring encryption would.
  const ano = Buffer.from(chunks[5]![1]);
  const at = ano.indexOf(Buffer.from('000200020000000000040005', 'hex'));
  t.true(at > 0);
  const alg = at + 20; // service header 8, version sub-packet 4 + 4, algorithm sub-packet header 4
  t.is(ano[alg], 0);
  chunks[5]![1][alg] = 17;
  const { s, events } = session();
  let ts = 1;
  for (const [d, b] of chunks) s.data(d, b, ts++);
  s.close('fin', ts);
  t.is(events.length, 2);
  t.like(events[0], { kind: 'login', command: 'ANO', tls: true, status: 'unknown', database: 'orcl', clientProgram: 'sqlplus@godbox', osUser: 'dsk' });
  // The rest is opaque: one connection record, carrying what was visible in clear.
  t.like(events[1], { kind: 'connection', dbType: 'oracle', tls: true, clientProgram: 'sqlplus@godbox', osUser: 'dsk' });
  t.is(events[1]!.tlsFacts, undefined, 'native encryption is not TLS');
  t.like(events[0]!.attributes, { encryption: 'ano:17', serviceName: 'orcl', tnsVersion: '314', serverPlatform: undefined });
  t.true(s.stats.skippedBytes > 10000);
});

/** A TTC ub2/ub4/ub8 as thin drivers write it: a length byte and the big-endian magnitude. */
function ub(v: number): number[] {
  const out: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) out.unshift(x & 0xff);
  return [out.length, ...out];
}

/** A DATA packet with a 32-bit length (TNS 315+). */
function data32(payload: number[]): Uint8Array {
  const p = new Uint8Array(10 + payload.length);
  new DataView(p.buffer).setUint32(0, p.length);
  p[4] = 6;
  p.set(payload, 10);
  return p;
}

/**
 * An OALL8 that parses and executes `sql` with binds, in the field order of
 * node-oracledb's writeExecuteMessage (execute.js) at TTC field version 12.2
 * ext 1; `meta` is the bind metadata, `row` the row-data message's values.
 * With a `cursor` the statement was parsed before: no SQL text, no parse.
 */
function thinAll8(seq: number, sql: string, meta: number[], row: number[], cursor = 0): number[] {
  const sqlBytes = cursor === 0 ? [...Buffer.from(sql, 'latin1')] : [];
  const options = 0x8000 | 0x40 | 0x20 | 0x08 | (cursor === 0 ? 0x01 : 0); // not PL/SQL, fetch, execute, bind, parse
  const text = cursor !== 0 ? [] : sql.length > 252 ? [0xfe, ...ub(sql.length), ...sqlBytes, ...ub(0)] : [sql.length, ...sqlBytes]; // writeBytesWithLength
  return [
    0x03, 0x5e, seq, ...ub(options), ...ub(cursor), cursor === 0 ? 1 : 0, ...ub(sqlBytes.length), 1, ...ub(13), 0, 0, 0, ...ub(50), ...ub(0x7fffffff), 1, ...ub(countBinds(sql)),
    0, 0, 0, 0, 0, 0, ...ub(0), ...ub(0), 0, 1, 0, ...ub(0), 0, ...ub(0), ...ub(0), 0, ...ub(0), 0, 0, ...ub(0), 0, ...ub(0), 0, 0, ...ub(0),
    ...text,
    ...ub(cursor === 0 ? 1 : 0), ...ub(0), ...Array.from({ length: 11 }, () => 0), // al8i4[0..12]
    ...meta,
    0x07, ...row,
  ];
}

/** Bind metadata (writeColumnMetadata): type, flags, precision, scale, buffer size, max array 0, cont flags, OID, version, charset, form, LOB prefetch, column id. */
function thinBindMeta(type: number, size: number, charset: number, form: number, cont = 0): number[] {
  return [type, 0x01, 0, 0, ...ub(size), ...ub(0), ...ub(cont), ...ub(0), ...ub(0), ...ub(charset), form, ...ub(0), ...ub(0)];
}

/** End of call: status 0x04 with call status 1, seq, row number, error 0, cursor. */
const thinStatus = (seq: number, rows: number, cursor: number): Uint8Array => data32([0x04, ...ub(1), ...ub(seq), ...ub(rows), ...ub(0), ...ub(0), ...ub(0), ...ub(cursor), 0, 0, 0, 0, 0, 0]);

test('thin-driver OALL8 (length-prefixed integers, 1-byte pointers): a SQL text over 252 bytes in ub4 chunks, its bind, then a re-execute of the cursor', (t) => {
  const sql = `SELECT id, owner, balance FROM accounts WHERE owner = :owner ${'/* padding */ '.repeat(18)}ORDER BY id`;
  t.true(sql.length > 252);
  // Bind metadata: VARCHAR, buffer 4000, charset 873, form 1.
  const call = thinAll8(0x05, sql, thinBindMeta(1, 4000, 873, 1), [5, ...Buffer.from('alice')]);
  const { s, events } = session(true);
  s.data(Direction.ToServer, data32(call), 1000);
  // End of call: status 0x04 with call status 1, seq 1, row number 1, error 0, cursor 5.
  s.data(Direction.ToClient, thinStatus(1, 1, 5), 2000);
  // Re-execute (0x04): cursor, iterations, flags, flags, then the bind row.
  s.data(Direction.ToServer, data32([0x03, 0x04, 0x06, ...ub(5), ...ub(1), ...ub(0x20), ...ub(0), 0x07, 3, ...Buffer.from('bob')]), 3000);
  s.data(Direction.ToClient, thinStatus(2, 2, 5), 4000);
  s.close('fin', 5000);
  // Picked up mid-session: the 32-bit lengths are found by the resync, and the FIN after it is the logout.
  t.deepEqual(events.map((e) => [e.command, e.sql === sql, e.statementId, e.status]), [['OALL8', true, '5', 'ok'], ['OEXEC', true, '5', 'ok'], ['close', false, undefined, 'ok']]);
  t.deepEqual(events[0]!.params, ['alice']);
  // The re-execute sends the values only; their types come from the metadata of the OALL8 that parsed cursor 5.
  t.deepEqual(events[1]!.params, ['bob']);
  t.is(events[0]!.rowsReturned, 1);
  t.is(events[0]!.midSession, true);
});

test('thin-driver binds by type (NUMBER, VARCHAR2, DATE, CLOB locator, NULL), kept with the cursor for its re-executions', (t) => {
  const sql = 'INSERT INTO docs (id, name, created, body, note) VALUES (:id, :name, :created, :body, :note)';
  const meta = [
    ...thinBindMeta(2, 22, 0, 0), // NUMBER
    ...thinBindMeta(1, 4000, 873, 1), // VARCHAR2
    ...thinBindMeta(12, 7, 0, 0), // DATE
    ...thinBindMeta(112, 0x7fffffff, 873, 1, 0x2000000), // CLOB, LOB prefetch flag
    ...thinBindMeta(1, 4000, 873, 1), // VARCHAR2, NULL
  ];
  const locator = [0x00, 0x70, 0x00, 0x01, 0x01, 0x0c, 0x00, 0x00];
  // writeBindParamsColumn: NUMBER 42 = c1 2b; "report"; DATE 2026-12-02 01:02:03; the locator behind its ub4 length; NULL = 00.
  const row = [2, 0xc1, 0x2b, 6, ...Buffer.from('report'), 7, 120, 126, 12, 2, 2, 3, 4, ...ub(locator.length), locator.length, ...locator, 0];
  const { s, events } = session(true);
  s.data(Direction.ToServer, data32(thinAll8(0x05, sql, meta, row)), 1000);
  s.data(Direction.ToClient, thinStatus(1, 1, 7), 2000);
  // Re-execute of cursor 7 with other values (a NULL number, an empty-locator CLOB, a note).
  const again = [0, 2, ...Buffer.from('v2'), 7, 120, 126, 12, 3, 1, 1, 1, ...ub(0), 4, ...Buffer.from('done')];
  s.data(Direction.ToServer, data32([0x03, 0x04, 0x06, ...ub(7), ...ub(1), ...ub(0), ...ub(0), 0x07, ...again]), 3000);
  s.data(Direction.ToClient, thinStatus(2, 1, 7), 4000);
  // A re-execute whose row is short of the metadata (as when out binds are not sent again): no params, the SQL still known.
  s.data(Direction.ToServer, data32([0x03, 0x04, 0x07, ...ub(7), ...ub(1), ...ub(0), ...ub(0), 0x07, 2, 0xc1, 0x02]), 5000);
  s.data(Direction.ToClient, thinStatus(3, 1, 7), 6000);
  s.close('fin', 7000);
  const stmts = events.filter((e) => e.kind === 'statement');
  t.deepEqual(stmts.map((e) => [e.command, e.sql, e.statementId, e.affectedRows]), [
    ['OALL8', sql, '7', 1],
    ['OEXEC', sql, '7', 1],
    ['OEXEC', sql, '7', 1],
  ]);
  t.deepEqual(stmts[0]!.params, ['42', 'report', '2026-12-02 01:02:03', { type: 'lob-locator', hex: '00700001010c0000' }, null]);
  t.deepEqual(stmts[1]!.params, [null, 'v2', '2026-12-03 00:00:00', null, 'done']);
  t.is(stmts[2]!.params, undefined);
});

test('thin-driver full execute of a parsed cursor (OALL8 without its SQL): the binds with their metadata, the SQL from the cursor', (t) => {
  const sql = 'UPDATE accounts SET balance = :b WHERE id = :id';
  const meta = [...thinBindMeta(2, 22, 0, 0), ...thinBindMeta(2, 22, 0, 0)];
  const { s, events } = session(true);
  s.data(Direction.ToServer, data32(thinAll8(0x05, sql, meta, [2, 0xc2, 0x02, 2, 0xc1, 0x08])), 1000); // 100, 7
  s.data(Direction.ToClient, thinStatus(1, 1, 9), 2000);
  s.data(Direction.ToServer, data32(thinAll8(0x06, sql, meta, [3, 0xc2, 0x02, 0x33, 2, 0xc1, 0x09], 9)), 3000); // 150, 8
  s.data(Direction.ToClient, thinStatus(2, 1, 9), 4000);
  // The same call with one bind fewer in the row than the metadata announces: no params.
  s.data(Direction.ToServer, data32(thinAll8(0x07, sql, meta, [3, 0xc2, 0x02, 0x33], 9)), 5000);
  s.data(Direction.ToClient, thinStatus(3, 1, 9), 6000);
  s.close('fin', 7000);
  const stmts = events.filter((e) => e.kind === 'statement');
  t.deepEqual(stmts.map((e) => [e.command, e.sql, e.statementId, e.affectedRows, e.params]), [
    ['OALL8', sql, '9', 1, ['100', '7']],
    ['OALL8', sql, '9', 1, ['150', '8']],
    ['OALL8', sql, '9', 1, undefined],
  ]);
});

test('a REDIRECT is kept on the login record of a connection that never authenticates', (t) => {
  const { s, events } = session();
  s.data(Direction.ToServer, connectPacket(descriptor), 1000);
  // REDIRECT body (packet-tns.c): u16 data length, the address to connect to instead.
  const to = Buffer.from('(ADDRESS=(PROTOCOL=TCP)(HOST=127.0.0.1)(PORT=1530))', 'latin1');
  s.data(Direction.ToClient, tns(5, Uint8Array.from([to.length >> 8, to.length & 0xff, ...to])), 1500);
  s.close('fin', 2000);
  t.is(events.length, 1);
  t.like(events[0], { kind: 'login', status: 'unknown', command: 'CONNECT', database: 'sales' });
  t.is(events[0]!.attributes?.redirect, '(ADDRESS=(PROTOCOL=TCP)(HOST=127.0.0.1)(PORT=1530))');
});

corpusTest('native checksumming alone: decoding goes on and the login record says so', async (t) => {
  const r = await auditOracleCapture(join(corpusDir, 'oracle', 'johnsamples_Oracle-good.pcap'));
  const chunks = r.flows[0]!.chunks.map(([d, b]) => [d, b.slice()] as [Direction, Uint8Array]);
  // The data integrity service (type 3) of the same ANO answer: "00 01 00 02 00" -> algorithm 3.
  const ano = Buffer.from(chunks[5]![1]);
  const at = ano.indexOf(Buffer.from('000300020000000000040005', 'hex'));
  t.true(at > 0);
  chunks[5]![1][at + 20] = 3;
  const { s, events } = session();
  let ts = 1;
  for (const [d, b] of chunks) s.data(d, b, ts++);
  s.close('fin', ts);
  t.like(events[0], { kind: 'login', command: 'OAUTH', status: 'ok', user: 'openwall' });
  t.is(events[0]!.attributes?.integrity, 'ano:3');
  t.is(events[0]!.tls, undefined);
  t.true(events.some((e) => e.sql === 'SELECT USER FROM DUAL'));
});

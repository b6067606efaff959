// DRDA unit layer: detection, EBCDIC and packed decimals on bytes from real
// captures, a DSS continued past 32 KiB (frame builder), a capture picked up
// mid-session, TLS from the first byte, and hostile input.
import test from 'ava';
import { join } from 'node:path';
import { Direction, type AuditEvent } from '@dbtap/core';
import { Confidence, drda, mysql, postgres } from '@dbtap/protocols';
import { chunksOf, fixturesDir, runChunks } from './helpers/drda.js';
import { decodeEbcdic, ddmText, packedDecimal } from '../src/drda/values.js';

const ij = chunksOf(join(fixturesDir, 'drda-derby-ij.pcap'));
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

test('detect: EXCSAT opens a connection (high), a server DSS or another command is medium, others none', (t) => {
  t.is(drda.detect(ij[0]![1]), Confidence.High);
  t.is(drda.detect(new Uint8Array(0), ij[1]![1]), Confidence.Medium);
  const later = ij.find(([d, b]) => d === Direction.ToServer && b[8] === 0x20 && b[9] === 0x0a)!; // EXCSQLIMM
  t.is(drda.detect(later[1]), Confidence.Medium);
  t.is(drda.detect(hex('16030100a5010000a10303')), Confidence.None); // a TLS ClientHello
  t.is(drda.detect(hex('0000000804d2162f')), Confidence.None); // a PostgreSQL SSLRequest
  t.is(drda.detect(Buffer.from('GET / HTTP/1.1\r\n')), Confidence.None);
  // The other decoders do not claim DRDA.
  t.true(mysql.detect(ij[0]![1], ij[1]![1]) < Confidence.Medium);
  t.true(postgres.detect(ij[0]![1], ij[1]![1]) < Confidence.Medium);
});

test('EBCDIC: Derby EXCSAT names, code pages 037 and 500, and ASCII left alone', (t) => {
  // From the Derby capture (EXCSAT EXTNAM, SRVRLSLV): 84 85 99 82 a8 84 95 83 94 81 89 95 = "derbydncmain".
  t.is(ddmText(hex('8485 9982 a884 9583 9481 8995')), 'derbydncmain');
  t.is(ddmText(hex('c4d5c3f1f0f1f4f0 61 f1f0 4b f1f4 4b f2 4b f0')), 'DNC10140/10.14.2.0');
  // The DB2 capture's server class QDB2/LINUX, padded with EBCDIC blanks (0x40).
  t.is(ddmText(hex('d8c4c2f2 61 d3c9d5e4e7 4040')), 'QDB2/LINUX');
  // 037 and 500 differ in seven code points: brackets and the exclamation mark among them.
  t.is(decodeEbcdic(hex('ba c1 bb 5a')), '[A]!');
  t.is(decodeEbcdic(hex('4a c1 5a 4f'), true), '[A]!');
  // Derby sends TYPDEFNAM and PRDID in ASCII: 'QTDSQLASC'.
  t.is(ddmText(Buffer.from('QTDSQLASC')), 'QTDSQLASC');
});

test('packed decimals (DECIMAL): digits, sign nibble, scale', (t) => {
  // 12.34 as DECIMAL(10,2) in Derby's QRYDTA (six bytes: eleven digits and the sign).
  t.is(packedDecimal(hex('000000 01234c'), 2), '12.34');
  t.is(packedDecimal(hex('0000 00500d'), 2), '-5.00');
  t.is(packedDecimal(hex('7c'), 0), '7');
  t.is(packedDecimal(hex('00 1d'), 3), '-0.001');
});

/** A DSS whose payload `body` is cut into 32 KiB segments (DRDA Vol. 1, DSS continuation). */
function continued(fmt: number, corr: number, body: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const first = Math.min(body.length, 0x7fff - 6);
  const more = body.length > first;
  parts.push(hex(((more ? 0x8000 : 0) | (first + 6)).toString(16).padStart(4, '0') + 'd0' + fmt.toString(16).padStart(2, '0') + corr.toString(16).padStart(4, '0')), body.subarray(0, first));
  for (let at = first; at < body.length; ) {
    const n = Math.min(body.length - at, 0x7fff - 2);
    const last = at + n >= body.length;
    parts.push(hex(((last ? 0 : 0x8000) | (n + 2)).toString(16).padStart(4, '0')), body.subarray(at, at + n));
    at += n;
  }
  return Buffer.concat(parts);
}

test('a statement of 100,000 characters in an SQLSTT continued over four DSS segments, with an extended DDM length', (t) => {
  const sql = `select '${'x'.repeat(100_000 - 10)}' t`;
  const text = Buffer.from(sql);
  // SQLSTT: ll 0x8008 (4 length bytes follow), cp 2414, length, then nullable mixed string (00, u32 length, text) and a null single-byte string (ff).
  const sqlstt = Buffer.concat([hex('8008 2414'), hex((text.length + 6).toString(16).padStart(8, '0')), hex('00'), hex(text.length.toString(16).padStart(8, '0')), text, hex('ff')]);
  // EXCSQLIMM with the PKGNAMCSN of the Derby capture, chained (same correlator) to its SQLSTT, then RDBCMM.
  const login = ij.slice(0, 4);
  const excsqlimm = ij.find(([d, b]) => d === Direction.ToServer && b[8] === 0x20 && b[9] === 0x0a)![1];
  const cmdLen = (excsqlimm[0]! << 8) | excsqlimm[1]!;
  const cmd = excsqlimm.slice(0, cmdLen);
  const stream = Buffer.concat([cmd, continued(0x03, 1, sqlstt)]);
  // The reply: Derby's SQLCARD (success, 0 rows) from the capture.
  // SQLCARD: 00 | SQLCODE 0 | SQLSTATE blanks | SQLERRPROC CSS10140 | 00 SQLERRD x6, SQLWARN x11, three empty strings | ff.
  const card = `00 00000000 ${'20'.repeat(5)} ${Buffer.from('CSS10140').toString('hex')} 00 ${'00'.repeat(24)} ${'20'.repeat(11)} 000000000000 ff`;
  const reply = hex(`0047 d003 0001 0041 2408 ${card}`);
  const events = runChunks([...login, [Direction.ToServer, stream], [Direction.ToClient, reply]]);
  const st = events.find((e) => e.kind === 'statement')!;
  t.is(st.sql, sql);
  t.is(st.status, 'ok');
  t.is(st.bytesIn, stream.length);
  // Split anywhere, the same.
  for (const k of [1, 7, 32767, 32768, 65530, 65540, stream.length - 3]) {
    const again = runChunks([...login, [Direction.ToServer, stream.subarray(0, k)], [Direction.ToServer, stream.subarray(k)], [Direction.ToClient, reply]]);
    t.is(again.find((e) => e.kind === 'statement')?.sql, sql, `split at ${k}`);
  }
});

test('a capture that starts mid-session: later statements decode, marked midSession, no login', (t) => {
  const start = ij.findIndex(([d, b]) => d === Direction.ToServer && Buffer.from(b).includes(Buffer.from('select id, name, price from fixture')));
  const events = runChunks(ij.slice(start), { maxRows: 5 }, true);
  t.false(events.some((e) => e.kind === 'login'));
  const q = events.find((e) => e.sql === 'select id, name, price from fixture order by id');
  t.truthy(q, JSON.stringify(events.map((e: AuditEvent) => e.sql)));
  // The PRPSQLSTT that named the section is in the capture; the rows decode without the login's TYPDEFNAM.
  t.is(q!.rowsReturned, 3);
  t.true(events.every((e) => e.midSession === true));
  // Starting inside a DSS: the framer finds the next one.
  const cut = runChunks([[Direction.ToServer, ij[start]![1].subarray(5)], ...ij.slice(start + 1)], {}, true);
  t.true(cut.some((e) => e.sql === 'drop table fixture' && e.status === 'ok'));
});

test('TLS from the first byte: one login record that says so, nothing decoded', (t) => {
  const hello = hex('16030100a5010000a10303');
  const events = runChunks([[Direction.ToServer, hello], [Direction.ToClient, hex('160303007a020000760303')], [Direction.ToServer, ij[0]![1]]]);
  t.is(events.length, 2);
  t.like(events[0], { kind: 'login', tls: true, status: 'unknown' });
  t.like(events[1], { kind: 'connection', tls: true, status: 'ok', dbType: 'drda' }); // the ClientHello here is cut: no TLS facts
});

test('hostile input: a flood of garbage and absurd lengths costs no records and no exception', (t) => {
  let s = 12345;
  const junk = new Uint8Array(1 << 20).map(() => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
  // DSS headers that claim 32 KiB continuations forever.
  const forever = Buffer.concat(Array.from({ length: 64 }, () => hex('ffffd0010001' + '00'.repeat(32761))));
  const events = runChunks([[Direction.ToServer, junk], [Direction.ToClient, junk], [Direction.ToServer, forever]], {}, true);
  t.deepEqual(events.filter((e) => e.kind !== 'logout'), []);
  // The Derby session after garbage still decodes.
  const after = runChunks([[Direction.ToServer, junk.subarray(0, 3000)], ...ij], {}, true);
  t.true(after.some((e) => e.sql === 'drop table fixture' && e.status === 'ok'));
});

test('a refused password: one failed login with SECCHKCD, the password nowhere in the record', (t) => {
  const events = runChunks(chunksOf(join(fixturesDir, 'drda-derby-badpw.pcap')));
  t.is(events.length, 1);
  t.like(events[0], { kind: 'login', status: 'error', user: 'app', database: 'fx', errorCode: 'SECCHKCD 0x13', sqlState: '08004', dbProduct: 'derby' });
  t.false(JSON.stringify(events).includes('wrong'));
});

test('a reply cut by a gap: its statement is recorded, truncated, and the next one decodes', (t) => {
  const q = ij.findIndex(([d, b]) => d === Direction.ToServer && Buffer.from(b).includes(Buffer.from('select id, name, price from fixture')));
  const reply = ij[q + 1]!;
  t.is(reply[0], Direction.ToClient);
  const cut = Math.floor(reply[1].length / 2);
  const damaged: [Direction, Uint8Array | number][] = [...ij.slice(0, q + 1), [Direction.ToClient, reply[1].subarray(0, cut)], [Direction.ToClient, reply[1].length - cut], ...ij.slice(q + 2)];
  const events: AuditEvent[] = [];
  const s = drda.createSession({ flowId: 'f', client: { ip: '127.0.0.1', port: 1 }, server: { ip: '127.0.0.1', port: 2 }, midStream: false, options: { maxRows: 0, maxSqlLength: 1 << 20, maxMessageBytes: 1 << 20 }, emit: (e) => events.push(e) });
  let ts = 0;
  for (const [d, b] of damaged) typeof b === 'number' ? s.gap(d, b, ++ts) : s.data(d, b, ++ts);
  s.close('fin', ++ts);
  const rec = events.find((e) => e.sql === 'select id, name, price from fixture order by id');
  t.truthy(rec);
  t.true(rec!.truncated);
  t.true(events.some((e) => e.sql === 'drop table fixture' && e.status === 'ok'));
});

// ---- frame builder: a DB2 for z/OS-like conversation in EBCDIC ------------------

const u16 = (n: number): string => n.toString(16).padStart(4, '0');
/** A DDM object (or parameter): length, code point, body. */
const ddm = (cp: number, ...body: Uint8Array[]): Uint8Array => {
  const b = Buffer.concat(body);
  return Buffer.concat([hex(u16(b.length + 4) + u16(cp)), b]);
};
/** A DSS: length, D0, format, correlation id, one DDM object. */
const dss = (fmt: number, corr: number, obj: Uint8Array): Uint8Array => Buffer.concat([hex(u16(obj.length + 6) + 'd0' + fmt.toString(16).padStart(2, '0') + u16(corr)), obj]);
/** EBCDIC 037 bytes of ASCII text (the inverse of the table, for the builder only). */
const ebcdic = (s: string): Uint8Array => {
  const inv = new Map<string, number>();
  for (let i = 0; i < 256; i++) inv.set(decodeEbcdic(Uint8Array.of(i)), i);
  return Uint8Array.from([...s].map((ch) => inv.get(ch)!));
};
const n16 = (n: number): Uint8Array => hex(u16(n));

test('EBCDIC end to end: DDM names, TYPDEFOVR CCSID 37, an SQL statement and its error in EBCDIC', (t) => {
  const pkg = Buffer.concat([ebcdic('DSNDB01'.padEnd(18)), ebcdic('NULLID'.padEnd(18)), ebcdic('SYSSH200'.padEnd(18)), hex('5359534c564c3031'), n16(1)]);
  const sql = "SELECT NAME FROM SYSIBM.SYSTABLES WHERE CREATOR = 'X' AND NAME LIKE '[A]%'";
  const client = [
    dss(0x41, 1, ddm(0x1041, ddm(0x115e, ebcdic('PAYROLL')), ddm(0x116d, ebcdic('ZHOST1')), ddm(0x115a, ebcdic('DSN11015')))),
    dss(0x01, 2, ddm(0x106d, ddm(0x11a2, n16(3)), ddm(0x2110, ebcdic('DSNDB01')))),
    dss(0x41, 1, ddm(0x106e, ddm(0x11a2, n16(3)), ddm(0x2110, ebcdic('DSNDB01')), ddm(0x11a0, ebcdic('CICSUSR')), ddm(0x11a1, ebcdic('S3CRET')))),
    dss(0x01, 2, ddm(0x2001, ddm(0x2110, ebcdic('DSNDB01')), ddm(0x112e, ebcdic('DSN11015')), ddm(0x002f, ebcdic('QTDSQL370')), ddm(0x0035, ddm(0x119c, n16(37)), ddm(0x119e, n16(37))))),
    Buffer.concat([
      dss(0x51, 1, ddm(0x200a, ddm(0x2113, pkg))),
      // SQLSTT: nullable mixed string (4-byte length) in CCSID 37, single-byte string null.
      dss(0x03, 1, ddm(0x2414, hex('00'), hex(ebcdic(sql).length.toString(16).padStart(8, '0')), ebcdic(sql), hex('ff'))),
    ]),
  ];
  // Replies: EXCSATRD, ACCSECRD, SECCHKRM, ACCRDBRM; then SQLCARD -204 42704 with an EBCDIC token.
  const card = Buffer.concat([hex('00 ffffff34'), ebcdic('42704'), ebcdic('DSNXOTL '), hex('00'), hex('00'.repeat(24)), ebcdic(' '.repeat(11)), n16(0), n16(9), ebcdic('X.NOSUCH1'), n16(0), hex('ff')]);
  const server = [
    Buffer.concat([
      dss(0x42, 1, ddm(0x1443, ddm(0x115a, ebcdic('DSN11015')), ddm(0x1147, ebcdic('QDB2')), ddm(0x116d, ebcdic('DB2PROD')))),
      dss(0x02, 2, ddm(0x14ac, ddm(0x11a2, n16(3)))),
    ]),
    Buffer.concat([dss(0x42, 1, ddm(0x1219, ddm(0x1149, n16(0)), ddm(0x11a4, Uint8Array.of(0)))), dss(0x02, 2, ddm(0x2201, ddm(0x1149, n16(0)), ddm(0x112e, ebcdic('DSN11015')), ddm(0x002f, ebcdic('QTDSQL370')), ddm(0x0035, ddm(0x119c, n16(37)))))]),
    dss(0x03, 1, ddm(0x2408, card)),
  ];
  const events = runChunks([
    [Direction.ToServer, client[0]!],
    [Direction.ToServer, client[1]!],
    [Direction.ToClient, server[0]!],
    [Direction.ToServer, client[2]!],
    [Direction.ToServer, client[3]!],
    [Direction.ToClient, server[1]!],
    [Direction.ToServer, client[4]!],
    [Direction.ToClient, server[2]!],
  ]);
  t.like(events[0], { kind: 'login', status: 'ok', user: 'CICSUSR', database: 'DSNDB01', clientProgram: 'PAYROLL', clientHost: 'ZHOST1', serverVersion: 'DSN11015', dbProduct: 'db2-zos' });
  t.like(events[0]!.attributes, { clientCcsids: '37/37/-', serverCcsids: '37/-/-' });
  t.like(events[1], { kind: 'statement', command: 'EXCSQLIMM', sql, status: 'error', errorCode: -204, sqlState: '42704', message: 'X.NOSUCH1' });
  t.false(JSON.stringify(events).includes('S3CRET'));
});

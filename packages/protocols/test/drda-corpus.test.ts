// The real IBM DB2 capture of the corpus (ntop/nDPI drda_db2.pcap: a JCC
// client against DB2 8.2 on Linux, port 50000) through the whole pipeline,
// checked against what tshark's DRDA dissector sees in it.
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { auditCaptureFile } from '@dbtap/server';
import { corpusDir, corpusTest, tshark, tsharkTest } from '../../../test-support/corpus.js';

const db2 = join(corpusDir, 'drda', 'ndpi_drda_db2.pcap');

const shape = (e: AuditEvent): unknown[] => [e.kind, e.command ?? '', e.status, e.sql ?? e.statementId ?? '', e.rowsReturned ?? ''];

corpusTest('DB2: login, SET statements, queries with rows, a catalog call and commits', async (t) => {
  const { events, summary } = await auditCaptureFile(db2, { maxRows: 2 });
  t.is(summary.flowsByProtocol.drda, 1, 'detected by content');
  t.deepEqual(events.map(shape), [
    ['login', '', 'ok', '', ''],
    ['statement', 'EXCSQLSET', 'ok', "SET CURRENT SCHEMA = 'SC'", ''],
    ['statement', 'EXCSQLSET', 'ok', "SET CLIENT USERID'cffdo1'", ''],
    ['statement', 'EXCSQLSET', 'ok', "SET CLIENT WRKSTNNAME'MyPC-Hostname'", ''],
    ['statement', 'EXCSQLSET', 'ok', "SET CLIENT ACCTNG'JCC02100MyPC-Hostname                         cffdo1  ',X'00'", ''],
    ['statement', 'OPNQRY', 'ok', 'select current schema from sysibm.sysdummy1', 1],
    ['statement', 'RDBCMM', 'ok', 'COMMIT', ''],
    // A static section of JCC's catalog package (no SQL text on the wire), a CALL returning a result set:
    // its one QRYDTA holds 11 schema names (MYUSER, SC, NULLID, PKG_MENU, SQLJ, SYSCAT, SYSFUN, SYSIBM,
    // SYSPROC, SYSSTAT, SYSTOOLS) and the end-of-data SQLCA (SQLCODE 100, little-endian: 64 00 00 00).
    ['statement', 'EXCSQLSTT', 'ok', 'NULLID.SYSSTAT:2', 11],
    ['statement', 'RDBCMM', 'ok', 'COMMIT', ''],
    ['statement', 'OPNQRY', 'ok', 'select current schema from sysibm.sysdummy1', 1],
    ['statement', 'RDBCMM', 'ok', 'COMMIT', ''],
    ['statement', 'OPNQRY', 'ok', 'values (current date)', 1],
    ['statement', 'RDBCMM', 'ok', 'COMMIT', ''],
    ['statement', 'RDBCMM', 'ok', 'COMMIT', ''],
    ['logout', '', 'ok', '', ''],
  ]);
  const login = events[0]!;
  t.like(login, { user: 'MYUSER', database: 'MYDB2DB', dbProduct: 'db2', serverVersion: 'SQL08024', clientProgram: 'db2jcc_application', clientLibrary: 'JCC02100', clientHost: 'MyPC-Hostname' });
  // DDM names on this server are EBCDIC (SRVCLSNM QDB2/LINUX); the server's data CCSID is 819.
  t.like(login.attributes, { serverClass: 'QDB2/LINUX', secmec: '3', serverCcsids: '819/-/-' });
  t.deepEqual(events[11]!.rows, [['2007-04-02']]);
  // SQLDARD: DB2 names an unnamed result column by its number; SQLNUM is little-endian here, string lengths are not.
  t.deepEqual(events[11]!.columns, ['1']);
  t.deepEqual(events[5]!.columns, ['1']);
  t.deepEqual(events[7]!.params, ['', '%', '', '', "DATATYPE='JDBC';GETSCHEMAS = 1;CURSORHOLD = 1"]);
  t.true(events.every((e) => e.user === 'MYUSER' && e.dbType === 'drda'));
  t.is(summary.sessions.malformed, 0);
  t.is(summary.sessions.unmatchedRequests + summary.sessions.unmatchedResponses, 0);
});

tsharkTest('DB2: every SQL statement tshark decodes (drda.sqlstatement) is a record, and no other SQL', async (t) => {
  const out = tshark(['-r', db2, '-Y', 'drda.sqlstatement', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\u0001', '-e', 'drda.sqlstatement']);
  // tshark keeps the length bytes' printable tail before each statement (e.g. "$SET CLIENT ..."): compare by suffix.
  const theirs = out.split('\n').filter((l) => l !== '').flatMap((l) => l.split('\u0001'));
  const { events } = await auditCaptureFile(db2);
  const ours = events.filter((e) => e.sql !== undefined && e.command !== 'RDBCMM').map((e) => e.sql!);
  t.is(theirs.length, 7);
  t.is(ours.length, theirs.length);
  theirs.forEach((s, i) => t.true(s.endsWith(ours[i]!), `${JSON.stringify(s)} vs ${JSON.stringify(ours[i])}`));
});

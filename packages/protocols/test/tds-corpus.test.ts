// Real SQL Server and Sybase captures through the whole pipeline (packet
// decoding, reassembly, detection among all shipped decoders, the TDS
// decoder), with tshark as the second opinion on what requests they hold.
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { auditCaptureFile } from '@dbtap/server';
import { corpusDir, corpusTest, tshark, tsharkTest } from '../../../test-support/corpus.js';

const mssql = (f: string): string => join(corpusDir, 'mssql-tds', f);
const sybase = join(corpusDir, 'sybase-tds', 'arkime_tds5.pcap');

async function audit(path: string, ports?: number[]): Promise<{ events: AuditEvent[]; malformed: number; flows: Record<string, number> }> {
  const r = await auditCaptureFile(path, { ...(ports !== undefined ? { ports: new Map(ports.map((p) => [p, 'tds'])) } : {}), session: { maxRows: 3 } });
  return { events: r.events, malformed: r.summary.sessions.malformed, flows: r.summary.flowsByProtocol };
}

corpusTest('golden: mssql-tds/arkime_tds7.pcap (MDAC ODBC, TDS 7.1, SQL Server 2000)', async (t) => {
  const { events, malformed } = await audit(mssql('arkime_tds7.pcap'));
  t.is(malformed, 0);
  t.is(events.length, 3);
  const [login, sel, logout] = events;
  // tshark: PRELOGIN (encryption off / server not supported), LOGIN7 user testuser, app "Microsoft Data Access Components".
  t.like(login, { kind: 'login', status: 'ok', dbType: 'tds', dbProduct: 'mssql', user: 'testuser', database: 'master', clientProgram: 'Microsoft Data Access Components', clientHost: 'LIV-VXP-007', clientPid: '1712', serverVersion: '8.0.2039', tls: false });
  t.like(login!.attributes, { tdsVersion: '7.1', serverProduct: 'Microsoft SQL Server', language: 'us_english', instance: 'MSSQLServer', encryption: 'off', serverEncryption: 'not_sup' });
  t.like(sel, { kind: 'statement', command: 'SQLBatch', status: 'ok', rowsReturned: 1, sessionId: '52' });
  t.is(sel!.sql, "select name from master.dbo.syscharsets where id = convert(tinyint, databasepropertyex ( db_name() , 'sqlcharset'))");
  t.deepEqual(sel!.columns, ['name']);
  t.deepEqual(sel!.rows, [['iso_1']]);
  t.like(logout, { kind: 'logout', user: 'testuser' });
});

tsharkTest('mssql-tds/ndpi_mssql_tds.pcap: every SQL batch and RPC tshark sees is one record (mid-session flows, TDS 7.1 and 7.2+)', async (t) => {
  const file = mssql('ndpi_mssql_tds.pcap');
  const { events, malformed, flows } = await audit(file);
  t.is(malformed, 0);
  t.deepEqual(flows, { tds: 12 });
  const batches = tshark(['-r', file, '-Y', 'tds.query', '-T', 'fields', '-e', 'tds.query']).split('\n').filter((l) => l !== '');
  const ours = events.filter((e) => e.command === 'SQLBatch').map((e) => e.sql);
  t.deepEqual([...ours].sort(), [...batches].sort());
  // tshark's procedure names and well-known ids (one line per RPC packet; chained calls comma-separated).
  const theirs = tshark(['-r', file, '-Y', 'tds.type == 3', '-T', 'fields', '-e', 'tds.rpc.name', '-e', 'tds.rpc.proc_id'])
    .split('\n')
    .flatMap((l) => l.split('\t').join(',').split(','))
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? ['', 'sp_cursor', 'sp_cursoropen', 'sp_cursorprepare', 'sp_cursorexecute', 'sp_cursorprepexec', 'sp_cursorunprepare', 'sp_cursorfetch', 'sp_cursoroption', 'sp_cursorclose', 'sp_executesql', 'sp_prepare', 'sp_execute', 'sp_prepexec'][Number(s)]! : s));
  const rpcs = events.filter((e) => e.command === 'RPC').map((e) => e.attributes?.procedure);
  t.is(theirs.length, 16);
  // tshark cannot name the 8 KB two-packet call of p_SaveExample (it flags it malformed); we do.
  t.deepEqual([...rpcs].sort(), [...theirs, 'p_SaveExample'].sort());
  // sp_prepexec handles come back in RETURNVALUE; sp_execute finds its SQL by them.
  const exec = events.filter((e) => e.attributes?.procedure === 'sp_execute');
  t.true(exec.length === 3 && exec.every((e) => e.sql === "insert INTO newsyb (column1, column2, column3) VALUES ('first', 'second', 'third')" || e.sql === 'select * from newsyb'));
  const sel = events.find((e) => e.sql === 'select * from newsyb' && e.attributes?.procedure === 'sp_execute')!;
  t.is(sel.rowsReturned, 3);
  t.deepEqual(sel.columns, ['column1', 'column2', 'column3']);
  const prep = events.find((e) => e.sql?.startsWith('select * from test_table_1 where name = @P0'))!;
  t.deepEqual(prep.params, ['zzz', 2]);
  t.is(prep.attributes?.paramDeclaration, '@P0 nvarchar(4000),@P1 int');
  // The 8 KB call: its NVARCHAR(MAX) value (PLP) decoded across the two packets.
  const save = events.find((e) => e.attributes?.procedure === 'p_SaveExample')!;
  t.true(typeof save.params?.[0] === 'string' && (save.params[0] as string).startsWith('Studenckie Koło Przewodników Turystycznych w Gdańsku'));
  t.true(events.every((e) => e.midSession === true && e.dbType === 'tds'));
});

corpusTest('golden: sybase-tds/arkime_tds5.pcap (DataDirect TDS 5.0 login on port 3106)', async (t) => {
  const { events, malformed } = await audit(sybase, [3106]);
  t.is(malformed, 0);
  t.is(events.length, 2);
  t.like(events[0], { kind: 'login', status: 'ok', dbType: 'tds', dbProduct: 'sybase', user: 'USER___USER', clientLibrary: 'MERANT-TDS', database: 'aaaa_prod', serverVersion: '12.5.0.0' });
  t.like(events[0]!.attributes, { serverName: 'aaaadb-XXX.xxx.xxx.com', packetSize: '512' });
  t.like(events[1], { kind: 'statement', command: 'Language', sql: 'use aaaa_prod', status: 'ok', database: 'aaaa_prod' });
  // The TDS 5.0 login carries the password in clear: it must be in no record.
  t.false(JSON.stringify(events).includes('PASSWORDHERE'));
});

corpusTest('sybase-tds/arkime_tds5.pcap is recognised by content on a port no decoder claims', async (t) => {
  const { events, flows } = await audit(sybase);
  t.deepEqual(flows, { tds: 1 });
  t.is(events[0]!.user, 'USER___USER');
});

// Real Oracle captures through the whole pipeline (packet decoding,
// reassembly, the Oracle decoder): golden records per capture, the brute
// force counts, secrets, and tshark's TTC call codes as a second opinion.
//
// Golden files: packages/protocols/test/golden/oracle/<capture>.json;
// DBTAP_UPDATE_GOLDEN=1 rewrites them (then read the diff against the bytes).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '@dbtap/core';
import { corpusDir, corpusFiles, corpusTest, tshark, tsharkTest } from '../../../test-support/corpus.js';
import { auditOracleCapture, oraclePorts, type OracleAuditResult } from './helpers/oracle-pcap.js';

const here = dirname(fileURLToPath(import.meta.url));
const goldenDir = join(here, 'golden/oracle');
const update = process.env.DBTAP_UPDATE_GOLDEN === '1';
const oraFile = (name: string): string => join(corpusDir, 'oracle', name);

const runs = new Map<string, Promise<OracleAuditResult>>();
/** Each capture is decoded once per test file. */
function audit(path: string): Promise<OracleAuditResult> {
  let r = runs.get(path);
  if (r === undefined) {
    r = auditOracleCapture(path, 3);
    runs.set(path, r);
  }
  return r;
}

/** A record without what changes with the flow table (ids) but with the client port that tells connections apart. */
function golden(e: AuditEvent): Record<string, unknown> {
  const { id: _id, flowId: _flow, client, server: _server, ...rest } = e;
  return { clientPort: client.port, ...rest };
}

corpusTest('golden records of every Oracle corpus capture', async (t) => {
  const files = corpusFiles('oracle');
  t.true(files.length >= 14);
  for (const f of files) {
    const { events } = await audit(f);
    const got = `[\n${events.map((e) => JSON.stringify(golden(e))).join(',\n')}\n]\n`;
    const path = join(goldenDir, `${basename(f)}.json`);
    if (update || !existsSync(path)) {
      if (!update) t.fail(`no golden file for ${basename(f)} (run with DBTAP_UPDATE_GOLDEN=1)`);
      writeFileSync(path, got);
      continue;
    }
    t.is(got, readFileSync(path, 'utf8'), `${basename(f)} differs from its golden file`);
  }
});

corpusTest('every Oracle capture decodes without malformed messages or unpaired answers, all records oracle', async (t) => {
  for (const f of corpusFiles('oracle')) {
    const { events, stats } = await audit(f);
    t.is(stats.undetectedFlows, 0, basename(f));
    for (const e of events) t.is(e.dbType, 'oracle');
    // trex_cap2_Oracle.pcap: the CONNECT segment carries one stray byte after the packet (246 of 247 bytes): one resync.
    t.is(stats.sessions.malformed, basename(f) === 'trex_cap2_Oracle.pcap' ? 1 : 0, `${basename(f)}: malformed`);
  }
});

corpusTest('the Nmap brute force: 695 failed logins over 11 connections, each with user, program, machine and ORA- code', async (t) => {
  const { events } = await audit(oraFile('johnsamples_Oracle-bunch-Nmap-11gR2.pcap'));
  const logins = events.filter((e) => e.kind === 'login' && e.command === 'OAUTH');
  // strings(1) on the file: 679 "ORA-01017" and 16 "ORA-28000" answers.
  t.is(logins.length, 695);
  t.is(logins.filter((e) => e.errorCode === 'ORA-01017').length, 679);
  t.is(logins.filter((e) => e.errorCode === 'ORA-28000').length, 16);
  // Nmap's data type negotiation says TTC field version 5 on every connection.
  t.true(logins.every((e) => e.attributes?.ttcFieldVersion === '5'));
  t.true(logins.every((e) => e.status === 'error' && e.user !== undefined && e.user !== '' && e.clientProgram?.startsWith('sqlplus@nmap_') === true && e.clientHost === 'nmap_target'));
  t.is(new Set(logins.map((e) => e.client.port)).size, 10); // the eleventh connection is the probe below
  const locked = logins.find((e) => e.errorCode === 'ORA-28000')!;
  t.regex(locked.message!, /^ORA-28000: the account is locked/);
  // One probe connection sends a CONNECT and never authenticates.
  t.deepEqual(
    events.filter((e) => e.command === 'CONNECT').map((e) => [e.kind, e.status, e.database]),
    [['login', 'unknown', 'ORCL']],
  );
});

corpusTest('sqlplus session (Oracle-good): login, SELECT USER FROM DUAL with its fetch, PL/SQL with a bind, commit, logoff', async (t) => {
  const { events } = await audit(oraFile('johnsamples_Oracle-good.pcap'));
  const [login] = events;
  t.like(login, {
    kind: 'login', status: 'ok', command: 'OAUTH', user: 'openwall', database: 'orcl', clientProgram: 'sqlplus@godbox (TNS V1-V3)',
    clientHost: 'godbox', osUser: 'dsk', clientPid: '20401', sessionId: '124,1369', serverVersion: '11.1.0.7.0',
  });
  t.like(login!.attributes, { serviceName: 'orcl', tnsVersion: '314', sdu: '8192', terminal: 'pts/3', alterSession: "ALTER SESSION SET TIME_ZONE='+05:30'", dbName: 'ORCL', ttcFieldVersion: '6' });
  const select = events.find((e) => e.sql === 'SELECT USER FROM DUAL')!;
  // Frames 25-28: OALL8 (cursor 0 -> 3), one row, OFETCH on cursor 3 ends with ORA-01403 (end of fetch, not an error).
  t.like(select, { kind: 'statement', status: 'ok', command: 'OALL8', statementId: '3', rowsReturned: 1, bytesIn: 250 + 11 });
  // Frame 26: describe (column USER, VARCHAR2) and the row-data message "07 08 OPENWALL".
  t.deepEqual(select.columns, ['USER']);
  t.deepEqual(select.rows, [['OPENWALL']]);
  // Frame 32: five columns described (NUMBER and DATE among them), no rows (ORA-01403 at once).
  const privs = events.find((e) => e.sql?.startsWith('SELECT ATTRIBUTE,SCOPE') === true)!;
  t.deepEqual(privs.columns, ['ATTRIBUTE', 'SCOPE', 'NUMERIC_VALUE', 'CHAR_VALUE', 'DATE_VALUE']);
  t.is(privs.rows, undefined);
  t.is(select.errorCode, undefined);
  t.deepEqual(events.find((e) => e.sql?.startsWith('BEGIN DBMS_APPLICATION_INFO.SET_MODULE') === true)?.params, ['SQL*Plus']);
  t.deepEqual(events.slice(-3).map((e) => [e.kind, e.command, e.status]), [['statement', 'OCOMMIT', 'ok'], ['statement', 'OCOMMIT', 'ok'], ['logout', 'OLOGOFF', 'ok']]);
  t.is(select.serverVersion, 'Oracle Database 11g Release 11.1.0.7.0 - 64bit Production');
});

corpusTest('TOAD session: all 49 SQL texts whole (chunked ones included), the ORA-00942, rows of the fetches', async (t) => {
  const { events } = await audit(oraFile('trex_cap2_Oracle.pcap'));
  const stmts = events.filter((e) => e.kind === 'statement' && e.sql !== undefined);
  // strings(1) finds the same 49 texts (39 repeated polls, 2 x "select 'x' from dual", 8 others).
  t.is(stmts.length, 49);
  // Behind 0xFE in 64-byte chunks on the wire (frame 24: "fe 40 ...('SESS" "14 IONID')...").
  t.true(stmts.some((e) => e.sql === "select sid from V$SESSION  where audsid = ( select USERENV('SESSIONID') from dual )\n"));
  t.true(stmts.some((e) => e.sql === "select  /*+ RULE */ object_name from all_objects where object_name='DBMS_DEBUG' and object_type='PACKAGE' and owner='SYS' \n"));
  const missing = stmts.find((e) => e.status === 'error')!;
  t.like(missing, { errorCode: 'ORA-00942', message: 'ORA-00942: table or view does not exist' });
  t.regex(missing.sql!, /^Select feature from toad\.toad_restrictions/);
  t.is(stmts.filter((e) => e.sql === 'select IS_VISIBLE from CP_RULE\n' && e.rowsReturned === 71).length, 13);
  // The CONNECT's CID says USER=shekhar; AUTH_SID (the OS user of the logon itself) says thomas, and wins.
  t.like(events[0], { kind: 'login', status: 'ok', user: 'secure', database: 'secsph', osUser: 'thomas', clientProgram: 'TOAD.exe', clientHost: 'WEBCOHORT\\THOMAS' });
  t.like(events.at(-1), { kind: 'logout', command: 'OLOGOFF', status: 'ok' });
  // Frame 12: "02 6903 6903 02 15 | 06 01 01 01 05 01 01 02 ...": the OCI 8.1 client's TTC field version is 2.
  t.is(events[0]!.attributes?.ttcFieldVersion, '2');
});

corpusTest('TOAD session (OCI 8): columns from the describe of the bundled parse, rows from the execute and fetch answers', async (t) => {
  const { events } = await audit(oraFile('trex_cap2_Oracle.pcap'));
  const bySql = (start: string): AuditEvent => events.find((e) => e.sql?.startsWith(start) === true)!;
  // Frame 25: describe "02 00 00 81 16000000 ... 01 03 ... 0400 04 'SID\"'" (NUMBER, nullable, name length 3);
  // frame 27: row "07 03 c2 02 21 00 00" = 132, the session id of the login ("132,51126"), and the status
  // "04 01000000 01000000 ..." read without the sequence number before any ORA- text could tell the layout.
  t.like(bySql('select sid from V$SESSION'), { columns: ['SID'], rows: [['132']], rowsReturned: 1, statementId: '1' });
  t.is(events[0]!.sessionId, '132,51126');
  // Frames 39/41: VARCHAR2(256) VERSION, the row "07 0a 10.2.0.1.0 00 00".
  t.like(bySql('SELECT version'), { columns: ['VERSION'], rows: [['10.2.0.1.0']], rowsReturned: 1 });
  t.like(bySql('select  /*+ RULE */ object_name'), { columns: ['OBJECT_NAME'], rows: [['DBMS_DEBUG']] });
  // Frame 54: eight user names, the first three kept (maxRows 3).
  t.like(bySql('select username from sys.all_users'), { columns: ['USERNAME'], rows: [['DBSNMP'], ['DIP'], ['OUTLN']], rowsReturned: 8 });
  // Frame 283: the column of select 'x' is named 'X', sent as "06 '' X '' \"" (quotes doubled); CHAR (96).
  t.like(bySql("select 'x' from dual"), { columns: ["'X'"], rows: [['x']] });
  // CP_RULE polls: 25 + 25 + 21 rows over the execute and two OFETCH answers; the first three kept.
  const polls = events.filter((e) => e.sql === 'select IS_VISIBLE from CP_RULE\n');
  t.is(polls.length, 13);
  for (const e of polls) t.like(e, { columns: ['IS_VISIBLE'], rows: [['1'], ['1'], ['1']], rowsReturned: 71, status: 'ok' });
  // Queries with no rows keep their columns and no rows.
  const empty = bySql('select XML from PU_DATA');
  t.like(empty, { columns: ['XML'], rowsReturned: 0 });
  t.is(empty.rows, undefined);
});

corpusTest('TOAD session with room for 100 rows: every row of the execute and OFETCH answers is kept, as many as the status counts', async (t) => {
  const { events } = await auditOracleCapture(oraFile('trex_cap2_Oracle.pcap'), 100);
  const polls = events.filter((e) => e.sql === 'select IS_VISIBLE from CP_RULE\n');
  t.is(polls.length, 13);
  for (const e of polls) {
    t.is(e.rows?.length, 71);
    t.is(e.rowsReturned, 71);
  }
  const users = events.find((e) => e.sql?.startsWith('select username from sys.all_users') === true)!;
  // Frame 54, in order.
  t.deepEqual(users.rows, [['DBSNMP'], ['DIP'], ['OUTLN'], ['SECURE'], ['SYS'], ['SYSTEM'], ['TSMSYS'], ['WMSYS']]);
  for (const e of events) if (e.rows !== undefined && e.rowsReturned !== undefined) t.is(e.rows.length, e.rowsReturned, e.sql);
});

corpusTest('Oracle 12c (TNS 315, 32-bit packet lengths): the sqlplus AUTH phase 1 is read after the switch', async (t) => {
  const { events } = await audit(oraFile('ndpi_oracle12.pcapng'));
  t.is(events.length, 1);
  t.like(events[0], { kind: 'login', status: 'unknown', user: 'sys', clientProgram: 'sqlplus@kali (TNS V1-V3)', clientHost: 'kali', osUser: 'root', clientPid: '19033' });
  // Frame 17: the data type negotiation "02 6903 6903 02 28 | 06 01 01 01 2f 01 01 07 ...": field version 7 (12.1).
  t.like(events[0]!.attributes, { tnsVersion: '315', sdu: '8192', tdu: '2097152', sid: 'igor', ttcFieldVersion: '7' });
});

corpusTest('passwords, session keys and verifiers appear in no record', async (t) => {
  let checked = 0;
  for (const f of corpusFiles('oracle')) {
    const { events } = await audit(f);
    const out = JSON.stringify(events);
    t.notRegex(out, /AUTH_PASSWORD|AUTH_SESSKEY|AUTH_VFR_DATA|AUTH_PBKDF2/);
    // The secret values themselves, as they stand in the capture (hex after the key; chunked ones split at 64).
    const raw = readFileSync(f).toString('latin1');
    for (const m of raw.matchAll(/AUTH_(?:PASSWORD|SESSKEY|VFR_DATA)[\s\S]{1,12}?([0-9A-F]{16,})/g)) {
      checked++;
      t.false(out.includes(m[1]!.slice(0, 16)), `${basename(f)}: a secret value leaked`);
    }
  }
  t.true(checked > 2000);
});

tsharkTest("every TTC call tshark sees (tns.data_oci.id) is counted by the decoder and recorded or counted as ignorable", async (t) => {
  // Calls that produce (or are part of) a record; the rest must be counted as ignored.
  const recorded = new Set(['0x76', '0x73', '0x5e', '0x47', '0x3e', '0x05', '0x0e', '0x0f', '0x09', '0x03', '0x04']);
  for (const f of corpusFiles('oracle')) {
    const out = tshark(['-r', f, ...oraclePorts.flatMap((p) => ['-d', `tcp.port==${p},tns`]), '-Y', 'tns.data_oci.id', '-T', 'fields', '-e', 'tns.data_oci.id']);
    const theirs: Record<string, number> = {};
    for (const line of out.split('\n')) if (line !== '') theirs[line] = (theirs[line] ?? 0) + 1;
    const { flows } = await audit(f);
    const ours: Record<string, number> = {};
    const ignored: Record<string, number> = {};
    for (const fl of flows) {
      for (const [k, v] of Object.entries(fl.counters)) {
        if (k.startsWith('call.')) ours[k.slice(5)] = (ours[k.slice(5)] ?? 0) + v;
        if (k.startsWith('ignored.')) ignored[k.slice(8)] = (ignored[k.slice(8)] ?? 0) + v;
      }
    }
    t.deepEqual(ours, theirs, basename(f));
    for (const code of Object.keys(ours)) if (!recorded.has(code)) t.is(ignored[code], ours[code], `${basename(f)}: ${code} neither recorded nor counted`);
  }
});

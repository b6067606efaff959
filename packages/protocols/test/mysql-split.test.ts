// The 16 MiB conversations split at every packet header (plain or
// compressed) and truncated there, which the conformance suite
// (mysql-conformance.test.ts) does not reach, and the records recorded and
// built conversations must decode to. The scripts are real traffic recorded
// from MariaDB (mysql-fixtures.ts: compressed protocol, LOAD DATA LOCAL
// INFILE, ed25519, COM_CHANGE_USER with an auth switch, long data, cursors,
// CLIENT_DEPRECATE_EOF, a refused login, 16 MiB+ payloads inside compressed
// packets) and, for what MariaDB cannot produce, frames built after the
// MySQL 8 documentation (caching_sha2_password fast and full
// authentication, query attributes, an SSL request).
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import { BASE_CAPS, C, CAP, S, colDef, concat, eof, feed, greeting, loginReq, lstr, newSession, ok, pkt, query, recordedScript, resultSet, textRow, u32 } from './helpers/mysql.js';
import * as recorded from './helpers/mysql-fixtures.js';
import { MYSQL8, bigPlainScript, cachingSha2Script, queryAttributesScript, type Script } from './helpers/mysql-scripts.js';

function run(script: Script, opts: { splitAt?: [number, number]; truncateAt?: [number, number]; midStream?: boolean } = {}): AuditEvent[] {
  const h = newSession({ maxRows: 10, midStream: opts.midStream });
  let ts = 1_000_000;
  script.forEach(([dir, bytes], i) => {
    ts += 100;
    if (opts.splitAt && opts.splitAt[0] === i) {
      h.session.data(dir, bytes.subarray(0, opts.splitAt[1]), ts);
      h.session.data(dir, bytes.subarray(opts.splitAt[1]), ts);
    } else if (opts.truncateAt && opts.truncateAt[0] === i) {
      h.session.data(dir, bytes.subarray(0, opts.truncateAt[1]), ts);
      h.session.gap(dir, bytes.length - opts.truncateAt[1], ts);
    } else {
      h.session.data(dir, bytes, ts);
    }
  });
  h.session.close('fin', ts + 100);
  return h.events;
}

/**
 * Offsets to cut a chunk at: all of them. In scripts that carry payloads of
 * 16 MiB (each run costs tens of milliseconds) only the large chunks are cut,
 * at every packet header (plain or compressed) and its neighbourhood and at
 * a few places inside the bodies; the small chunks of those scripts are the
 * same kinds as in the other scripts.
 */
function offsets(bytes: Uint8Array, from: number, bigScript: boolean): number[] {
  if (!bigScript) return Array.from({ length: bytes.length - from }, (_, i) => i + from);
  if (bytes.length <= 4096) return [];
  const out = new Set<number>();
  for (let p = 0; p < bytes.length; p += 4 + 0xffffff) for (let k = -1; k <= 7; k++) if (p + k >= from && p + k < bytes.length) out.add(p + k);
  out.add(bytes.length >> 1);
  out.add(bytes.length - 1);
  return [...out].sort((a, b) => a - b);
}

/** True when the script carries a chunk of over 1 MiB (a 16 MiB payload). */
function isBig(script: Script): boolean {
  return script.some(([, b]) => b.length > 1 << 20) || script === bigCompressed;
}

const bigCompressed = recordedScript(recorded.bigCompressedSession);

/** The 16 MiB conversations (the others run in the conformance suite). */
const scripts: [string, () => Script][] = [
  ['16 MiB plain', bigPlainScript],
  ['recorded 16 MiB compressed', () => bigCompressed],
];

/**
 * Index of the chunk that sends `SELECT 'last'` (the exchange every damage
 * must leave intact); in scripts that compress it, the last client chunk
 * before the final response.
 */
function lastQuery(script: Script): number {
  const needle = Buffer.from("SELECT 'last'");
  const i = script.findIndex(([d, b]) => d === C && Buffer.from(b).includes(needle));
  if (i >= 0) return i;
  let j = script.length - 1;
  while (j > 0 && script[j]![0] !== C) j--;
  return j;
}

/** Concise form of records for comparing runs (ids and timestamps included). */
function same(a: AuditEvent[], b: AuditEvent[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

for (const [name, make] of scripts) {
  test(`${name}: every message split at every offset decodes to the same records`, (t) => {
    const script = make();
    const whole = run(script);
    t.true(whole.some((e) => e.sql?.endsWith("SELECT 'last'") && e.status === 'ok'), 'the script decodes whole');
    let cases = 0;
    const failures: string[] = [];
    const big = isBig(script);
    script.forEach(([, bytes], i) => {
      for (const k of offsets(bytes, 1, big)) {
        cases++;
        if (!same(run(script, { splitAt: [i, k] }), whole)) failures.push(`message ${i} split at ${k}`);
      }
    });
    t.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${cases} splits differ`);
    t.log(`${cases} splits`);
  });

  test(`${name}: every message truncated at every offset (rest lost) never throws and later commands still decode`, (t) => {
    const script = make();
    const last = lastQuery(script);
    t.true(last > 0);
    let cases = 0;
    const failures: string[] = [];
    const big = isBig(script);
    script.forEach(([, bytes], i) => {
      // the final query/response pair must survive any earlier damage
      if (i >= last) return;
      for (const k of offsets(bytes, 0, big)) {
        const got = run(script, { truncateAt: [i, k] });
        cases++;
        const rec = got.find((e) => e.sql?.endsWith("SELECT 'last'"));
        if (!rec || rec.status !== 'ok') failures.push(`message ${i} cut at ${k}`);
        for (const e of got) if (!['ok', 'error', 'unknown'].includes(e.status)) failures.push(`bad status at ${i}/${k}`);
      }
    });
    t.deepEqual(failures.slice(0, 40), [], `${failures.length} of ${cases} truncations lost the following command`);
  });

  test(`${name}: a capture that ends at any offset of any message flushes cleanly`, (t) => {
    const script = make();
    const big = isBig(script);
    script.forEach(([, bytes], i) => {
      for (const k of big ? offsets(bytes, 1, true) : [0, ...offsets(bytes, 1, false), bytes.length]) {
        const h = newSession();
        feed(h, [...script.slice(0, i), [script[i]![0], bytes.subarray(0, k)]]);
        t.notThrows(() => h.session.close('end-of-capture', 9e9));
        for (const e of h.events) t.truthy(e.id);
      }
    });
  });
}

test('recorded sessions decode to the records the clients saw', (t) => {
  const records = (s: Script): AuditEvent[] => run(s);
  const cz = records(recordedScript(recorded.compressedSession));
  t.like(cz[0], { kind: 'login', status: 'ok', user: 'dbtap_fixture', attributes: { compression: 'zlib' } });
  t.like(cz[1], { sql: "SELECT seq, REPEAT('x', 30) AS pad FROM seq_1_to_40", rowsReturned: 40, status: 'ok', attributes: { resultTables: 'dbtap_fixture.seq_1_to_40' } });
  t.like(cz[2], { status: 'error', errorCode: 1054, sqlState: '42S22' });
  const li = records(recordedScript(recorded.localInfileSession));
  t.like(li[1], { affectedRows: 5, status: 'ok', message: 'Records: 5  Deleted: 0  Skipped: 0  Warnings: 0', attributes: { localInfileBytes: '34' } });
  t.regex(li[1]!.attributes?.localInfile ?? '', /rows\.csv$/);
  const ed = records(recordedScript(recorded.ed25519Session));
  t.like(ed[0], { kind: 'login', status: 'ok', user: 'dbtap_fixture_ed', attributes: { authPlugin: 'client_ed25519' } });
  const m2 = records(recordedScript(recorded.mysql2Session));
  t.deepEqual(m2.map((e) => e.command ?? e.kind), ['login', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_STMT_EXECUTE', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_QUERY', 'COM_QUERY', 'COM_PING', 'COM_CHANGE_USER', 'COM_STMT_CLOSE', 'COM_STMT_CLOSE', 'COM_QUERY', 'COM_QUIT']);
  t.deepEqual(m2[2]!.params, [10, 'ten', 1.25, '2024-02-29 12:00:00']);
  t.deepEqual(m2[3]!.params, [11, null, -3, null]);
  t.like(m2[9], { kind: 'login', status: 'ok', attributes: { authPlugin: 'mysql_native_password' } });
  const raw = records(recordedScript(recorded.rawCommandsSession));
  t.deepEqual(raw.find((e) => e.command === 'COM_STMT_EXECUTE')!.params, [20, 'long data', '2023-07-08 09:10:11']);
  t.like(raw.find((e) => e.command === 'COM_STMT_FETCH'), { rowsReturned: 2, status: 'ok' });
  t.deepEqual(raw.find((e) => e.command === 'COM_STMT_FETCH')!.rows, [['1', 'one'], ['2', 'two']]);
  t.like(raw.find((e) => e.command === 'COM_PROCESS_KILL'), { status: 'error', errorCode: 1094, attributes: { connectionId: '999999999' } });
  const de = records(recordedScript(recorded.deprecateEofSession));
  t.like(de.find((e) => e.sql === 'SELECT id, name FROM t ORDER BY id'), { status: 'ok', rowsReturned: 7, attributes: { resultTables: 'dbtap_fixture.t' } });
  t.deepEqual(de.find((e) => e.sql?.startsWith('SET autocommit = 0'))?.attributes, { 'sysvar.autocommit': 'OFF', 'sysvar.time_zone': '+01:00' });
  t.like(de.find((e) => e.sql?.startsWith('SELECT 1 AS a; SELECT 2 AS b; UPDATE')), { status: 'ok', rowsReturned: 2, affectedRows: 1 });
  t.like(de.find((e) => e.command === 'COM_STMT_EXECUTE' && e.attributes?.cursor === undefined), { rowsReturned: 7 });
  t.like(de.find((e) => e.command === 'COM_STMT_FETCH'), { rowsReturned: 1 });
  for (const s of [cz, li, ed, m2, raw, de]) t.like(s[s.length - 1], { kind: 'logout', command: 'COM_QUIT' });
  const refused = records(recordedScript(recorded.refusedLoginSession));
  t.is(refused.length, 1);
  t.like(refused[0], { kind: 'login', status: 'error', errorCode: 1045, sqlState: '28000', user: 'dbtap_fixture' });
  const big = records(recordedScript(recorded.bigCompressedSession));
  t.like(big[1], { status: 'ok', truncated: true, rowsReturned: 1 });
  t.is(big[1]!.bytesIn, 16 * 1024 * 1024 + 1000 + 'SELECT LENGTH(\'\') AS n'.length + 1 + 2 * 4);
  t.like(big[2], { sql: "SELECT REPEAT('B', 16778216) AS big", status: 'ok', rowsReturned: 1 });
});

test('hand-built sessions: caching_sha2_password, query attributes, SSL request', (t) => {
  const sha = run(cachingSha2Script());
  t.like(sha[0], { kind: 'login', status: 'ok', serverVersion: '8.0.36', attributes: { authPlugin: 'caching_sha2_password' } });
  t.like(sha[1], { sql: 'SELECT 1', rowsReturned: 1, status: 'ok' });
  t.like(sha[2], { kind: 'login', command: 'COM_CHANGE_USER', status: 'ok', user: 'bob' });
  t.like(sha[3], { user: 'bob', sql: "SELECT 'last'" });
  const qa = run(queryAttributesScript());
  t.like(qa[1], { sql: 'SELECT 1', attributes: { trace_id: 'abc-123', unset: 'NULL' } });
  t.like(qa[3], { command: 'COM_STMT_EXECUTE', sql: 'SELECT ?', params: [42], attributes: { span: 's-1' }, rowsReturned: 1 });
  t.like(qa[4], { sql: "SELECT 'last'", status: 'ok' });
  // An SSL request: the login is recorded with what is visible, then only the connection record.
  const ssl = concat(u32(BASE_CAPS | CAP.SSL), u32(1 << 24), [45], new Array(23).fill(0));
  const script: Script = [[S, pkt(0, greeting({ caps: MYSQL8 }))], [C, pkt(1, ssl)], [C, Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])], [S, Uint8Array.from([0x16, 0x03, 0x03, 0x00, 0x7a])]];
  for (const [i, [, bytes]] of script.entries()) {
    for (const k of offsets(bytes, 1, false)) {
      const got = run(script, { splitAt: [i, k] });
      t.is(got.length, 2);
      t.like(got[0], { kind: 'login', tls: true, status: 'unknown', serverVersion: '8.0.36' });
      t.like(got[1], { kind: 'connection', tls: true, status: 'ok' });
    }
  }
});

test('text row and column definition: split at every offset inside a long result', (t) => {
  const rows = Array.from({ length: 20 }, (_, i) => [String(i), 'v'.repeat(i * 13)]);
  const script: Script = [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq({ db: 'test' }))],
    [S, pkt(2, ok())],
    [C, pkt(0, query('SELECT k, v FROM kv'))],
    [S, resultSet(['k', 'v'], rows)],
  ];
  const whole = run(script);
  t.is(whole[1]!.rowsReturned, 20);
  const resp = script[4]![1];
  for (let k = 1; k < resp.length; k++) t.deepEqual(run(script, { splitAt: [4, k] }), whole);
});

test('rows are decoded from the first N rows only, NULLs kept', (t) => {
  const script: Script = [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq())],
    [S, pkt(2, ok())],
    [C, pkt(0, query('SELECT 1'))],
    [S, concat(pkt(1, [2]), pkt(2, colDef('a')), pkt(3, colDef('b')), pkt(4, eof()), pkt(5, textRow(null, 'x')), pkt(6, textRow('y', lstr('z').length ? 'z' : '')), pkt(7, eof()))],
  ];
  const [, e] = run(script);
  t.deepEqual(e!.rows, [[null, 'x'], ['y', 'z']]);
});

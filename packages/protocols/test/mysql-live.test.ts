// Live proof against the local MariaDB: real clients (the mariadb
// command-line client, mysql2 with text and prepared statements and a pool,
// a raw protocol client for the commands drivers rarely send, and a burst of
// 10,000 mixed statements) talk to 127.0.0.1:3306 while we capture on lo.
// MariaDB's own general query log is the ground truth: every login and
// statement in it must be in dbtap's output with the same text, user,
// database, connection id and client port, in the same order, and dbtap
// must record nothing the log does not show, apart from the commands the
// server never logs (each accounted for below).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, Frame } from '@dbtap/core';
import { auditCaptureFile, auditFrames } from '@dbtap/server';
import { startLiveCapture, type LiveCapture } from '../../../test-support/live-capture.js';
import { withDbLogLock } from '../../../test-support/db-lock.js';
import { enableGeneralLog, executeMatches, logSteps, mysqlAvailable, serverText, type GeneralLogEntry, type LogStep } from './helpers/mysql-log.js';
import { bigPayloads, createFixtures, dropFixtures, liveNames, runWorkload, startDumpcap, type Observed } from './helpers/mysql-live.js';

const BURST = 10_000;
const names = liveNames(String(process.pid));

// Capture rights are judged by uid (see postgres-live.test.ts); capture objects stay referenced.
const keepAlive: LiveCapture[] = [];
const live = process.getuid?.() === 0 && (await mysqlAvailable());
const liveTest = live ? test.serial : test.skip;
if (!live) console.log('skipping live MariaDB tests: needs capture rights on lo and a server on 127.0.0.1:3306');

let frames: Frame[] = [];
let events: AuditEvent[] = [];
let bigEvents: AuditEvent[] = [];
let entries: GeneralLogEntry[] = [];
let obs: Observed;

test.before(async () => {
  if (!live) return;
  // other live tests switch the general log too: one at a time
  await withDbLogLock(capture);
  events = auditFrames(frames, { ports: [3306], maxRows: 3 }).events;
});

async function capture(): Promise<void> {
  const fx = await createFixtures(names);
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-mysql-live-'));
  try {
    const glog = await enableGeneralLog({ maxAllowedPacket: 64 << 20 });
    try {
      const cap = startLiveCapture('tcp port 3306');
      keepAlive.push(cap);
      try {
        obs = await runWorkload(names, { ed25519: fx.ed25519, burst: BURST });
      } finally {
        frames = await cap.stop();
      }
      const file = join(dir, 'big.pcap');
      const dumpcap = await startDumpcap('tcp port 3306', file);
      try {
        await bigPayloads(names, obs);
      } finally {
        await dumpcap.stop();
      }
      bigEvents = (await auditCaptureFile(file, { ports: [3306], maxRows: 3 })).events;
      entries = await glog.read(names.userLike);
    } finally {
      await glog.restore(names.userLike);
    }
  } finally {
    await dropFixtures(names, fx.installedEd25519);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Records of one server connection (by connection id), all captures together. */
function recordsOf(thread: number): AuditEvent[] {
  return [...events, ...bigEvents].filter((e) => e.sessionId === String(thread));
}

function portOf(thread: number): number | undefined {
  return obs.connections.find((c) => c.thread === thread)?.port;
}

/**
 * Why the general log has no line for a record, or undefined when it must
 * have one. MariaDB writes no general-log line for COM_PING, COM_STMT_FETCH,
 * COM_SET_OPTION, COM_PROCESS_KILL and COM_RESET_CONNECTION; it logs a
 * Prepare only once it succeeded, and nothing for a statement command whose
 * statement id it does not know (e.g. a close after COM_CHANGE_USER dropped
 * the statements). A connection that ends without COM_QUIT has no Quit line.
 */
function unlogged(e: AuditEvent): string | undefined {
  if (e.kind === 'logout' && e.command === undefined) return 'closed without COM_QUIT';
  const c = e.command ?? '';
  if (['COM_PING', 'COM_STMT_FETCH', 'COM_SET_OPTION', 'COM_PROCESS_KILL', 'COM_RESET_CONNECTION'].includes(c)) return c;
  if (c === 'COM_STMT_PREPARE' && e.status === 'error') return 'failed prepare';
  if (['COM_STMT_CLOSE', 'COM_STMT_RESET', 'COM_STMT_SEND_LONG_DATA', 'COM_STMT_EXECUTE'].includes(c) && e.sql === undefined) return 'unknown statement';
  return undefined;
}

/** The log step a record stands for: `login` or its command. */
function stepOf(e: AuditEvent): string {
  if (e.kind === 'login' && e.command === undefined) return 'login';
  return e.command ?? e.kind;
}

/** Does the record say what the log line says? Returns a description of the difference. */
function compare(e: AuditEvent, s: LogStep): string | undefined {
  const got = stepOf(e);
  if (got !== s.command) return `command ${got} != ${s.command}`;
  if (e.user !== s.user) return `user ${e.user} != ${s.user}`;
  if (e.database !== s.database) return `database ${e.database} != ${s.database}`;
  switch (s.command) {
    case 'login':
      if (s.denied !== undefined) {
        // 1045 ER_ACCESS_DENIED_ERROR, or 1698 ER_ACCESS_DENIED_NO_PASSWORD_ERROR (MariaDB uses it for some unknown users).
        if (e.status !== 'error' || ![1045, 1698].includes(Number(e.errorCode)) || e.sqlState !== '28000' || e.message !== s.denied) return `refused login ${e.status} ${e.errorCode} ${e.message}`;
      } else if (e.status !== 'ok') return `login ${e.status}`;
      return undefined;
    case 'COM_QUERY':
    case 'COM_STMT_PREPARE': {
      const sql = serverText(e.sql ?? '');
      // A statement longer than the record's limit keeps its beginning.
      if (e.truncated ? !s.text.startsWith(sql) || sql.length < 1000 : sql !== s.text) return `sql ${JSON.stringify(sql.slice(0, 200))} != ${JSON.stringify(s.text.slice(0, 200))}`;
      return undefined;
    }
    case 'COM_STMT_EXECUTE':
      return executeMatches(e.sql ?? '', e.params ?? [], s.text) ? undefined : `execute ${JSON.stringify(e.sql)} ${JSON.stringify(e.params)} != ${JSON.stringify(s.text)}`;
    case 'COM_INIT_DB':
      return e.database === s.text ? undefined : `init db ${e.database} != ${s.text}`;
    case 'COM_FIELD_LIST':
      return `${e.attributes?.table ?? ''} ${e.attributes?.wildcard ?? ''}`.trim() === s.text.trim() ? undefined : `field list ${JSON.stringify(e.attributes)} != ${s.text}`;
    default:
      return undefined;
  }
}

liveTest('every login and statement in the general log is a record with the same text, user, database, connection id and client port, in order, and nothing is invented', (t) => {
  const steps = logSteps(entries);
  t.true(steps.size >= 15, `connections in the log: ${steps.size}`);
  let statements = 0;
  const problems: string[] = [];
  for (const [thread, want] of steps) {
    const records = recordsOf(thread);
    const port = portOf(thread);
    const refused = want.length === 1 && want[0]!.denied !== undefined;
    // Every connection but the refused command-line logins has a client-known port.
    if (port === undefined && !refused) problems.push(`thread ${thread}: no client port known`);
    for (const r of records) if (port !== undefined && r.client.port !== port) problems.push(`thread ${thread}: record on port ${r.client.port}, client used ${port}`);
    const logged = records.filter((r) => unlogged(r) === undefined);
    const n = Math.max(logged.length, want.length);
    for (let i = 0; i < n; i++) {
      const r = logged[i];
      const s = want[i];
      if (r === undefined || s === undefined) {
        problems.push(`thread ${thread} step ${i}: ${r === undefined ? `missing record for ${s!.command} ${s!.text.slice(0, 100)}` : `record ${stepOf(r)} ${r.sql?.slice(0, 100)} not in the log`}`);
        break;
      }
      const d = compare(r, s);
      if (d !== undefined) {
        problems.push(`thread ${thread} step ${i}: ${d}`);
        break;
      }
      if (r.kind === 'statement') statements++;
    }
  }
  t.deepEqual(problems, []);
  t.true(statements >= BURST, `statements compared: ${statements}`);
  // Every record of the test's users belongs to a connection of the log.
  const threads = new Set([...steps.keys()].map(String));
  const ours = (u: string | undefined): boolean => u !== undefined && u.startsWith('dbtap_') && u.endsWith(`_${process.pid}`);
  const strays = [...events, ...bigEvents].filter((e) => ours(e.user) && !threads.has(e.sessionId ?? ''));
  t.deepEqual(strays.map((e) => `${e.client.port} ${e.sessionId} ${e.command} ${e.sql}`), []);
});

liveTest('records the general log cannot show are exactly the commands the clients sent without a log line', (t) => {
  const ours = new Set(obs.connections.map((c) => String(c.thread)));
  const reasons = new Map<string, AuditEvent[]>();
  for (const e of [...events, ...bigEvents]) {
    if (!ours.has(e.sessionId ?? '')) continue;
    const why = unlogged(e);
    if (why !== undefined) reasons.set(why, [...(reasons.get(why) ?? []), e]);
  }
  const count = (k: string): number => reasons.get(k)?.length ?? 0;
  const raw = String(obs.raw.thread);
  // mysql2's ping() and the raw client's COM_PING.
  t.is(count('COM_PING'), 2);
  for (const k of ['COM_STMT_FETCH', 'COM_SET_OPTION', 'COM_PROCESS_KILL', 'COM_RESET_CONNECTION']) {
    t.is(count(k), 1, k);
    t.is(reasons.get(k)![0]!.sessionId, raw, k);
    t.is(reasons.get(k)![0]!.status, 'ok', k);
  }
  // The connection the raw client killed is the one that ended without COM_QUIT.
  t.deepEqual(reasons.get('closed without COM_QUIT')?.map((e) => e.sessionId), [String(obs.raw.killed)]);
  // The one failing prepare is the error mysql2 reported for execute().
  const failed = reasons.get('failed prepare') ?? [];
  t.is(failed.length, 1);
  const seen = obs.errors.find((x) => x.sql === failed[0]!.sql);
  t.like(failed[0], { errorCode: seen?.code, sqlState: seen?.sqlState, message: seen?.message });
  // Closes of statements the server no longer knows: mysql2 closing its cache after COM_CHANGE_USER.
  for (const e of reasons.get('unknown statement') ?? []) t.like(e, { command: 'COM_STMT_CLOSE', status: 'ok' });
});

liveTest('SQL errors the clients received are on the records with the same code, SQLSTATE and message', (t) => {
  t.true(obs.errors.length >= 25, `errors seen by the clients: ${obs.errors.length}`);
  const used = new Set<AuditEvent>();
  for (const x of obs.errors) {
    const pool = x.thread >= 0 ? recordsOf(x.thread) : events;
    const rec = pool.find((e) => !used.has(e) && e.status === 'error' && e.errorCode === x.code && e.message === x.message && (x.sql === '' || e.sql === x.sql));
    t.truthy(rec, `no error record for ${JSON.stringify(x)}`);
    if (rec === undefined) continue;
    used.add(rec);
    t.is(rec.sqlState, x.sqlState);
  }
  // Refused logins: the command-line client, mysql2 and the raw client all reported 1045.
  t.is(obs.failedLogins.length, 4);
  for (const f of obs.failedLogins) {
    const rec = events.find((e) => e.kind === 'login' && e.status === 'error' && e.user === f.user && e.message === f.message);
    t.like(rec, { errorCode: f.code, sqlState: '28000' }, JSON.stringify(f));
  }
});

liveTest('the probes: each session reports the connection id, database, user and client port dbtap put on the record', (t) => {
  t.true(obs.probes.length >= 10);
  const used = new Set<AuditEvent>();
  for (const p of obs.probes) {
    // The record's first row is the server's answer as the capture carried it; the probe is what the client got.
    const rec = recordsOf(p.thread).find(
      (e) => !used.has(e) && e.sql?.includes('information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()') && e.rows?.[0]?.[0] === String(p.thread) && e.rows[0][2]?.startsWith(`${p.user}@`) && e.rows[0][3] === `127.0.0.1:${p.port}`,
    );
    t.truthy(rec, JSON.stringify(p));
    if (rec === undefined) continue;
    used.add(rec);
    t.is(rec.database, p.database ?? undefined, JSON.stringify(p));
    t.like(rec, { client: { ip: '127.0.0.1', port: p.port }, user: p.user, sessionId: String(p.thread), status: 'ok', rowsReturned: 1 });
  }
});

liveTest('a burst of 10,000 mixed statements is decoded completely, without gaps', (t) => {
  const threads = obs.connections.filter((c) => c.client === 'burst').map((c) => String(c.thread));
  const burst = events.filter((e) => threads.includes(e.sessionId ?? '') && e.kind === 'statement');
  t.true(obs.burstStatements >= BURST + 2);
  // Every statement sent is one record (plus the prepares mysql2 sent once per connection and statement).
  const prepares = burst.filter((e) => e.command === 'COM_STMT_PREPARE').length;
  t.is(burst.length - prepares, obs.burstStatements);
  t.true(prepares <= threads.length * 3);
  t.false(burst.some((e) => e.truncated || e.gapBefore || e.midSession));
  t.is(burst.filter((e) => e.status === 'error').length, obs.errors.filter((x) => x.thread < 0).length);
  t.true(burst.filter((e) => e.status === 'ok').every((e) => e.endTs !== undefined && e.bytesIn! > 0 && e.bytesOut! > 0));
  const exec = burst.filter((e) => e.command === 'COM_STMT_EXECUTE');
  t.true(exec.length >= 3700, `executes: ${exec.length}`);
  for (const e of exec) t.is(e.params?.length, (e.sql?.match(/\?/g) ?? []).length, e.sql);
});

liveTest('compressed protocol, LOAD DATA LOCAL INFILE, ed25519, COM_CHANGE_USER, long data, cursors and the other commands', (t) => {
  const by = (client: string): string[] => obs.connections.filter((c) => c.client === client).map((c) => String(c.thread));
  const inSession = (client: string): AuditEvent[] => events.filter((e) => by(client).includes(e.sessionId ?? ''));
  // mariadb --compress: 500 rows of 200 bytes over zlib-compressed packets.
  const cz = inSession('mariadb --compress');
  t.like(cz[0], { kind: 'login', status: 'ok', clientProgram: 'mysql', attributes: { compression: 'zlib' } });
  t.like(cz.find((e) => e.sql?.startsWith('SELECT seq, REPEAT')), { status: 'ok', rowsReturned: 500, columns: ['seq', 'filler'] });
  t.like(cz.find((e) => e.sql === 'SELECT nothing_here FROM t'), { status: 'error', errorCode: 1054, sqlState: '42S22' });
  const mz = inSession('mysql2 compress');
  t.like(mz[0], { kind: 'login', status: 'ok', attributes: { compression: 'zlib' } });
  t.like(mz.find((e) => e.sql?.startsWith("SELECT REPEAT('z', 70000)")), { status: 'ok', rowsReturned: 1 });
  // LOAD DATA LOCAL INFILE: the file name the server asked for, the rows it loaded.
  const load = inSession('mariadb --local-infile').find((e) => e.sql?.startsWith('LOAD DATA LOCAL INFILE'));
  t.like(load, { status: 'ok', affectedRows: 300 });
  t.regex(load?.attributes?.localInfile ?? '', /rows\.csv$/);
  t.true(load!.bytesIn! > 300 * 8);
  // ed25519: an auth switch from mysql_native_password to client_ed25519.
  if (obs.ed25519) t.like(inSession('mariadb ed25519')[0], { kind: 'login', status: 'ok', user: names.edUser, attributes: { authPlugin: 'client_ed25519' } });
  else t.log('ed25519 plugin not available: auth switch to ed25519 not exercised');
  // COM_CHANGE_USER: a login record, and the new user and database on what follows.
  const m = inSession('mysql2');
  const cu = m.findIndex((e) => e.command === 'COM_CHANGE_USER');
  t.like(m[cu], { kind: 'login', status: 'ok', user: names.user2, database: names.db2 });
  t.true(m.slice(cu + 1).every((e) => e.user === names.user2));
  t.like(m.find((e) => e.sql === 'SELECT 1 AS a; SELECT 2 AS b, 3 AS c; UPDATE p SET price = price * 2 WHERE id = 1'), { status: 'ok', rowsReturned: 2, affectedRows: 1, columns: ['a'] });
  const ins = m.find((e) => e.command === 'COM_STMT_EXECUTE' && e.params?.[0] === 2);
  t.deepEqual(ins?.params, [2, 'Zoë', 12.5, '2020-02-29', '2024-01-02 03:04:05.678000', { type: 'blob', hex: '0001feff' }, null]);
  // The raw client: long data joined into the EXECUTE, reset, cursor, field list, statistics, kill.
  const raw = events.filter((e) => e.sessionId === String(obs.raw.thread));
  const longExec = raw.find((e) => e.command === 'COM_STMT_EXECUTE' && e.params?.[0] === 1);
  t.deepEqual(longExec?.params, [1, obs.raw.longData, '2023-07-08 09:10:11', '-26:03:04']);
  t.deepEqual(raw.find((e) => e.command === 'COM_STMT_EXECUTE' && e.params?.[0] === 2)?.params, [2, 'inline body', null, null]);
  t.like(raw.find((e) => e.command === 'COM_STMT_FETCH'), { status: 'ok', rowsReturned: obs.raw.cursorRows, attributes: { rows: '10' } });
  t.is(obs.raw.cursorRows, 2);
  t.deepEqual(raw.find((e) => e.command === 'COM_FIELD_LIST')?.columns, ['id', 'body', 'at', 'dur']);
  t.regex(raw.find((e) => e.command === 'COM_STATISTICS')?.message ?? '', /^Uptime: \d+/);
  t.like(raw.find((e) => e.command === 'COM_PROCESS_KILL'), { status: 'ok', attributes: { connectionId: String(obs.raw.killed) } });
  t.like(raw.find((e) => e.sql?.startsWith('SELECT 1 AS one;')), { status: 'ok', rowsReturned: 4 });
  t.false(raw.some((e) => e.truncated || e.gapBefore));
});

liveTest('statements and results of more than 16 MiB, plain and compressed, are joined from their packets', (t) => {
  t.is(obs.big.length, 2);
  for (const b of obs.big) {
    const recs = bigEvents.filter((e) => e.sessionId === String(b.thread));
    const q = recs.find((e) => e.sql !== undefined && b.sql.startsWith(e.sql) && e.sql.startsWith('SELECT LENGTH('));
    // The record keeps the first maxSqlLength characters and says it was cut.
    t.like(q, { status: 'ok', truncated: true, rowsReturned: 1 });
    t.is(q?.sql?.length, 1 << 20);
    t.falsy(q?.gapBefore);
    const r = recs.find((e) => e.sql === `SELECT REPEAT('${b.sql.includes("'c") ? 'd' : 'r'}', ${b.resultLength}) AS big`);
    t.like(r, { status: 'ok', rowsReturned: 1 });
    t.true((r?.bytesOut ?? 0) > b.resultLength, `bytes out ${r?.bytesOut}`);
    t.falsy(r?.truncated);
  }
  const plain = bigEvents.find((e) => e.sessionId === String(obs.big[0]!.thread) && e.sql?.startsWith('SELECT LENGTH('));
  // 17 MiB + 155 bytes of payload: two physical packets, 4-byte headers each.
  t.is(plain?.bytesIn, obs.big[0]!.sql.length + 1 + 2 * 4);
});

liveTest('a capture that starts in the middle of the burst picks up at the next command of every connection', (t) => {
  const ports = new Set(obs.connections.filter((c) => c.client === 'burst').map((c) => c.port));
  const ours = (e: AuditEvent): boolean => ports.has(e.client.port) && e.kind === 'statement';
  const full = events.filter(ours);
  const middle = full[Math.floor(full.length / 2)]!;
  // Drop every frame before the middle statement of the burst (plus a few bytes'
  // worth of frames so that the cut falls inside exchanges).
  const cut = frames.findIndex((f) => f.ts >= middle.ts) + 3;
  const mid = auditFrames(frames.slice(cut), { ports: [3306] }).events.filter(ours);
  t.true(mid.length > 0 && mid.every((e) => e.midSession === true));
  const byTs = new Map(full.map((e) => [`${e.client.port}/${e.ts}`, e]));
  let matched = 0;
  for (const e of mid) {
    const f = byTs.get(`${e.client.port}/${e.ts}`);
    if (f === undefined) continue;
    matched++;
    if (f.command === 'COM_STMT_EXECUTE' && e.sql === undefined) {
      // Prepared before the capture started: the text and parameter types are unknown.
      t.like(e, { statementId: f.statementId, status: f.status });
      continue;
    }
    t.like(e, { sql: f.sql, status: f.status, rowsReturned: f.rowsReturned, affectedRows: f.affectedRows, errorCode: f.errorCode }, `${f.sql}`);
    if (f.params !== undefined) t.deepEqual(e.params, f.params);
  }
  const after = full.filter((e) => e.ts > frames[cut]!.ts).length;
  // At most the exchange in flight on each connection at the cut is lost.
  t.true(matched >= after - ports.size * 2, `matched ${matched} of ${after}`);
  t.is(mid.length - matched <= ports.size, true, `records without a counterpart: ${mid.length - matched}`);
});

import test from 'ava';
import { Direction, type AuditEvent } from '@dbtap/core';
import { Confidence, dameng, type ProtocolSession, type SessionOptions } from '@dbtap/protocols';
import { replyHeader } from '../../../test-support/dameng-listener.js';
import { clearMessages, conversation, damengSession, encryptedMessages, fixturePassword } from './helpers/dameng-fixtures.js';

type Chunks = ReadonlyArray<readonly [Direction, Uint8Array]>;

function feed(chunks: Chunks, opts: Partial<SessionOptions> = {}, midStream = false): { events: AuditEvent[]; session: ProtocolSession } {
  const events: AuditEvent[] = [];
  const session = damengSession(events, opts, midStream);
  let ts = 1000;
  for (const [dir, b] of chunks) session.data(dir, b, (ts += 10));
  session.close('fin', ts + 10);
  return { events, session };
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('the XOR byte of every recorded client message covers bytes 0..18, and the body length is the u32le at 6', (t) => {
  for (const m of [...clearMessages, ...encryptedMessages]) {
    let x = 0;
    for (let i = 0; i < 19; i++) x ^= m[i]!;
    t.is(m[19], x, hexOf(m.subarray(0, 20)));
    t.is(Buffer.from(m).readUInt32LE(6) + 64, m.length);
    t.is(m[5], 0, 'the command is a u16le whose high byte is 0');
  }
});

test('detection: the recorded STARTUP is Dameng with High confidence, a later message with Medium, on any port', (t) => {
  t.is(dameng.detect(clearMessages[0]!), Confidence.High);
  t.is(dameng.detect(encryptedMessages[0]!), Confidence.High);
  t.is(dameng.detect(clearMessages[0]!.subarray(0, 70)), Confidence.High, 'the head of a startup suffices');
  t.is(dameng.detect(clearMessages[4]!), Confidence.Medium, 'an SQL message (capture picked up mid-session)');
  t.is(dameng.detect(new Uint8Array(0), replyHeader(0x05, 0)), Confidence.Medium, 'a reply alone');
});

test('detection: one changed header byte, another protocol or random bytes are not Dameng', (t) => {
  const bad = Uint8Array.from(clearMessages[0]!);
  bad[7] ^= 1; // body length changed, XOR byte not
  t.is(dameng.detect(bad), Confidence.None);
  t.is(dameng.detect(Buffer.from('\x00\x00\x00\x08\x04\xd2\x16\x2f')), Confidence.None, 'PostgreSQL SSLRequest');
  t.is(dameng.detect(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), Confidence.None);
  let s = 7;
  let hits = 0;
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(64);
    for (let j = 0; j < 64; j++) b[j] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    if (dameng.detect(b) !== Confidence.None) hits++;
  }
  t.is(hits, 0);
});

test('the clear-login conversation decodes: login with user and application, schema, SQL in GB18030, error, rows, commit, logout', (t) => {
  const { events, session } = feed(conversation(clearMessages));
  t.deepEqual(
    events.map((e) => [e.kind, e.command, e.sql, e.status]),
    [
      ['login', 'LOGIN', undefined, 'ok'],
      ['statement', 'SQL', 'set schema "SHOP"', 'ok'],
      ['statement', 'SQL', 'SELECT name FROM t_用户 WHERE id = 1', 'ok'],
      ['statement', 'SQL', 'SELECT * FROM no_such_table', 'error'],
      ['statement', 'SQL', "UPDATE t_用户 SET name = 'x' WHERE id < 4", 'ok'],
      ['statement', 'SQL', 'SELECT id FROM t_orders', 'ok'],
      ['statement', 'COMMIT', undefined, 'ok'],
      ['statement', 'ROLLBACK', undefined, 'ok'],
      ['logout', undefined, undefined, 'ok'],
    ],
  );
  const [login, schema, select, failed, update] = events;
  t.like(login!, { user: 'AUDITOR', clientProgram: 'dbtap-test', clientLibrary: 'DM 7.6.0.0', dbType: 'dameng', bytesIn: clearMessages[1]!.length, bytesOut: 320 });
  t.deepEqual(login!.attributes, { loginEncrypted: 'false', clientVersion: '7.6.0.0', protocolVersion: '21', osName: 'Linux' });
  t.is(schema!.database, undefined, 'the schema applies from the next record on');
  t.like(select!, { user: 'AUDITOR', database: 'SHOP' });
  t.like(failed!, { errorCode: -2106, message: '表T_X不存在' });
  t.is(update!.affectedRows, 3);
  t.is(select!.affectedRows, undefined);
  t.false(JSON.stringify(events).includes(fixturePassword), 'the password reaches no record');
  t.is(session.stats.malformed, 0);
  t.is(session.stats.unmatchedRequests, 0);
  t.is(session.stats.messages, clearMessages.length * 2);
});

test('a startup that requests login encryption is said so on the login record; the login itself stays readable when the server did not take it up', (t) => {
  const { events } = feed(conversation(encryptedMessages));
  const login = events.find((e) => e.kind === 'login')!;
  t.like(login, { user: 'SYSDBA', clientProgram: 'dbtap-enc', status: 'ok' });
  t.deepEqual(login.attributes, { loginEncrypted: 'false', clientVersion: '7.6.0.0', encryptionRequested: 'true', protocolVersion: '21', osName: 'Linux' });
  t.like(events.find((e) => e.kind === 'statement' && e.sql !== undefined)!, { sql: 'SELECT 1 FROM dual', command: 'SQL' });
});

test('an encrypted login (user and password as ciphertext; constructed: no server negotiated encryption here) records loginEncrypted and no user', (t) => {
  const login = Buffer.from(clearMessages[1]!);
  // Replace "AUDITOR" with ciphertext bytes of the same length.
  Buffer.from('9c01f3e27a88d4', 'hex').copy(login, 68);
  let x = 0;
  for (let i = 0; i < 19; i++) x ^= login[i]!;
  login[19] = x;
  const msgs = [encryptedMessages[0]!, new Uint8Array(login), ...clearMessages.slice(2, 5)];
  const { events } = feed(conversation(msgs));
  const l = events.find((e) => e.kind === 'login')!;
  t.is(l.user, undefined);
  t.like(l, { clientProgram: 'dbtap-test', status: 'ok' });
  t.like(l.attributes!, { loginEncrypted: 'true', encryptionRequested: 'true' });
  t.false(JSON.stringify(events).includes(fixturePassword));
});

test('a failed login is a login record with the error code and text', (t) => {
  const err = Buffer.alloc(16 + 9);
  err.writeUInt32LE(9, 12);
  err.write('bad login', 16, 'latin1');
  const chunks: Chunks = [
    [Direction.ToServer, clearMessages[0]!],
    [Direction.ToClient, Buffer.concat([replyHeader(0xc8, 256), Buffer.alloc(256)])],
    [Direction.ToServer, clearMessages[1]!],
    [Direction.ToClient, Buffer.concat([replyHeader(0x01, err.length, -2501), err])],
  ];
  const { events } = feed(chunks);
  t.deepEqual(
    events.map((e) => [e.kind, e.status, e.errorCode, e.message, e.user]),
    [['login', 'error', -2501, 'bad login', 'AUDITOR']],
  );
});

test('a UTF-8 client text is decoded as UTF-8; the audit object charset overrides the guess', (t) => {
  const sql = Buffer.concat([Buffer.from('SELECT \u540d FROM t'), Buffer.from([0])]);
  const h = Buffer.from(replyHeader(0x05, sql.length));
  h[20] = 1;
  h[21] = 1;
  let x = 0;
  for (let i = 0; i < 19; i++) x ^= h[i]!;
  h[19] = x;
  const m = Buffer.concat([h, sql]);
  const reply = Buffer.concat([replyHeader(0x05, 256), Buffer.alloc(256)]);
  const chunks: Chunks = [
    [Direction.ToServer, m],
    [Direction.ToClient, reply],
  ];
  t.is(feed(chunks).events[0]!.sql, 'SELECT 名 FROM t');
  t.not(feed(chunks, { charset: 'gb18030' }).events[0]!.sql, 'SELECT 名 FROM t');
  t.true(feed(chunks).events[0]!.midSession, 'no login seen: picked up mid-session');
});

test('hostile input: random bodies under valid headers, absurd lengths and floods cost no crash and bounded memory', (t) => {
  let s = 99;
  const rnd = (): number => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const header = (cmd: number, len: number): Buffer => {
    const h = Buffer.alloc(64);
    for (let i = 0; i < 64; i++) h[i] = rnd();
    h.writeUInt16LE(cmd, 4);
    h.writeUInt32LE(len >>> 0, 6);
    let x = 0;
    for (let i = 0; i < 19; i++) x ^= h[i]!;
    h[19] = x;
    return h;
  };
  const chunks: Array<readonly [Direction, Uint8Array]> = [];
  for (let i = 0; i < 300; i++) {
    const cmd = [0xc8, 0x01, 0x03, 0x05, 0x08, 0x09][(i >> 1) % 6]!;
    const len = rnd() % 200;
    const body = Buffer.alloc(len);
    for (let j = 0; j < len; j++) body[j] = rnd();
    // Length fields inside bodies claim absurd sizes too.
    if (len >= 4) body.writeUInt32LE(0xfffffff0, 0);
    chunks.push([(i % 2) as Direction, Buffer.concat([header(cmd, len), body])]);
  }
  chunks.push([Direction.ToServer, header(0x05, 0x7fffffff)]); // 2 GiB claimed: refused as a header
  chunks.push([Direction.ToServer, header(0x05, 50 << 20)]); // 50 MiB claimed, more than maxMessageBytes
  for (let i = 0; i < 64; i++) chunks.push([Direction.ToServer, Buffer.alloc(65536, 0x41)]);
  const before = process.memoryUsage().heapUsed;
  let got: ReturnType<typeof feed> | undefined;
  t.notThrows(() => (got = feed(chunks, { maxMessageBytes: 1 << 20 })));
  const { session, events } = got!;
  t.true(process.memoryUsage().heapUsed - before < 64 << 20);
  t.true(session.stats.malformed >= 1, 'the 2 GiB header is counted malformed');
  t.true((session.counters?.().oversized ?? 0) >= 1, 'the 50 MiB message is counted oversized');
  t.true(session.stats.skippedBytes > 0);
  t.true(events.filter((e) => e.sql !== undefined).length >= 10, 'random SQL bodies are still recorded as what the client sent');
  // Random bodies are under 200 bytes; the 50 MiB message shows only its first 64 KiB (the framer's oversize prefix).
  t.true(events.every((e) => (e.sql ?? '').length <= 64 << 10 && !(e.sql ?? '').includes('\u0000')));
  t.true(events.some((e) => e.truncated === true && (e.sql ?? '').startsWith('AAAA')), 'the oversized statement is recorded, cut and marked truncated');
  t.true(
    events.every((e) => !/[\u0000-\u001f\ufffd]/.test(`${e.user ?? ''}${e.clientProgram ?? ''}`)),
    'user and application are only taken from clean text',
  );
});

test('a gap that swallows a reply: the next request flushes the unanswered one and the stream keeps pairing', (t) => {
  const conv = conversation(clearMessages.slice(0, 6));
  const events: AuditEvent[] = [];
  const s = damengSession(events);
  conv.forEach(([dir, b], i) => (i === 9 ? s.gap(dir, b.length, i) : s.data(dir, b, i)));
  s.close('fin', 99);
  t.deepEqual(
    events.filter((e) => e.kind === 'statement').map((e) => [e.sql, e.status, e.truncated ?? false]),
    [
      ['set schema "SHOP"', 'ok', false],
      ['SELECT name FROM t_用户 WHERE id = 1', 'unknown', true],
      ['SELECT * FROM no_such_table', 'error', false],
    ],
  );
  t.is(s.stats.gaps, 1);
});

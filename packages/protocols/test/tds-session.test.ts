// TDS session behaviour beyond the plain request/response: MARS (SMP)
// demultiplexing and per-session pairing, encryption (ENCRYPT_ON and TDS 8.0
// strict), attention, bulk load, detection, hostile input. Conversations are
// recorded from real clients against the test responder.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Confidence } from '@dbtap/protocols';
import { tds } from '@dbtap/protocols';
import { Connection, Request, TYPES } from 'tedious';
import { startTdsResponder, type TapChunk } from '../../../test-support/tds-responder.js';
import { runTds, unhex } from './helpers/tds.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const load = (name: string): TapChunk[] => unhex(readFileSync(join(fixtures, name), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')));
const PASSWORD = 'Sess-pw-771';

/** The chunks with every SMP chunk cut into its frames (a client writes a SYN and the first DATA together). */
function smpFrames(chunks: readonly TapChunk[]): TapChunk[] {
  const out: TapChunk[] = [];
  for (const [d, b] of chunks) {
    if (b[0] !== 0x53) {
      out.push([d, b]);
      continue;
    }
    for (let at = 0; at + 16 <= b.length; ) {
      const len = b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16);
      out.push([d, b.subarray(at, at + len)]);
      at += len;
    }
  }
  return out;
}

test('MARS (pytds use_mars): statements of each SMP session pair with their own responses', (t) => {
  const { events, stats } = runTds(load('tds-pytds-mars.hex'));
  t.is(stats.malformed, 0);
  t.is(stats.unmatchedRequests + stats.unmatchedResponses, 0);
  t.like(events[0], { kind: 'login', status: 'ok', user: 'pyuser', database: 'inventory', clientProgram: 'pytds-mars' });
  t.is(events[0]!.attributes?.mars, 'true');
  const st = events.filter((e) => e.kind === 'statement').map((e) => [e.attributes?.marsSession, e.sql, e.status, e.rowsReturned ?? e.affectedRows]);
  t.deepEqual(st, [
    ['2', 'select id, name from items', 'ok', 2],
    ['3', 'update items set qty = 4', 'ok', 1],
    ['3', 'select id, name from parts where id = @P1', 'ok', 2],
  ]);
});

test('MARS: requests outstanding on two sessions at once, answered out of order, pair by session id', (t) => {
  const c = smpFrames(load('tds-pytds-mars.hex'));
  // SMP DATA frames of the recording: [client sid 2, server sid 2, client sid 3, server sid 3, ...].
  const sid = (b: Uint8Array): number => b[2]! | (b[3]! << 8);
  const data = c.filter(([, b]) => b[0] === 0x53 && b[1] === 0x08);
  const req2 = data.find(([d, b]) => d === 0 && sid(b) === 2)!;
  const resp2 = data.find(([d, b]) => d === 1 && sid(b) === 2)!;
  const req3 = data.find(([d, b]) => d === 0 && sid(b) === 3)!;
  const resp3 = data.find(([d, b]) => d === 1 && sid(b) === 3)!;
  const head = c.slice(0, c.indexOf(req2));
  const { events } = runTds([...head, req2, req3, resp3, resp2]);
  const st = events.filter((e) => e.kind === 'statement').map((e) => [e.attributes?.marsSession, e.sql, e.rowsReturned ?? e.affectedRows]);
  t.deepEqual(st, [
    ['3', 'update items set qty = 4', 1],
    ['2', 'select id, name from items', 2],
  ]);
});

test('MARS picked up mid-session: SMP frames resynchronise and still decode', (t) => {
  const c = smpFrames(load('tds-pytds-mars.hex'));
  const from = c.findIndex(([d, b]) => d === 0 && b[0] === 0x53 && b[1] === 0x08);
  const { events } = runTds(c.slice(from), {}, true);
  t.deepEqual(
    events.filter((e) => e.kind === 'statement').map((e) => e.sql),
    ['select id, name from items', 'update items set qty = 4', 'select id, name from parts where id = @P1'],
  );
  t.true(events.every((e) => e.midSession === true));
});

function tediousConnect(port: number, encrypt: boolean | 'strict'): Promise<void> {
  return new Promise((resolve) => {
    const c = new Connection({
      server: '127.0.0.1',
      authentication: { type: 'default', options: { userName: 'enc_user', password: PASSWORD } },
      options: { port, encrypt, trustServerCertificate: true, database: 'vault', appName: 'dbtap-enc', connectTimeout: 1500 },
    });
    c.on('connect', () => {
      c.close();
      resolve();
    });
    c.on('error', () => resolve());
    c.connect();
  });
}

test.serial('ENCRYPT_ON (tedious encrypt: true): a login record marked tls with what PRELOGIN showed, then nothing', async (t) => {
  const r = await startTdsResponder({ password: PASSWORD, encryption: 'on' });
  try {
    await tediousConnect(r.port, true);
    await new Promise((res) => setTimeout(res, 100));
  } finally {
    await r.close();
  }
  const conv = r.conversations[0]!;
  // tedious started its TLS handshake inside PRELOGIN packets.
  t.true(conv.some(([d, b]) => d === 0 && b[0] === 0x12 && b[8] === 0x16));
  const { events } = runTds(conv);
  t.is(events.length, 2);
  t.like(events[0], { kind: 'login', tls: true, command: 'PRELOGIN', status: 'unknown' });
  t.like(events[1], { kind: 'connection', dbType: 'tds', tls: true, status: 'ok' });
  t.like(events[0]!.attributes, { encryption: 'on', serverEncryption: 'on', clientVersion: '18.6.2.0' });
  t.false(JSON.stringify(events).includes(PASSWORD));
});

test.serial('TDS 8.0 (tedious encrypt: strict): TLS from the first byte gives a tls login record', async (t) => {
  const r = await startTdsResponder({ password: PASSWORD });
  try {
    await tediousConnect(r.port, 'strict');
    await new Promise((res) => setTimeout(res, 100));
  } finally {
    await r.close();
  }
  const conv = r.conversations[0]!;
  t.is(conv[0]![1][0], 0x16); // a TLS ClientHello record, no PRELOGIN
  t.is(tds.detect(conv[0]![1]), Confidence.None); // TLS alone is not TDS by content: the port decides
  const { events } = runTds(conv);
  t.is(events.length, 2);
  t.like(events[0], { kind: 'login', tls: true, command: 'TLS' });
  t.like(events[1], { kind: 'connection', dbType: 'tds', tls: true, status: 'ok' });
  t.is(events[0]!.attributes?.tdsVersion, '8.0');
});

function tediousLogin(port: number, user: string): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    const conn = new Connection({ server: '127.0.0.1', authentication: { type: 'default', options: { userName: user, password: PASSWORD } }, options: { port, encrypt: false, database: 'loads', cancelTimeout: 2000 } });
    conn.on('connect', (e) => (e ? reject(e) : resolve(conn)));
    conn.on('error', () => {});
    conn.connect();
  });
}

test.serial('attention (tedious cancel) marks the statement it cancelled; bulk load is a record with its row count', async (t) => {
  const r = await startTdsResponder({ password: PASSWORD });
  try {
    const c = await tediousLogin(r.port, 'cancel_user');
    await new Promise<void>((res) => {
      c.execSql(new Request("waitfor delay '00:01:00'", () => res()));
      setTimeout(() => c.cancel(), 50);
    });
    c.close();
    const b = await tediousLogin(r.port, 'bulk_user');
    await new Promise<void>((res, rej) => {
      const bulk = b.newBulkLoad('dbo.readings', (err) => (err ? rej(err) : res()));
      bulk.addColumn('id', TYPES.Int, { nullable: false });
      bulk.addColumn('v', TYPES.NVarChar, { length: 20, nullable: true });
      b.execBulkLoad(bulk, [{ id: 1, v: 'a' }, { id: 2, v: null }, { id: 3, v: 'c' }]);
    });
    await new Promise<void>((res) => {
      b.on('end', () => res());
      b.close();
    });
  } finally {
    await r.close();
  }
  const cancelled = runTds(r.conversations[0]!);
  t.is(cancelled.stats.malformed, 0);
  t.is(cancelled.stats.unmatchedResponses, 0); // the acknowledgement is consumed, not an orphan
  const wait = cancelled.events.find((e) => e.sql === "waitfor delay '00:01:00'")!;
  t.like(wait, { status: 'error', message: 'cancelled by attention' });
  t.is(wait.attributes?.cancelled, 'true');
  const { events, stats } = runTds(r.conversations[1]!);
  t.is(stats.malformed, 0);
  const bulk = events.find((e) => e.command === 'BulkLoad')!;
  t.regex(bulk.sql ?? '', /^insert bulk dbo\.readings/i);
  t.is(bulk.attributes?.bulkRows, '3');
  t.is(bulk.affectedRows, 3);
  t.is(bulk.status, 'ok');
  t.is(bulk.user, 'bulk_user');
});

test('detection by content: PRELOGIN, LOGIN7 and TDS 5.0 login are certain, batches likely, other protocols not TDS', (t) => {
  const ted = load('tds-tedious-7.4.hex');
  t.is(tds.detect(ted[0]![1]), Confidence.High); // PRELOGIN
  t.is(tds.detect(ted[2]![1]), Confidence.High); // LOGIN7
  const batch = ted.find(([d, b]) => d === 0 && b[0] === 0x01)!;
  t.is(tds.detect(batch[1]), Confidence.Medium);
  const rpc = ted.find(([d, b]) => d === 0 && b[0] === 0x03)!;
  t.is(tds.detect(rpc[1]), Confidence.Medium);
  const syb = load('tds-freetds-5.0.hex');
  t.is(tds.detect(syb[0]![1]), Confidence.High);
  t.is(tds.detect(syb[2]![1]), Confidence.Medium); // LANGUAGE token packet
  t.is(tds.detect(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), Confidence.None);
  t.is(tds.detect(Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f])), Confidence.None); // PostgreSQL SSLRequest
  t.is(tds.detect(Buffer.from([0x4a, 0, 0, 0, 0x0a, 0x38, 0x2e])), Confidence.None); // MySQL greeting
});

test('hostile input: absurd lengths, floods of garbage and broken tokens cost neither exceptions nor records', (t) => {
  let x = 12345;
  const rnd = (n: number): Uint8Array => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    return b;
  };
  const ted = load('tds-tedious-7.4.hex');
  // Garbage in both directions, packets with every length, a response whose tokens lie about their lengths.
  const chunks: TapChunk[] = [[0, rnd(70_000)], [1, rnd(70_000)]];
  for (let len = 8; len < 400; len += 7) chunks.push([0, Uint8Array.from([0x01, 0x01, len >> 8, len & 0xff, 0, 0, 1, 0, ...rnd(Math.max(0, len - 8))])]);
  chunks.push([1, Uint8Array.from([0x04, 0x01, 0x00, 0x20, 0, 0, 1, 0, 0x81, 0xff, 0x7f, ...rnd(21)])]);
  const { events, stats } = runTds([...chunks, ...ted.slice(4)], { maxMessageBytes: 4096 }, true);
  t.true(stats.skippedBytes >= 70_000); // the garbage was skipped, counted
  // The real statements after the flood still decode.
  t.truthy(events.find((e) => e.sql === 'delete from t where id = 9' && e.status === 'ok'));
  t.true(events.length < 80);
});

test('the LOGIN7 password (obfuscated on the wire) never reaches a record, even when its bytes are plain text', (t) => {
  const ted = load('tds-tedious-7.4.hex');
  const { events } = runTds(ted);
  const all = JSON.stringify(events);
  t.false(all.includes('fixture-pw-1'));
  // The obfuscated form ([MS-TDS] 2.2.6.4: nibbles swapped, XOR 0xA5) is not there either.
  const obf = Buffer.from(Buffer.from('fixture-pw-1', 'utf16le').map((b) => (((b << 4) | (b >> 4)) & 0xff) ^ 0xa5));
  t.false(all.includes(obf.toString('hex')));
  t.false(all.includes(obf.toString('latin1')));
});

// Syslog notifications against a real rsyslogd on loopback: RFC 5424 and
// CEF over UDP, TCP (octet counting) and TLS, parsed back by rsyslog's own
// parsers (pmrfc5424, mmpstrucdata) and by a CEF parser of the test's own;
// and reconnection after the receiver drops the connection.
import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { makeTestPki } from '../../../test-support/tls-recorder.js';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeNotice, Notifier, NotifyErrorCodes, parseNotificationConfig, type NotifierEvent } from '@dbtap/server';
import { alert, freePort, hasRsyslogTls, parseCef, record, RSYSLOGD, splitOctetCounted, startRsyslog, waitFor, type ReceivedMessage, type Rsyslog } from './notify-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dbtap-notify-syslog-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

// A throw-away PKI: a CA, rsyslog's server certificate for 127.0.0.1, a client certificate, and an unrelated CA.
const tlsReady = existsSync(RSYSLOGD) && hasRsyslogTls();
if (tlsReady) makeTestPki({ dir, serverCn: 'localhost', clientCn: 'dbtap-server' });

let rs: Rsyslog | undefined;
if (existsSync(RSYSLOGD)) {
  test.before(async () => {
    rs = await startRsyslog(dir, tlsReady ? { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') } : undefined);
  });
  test.after.always(async () => rs?.stop());
}

/** A test that needs rsyslogd (and, with `needTls`, its gtls driver): skipped with a reason outside CI, failed in CI. */
function rsyslogTest(title: string, fn: (t: ExecutionContext, rs: Rsyslog) => Promise<void>, needTls = false): void {
  const missing = !existsSync(RSYSLOGD) ? `${RSYSLOGD} is not installed` : needTls && !hasRsyslogTls() ? 'rsyslog-gnutls (lmnsd_gtls) is not installed' : undefined;
  if (missing === undefined) test(title, (t) => fn(t, rs!));
  else if (process.env.CI) test(title, (t) => t.fail(missing));
  else {
    console.log(`skipping "${title}": ${missing}`);
    test.skip(title, () => {});
  }
}

const from = (input: string, tag: string) => (m: ReceivedMessage) => m.input === input && m.raw.includes(tag);

// Text that needs every escape RFC 5424 and CEF define, plus a line break, '=' and non-ASCII.
const nasty = 'SELECT "a]b", \'c\\d\' | e=f FROM t WHERE n = \'Zürich ✓\'\n  AND x <> 1';

rsyslogTest('RFC 5424 over UDP: header, structured data and message arrive intact', async (t, rs) => {
  const [cfg] = parseNotificationConfig(
    [{ type: 'syslog', name: 'udp5424', transport: 'udp', host: '127.0.0.1', port: rs.ports.udp, facility: 'local3', hostname: 'audit-1', minRisk: 'medium', records: true }],
    'test',
  );
  const n = new Notifier([cfg!]);
  const a = alert(101, 'high', { sql: nasty, user: 'bob "the" admin' });
  const r = record(102, 'medium', { clientProgram: 'tag-udp5424' });
  n.notify(a);
  n.notify(r);
  n.notify(record(103, 'low', { clientProgram: 'tag-udp5424' })); // below minRisk
  t.true(await n.flush());
  await waitFor(() => rs.messages().filter((m) => m.input === 'udp' && m.hostname === 'audit-1').length >= 2, 'two UDP messages');
  const got = rs.messages().filter((m) => m.input === 'udp' && m.hostname === 'audit-1');
  t.is(got.length, 2);
  const [ma, mr] = [got.find((m) => m.msgid === 'alert')!, got.find((m) => m.msgid === 'statement')!];
  // PRI = facility 19 (local3) * 8 + severity: high -> 2 (critical), medium -> 4 (warning).
  t.is(ma.pri, String(19 * 8 + 2));
  t.is(mr.pri, String(19 * 8 + 4));
  t.is(ma.app, 'dbtap');
  t.is(ma.procid, String(process.pid));
  t.is(ma.timestamp, '2024-05-29T16:26:40.101123Z');
  const sd = ma.sd!['dbtap@32473']!;
  t.is(sd.sql, nasty);
  t.is(sd.user, 'bob "the" admin');
  t.is(sd.reason, '101 rows read from shop.customers');
  t.is(sd.ruleId, 'bulk-export');
  t.is(sd.kind, 'alert');
  t.is(sd.risk, 'high');
  t.is(sd.group, 'clientIp=10.0.0.7');
  t.is(sd.clientIp, '10.0.0.7');
  t.is(sd.clientPort, '50101');
  t.is(sd.serverPort, '3306');
  t.is(sd.objects, 'shop.customers');
  t.is(sd.eventId, a.id);
  t.is(ma.msg, describeNotice({ type: 'event', event: a }));
  t.is(mr.sd!['dbtap@32473']!.clientProgram, 'tag-udp5424');
  const st = n.stats()[0]!;
  t.like(st, { sent: 2, failed: 0, dropped: 0, queued: 0 });
  await n.close();
});

rsyslogTest('RFC 5424 over TCP: octet counting carries multi-line SQL; oversized SQL is shortened to fit', async (t, rs) => {
  const [cfg] = parseNotificationConfig([{ type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.ports.tcp, hostname: 'audit-tcp', minRisk: 'low', records: true, maxMessageBytes: 4096 }], 'test');
  const n = new Notifier([cfg!]);
  const multi = Array.from({ length: 40 }, (_, i) => `  col${i} = "v${i}\\" ] ü",`).join('\n');
  const huge = `INSERT INTO t VALUES ('${'x'.repeat(10_000)}')`;
  for (let i = 0; i < 60; i++) n.notify(record(200 + i, 'low', { sql: `UPDATE t SET\n${multi}\nWHERE id = ${i}` }));
  n.notify(record(300, 'high', { sql: huge }));
  t.true(await n.flush());
  const mine = (): ReceivedMessage[] => rs.messages().filter((m) => m.input === 'tcp' && m.hostname === 'audit-tcp');
  await waitFor(() => mine().length >= 61, '61 TCP messages');
  const got = mine();
  t.is(got.length, 61);
  for (let i = 0; i < 60; i++) t.is(got[i]!.sd!['dbtap@32473']!.sql, `UPDATE t SET\n${multi}\nWHERE id = ${i}`, `message ${i} in order and whole`);
  const big = got[60]!;
  t.true(Buffer.byteLength(big.raw) <= 4096);
  t.true(Buffer.byteLength(big.raw) > 3500, 'the budget is used, not thrown away');
  const sql = big.sd!['dbtap@32473']!.sql!;
  t.true(sql.endsWith('…'));
  t.true(huge.startsWith(sql.slice(0, -1)));
  t.is(big.sd!['dbtap@32473']!.eventId, 'f300:1', 'fixed fields survive shortening');
  t.true(n.stats()[0]!.connected);
  await n.close();
  t.false(n.stats()[0]!.connected);
});

rsyslogTest('CEF over TCP (RFC 5424 header) and UDP (RFC 3164 header) parses back to the record fields', async (t, rs) => {
  const channels = parseNotificationConfig(
    [
      { type: 'syslog', name: 'cef-tcp', format: 'cef', transport: 'tcp', host: '127.0.0.1', port: rs.ports.tcp, hostname: 'audit-cef', minRisk: 'high' },
      { type: 'syslog', name: 'cef-udp', format: 'cef', cefHeader: 'rfc3164', transport: 'udp', host: '127.0.0.1', port: rs.ports.udp, hostname: 'audit-cef3164', minRisk: 'high' },
    ],
    'test',
  );
  const n = new Notifier(channels);
  const a = alert(400, 'high', { sql: nasty, osUser: 'alice', alert: { ruleId: 'exfil|1', name: 'Bulk | export \\ to file', reason: 'rows=400\nfrom shop.customers', value: 400 } });
  n.notify(a);
  t.true(await n.flush());
  await waitFor(() => rs.messages().some(from('tcp', 'audit-cef ')) && rs.messages().some(from('udp', 'audit-cef3164')), 'CEF over TCP and UDP');

  const viaTcp = rs.messages().find(from('tcp', 'audit-cef '))!;
  t.is(viaTcp.msgid, 'alert');
  t.is(viaTcp.sd, undefined);
  const viaUdp = rs.messages().find(from('udp', 'audit-cef3164'))!;
  const m3164 = /^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) audit-cef3164 (CEF:.*)$/s.exec(viaUdp.raw);
  t.truthy(m3164, viaUdp.raw);
  t.is(m3164![1], String(16 * 8 + 2));
  for (const text of [viaTcp.msg, m3164![3]!]) {
    const { header, ext } = parseCef(text);
    t.deepEqual(header, ['CEF:0', 'dbtap', 'dbtap', '0.1.0', 'exfil|1', 'Bulk | export \\ to file', '8']);
    t.is(ext.rt, String(Math.floor(a.ts / 1000)));
    t.is(ext.src, '10.0.0.7');
    t.is(ext.spt, '50400');
    t.is(ext.dst, '10.0.0.1');
    t.is(ext.dpt, '3306');
    t.is(ext.duser, 'app');
    t.is(ext.suser, 'alice');
    t.is(ext.app, 'mysql');
    t.is(ext.act, 'SELECT');
    t.is(ext.cs1, nasty);
    t.is(ext.cs1Label, 'SQL');
    t.is(ext.cs2, 'shop');
    t.is(ext.cs3, 'bulk-export');
    t.is(ext.cs6, a.id);
    t.is(ext.cnt, '400');
    t.is(ext.msg, 'Bulk | export \\ to file: rows=400\nfrom shop.customers');
    t.is(ext.outcome, 'success');
  }
  await n.close();
});

rsyslogTest(
  'RFC 5424 over TLS: the receiver is verified against the CA, with and without a client certificate',
  async (t, rs) => {
    const events: NotifierEvent[] = [];
    const channels = parseNotificationConfig(
      [
        { type: 'syslog', name: 'tls', transport: 'tls', host: '127.0.0.1', port: rs.ports.tls, hostname: 'audit-tls', tls: { ca: join(dir, 'ca.crt') } },
        {
          type: 'syslog',
          name: 'mtls',
          transport: 'tls',
          host: '127.0.0.1',
          port: rs.ports.mtls,
          hostname: 'audit-mtls',
          format: 'rfc5424',
          tls: { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') },
        },
      ],
      'test',
    );
    const n = new Notifier(channels, { onEvent: (e) => events.push(e) });
    for (let i = 0; i < 5; i++) n.notify(alert(500 + i, 'medium', { sql: nasty }));
    t.true(await n.flush());
    await waitFor(() => rs.messages().filter((m) => m.input === 'tls').length >= 5 && rs.messages().filter((m) => m.input === 'mtls').length >= 5, 'TLS messages');
    for (const input of ['tls', 'mtls']) {
      const got = rs.messages().filter((m) => m.input === input);
      t.is(got.length, 5, input);
      t.deepEqual(
        got.map((m) => m.sd!['dbtap@32473']!.eventId),
        [500, 501, 502, 503, 504].map((i) => `f${i}:1:alert:bulk-export`),
      );
      t.true(got.every((m) => m.sd!['dbtap@32473']!.sql === nasty));
    }
    t.deepEqual(
      events.filter((e) => e.type === 'connected').map((e) => e.channel).sort(),
      ['mtls', 'tls'],
    );
    t.true(n.stats().every((s) => s.connected && s.sent === 5));
    await n.close();
  },
  true,
);

rsyslogTest(
  'TLS: a receiver whose certificate another CA signed is refused; undelivered alerts go to the spool',
  async (t, rs) => {
    const events: NotifierEvent[] = [];
    const spoolDir = join(dir, 'spool-badca');
    const [cfg] = parseNotificationConfig(
      [{ type: 'syslog', name: 'badca', transport: 'tls', host: '127.0.0.1', port: rs.ports.tls, tls: { ca: join(dir, 'other.crt') }, reconnect: { initialMs: 20, maxMs: 100 } }],
      'test',
    );
    const n = new Notifier([cfg!], { onEvent: (e) => events.push(e), spoolDir });
    n.notify(alert(600, 'high'));
    await waitFor(() => events.filter((e) => e.type === 'disconnected').length >= 2, 'two refused connection attempts');
    const refused = events.find((e) => e.type === 'disconnected') as Extract<NotifierEvent, { type: 'disconnected' }>;
    t.is(refused.error.code, NotifyErrorCodes.CONNECT);
    t.regex(refused.error.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN/);
    t.like(n.stats()[0], { sent: 0, queued: 1, connected: false });
    t.false(await n.flush(50));
    await n.close(0);
    const spooled = readFileSync(join(spoolDir, 'badca.spool.ndjson'), 'utf8').trim().split('\n');
    t.is(spooled.length, 1);
    t.is(JSON.parse(spooled[0]!).event.id, 'f600:1:alert:bulk-export');
    t.is(n.stats()[0]!.dropped, 0);
  },
  true,
);

test('TCP: reconnects with backoff while the receiver is down, and again after it drops the connection', async (t) => {
  const port = await freePort('tcp');
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'syslog', name: 'rc', transport: 'tcp', host: '127.0.0.1', port, minRisk: 'low', reconnect: { initialMs: 10, maxMs: 40, jitter: 0 } }], 'test');
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e) });
  n.notify(alert(1, 'high'));
  n.notify(alert(2, 'high'));
  // Nothing listens yet: attempts fail and are retried.
  await waitFor(() => events.filter((e) => e.type === 'disconnected').length >= 3, 'three failed connection attempts');
  t.is(n.stats()[0]!.sent, 0);

  const received: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      const r = splitOctetCounted(Buffer.concat([buf, c]));
      received.push(...r.messages);
      buf = r.rest;
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  await waitFor(() => received.length === 2, 'the two queued alerts');
  t.true(await n.flush());
  t.regex(received[0]!, /eventId="f1:1:alert:bulk-export"/);
  t.regex(received[1]!, /eventId="f2:1:alert:bulk-export"/);

  // The receiver drops the connection; the next alert comes over a new one.
  const connectsBefore = events.filter((e) => e.type === 'connected').length;
  sockets[0]!.destroy();
  await waitFor(() => events.filter((e) => e.type === 'disconnected').length > 3 || n.stats()[0]!.connected === false, 'the drop noticed');
  n.notify(alert(3, 'high'));
  await waitFor(() => received.length === 3, 'the alert after the drop');
  t.regex(received[2]!, /eventId="f3:1:alert:bulk-export"/);
  t.is(events.filter((e) => e.type === 'connected').length, connectsBefore + 1);
  t.is(sockets.length, 2);
  t.like(n.stats()[0], { sent: 3, failed: 0 });
  await n.close();
  await new Promise((r) => server.close(r));
});

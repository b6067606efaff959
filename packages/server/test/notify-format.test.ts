// Message formats on their own: RFC 5424 escaping, header fields and size
// limits, CEF escaping and severities, stream framing.
import test from 'ava';
import { cefSeverity, formatCef, formatRfc5424, NOTIFY_PRODUCT, severityOfRisk, type CefOptions, type Rfc5424Options } from '@dbtap/server';
import { escapeCefHeader, escapeCefValue } from '../src/notify/cef.js';
import { escapeSdValue, rfc5424Header } from '../src/notify/rfc5424.js';
import { frameMessage } from '../src/notify/syslog.js';
import { alert, parseCef, record, splitOctetCounted } from './notify-helpers.js';

const o5424: Rfc5424Options = { facility: 16, hostname: 'audit-1', appName: 'dbtap', procId: '4242', sdId: 'dbtap@32473', maxMessageBytes: 8192 };
const oCef: CefOptions = { ...NOTIFY_PRODUCT, hostname: 'audit-1', header: 'none', facility: 16, appName: 'dbtap', procId: '4242', maxMessageBytes: 8192 };

test('RFC 5424 section 6.3.3: ", \\ and ] are escaped in PARAM-VALUE, nothing else', (t) => {
  t.is(escapeSdValue('a"b\\c]d'), 'a\\"b\\\\c\\]d');
  t.is(escapeSdValue('x=1 [y] ü\n'), 'x=1 [y\\] ü\n');
  const msg = formatRfc5424({ type: 'event', event: alert(1, 'high', { sql: 'a"]\\' }) }, o5424);
  t.true(msg.includes(' sql="a\\"\\]\\\\"]'), msg);
});

test('RFC 5424 header: PRI, version, NILVALUE, printable ASCII only, field lengths', (t) => {
  t.is(rfc5424Header({ facility: 4, severity: 2, ts: undefined, hostname: '', appName: 'dbtap', procId: '1', msgId: 'alert' }), '<34>1 - - dbtap 1 alert');
  t.is(rfc5424Header({ facility: 23, severity: 7, ts: 1_717_000_000_000_001, hostname: 'héllo wörld', appName: 'a'.repeat(60), procId: '1', msgId: 'm'.repeat(40) }), `<191>1 2024-05-29T16:26:40.000001Z h_llo_w_rld ${'a'.repeat(48)} 1 ${'m'.repeat(32)}`);
  t.deepEqual(
    (['none', 'info', 'low', 'medium', 'high'] as const).map(severityOfRisk),
    [6, 6, 5, 4, 2],
  );
  // A rate-limit summary: MSGID suppressed, severity from the highest suppressed risk, time of the last one.
  const s = formatRfc5424({ type: 'suppressed', channel: 'siem', alerts: 3, records: 2, maxRisk: 'medium', from: 1_717_000_000_000_000, to: 1_717_000_002_500_000 }, o5424);
  t.is(
    s,
    '<132>1 2024-05-29T16:26:42.500000Z audit-1 dbtap 4242 suppressed [dbtap@32473 kind="suppressed" channel="siem" count="5" alerts="3" records="2" maxRisk="medium" since="2024-05-29T16:26:40.000000Z"] 5 notifications (3 alerts, 2 records) suppressed by the rate limit of channel siem',
  );
});

test('RFC 5424 MSG starts with a BOM only when it holds non-ASCII text', (t) => {
  const ascii = formatRfc5424({ type: 'event', event: alert(1, 'high') }, o5424);
  t.false(ascii.includes('\uFEFF'));
  t.true(ascii.endsWith('] Bulk export: 1 rows read from shop.customers'));
  const utf8 = formatRfc5424({ type: 'event', event: alert(1, 'high', { alert: { ruleId: 'r', name: 'Größe', reason: 'zu groß' } }) }, o5424);
  t.true(utf8.endsWith('] \uFEFFGröße: zu groß'));
});

test('an oversized message is shortened in its free text to fit the limit, keeping the fixed fields', (t) => {
  const big = alert(1, 'high', { sql: `SELECT '${'ü'.repeat(5000)}'`, alert: { ruleId: 'r1', name: 'n', reason: 'r'.repeat(3000) } });
  for (const max of [480, 1024, 2048]) {
    const m = formatRfc5424({ type: 'event', event: big }, { ...o5424, maxMessageBytes: max });
    t.true(Buffer.byteLength(m) <= max, `${max}: ${Buffer.byteLength(m)}`);
    t.true(Buffer.byteLength(m) > max - 64, `${max}: most of the budget is used`);
    t.true(m.startsWith('<130>1 2024-05-29T16:26:40.001123Z audit-1 dbtap 4242 alert [dbtap@32473 eventId="f1:1:alert:bulk-export"'));
    t.notThrows(() => Buffer.from(m, 'utf8').toString('utf8'));
    t.false(m.includes('\uFFFD'), 'no character cut in half');
    const c = formatCef({ type: 'event', event: big }, { ...oCef, maxMessageBytes: max });
    t.true(Buffer.byteLength(c) <= max);
    const { header, ext } = parseCef(c);
    t.is(header[4], 'r1');
    t.is(ext.src, '10.0.0.7');
    t.true(ext.cs1!.endsWith('…'));
  }
  // A message that fits is left alone.
  const small = formatRfc5424({ type: 'event', event: alert(1, 'high') }, o5424);
  t.true(small.includes('sql="SELECT * FROM customers WHERE id = 1"'));
});

test('CEF: | and \\ escaped in the header; \\, = and line breaks in extensions; severities 0-10', (t) => {
  t.is(escapeCefHeader('a|b\\c\nd'), 'a\\|b\\\\c d');
  t.is(escapeCefValue('a=b\\c\r\nd\re|f'), 'a\\=b\\\\c\\nd\\re|f');
  t.deepEqual(
    (['none', 'info', 'low', 'medium', 'high'] as const).map(cefSeverity),
    [0, 1, 3, 5, 8],
  );
  const c = formatCef({ type: 'event', event: record(3, 'medium', { status: 'error', errorCode: 1146, sqlState: '42S02', message: "Table 'shop.x' doesn't exist" }) }, oCef);
  const { header, ext } = parseCef(c);
  t.deepEqual(header, ['CEF:0', 'dbtap', 'dbtap', '0.1.0', 'sensitive-read', 'medium risk SELECT', '5']);
  t.is(ext.outcome, 'failure');
  t.is(ext.flexString2, "1146 42S02 Table 'shop.x' doesn't exist");
  t.is(ext.flexString2Label, 'Error');
  t.is(ext.cs1, 'SELECT * FROM customers WHERE id = 3');
  t.is(ext.cat, 'statement');
  t.is(ext.end, String(Math.floor((1_717_000_000_000_000 + 3000 + 2123) / 1000)));
  t.is(ext.cn1, '1');
  t.is(ext.cn3, '2000');
  // A suppression summary has its own signature and count.
  const s = parseCef(formatCef({ type: 'suppressed', channel: 'siem', alerts: 12, records: 0, maxRisk: 'high', from: 1_717_000_000_000_000, to: 1_717_000_005_000_000 }, oCef));
  t.deepEqual(s.header.slice(4), ['dbtap.suppressed', '12 alerts suppressed by the rate limit of channel siem', '8']);
  t.like(s.ext, { cnt: '12', start: '1717000000000', end: '1717000005000', cs3: 'siem' });
});

test('RFC 6587 framing: the octet count is the UTF-8 byte length; LF framing flattens line breaks', (t) => {
  const msg = '<14>1 - - dbtap - x - grüße\nzwei';
  const framed = frameMessage(msg, 'octet-counting');
  t.is(framed.toString('utf8'), `${Buffer.byteLength(msg)} ${msg}`);
  const two = Buffer.concat([framed, frameMessage('abc', 'octet-counting')]);
  t.deepEqual(splitOctetCounted(two).messages, [msg, 'abc']);
  t.is(frameMessage(msg, 'lf').toString('utf8'), '<14>1 - - dbtap - x - grüße zwei\n');
});

// The notifications section of the configuration: defaults, and a clear
// DBTAP_E_CONFIG naming the key for every kind of bad value.
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, isDbtapError } from '@dbtap/core';
import { Notifier, parseNotificationConfig } from '@dbtap/server';

test('a YAML notifications section parses with every default filled', (t) => {
  const doc = parseYaml(`
notifications:
  - type: syslog
    host: siem.example.net
  - type: syslog
    name: arcsight
    format: cef
    cefHeader: rfc3164
    transport: tls
    host: 10.1.2.3
    facility: authpriv
    minRisk: high
    rateLimit: { perSecond: 0.5 }
    tls: { ca: /etc/dbtap/siem-ca.pem }
  - type: webhook
    url: https://hooks.example.net/dbtap
    headers: { Authorization: Bearer abc }
    batchSize: 20
  - type: file
    path: /var/log/dbtap/alerts.ndjson
    maxBytes: 10MiB
    records: true
`) as { notifications: unknown };
  const [s, cef, w, f] = parseNotificationConfig(doc.notifications, 'server.yaml');
  t.deepEqual(s, {
    name: 'syslog-0',
    type: 'syslog',
    minRisk: 'medium',
    records: false,
    queueSize: 10_000,
    format: 'rfc5424',
    transport: 'udp',
    host: 'siem.example.net',
    port: 514,
    facility: 16,
    appName: 'dbtap',
    sdId: 'dbtap@32473',
    framing: 'octet-counting',
    cefHeader: 'rfc5424',
    maxMessageBytes: 2048,
    reconnect: { initialMs: 500, maxMs: 30_000, jitter: 0.5 },
    connectTimeoutMs: 10_000,
  });
  t.like(cef, { name: 'arcsight', format: 'cef', cefHeader: 'rfc3164', transport: 'tls', port: 6514, facility: 10, minRisk: 'high', maxMessageBytes: 8192 });
  t.deepEqual(cef!.type === 'syslog' && cef!.tls, { ca: '/etc/dbtap/siem-ca.pem', rejectUnauthorized: true });
  t.deepEqual(cef!.rateLimit, { perSecond: 0.5, burst: 1 });
  t.like(w, { name: 'webhook-2', type: 'webhook', url: 'https://hooks.example.net/dbtap', headers: { Authorization: 'Bearer abc' }, retries: 5, timeoutMs: 10_000, batchSize: 20, maxRetryAfterMs: 300_000 });
  t.like(f, { name: 'file-3', type: 'file', maxBytes: 10 * 1024 * 1024, keep: 5, fsync: false, records: true });
  t.deepEqual(parseNotificationConfig(undefined, 'server.yaml'), []);
  t.deepEqual(parseNotificationConfig(null, 'server.yaml'), []);
});

test('every bad value is refused with DBTAP_E_CONFIG naming the file and the key', (t) => {
  const syslog = { type: 'syslog', host: 'h' };
  const cases: Array<[unknown, RegExp]> = [
    [{ type: 'syslog' }, /server\.yaml: notifications must be a list of channels/],
    [[42], /notifications\[0\] must be a mapping/],
    [[{ host: 'h' }], /notifications\[0\]\.type must be one of syslog, webhook, file/],
    [[{ type: 'pager' }], /notifications\[0\]\.type must be one of/],
    [[{ ...syslog, colour: 'red' }], /notifications\[0\]\.colour must be one of name, type, .* \(unknown key\)/],
    [[{ type: 'syslog' }], /notifications\[0\]\.host must be a non-empty string/],
    [[syslog, { ...syslog, port: 70000 }], /notifications\[1\]\.port must be an integer from 1 to 65535/],
    [[{ ...syslog, transport: 'sctp' }], /notifications\[0\]\.transport must be one of udp, tcp, tls/],
    [[{ ...syslog, facility: 'local9' }], /notifications\[0\]\.facility must be a facility name/],
    [[{ ...syslog, facility: 24 }], /notifications\[0\]\.facility must be an integer from 0 to 23/],
    [[{ ...syslog, minRisk: 'severe' }], /notifications\[0\]\.minRisk must be one of none, info, low, medium, high/],
    [[{ ...syslog, records: 'yes' }], /notifications\[0\]\.records must be true or false/],
    [[{ ...syslog, rateLimit: { burst: 3 } }], /notifications\[0\]\.rateLimit\.perSecond must be given/],
    [[{ ...syslog, rateLimit: { perSecond: 0 } }], /notifications\[0\]\.rateLimit\.perSecond must be a number above 0/],
    [[{ ...syslog, rateLimit: { perSecond: 5, burst: 0 } }], /notifications\[0\]\.rateLimit\.burst must be an integer from 1/],
    [[{ ...syslog, sdId: 'dbtap' }], /notifications\[0\]\.sdId must be an SD-ID of the form name@enterprise-number/],
    [[{ ...syslog, sdId: 'db tap@1' }], /sdId must be an SD-ID/],
    [[{ ...syslog, appName: 'my app' }], /notifications\[0\]\.appName must be 1 to 48 printable ASCII characters/],
    [[{ ...syslog, tls: { ca: 'x' } }], /notifications\[0\]\.tls must be absent unless transport is tls/],
    [[{ ...syslog, transport: 'tls', tls: { cert: 'c.pem' } }], /notifications\[0\]\.tls\.key must be given together with cert/],
    [[{ ...syslog, transport: 'tls', tls: { ca: 'x', verify: false } }], /notifications\[0\]\.tls\.verify must be one of ca, cert, key/],
    [[{ ...syslog, framing: 'lf' }], /framing must be absent for transport udp/],
    [[{ ...syslog, cefHeader: 'rfc3164' }], /cefHeader must be absent unless format is cef/],
    [[{ ...syslog, maxMessageBytes: 100 }], /maxMessageBytes must be an integer from 480 to 65507/],
    [[{ ...syslog, reconnect: { initialMs: 500, maxMs: 100 } }], /notifications\[0\]\.reconnect\.maxMs must be at least initialMs \(500\)/],
    [[{ ...syslog, reconnect: { jitter: 2 } }], /reconnect\.jitter must be a number from 0 to 1/],
    [[syslog, { ...syslog, name: 'syslog-0' }], /notifications\[1\]\.name must be unique \('syslog-0' is used by an earlier channel\)/],
    [[{ ...syslog, name: 'a/b' }], /notifications\[0\]\.name must be 1 to 64 characters/],
    [[{ type: 'webhook' }], /notifications\[0\]\.url must be a non-empty string/],
    [[{ type: 'webhook', url: 'hooks.example.net' }], /notifications\[0\]\.url must be an absolute http:\/\/ or https:\/\/ URL/],
    [[{ type: 'webhook', url: 'ftp://x/y' }], /url must be an http:\/\/ or https:\/\/ URL, not ftp:/],
    [[{ type: 'webhook', url: 'http://x/', headers: { 'Bad Header': 'v' } }], /notifications\[0\]\.headers\.Bad Header must be named by an HTTP token/],
    [[{ type: 'webhook', url: 'http://x/', headers: { 'X-A': 'v\r\nInjected: 1' } }], /headers\.X-A must be a value without line breaks/],
    [[{ type: 'webhook', url: 'http://x/', headers: { 'Content-Length': '1' } }], /headers\.Content-Length must be absent/],
    [[{ type: 'webhook', url: 'http://x/', tls: { ca: 'x' } }], /tls must be absent unless the url is https/],
    [[{ type: 'webhook', url: 'http://x/', retries: -1 }], /notifications\[0\]\.retries must be an integer from 0 to 1000/],
    [[{ type: 'webhook', url: 'http://x/', batchSize: 0 }], /batchSize must be an integer from 1/],
    [[{ type: 'file' }], /notifications\[0\]\.path must be a non-empty string/],
    [[{ type: 'file', path: '/x', maxBytes: '10 parsecs' }], /notifications\[0\]\.maxBytes must be a size in bytes/],
    [[{ type: 'file', path: '/x', keep: 1.5 }], /notifications\[0\]\.keep must be an integer from 0 to 1000/],
  ];
  for (const [doc, msg] of cases) {
    const err = t.throws(() => parseNotificationConfig(doc, 'server.yaml'), undefined, JSON.stringify(doc));
    t.true(isDbtapError(err, ErrorCodes.CONFIG), JSON.stringify(doc));
    t.regex(err!.message, msg);
  }
  const err = t.throws(() => parseNotificationConfig([{ type: 'file', path: '/x', keep: -1 }], 'dbtap.json', { path: 'alerting.channels' }));
  t.regex(err!.message, /^dbtap\.json: alerting\.channels\[0\]\.keep must be/);
  t.deepEqual((err as { details?: unknown }).details, { file: 'dbtap.json', path: 'alerting.channels[0].keep' });
});

test('relative file names resolve against baseDir; PEM text stays as it is', (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const [f, s] = parseNotificationConfig(
    [
      { type: 'file', path: 'log/alerts.ndjson' },
      { type: 'syslog', transport: 'tls', host: 'h', tls: { ca: pem, cert: 'tls/client.pem', key: '/abs/client.key' } },
    ],
    '/etc/dbtap/server.yaml',
    { baseDir: '/etc/dbtap' },
  );
  t.is(f!.type === 'file' && f!.path, '/etc/dbtap/log/alerts.ndjson');
  t.deepEqual(s!.type === 'syslog' && s!.tls, { ca: pem, cert: '/etc/dbtap/tls/client.pem', key: '/abs/client.key', rejectUnauthorized: true });
  const [rel] = parseNotificationConfig([{ type: 'file', path: 'log/alerts.ndjson' }], 'server.yaml');
  t.is(rel!.type === 'file' && rel!.path, 'log/alerts.ndjson');
});

test('sizes accept units; a TLS file that cannot be read stops the notifier from starting', (t) => {
  const sizes = ['512k', '1.5MB', '2GiB', 4096].map((s) => parseNotificationConfig([{ type: 'file', path: '/x', maxBytes: s }], 'f')[0]);
  t.deepEqual(
    sizes.map((c) => (c!.type === 'file' ? c!.maxBytes : 0)),
    [512 * 1024, 1.5 * 1024 * 1024, 2 * 1024 ** 3, 4096],
  );
  const channels = parseNotificationConfig([{ type: 'syslog', name: 'siem', transport: 'tls', host: '127.0.0.1', tls: { ca: '/nonexistent/ca.pem' } }], 'server.yaml');
  const err = t.throws(() => new Notifier(channels));
  t.true(isDbtapError(err, ErrorCodes.CONFIG));
  t.regex(err!.message, /notification channel siem: tls\.ca: cannot read \/nonexistent\/ca\.pem: ENOENT/);
});

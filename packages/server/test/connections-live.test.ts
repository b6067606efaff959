// Every connection to an audited server is a record, decoded or not: a real
// psql session over TLS (sslmode=require) to a private PostgreSQL with TLS
// on, and a client speaking HTTP to an audited port, captured on lo.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createServer, connect, type AddressInfo } from 'node:net';
import { RuleEngine, defaultRuleSet } from '@dbtap/rules';
import { auditFrames } from '../src/index.js';
import { canCapture, startLiveCapture } from '../../../test-support/live-capture.js';
import { privatePostgresUnavailable, startPrivatePostgres } from '../../../test-support/private-postgres.js';
import { makeCertificate } from '../../../test-support/tls-recorder.js';

function skip(t: { fail(m: string): void; log(m: string): void }, why: string): void {
  if (process.env.CI) t.fail(why);
  else t.log(`skipped: ${why}`);
}

test('psql with sslmode=require: a login record marked tls, then one connection record with the TLS facts', async (t) => {
  if (!canCapture()) return skip(t, 'no permission to capture on lo');
  const why = privatePostgresUnavailable();
  if (why !== undefined) return skip(t, why);
  const cert = makeCertificate('/CN=pg.example.test/O=dbtap tests', 10);
  if (cert === undefined) return skip(t, 'openssl is missing');
  const pg = await startPrivatePostgres(["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"], { 'server.crt': cert.cert, 'server.key': cert.key });
  try {
    const cap = startLiveCapture(`tcp port ${pg.port}`);
    const r = spawnSync('psql', [`host=127.0.0.1 port=${pg.port} user=postgres dbname=postgres sslmode=require`, '-Atc', 'SELECT 42'], { encoding: 'utf8', env: { ...process.env, PGSSLMODE: 'require' } });
    const frames = await cap.stop();
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.trim(), '42');
    const { events } = auditFrames(frames, { ports: [pg.port] });
    const kinds = events.map((e) => e.kind);
    t.deepEqual(kinds, ['login', 'connection']);
    t.true(events[0]!.tls);
    const c = events[1]!;
    t.is(c.dbType, 'postgres');
    t.is(c.tls, true);
    t.is(c.attributes?.undecoded, 'ssl');
    t.true(c.closeReason === 'fin' || c.closeReason === 'rst', c.closeReason); // libpq's TLS close may leave unread bytes: RST
    t.true(c.packetsIn! > 3 && c.packetsOut! > 3);
    t.true(c.bytesIn! > 300 && c.bytesOut! > 300);
    t.true(c.durationUs! > 0);
    t.regex(c.tlsFacts?.version ?? '', /^TLS 1\.[23]$/);
    t.is(c.tlsFacts?.offeredVersion, 'TLS 1.3');
    t.truthy(c.tlsFacts?.cipherSuite);
    t.is(c.tlsFacts?.sni, undefined, 'libpq sends no SNI to an address');
  } finally {
    pg.stop();
  }
});

test('a client speaking no database protocol on an audited port: one connection record', async (t) => {
  if (!canCapture()) return skip(t, 'no permission to capture on lo');
  const server = createServer((s) => {
    s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const cap = startLiveCapture(`tcp port ${port}`);
  await new Promise<void>((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: db\r\n\r\n'));
    c.on('data', () => {});
    c.on('end', () => {
      c.end();
      resolve();
    });
    c.on('error', reject);
  });
  await new Promise((r) => setTimeout(r, 100));
  const frames = await cap.stop();
  server.close();
  const { events, summary } = auditFrames(frames, { ports: [port] });
  t.is(summary.undetectedFlows, 1);
  t.is(events.length, 1);
  t.like(events[0]!, { kind: 'connection', dbType: 'unknown', status: 'ok', bytesIn: 28, bytesOut: 47, closeReason: 'fin', attributes: { undecoded: 'unknown-protocol' } });
  t.true(events[0]!.packetsIn! >= 3);
  const verdict = new RuleEngine(defaultRuleSet()).process(events[0]!);
  t.is(verdict.risk, 'medium', 'the connections policy flags an unknown protocol on a database port');
  t.true(verdict.ruleIds.includes('connections.unknown-protocol'));
});

// What a TLS handshake shows in clear, read from real handshakes between
// node's TLS client and server (OpenSSL), recorded by a relay.
import test from 'ava';
import { Direction, type AuditEvent } from '@dbtap/core';
import { certificateFacts, createOpaqueSession, defaultSessionOptions } from '@dbtap/protocols';
import { makeCertificate, recordTls, type RecordedChunk } from '../../../test-support/tls-recorder.js';

const cert = makeCertificate('/CN=db1.example.test/O=dbtap tests/C=DE', 30);

function opaque(chunks: readonly RecordedChunk[]): AuditEvent[] {
  const events: AuditEvent[] = [];
  const s = createOpaqueSession({ flowId: 'f', client: { ip: '127.0.0.1', port: 40000 }, server: { ip: '127.0.0.1', port: 5432 }, midStream: false, options: defaultSessionOptions, emit: (e) => events.push(e) }, 'postgres');
  let ts = 1_000_000;
  for (const [dir, b] of chunks) s.data(dir, b, (ts += 10));
  s.close('fin', ts + 10);
  return events;
}

test('TLS 1.2: versions, SNI, ALPN, cipher suite and the server certificate in clear', async (t) => {
  if (cert === undefined) return t.pass('openssl is missing: skipped');
  const chunks = await recordTls(cert, { servername: 'db1.example.test', ALPNProtocols: ['postgresql'], maxVersion: 'TLSv1.2' });
  const events = opaque(chunks);
  t.is(events.length, 1);
  const ev = events[0]!;
  t.is(ev.kind, 'connection');
  t.is(ev.dbType, 'postgres');
  t.is(ev.tls, true);
  t.is(ev.closeReason, 'fin');
  t.is(ev.attributes?.undecoded, 'tls');
  t.is(ev.bytesIn, chunks.filter(([d]) => d === Direction.ToServer).reduce((n, [, b]) => n + b.length, 0));
  t.is(ev.bytesOut, chunks.filter(([d]) => d === Direction.ToClient).reduce((n, [, b]) => n + b.length, 0));
  const f = ev.tlsFacts!;
  t.is(f.offeredVersion, 'TLS 1.2');
  t.is(f.version, 'TLS 1.2');
  t.is(f.sni, 'db1.example.test');
  t.deepEqual(f.alpn, ['postgresql']);
  t.is(f.alpnChosen, 'postgresql');
  t.regex(f.cipherSuite!, /^TLS_ECDHE_RSA_WITH_AES_(128|256)_GCM_SHA(256|384)$|^TLS_ECDHE_RSA_WITH_CHACHA20/);
  t.true(f.offeredCiphers! > 5);
  t.is(f.certSubject, 'C=DE, O=dbtap tests, CN=db1.example.test');
  t.is(f.certIssuer, f.certSubject, 'self-signed');
  const days = (Date.parse(f.certNotAfter!) - Date.parse(f.certNotBefore!)) / 86_400_000;
  t.is(Math.round(days), 30);
});

test('TLS 1.3: versions, SNI and cipher in clear, the certificate is not', async (t) => {
  if (cert === undefined) return t.pass('openssl is missing: skipped');
  const events = opaque(await recordTls(cert, { servername: 'db1.example.test', minVersion: 'TLSv1.3' }));
  const f = events[0]!.tlsFacts!;
  t.is(f.offeredVersion, 'TLS 1.3');
  t.is(f.version, 'TLS 1.3');
  t.is(f.sni, 'db1.example.test');
  t.regex(f.cipherSuite!, /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
  t.is(f.certSubject, undefined);
});

test('a failed handshake shows its alert', async (t) => {
  if (cert === undefined) return t.pass('openssl is missing: skipped');
  // The client offers only an ECDSA suite and the server holds an RSA key: refused with an alert.
  const chunks = await recordTls(cert, { servername: 'x', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
  const f = opaque(chunks)[0]!.tlsFacts;
  t.is(f?.alert, 'handshake_failure');
  t.is(f?.offeredVersion, 'TLS 1.2');
  t.is(f?.version, undefined, 'no ServerHello');
});

test('not TLS: one connection record with bytes each way and no TLS facts', (t) => {
  const events = opaque([
    [0, new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    [1, new TextEncoder().encode('HTTP/1.1 400 Bad Request\r\n\r\n')],
  ]);
  t.is(events.length, 1);
  t.like(events[0]!, { kind: 'connection', status: 'ok', bytesIn: 27, bytesOut: 28, closeReason: 'fin', attributes: { undecoded: 'unknown-protocol' } });
  t.is(events[0]!.tls, undefined);
  t.is(events[0]!.tlsFacts, undefined);
});

test('a connection that sent nothing still gets its record; garbage certificates never throw', (t) => {
  const events = opaque([]);
  t.is(events.length, 1);
  t.is(events[0]!.kind, 'connection');
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(1 + ((i * 7) % 300)).map((_, k) => (k * 31 + i * 17) & 0xff);
    b[0] = 0x30;
    t.notThrows(() => certificateFacts(b));
  }
});

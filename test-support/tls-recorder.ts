// Real TLS handshakes for tests: a self-signed certificate made with openssl,
// a node TLS server on 127.0.0.1, and a relay in front of it that records
// every chunk each way, as a capture would see them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions } from 'node:tls';

/** A certificate and its key, PEM. */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
}

/** A self-signed certificate for `subject` (e.g. `/CN=db1.example.test/O=dbtap tests`), valid `days`; undefined without openssl. */
export function makeCertificate(subject: string, days = 30): TestCertificate | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', String(days), '-subj', subject], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One recorded chunk: 0 client to server, 1 server to client. */
export type RecordedChunk = readonly [0 | 1, Uint8Array];

/**
 * Runs one TLS conversation through a recording relay: the client connects
 * with `client` options, sends `request`, the server answers `reply` and
 * closes. Resolves with the chunks in the order the relay saw them, also
 * when the handshake fails (that is a conversation worth recording too).
 */
export async function recordTls(cert: TestCertificate, client: ConnectionOptions, request = 'SELECT 1', reply = 'ok'): Promise<RecordedChunk[]> {
  const server = createTlsServer({ cert: cert.cert, key: cert.key, ALPNProtocols: ['postgresql', 'h2'] }, (s) => {
    s.once('data', () => s.end(reply));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const chunks: [0 | 1, Uint8Array][] = [];
  const relay = createServer((down: Socket) => {
    const up = tcpConnect((server.address() as AddressInfo).port, '127.0.0.1');
    down.on('data', (b) => {
      chunks.push([0, new Uint8Array(b)]);
      up.write(b);
    });
    up.on('data', (b) => {
      chunks.push([1, new Uint8Array(b)]);
      down.write(b);
    });
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  try {
    await new Promise<void>((resolve) => {
      const c = tlsConnect({ port: (relay.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, ...client }, () => c.write(request));
      c.on('data', () => {});
      c.on('end', () => {
        c.end();
        resolve();
      });
      c.on('error', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    relay.close();
    server.close();
  }
  return chunks;
}

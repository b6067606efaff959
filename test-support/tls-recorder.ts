// Real TLS handshakes for tests: a self-signed certificate made with openssl,
// a node TLS server on 127.0.0.1, and a relay in front of it that records
// every chunk each way, as a capture would see them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** PEM files of a throw-away PKI, by file name. */
export interface TestPki {
  /** The folder holding `ca.crt`, `server.crt`/`server.key` (for 127.0.0.1 and localhost), `client.crt`/`client.key` (signed by the CA) and `other.crt`/`other.key` (a CA that signed nothing). */
  readonly dir: string;
  /** A file's content. */
  pem(name: string): Buffer;
  /** Removes the folder. */
  remove(): void;
}

/** Names of a {@link makeTestPki} PKI. */
export interface TestPkiOptions {
  /** Folder to write into (created by the caller); default a new temporary one. */
  dir?: string;
  /** Common name of the server certificate. Default `dbtap-server`. */
  serverCn?: string;
  /** Common name of the client certificate. Default `agent-db1`. */
  clientCn?: string;
}

/**
 * Makes a CA, a server certificate for 127.0.0.1 and localhost, a client
 * certificate and an unrelated self-signed CA, with openssl.
 */
export function makeTestPki(options: TestPkiOptions = {}): TestPki {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'dbtap-pki-'));
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=dbtap test CA');
  openssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=other CA');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${options.serverCn ?? 'dbtap-server'}`);
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  openssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', `/CN=${options.clientCn ?? 'agent-db1'}`);
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2');
  return { dir, pem: (name) => readFileSync(join(dir, name)), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

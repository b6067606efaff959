// TLS of the server's listeners (the agent listener and the HTTP API), as
// the configuration names it: PEM files, read and checked when the
// configuration is loaded so that a bad file stops the start instead of the
// first handshake.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { DbtapError } from '@dbtap/core';
import { ServerErrorCodes } from '../errors.js';
import { shape, type ConfigFail, type Shape } from '../validate.js';

/** TLS of one listener: PEM file paths (relative to the configuration file) and whether clients must show a certificate. */
export interface ListenerTlsConfig {
  /** The server's certificate (chain), PEM. */
  cert: string;
  /** Its private key, PEM (unencrypted). */
  key: string;
  /** CA certificate(s) that client certificates must chain to, PEM. Required with `requireClientCert`. */
  ca?: string;
  /** Refuse clients (in the TLS handshake) that show no certificate signed by `ca`. Default false. */
  requireClientCert?: boolean;
}

/** The shape of an `agents.tls` or `api.tls` section. */
export const LISTENER_TLS_SHAPE: Shape = shape.map(
  { cert: shape.string(), key: shape.string(), ca: shape.string(), requireClientCert: shape.boolean() },
  ['cert', 'key'],
);

/**
 * A checked `tls` section (already fitting {@link LISTENER_TLS_SHAPE}) with
 * its paths resolved against `baseDir`, the configuration file's folder.
 * `requireClientCert` without `ca` fails at `path.ca`: with no CA of its
 * own the listener would accept any publicly signed certificate.
 */
export function resolveListenerTls(section: ListenerTlsConfig, baseDir: string, path: string, fail: ConfigFail): ListenerTlsConfig {
  if (section.requireClientCert === true && section.ca === undefined) fail(`${path}.ca`, 'set when requireClientCert is true (the CA that signs client certificates)');
  return {
    cert: resolve(baseDir, section.cert),
    key: resolve(baseDir, section.key),
    ...(section.ca !== undefined ? { ca: resolve(baseDir, section.ca) } : {}),
    ...(section.requireClientCert !== undefined ? { requireClientCert: section.requireClientCert } : {}),
  };
}

/**
 * Reads a listener's TLS files into Node TLS server options and checks that
 * they make a usable context (PEM that parses, a key that matches the
 * certificate). Throws `DBTAP_E_TLS_FILE` naming the configuration key and
 * the file; the message never quotes the files' content.
 */
export function listenerTlsOptions(t: ListenerTlsConfig, path: string): TlsOptions {
  const read = (key: 'cert' | 'key' | 'ca', file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new DbtapError(ServerErrorCodes.TLS_FILE, `${path}.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path: `${path}.${key}`, file });
    }
  };
  const options: TlsOptions = {
    cert: read('cert', t.cert),
    key: read('key', t.key),
    ...(t.ca !== undefined ? { ca: read('ca', t.ca) } : {}),
    // client certificates are asked for only when required: an optional one would be accepted unverified
    requestCert: t.requireClientCert === true,
    rejectUnauthorized: t.requireClientCert === true,
  };
  try {
    createSecureContext(options);
  } catch (err) {
    // OpenSSL's reason (e.g. "key values mismatch", "no start line") names the fault, never the bytes
    throw new DbtapError(ServerErrorCodes.TLS_FILE, `${path}: the certificate ${t.cert}, key ${t.key}${t.ca !== undefined ? ` or CA ${t.ca}` : ''} cannot be used: ${(err as Error).message}`, { path, file: t.cert });
  }
  return options;
}

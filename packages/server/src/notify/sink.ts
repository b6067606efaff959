import { readFileSync } from 'node:fs';
import { ServerErrorCodes } from '../errors.js';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import type { BackoffConfig, TlsClientConfig } from './config.js';
import type { Notice } from './notice.js';

/**
 * Error codes of notification delivery, in addition to `@dbtap/core`'s
 * `ErrorCodes`. The strings are stable API.
 * A view of {@link ServerErrorCodes}.
 */
export const NotifyErrorCodes = {
  CONNECT: ServerErrorCodes.NOTIFY_CONNECT,
  SEND: ServerErrorCodes.NOTIFY_SEND,
  HTTP_STATUS: ServerErrorCodes.NOTIFY_HTTP_STATUS,
  TIMEOUT: ServerErrorCodes.NOTIFY_TIMEOUT,
  WRITE: ServerErrorCodes.NOTIFY_WRITE,
  CLOSED: ServerErrorCodes.NOTIFY_CLOSED,
} as const;

/** Outcome of delivering one batch. */
export interface DeliveryResult {
  /** Notifications delivered. */
  sent: number;
  /** Notifications given up on. */
  failed: number;
  /** Why the failed ones failed. */
  error?: DbtapError;
}

/** Calls a sink makes back into its channel. */
export interface SinkHooks {
  /** A retry is scheduled. */
  retry(attempt: number, delayMs: number, reason: DbtapError): void;
  /** A stream connection came up (`error` undefined) or failed / went down. */
  connection(up: boolean, error?: DbtapError): void;
  /** Uniform random number in [0, 1) for jitter. */
  random(): number;
}

/** Delivers batches of notices to one destination. */
export interface Sink {
  /** Largest batch `deliver` takes. */
  readonly maxBatch: number;
  /**
   * Delivers a batch, retrying as the channel's policy says, and resolves
   * with what was delivered and what was given up. Rejects only when
   * `signal` aborts (the notifier is closing); the batch is then re-queued
   * and spooled, so a receiver may see a notice twice but never none.
   */
  deliver(batch: readonly Notice[], signal: AbortSignal): Promise<DeliveryResult>;
  /** Releases sockets and files. */
  close(): Promise<void>;
  /** For stream transports: whether a connection is up now. */
  connected?(): boolean;
}

/** The delay before retry number `attempt` (0-based): `initialMs * 2^attempt` up to `maxMs`, less the jitter. */
export function backoffDelay(b: BackoffConfig, attempt: number, random: () => number): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 52));
  return Math.max(0, Math.round(base * (1 - b.jitter * random())));
}

/** The error a sink rejects with when the notifier closes mid-delivery. */
export function closedError(): DbtapError {
  return new DbtapError(NotifyErrorCodes.CLOSED, 'the notifier is closing');
}

/** Waits `ms`, or rejects with `DBTAP_E_NOTIFY_CLOSED` as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(closedError());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(closedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** TLS material resolved from a {@link TlsClientConfig}: PEM text as given, or the contents of the named file. */
export function loadTls(channel: string, t: TlsClientConfig): { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; servername?: string; rejectUnauthorized: boolean } {
  const pem = (key: 'ca' | 'cert' | 'key'): Buffer | string | undefined => {
    const v = t[key];
    if (v === undefined) return undefined;
    if (v.includes('-----BEGIN')) return v;
    try {
      return readFileSync(v);
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `notification channel ${channel}: tls.${key}: cannot read ${v}: ${(err as Error).message}`, { channel, path: `tls.${key}` });
    }
  };
  const out: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; servername?: string; rejectUnauthorized: boolean } = { rejectUnauthorized: t.rejectUnauthorized };
  const ca = pem('ca');
  const cert = pem('cert');
  const key = pem('key');
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (t.servername !== undefined) out.servername = t.servername;
  return out;
}

/**
 * Renders each notice with `render`; a notice that cannot be rendered (a
 * malformed record) is left out and reported, so it fails alone.
 */
export function renderEach<T>(batch: readonly Notice[], render: (n: Notice) => T): { ok: T[]; bad: number; error?: DbtapError } {
  const ok: T[] = [];
  let bad = 0;
  let error: DbtapError | undefined;
  for (const n of batch) {
    try {
      ok.push(render(n));
    } catch (err) {
      bad++;
      error ??= new DbtapError(ErrorCodes.MALFORMED, `a notification cannot be formatted: ${(err as Error)?.message ?? String(err)}`);
    }
  }
  return error ? { ok, bad, error } : { ok, bad };
}

/** `err` as a DbtapError with `code` (kept when it already is one). */
export function asDbtapError(err: unknown, code: string, prefix: string): DbtapError {
  if (err instanceof DbtapError) return err;
  const e = err as NodeJS.ErrnoException;
  const detail = e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
  return new DbtapError(code as `DBTAP_E_${string}`, `${prefix}: ${detail}`, e?.code ? { cause: e.code } : undefined, { cause: err });
}

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DbtapError } from '@dbtap/core';
import { jsonReplacer } from '../format.js';
import type { WebhookChannelConfig } from './config.js';
import { noticePayload, type Notice } from './notice.js';
import { asDbtapError, backoffDelay, closedError, loadTls, NotifyErrorCodes, renderEach, sleep, type DeliveryResult, type Sink, type SinkHooks } from './sink.js';
import { NOTIFY_PRODUCT } from './syslog.js';

/**
 * The wait a `Retry-After` header asks for (RFC 9110 section 10.2.3): either
 * delay-seconds or an HTTP-date. `undefined` when absent or unreadable; a
 * date in the past is 0.
 *
 * @param value The header value.
 * @param nowMs The current time in epoch milliseconds (for HTTP-dates).
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - nowMs);
}

interface Attempt {
  status?: number;
  retryAfterMs?: number;
  error: DbtapError | undefined;
}

/**
 * The webhook channel: POSTs JSON (one object, or an array when `batchSize`
 * is above 1). 2xx is success. Network errors, timeouts, 5xx and 429 are
 * retried with exponential backoff and jitter (`Retry-After` honoured up to
 * `maxRetryAfterMs`); any other status is final.
 */
export class WebhookSink implements Sink {
  readonly maxBatch: number;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly tls: ReturnType<typeof loadTls> | undefined;

  constructor(
    private readonly cfg: WebhookChannelConfig,
    private readonly hooks: SinkHooks,
    private readonly hostname: string,
    private readonly now: () => number = Date.now,
  ) {
    this.maxBatch = cfg.batchSize;
    this.url = new URL(cfg.url);
    const https = this.url.protocol === 'https:';
    this.tls = https && cfg.tls ? loadTls(cfg.name, cfg.tls) : undefined;
    this.agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ...(this.tls ?? {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  }

  async deliver(batch: readonly Notice[], signal: AbortSignal): Promise<DeliveryResult> {
    const json = renderEach(batch, (n) => JSON.stringify(noticePayload(n, this.hostname), jsonReplacer));
    if (json.ok.length === 0) return { sent: 0, failed: batch.length, error: json.error! };
    const body = Buffer.from(this.cfg.batchSize === 1 ? json.ok[0]! : `[${json.ok.join(',')}]`, 'utf8');
    const done = (error?: DbtapError): DeliveryResult => {
      const sent = error ? 0 : json.ok.length;
      const e = error ?? json.error;
      return e ? { sent, failed: batch.length - sent, error: e } : { sent, failed: 0 };
    };
    for (let attempt = 0; ; attempt++) {
      const r = await this.post(body, signal);
      if (!r.error) return done();
      const retryable = r.status === undefined || r.status === 429 || r.status >= 500;
      if (!retryable || attempt >= this.cfg.retries) return done(r.error);
      let delay = backoffDelay(this.cfg.backoff, attempt, this.hooks.random);
      if (r.retryAfterMs !== undefined) delay = Math.min(r.retryAfterMs, this.cfg.maxRetryAfterMs);
      this.hooks.retry(attempt + 1, delay, r.error);
      await sleep(delay, signal);
    }
  }

  private post(body: Buffer, signal: AbortSignal): Promise<Attempt> {
    if (signal.aborted) return Promise.reject(closedError());
    const target = `${this.url.origin}${this.url.pathname}`;
    return new Promise<Attempt>((resolve, reject) => {
      let settled = false;
      const settle = (a: Attempt | DbtapError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (a instanceof DbtapError) reject(a);
        else resolve(a);
      };
      const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'user-agent': `${NOTIFY_PRODUCT.product}/${NOTIFY_PRODUCT.version}`,
          ...this.cfg.headers,
          'content-type': 'application/json',
          'content-length': body.length,
        },
      });
      // One deadline for connecting, sending and reading the answer.
      const timer = setTimeout(() => {
        req.destroy();
        settle({ error: new DbtapError(NotifyErrorCodes.TIMEOUT, `${target}: no answer within ${this.cfg.timeoutMs} ms`) });
      }, this.cfg.timeoutMs);
      const onAbort = (): void => {
        req.destroy();
        settle(closedError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => settle({ error: asDbtapError(err, NotifyErrorCodes.SEND, `${target}: request failed`) }));
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        // Keep the start of an error body for the log; drain the rest so the connection is reused.
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          if (kept < 512) {
            chunks.push(c);
            kept += c.length;
          }
        });
        res.on('error', (err) => settle({ status, error: asDbtapError(err, NotifyErrorCodes.SEND, `${target}: response failed`) }));
        res.on('end', () => {
          if (status >= 200 && status < 300) return settle({ status, error: undefined });
          const text = Buffer.concat(chunks).toString('utf8').slice(0, 200).replace(/\s+/g, ' ').trim();
          const error = new DbtapError(NotifyErrorCodes.HTTP_STATUS, `${target}: HTTP ${status}${text ? `: ${text}` : ''}`, { status });
          const ra = parseRetryAfter(res.headers['retry-after'], this.now());
          settle(ra === undefined ? { status, error } : { status, error, retryAfterMs: ra });
        });
      });
      req.end(body);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

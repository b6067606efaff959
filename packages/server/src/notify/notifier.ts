import { readFileSync, unlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { DbtapError, riskOfRank, riskRank, type AuditEvent } from '@dbtap/core';
import { toNdjson } from '../format.js';
import type { MetricSample } from '../http/server.js';
import type { ChannelConfig } from './config.js';
import { FileSink } from './file.js';
import type { Notice, SuppressedNotice } from './notice.js';
import { NotifyErrorCodes, type Sink, type SinkHooks } from './sink.js';
import { SyslogSink } from './syslog.js';
import { WebhookSink } from './webhook.js';

/** Something that happened in delivery, for logs and tests. */
export type NotifierEvent =
  /** A delivery attempt failed and will be retried after `delayMs`. */
  | { type: 'retry'; channel: string; attempt: number; delayMs: number; error: DbtapError }
  /** Notifications given up on (after the retries, or at once for a final error). */
  | { type: 'failed'; channel: string; count: number; error: DbtapError }
  /** A syslog TCP/TLS connection came up. */
  | { type: 'connected'; channel: string }
  /** A syslog TCP/TLS connection attempt failed, or the connection was lost. */
  | { type: 'disconnected'; channel: string; error: DbtapError }
  /** The queue was full (`queue-full`, reported once per overflow episode) or the notifier closed without a spool (`closed`). */
  | { type: 'dropped'; channel: string; count: number; reason: 'queue-full' | 'closed' }
  /** Notifications restored from the spool at start (`count`), or written to it at close. */
  | { type: 'spooled'; channel: string; count: number; direction: 'restored' | 'saved' };

/** Options of a {@link Notifier}. */
export interface NotifierOptions {
  /** Host name in syslog headers, CEF `dvchost` and JSON `host`. Default the machine's host name. */
  hostname?: string;
  /**
   * Directory where `close()` saves notifications it could not deliver in
   * time (`<channel>.spool.ndjson`) and where the next notifier picks them
   * up. Without one they are dropped and counted.
   */
  spoolDir?: string;
  /** Receives one line per notable event (failures, connection changes, overflow, spool). */
  log?: (line: string) => void;
  /** Receives every {@link NotifierEvent}. */
  onEvent?: (event: NotifierEvent) => void;
  /** Current time in epoch milliseconds, for rate limits and suppression summaries. Default `Date.now`. */
  clock?: () => number;
  /** Random numbers in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/** Delivery counters of one channel. */
export interface ChannelStats {
  /** Channel name. */
  name: string;
  /** Channel type. */
  type: ChannelConfig['type'];
  /** Where it delivers (`udp://host:514`, the URL, the file path). */
  target: string;
  /** Notifications waiting now (including the batch being delivered). */
  queued: number;
  /** Notifications delivered. */
  sent: number;
  /** Notifications given up on after the retries (or at once for a final error). */
  failed: number;
  /** Notifications dropped because the queue was full, or at close without a spool. */
  dropped: number;
  /** Notifications held back by the rate limit (each is counted in a later "suppressed" summary). */
  rateLimited: number;
  /** Delivery attempts retried (webhook) or connection attempts that failed (syslog TCP/TLS). */
  retries: number;
  /** Syslog TCP/TLS only: a connection is up now. */
  connected?: boolean;
  /** The last delivery error, if any. */
  lastError?: string;
}

/** A token bucket: `rate` tokens a second, at most `burst` in hand; starts full. */
class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
    }
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is in hand (0 when one is). */
  wait(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}

function targetOf(c: ChannelConfig): string {
  if (c.type === 'syslog') return `${c.transport}://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`;
  if (c.type === 'webhook') {
    const u = new URL(c.url);
    return `${u.origin}${u.pathname}`;
  }
  return c.path;
}

function isNotice(x: unknown): x is Notice {
  if (x === null || typeof x !== 'object') return false;
  const n = x as Record<string, unknown>;
  if (n.type === 'suppressed') return typeof n.channel === 'string' && typeof n.alerts === 'number' && typeof n.records === 'number';
  if (n.type !== 'event' || n.event === null || typeof n.event !== 'object') return false;
  const e = n.event as Record<string, unknown>;
  return typeof e.id === 'string' && typeof e.kind === 'string' && typeof e.ts === 'number' && typeof e.client === 'object' && typeof e.server === 'object';
}

/** One channel: filter, rate limit, bounded queue, and a single delivery in flight. */
class Channel {
  readonly counters = { sent: 0, failed: 0, dropped: 0, rateLimited: 0, retries: 0 };
  readonly sink: Sink;
  private queue: Notice[] = [];
  private inFlight = 0;
  private current: Promise<void> | undefined;
  private readonly bucket: TokenBucket | undefined;
  private suppressed: { alerts: number; records: number; maxRisk: number; from: number; to: number } | undefined;
  private summaryTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private idleWaiters: Array<() => void> = [];
  private overflowing = false;
  private running = true;
  private readonly minRisk: number;
  lastError: string | undefined;

  constructor(
    readonly cfg: ChannelConfig,
    private readonly env: { hostname: string; clock: () => number; random: () => number; emit: (e: NotifierEvent) => void },
  ) {
    this.minRisk = riskRank(cfg.minRisk);
    if (cfg.rateLimit) this.bucket = new TokenBucket(cfg.rateLimit.perSecond, cfg.rateLimit.burst, env.clock());
    const hooks: SinkHooks = {
      random: env.random,
      retry: (attempt, delayMs, error) => {
        this.counters.retries++;
        this.lastError = error.message;
        env.emit({ type: 'retry', channel: cfg.name, attempt, delayMs, error });
      },
      connection: (up, error) => {
        if (up) env.emit({ type: 'connected', channel: cfg.name });
        else {
          this.counters.retries++;
          this.lastError = error?.message;
          env.emit({ type: 'disconnected', channel: cfg.name, error: error ?? new DbtapError(NotifyErrorCodes.CONNECT, 'disconnected') });
        }
      },
    };
    if (cfg.type === 'syslog') this.sink = new SyslogSink(cfg, hooks, env.hostname, String(process.pid));
    else if (cfg.type === 'webhook') this.sink = new WebhookSink(cfg, hooks, env.hostname, env.clock);
    else this.sink = new FileSink(cfg, env.hostname);
  }

  get queued(): number {
    return this.queue.length + this.inFlight;
  }

  /** Alerts at or above the minimum risk; ordinary records too when the channel asks for them. */
  wants(e: AuditEvent): boolean {
    if (e.kind !== 'alert' && !this.cfg.records) return false;
    return riskRank(e.risk) >= this.minRisk;
  }

  offer(e: AuditEvent): void {
    if (!this.running || !this.wants(e)) return;
    const now = this.env.clock();
    if (this.bucket && !this.bucket.take(now)) {
      this.suppress(e, now);
      return;
    }
    this.releaseSummary();
    this.enqueue({ type: 'event', event: e });
  }

  private suppress(e: AuditEvent, now: number): void {
    this.counters.rateLimited++;
    const s = (this.suppressed ??= { alerts: 0, records: 0, maxRisk: 0, from: now, to: now });
    if (e.kind === 'alert') s.alerts++;
    else s.records++;
    s.maxRisk = Math.max(s.maxRisk, riskRank(e.risk));
    s.to = now;
    this.scheduleSummary(now);
  }

  /** When no further notification comes to carry the summary, a timer sends it as soon as the bucket would let one through. */
  private scheduleSummary(now: number): void {
    if (this.summaryTimer || !this.bucket) return;
    this.summaryTimer = setTimeout(
      () => {
        this.summaryTimer = undefined;
        if (!this.suppressed || !this.running) return;
        const t = this.env.clock();
        if (this.bucket!.wait(t) === 0) this.releaseSummary();
        else this.scheduleSummary(t);
      },
      Math.max(1, this.bucket.wait(now)),
    );
    this.summaryTimer.unref();
  }

  /** Queues the "N suppressed" summary, if any notification was suppressed since the last one. */
  releaseSummary(): void {
    const s = this.suppressed;
    if (!s) return;
    this.suppressed = undefined;
    if (this.summaryTimer) {
      clearTimeout(this.summaryTimer);
      this.summaryTimer = undefined;
    }
    const n: SuppressedNotice = {
      type: 'suppressed',
      channel: this.cfg.name,
      alerts: s.alerts,
      records: s.records,
      maxRisk: riskOfRank(s.maxRisk),
      from: s.from * 1000,
      to: s.to * 1000,
    };
    this.enqueue(n);
  }

  enqueue(n: Notice): void {
    if (this.queue.length >= this.cfg.queueSize) {
      this.counters.dropped++;
      if (!this.overflowing) {
        this.overflowing = true;
        this.env.emit({ type: 'dropped', channel: this.cfg.name, count: 1, reason: 'queue-full' });
      }
      return;
    }
    if (this.overflowing && this.queue.length < this.cfg.queueSize / 2) this.overflowing = false;
    this.queue.push(n);
    this.pump();
  }

  /** Puts notices back at the head of the queue (spool restore, aborted batch). */
  requeue(ns: readonly Notice[]): void {
    // concat, not unshift(...ns): a spool can hold more items than a call may take arguments.
    this.queue = ns.concat(this.queue);
  }

  pump(): void {
    if (this.current || this.queue.length === 0 || !this.running) return;
    const batch = this.queue.splice(0, this.sink.maxBatch);
    this.inFlight = batch.length;
    this.current = this.deliver(batch);
  }

  private async deliver(batch: Notice[]): Promise<void> {
    try {
      const r = await this.sink.deliver(batch, this.abort.signal);
      this.counters.sent += r.sent;
      if (r.failed > 0) {
        this.counters.failed += r.failed;
        const error = r.error ?? new DbtapError(NotifyErrorCodes.SEND, 'delivery failed');
        this.lastError = error.message;
        this.env.emit({ type: 'failed', channel: this.cfg.name, count: r.failed, error });
      }
    } catch (err) {
      if (this.abort.signal.aborted) this.requeue(batch);
      else {
        // A sink resolves its failures; anything thrown is unexpected, and still only costs this batch.
        const error = err instanceof DbtapError ? err : new DbtapError(NotifyErrorCodes.SEND, `delivery failed: ${(err as Error)?.message ?? String(err)}`);
        this.counters.failed += batch.length;
        this.lastError = error.message;
        this.env.emit({ type: 'failed', channel: this.cfg.name, count: batch.length, error });
      }
    } finally {
      this.inFlight = 0;
      this.current = undefined;
      this.pump();
      if (!this.current) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    }
  }

  /** Resolves once nothing is queued or in flight (or, when stopped, nothing is in flight). */
  idle(): Promise<void> {
    if (!this.current && (this.queue.length === 0 || !this.running)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops delivery: aborts the batch in flight (it returns to the queue) and hands back what is queued. */
  async stop(): Promise<Notice[]> {
    this.running = false;
    if (this.summaryTimer) clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    this.abort.abort();
    await this.current;
    const rest = this.queue;
    this.queue = [];
    await this.sink.close().catch(() => {});
    return rest;
  }

  stats(): ChannelStats {
    const s: ChannelStats = { name: this.cfg.name, type: this.cfg.type, target: targetOf(this.cfg), queued: this.queued, ...this.counters };
    if (this.cfg.type === 'syslog' && this.cfg.transport !== 'udp') s.connected = this.sink.connected?.() ?? false;
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }
}

/**
 * Sends alerts (and, per channel, risky records) to syslog receivers,
 * webhooks and NDJSON files. One notifier serves a whole server.
 *
 * `notify()` is cheap and never blocks or throws: each channel filters by
 * risk, applies its token-bucket rate limit and puts the notification on a
 * bounded queue; a single delivery per channel runs in the background.
 * What the rate limit holds back is reported by a "N alerts suppressed"
 * notification ahead of the next one let through (or as soon as the bucket
 * refills). `close()` delivers what it can in time and spools the rest.
 */
export class Notifier {
  private readonly channels: Channel[];
  private readonly log: (line: string) => void;
  private readonly spoolDir: string | undefined;
  private readonly emit: (e: NotifierEvent) => void;
  private closed = false;

  /**
   * @param channels Channels as {@link parseNotificationConfig} returns them.
   * @param options Host name, spool directory, log and hooks.
   * @throws DbtapError `DBTAP_E_CONFIG` when a channel's TLS file cannot be read.
   */
  constructor(channels: readonly ChannelConfig[], options: NotifierOptions = {}) {
    this.log = options.log ?? (() => {});
    this.spoolDir = options.spoolDir;
    const onEvent = options.onEvent;
    const emit = (this.emit = (e: NotifierEvent): void => {
      try {
        onEvent?.(e);
      } catch {
        // A listener's bug must not stop delivery.
      }
      const line = logLine(e);
      if (line !== undefined) this.log(line);
    });
    const env = { hostname: options.hostname ?? osHostname(), clock: options.clock ?? Date.now, random: options.random ?? Math.random, emit };
    const built: Channel[] = [];
    try {
      for (const cfg of channels) built.push(new Channel(cfg, env));
    } catch (err) {
      for (const c of built) void c.stop();
      throw err;
    }
    this.channels = built;
    if (this.spoolDir !== undefined) for (const c of this.channels) this.restore(c);
  }

  private spoolFile(c: Channel): string {
    return join(this.spoolDir!, `${c.cfg.name}.spool.ndjson`);
  }

  private restore(c: Channel): void {
    const file = this.spoolFile(c);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // nothing spooled
    }
    const notices: Notice[] = [];
    let bad = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const n: unknown = JSON.parse(line);
        if (isNotice(n)) notices.push(n);
        else bad++;
      } catch {
        bad++;
      }
    }
    try {
      unlinkSync(file);
    } catch {
      // read-only spool: the notices may be delivered twice, which beats not at all
    }
    const keep = notices.slice(0, c.cfg.queueSize);
    c.counters.dropped += notices.length - keep.length;
    if (bad > 0) this.log(`notify ${c.cfg.name}: ${bad} unreadable line(s) in ${file} skipped`);
    c.requeue(keep);
    this.emit({ type: 'spooled', channel: c.cfg.name, count: keep.length, direction: 'restored' });
    c.pump();
  }

  /** Offers a record to every channel. Never throws and never waits. */
  notify(event: AuditEvent): void {
    if (this.closed) return;
    for (const c of this.channels) {
      try {
        c.offer(event);
      } catch (err) {
        this.log(`notify ${c.cfg.name}: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  }

  /**
   * Sends pending "suppressed" summaries and waits until every queue is
   * empty, or `timeoutMs` passes. Resolves true when everything queued was
   * handled (delivered, or failed after its retries).
   */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    for (const c of this.channels) c.releaseSummary();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const done = Promise.all(this.channels.map((c) => c.idle())).then(() => true as const);
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Flushes for up to `timeoutMs`, then stops every channel: a delivery
   * still waiting (a receiver down, a retry pending) is abandoned and, with
   * a spool directory, everything undelivered is saved there for the next
   * start; without one it is dropped and counted. Further `notify()` calls
   * are ignored.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    await this.flush(timeoutMs);
    this.closed = true;
    for (const c of this.channels) {
      const rest = await c.stop();
      if (rest.length === 0) continue;
      if (this.spoolDir !== undefined) {
        try {
          await mkdir(this.spoolDir, { recursive: true });
          await writeFile(this.spoolFile(c), rest.map((n) => `${toNdjson(n)}\n`).join(''), { flag: 'a', mode: 0o600 });
          this.emit({ type: 'spooled', channel: c.cfg.name, count: rest.length, direction: 'saved' });
          continue;
        } catch (err) {
          this.log(`notify ${c.cfg.name}: cannot spool to ${this.spoolDir}: ${(err as Error).message}`);
        }
      }
      c.counters.dropped += rest.length;
      this.emit({ type: 'dropped', channel: c.cfg.name, count: rest.length, reason: 'closed' });
    }
  }

  /** Counters of every channel, in configuration order. */
  stats(): ChannelStats[] {
    return this.channels.map((c) => c.stats());
  }

  /** The counters as `/metrics` samples, labelled by channel name and type. */
  metrics(): MetricSample[] {
    const out: MetricSample[] = [];
    for (const s of this.stats()) {
      const labels = { channel: s.name, type: s.type };
      out.push({ name: 'dbtap_notify_sent_total', help: 'Notifications delivered', type: 'counter', value: s.sent, labels });
      out.push({ name: 'dbtap_notify_failed_total', help: 'Notifications given up on after retries', type: 'counter', value: s.failed, labels });
      out.push({ name: 'dbtap_notify_dropped_total', help: 'Notifications dropped (queue full, or closed without a spool)', type: 'counter', value: s.dropped, labels });
      out.push({ name: 'dbtap_notify_rate_limited_total', help: 'Notifications suppressed by the rate limit', type: 'counter', value: s.rateLimited, labels });
      out.push({ name: 'dbtap_notify_retries_total', help: 'Delivery or connection attempts that failed and were retried', type: 'counter', value: s.retries, labels });
      out.push({ name: 'dbtap_notify_queue', help: 'Notifications waiting for delivery', type: 'gauge', value: s.queued, labels });
      if (s.connected !== undefined) out.push({ name: 'dbtap_notify_connected', help: 'Syslog TCP/TLS connection up (1) or not (0)', type: 'gauge', value: s.connected ? 1 : 0, labels });
    }
    return out;
  }
}

function logLine(e: NotifierEvent): string | undefined {
  switch (e.type) {
    case 'retry':
      return undefined; // routine; counted in stats
    case 'failed':
      return `notify ${e.channel}: ${e.count} notification(s) failed: ${e.error.code}: ${e.error.message}`;
    case 'connected':
      return `notify ${e.channel}: connected`;
    case 'disconnected':
      return `notify ${e.channel}: ${e.error.code}: ${e.error.message}`;
    case 'dropped':
      return e.reason === 'queue-full' ? `notify ${e.channel}: queue full, dropping new notifications` : `notify ${e.channel}: ${e.count} undelivered notification(s) dropped at close`;
    case 'spooled':
      return e.direction === 'restored' ? `notify ${e.channel}: ${e.count} notification(s) restored from the spool` : `notify ${e.channel}: ${e.count} undelivered notification(s) saved to the spool`;
  }
}

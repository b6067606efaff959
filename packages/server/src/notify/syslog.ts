import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { DbtapError } from '@dbtap/core';
import type { SyslogChannelConfig } from './config.js';
import { formatCef } from './cef.js';
import type { Notice } from './notice.js';
import { formatRfc5424 } from './rfc5424.js';
import { asDbtapError, backoffDelay, closedError, loadTls, NotifyErrorCodes, renderEach, sleep, type DeliveryResult, type Sink, type SinkHooks } from './sink.js';

/** Device Vendor / Product / Version of CEF records and the webhook User-Agent. */
export const NOTIFY_PRODUCT = { vendor: 'dbtap', product: 'dbtap', version: '0.1.0' } as const;

/** Renders a notice as the text of one syslog message. */
export type SyslogFormatter = (n: Notice) => string;

/** The formatter a syslog channel's settings select. */
export function syslogFormatter(cfg: SyslogChannelConfig, hostname: string, procId: string): SyslogFormatter {
  const host = cfg.hostname ?? hostname;
  if (cfg.format === 'cef') {
    const o = { ...NOTIFY_PRODUCT, hostname: host, header: cfg.cefHeader, facility: cfg.facility, appName: cfg.appName, procId, maxMessageBytes: cfg.maxMessageBytes };
    return (n) => formatCef(n, o);
  }
  const o = { facility: cfg.facility, hostname: host, appName: cfg.appName, procId, sdId: cfg.sdId, maxMessageBytes: cfg.maxMessageBytes };
  return (n) => formatRfc5424(n, o);
}

/**
 * RFC 6587 section 3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`, the
 * length in bytes; a message may then carry line breaks. With `lf` framing
 * (section 3.4.2) line breaks inside the message would split it, so they
 * are replaced by spaces.
 */
export function frameMessage(msg: string, framing: 'octet-counting' | 'lf'): Buffer {
  if (framing === 'lf') return Buffer.from(`${msg.replace(/\r\n|[\r\n]/g, ' ')}\n`, 'utf8');
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'latin1'), body]);
}

/** One UDP datagram per message (RFC 5426); no retry, a failed send counts as failed. */
class UdpSender {
  private socket: Promise<UdpSocket> | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  private open(): Promise<UdpSocket> {
    this.socket ??= (async () => {
      const family = isIP(this.host);
      const address = family !== 0 ? this.host : (await lookup(this.host)).address;
      const s = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
      s.on('error', () => {
        // Reported through the send callbacks; a broken socket is replaced on the next send.
        this.socket = undefined;
        s.close();
      });
      s.unref();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.connect(this.port, address, () => {
          s.off('error', reject);
          resolve();
        });
      });
      return s;
    })();
    const p = this.socket;
    p.catch(() => {
      if (this.socket === p) this.socket = undefined;
    });
    return p;
  }

  async send(datagram: Buffer): Promise<void> {
    const s = await this.open();
    await new Promise<void>((resolve, reject) => s.send(datagram, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    const p = this.socket;
    this.socket = undefined;
    if (!p) return;
    try {
      const s = await p;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    } catch {
      // never opened
    }
  }
}

/**
 * A TCP or TLS connection to a syslog receiver. Writes wait for a
 * connection; a failed connection attempt or a lost connection is retried
 * with exponential backoff, and the batch being written is written again on
 * the new connection.
 */
class StreamSender {
  private socket: Socket | undefined;
  private failures = 0;
  private readonly tls: ReturnType<typeof loadTls> | undefined;

  constructor(
    private readonly cfg: SyslogChannelConfig,
    private readonly hooks: SinkHooks,
  ) {
    this.tls = cfg.transport === 'tls' ? loadTls(cfg.name, cfg.tls ?? { rejectUnauthorized: true }) : undefined;
  }

  get isConnected(): boolean {
    return this.socket !== undefined;
  }

  async write(data: Buffer, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw closedError();
      const s = this.socket ?? (await this.connect(signal));
      if (!s) continue;
      const err = await this.writeTo(s, data, signal);
      if (!err) return;
      this.drop(s, err);
    }
  }

  private writeTo(s: Socket, data: Buffer, signal: AbortSignal): Promise<DbtapError | undefined> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: DbtapError | undefined): void => {
        if (done) return;
        done = true;
        s.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        resolve(err);
      };
      const onClose = (): void => finish(new DbtapError(NotifyErrorCodes.CONNECT, `${this.target()}: connection closed while writing`));
      const onAbort = (): void => {
        if (done) return;
        done = true;
        s.off('close', onClose);
        reject(closedError());
      };
      s.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
      s.write(data, (err) => finish(err ? asDbtapError(err, NotifyErrorCodes.CONNECT, `${this.target()}: write failed`) : undefined));
    });
  }

  private target(): string {
    return `${this.cfg.transport}://${this.cfg.host}:${this.cfg.port}`;
  }

  private drop(s: Socket, err: DbtapError): void {
    if (this.socket === s) {
      this.socket = undefined;
      this.hooks.connection(false, err);
    }
    s.destroy();
  }

  /** One connection attempt; on failure waits out the backoff and resolves `undefined`. */
  private async connect(signal: AbortSignal): Promise<Socket | undefined> {
    const { host, port } = this.cfg;
    const err = await new Promise<DbtapError | Socket>((resolve) => {
      const s = this.tls
        ? tlsConnect({ host, port, ...this.tls, ...(this.tls.servername === undefined && isIP(host) === 0 ? { servername: host } : {}), minVersion: 'TLSv1.2' })
        : netConnect({ host, port });
      const ready = this.tls ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => fail(new DbtapError(NotifyErrorCodes.TIMEOUT, `${this.target()}: no connection within ${this.cfg.connectTimeoutMs} ms`)), this.cfg.connectTimeoutMs);
      const onAbort = (): void => fail(closedError());
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        s.off('error', onError);
        s.off(ready, onReady);
      };
      const fail = (e: DbtapError): void => {
        cleanup();
        s.destroy();
        resolve(e);
      };
      const onError = (e: Error): void => fail(asDbtapError(e, NotifyErrorCodes.CONNECT, `${this.target()}: connect failed`));
      const onReady = (): void => {
        cleanup();
        resolve(s);
      };
      s.once('error', onError);
      s.once(ready, onReady);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    if (err instanceof DbtapError) {
      if (err.code === NotifyErrorCodes.CLOSED) throw err;
      this.hooks.connection(false, err);
      await sleep(backoffDelay(this.cfg.reconnect, this.failures++, this.hooks.random), signal);
      return undefined;
    }
    const s = err;
    this.failures = 0;
    s.setNoDelay(true);
    s.setKeepAlive(true, 30_000);
    // A syslog receiver sends nothing; reading keeps a peer's FIN or RST noticed.
    s.on('data', () => {});
    s.on('error', (e) => this.drop(s, asDbtapError(e, NotifyErrorCodes.CONNECT, `${this.target()}: connection lost`)));
    s.on('end', () => this.drop(s, new DbtapError(NotifyErrorCodes.CONNECT, `${this.target()}: the receiver closed the connection`)));
    s.on('close', () => this.drop(s, new DbtapError(NotifyErrorCodes.CONNECT, `${this.target()}: connection closed`)));
    this.socket = s;
    this.hooks.connection(true);
    return s;
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000);
      s.end(() => {
        clearTimeout(t);
        s.destroy();
        resolve();
      });
    });
  }
}

/** The syslog channel: formats each notice and sends it over UDP, TCP or TLS. */
export class SyslogSink implements Sink {
  readonly maxBatch = 100;
  private readonly format: SyslogFormatter;
  private readonly udp: UdpSender | undefined;
  private readonly stream: StreamSender | undefined;

  constructor(
    private readonly cfg: SyslogChannelConfig,
    hooks: SinkHooks,
    hostname: string,
    procId: string,
  ) {
    this.format = syslogFormatter(cfg, hostname, procId);
    if (cfg.transport === 'udp') this.udp = new UdpSender(cfg.host, cfg.port);
    else this.stream = new StreamSender(cfg, hooks);
  }

  connected(): boolean {
    return this.udp !== undefined || this.stream!.isConnected;
  }

  async deliver(batch: readonly Notice[], signal: AbortSignal): Promise<DeliveryResult> {
    const r = renderEach(batch, (n) => (this.udp ? Buffer.from(this.format(n), 'utf8') : frameMessage(this.format(n), this.cfg.framing)));
    let sent = 0;
    let error = r.error;
    if (this.udp) {
      for (const datagram of r.ok) {
        if (signal.aborted) throw closedError();
        try {
          await this.udp.send(datagram);
          sent++;
        } catch (err) {
          error ??= asDbtapError(err, NotifyErrorCodes.SEND, `udp://${this.cfg.host}:${this.cfg.port}: send failed`);
        }
      }
    } else if (r.ok.length > 0) {
      await this.stream!.write(r.ok.length === 1 ? r.ok[0]! : Buffer.concat(r.ok), signal);
      sent = r.ok.length;
    }
    return error ? { sent, failed: batch.length - sent, error } : { sent, failed: 0 };
  }

  async close(): Promise<void> {
    await this.udp?.close();
    await this.stream?.close();
  }
}

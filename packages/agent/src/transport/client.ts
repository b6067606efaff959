// The sending end of the transport: batches frames, keeps every batch until
// the server acknowledges it, re-sends after reconnects, and bounds what it
// keeps by packet count and bytes with an explicit overflow policy.
import { connect as tcpConnect, isIPv6, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import createDebug from 'debug';
import { DbtapError, ErrorCodes, type Frame } from '@dbtap/core';
import { AgentErrorCodes } from '../errors.js';
import {
  BatchBuilder,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PORT_IPV4,
  DEFAULT_PORT_IPV6,
  MessageReader,
  PROTOCOL_VERSION,
  RECORD_HEADER_BYTES,
  decodeBatchFrames,
  decodeMessage,
  encodeBatchHead,
  encodeMessage,
  type AgentIdentity,
} from './protocol.js';
import { formatHostPort } from './server.js';

const debug = createDebug('dbtap:agent:client');

/** Version string agents report in their hello. */
export const AGENT_VERSION = '0.1.0';

/**
 * What to do with a frame that does not fit in the queue.
 * - `drop-newest`: refuse the new frame (what is queued is delivered in order; the gap is at the end).
 * - `drop-oldest`: discard the oldest queued batches to make room (the newest traffic wins).
 */
export type OverflowPolicy = 'drop-newest' | 'drop-oldest';

/** Options of {@link TransportClient}. */
export interface TransportClientOptions {
  /** Server host name or address. */
  host: string;
  /** Server port; default 9999, or 9998 when `host` is an IPv6 address. */
  port?: number;
  /** Shared token presented in the hello. */
  token?: string;
  /**
   * TLS: `true` for defaults (system CAs, server verification), or Node TLS
   * connection options (`ca`, `cert`, `key`, `servername`...). Omitted: plain TCP.
   */
  tls?: boolean | ConnectionOptions;
  /** Agent id reported to the server; default the host name. */
  agentId?: string;
  /** A batch is sealed at this many frames. Default 1000. */
  batchMaxPackets?: number;
  /** A batch is sealed at this many record bytes. Default 1 MiB. */
  batchMaxBytes?: number;
  /** A batch is sealed this long after its first frame. Default 50 ms. */
  batchMaxDelayMs?: number;
  /** Frames held until acknowledged, at most (classic `CACHE_NUM_MAX`). Default 200000. */
  queueMaxPackets?: number;
  /** Record bytes held until acknowledged, at most (classic `CACHE_SIZE`). Default 256 MiB. */
  queueMaxBytes?: number;
  /** Overflow policy, default `drop-newest`. */
  overflow?: OverflowPolicy;
  /** First reconnect delay in ms. Default 250. */
  reconnectMinMs?: number;
  /** Largest reconnect delay in ms. Default 30000. */
  reconnectMaxMs?: number;
  /** Fraction of each delay that is randomised (0..1). Default 0.5. */
  reconnectJitter?: number;
  /** Heartbeat interval in ms. Default 5000. */
  heartbeatMs?: number;
  /** The server is considered dead after this long without a byte. Default 3 heartbeats. */
  deadAfterMs?: number;
  /** A TCP/TLS connect attempt is abandoned after this many ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Largest message accepted from the server. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Local address to connect from (e.g. the address of the classic `send_device`). */
  localAddress?: string;
}

/** Counters of a {@link TransportClient}. */
export interface TransportClientStats {
  /** True while a connection has completed the hello. */
  connected: boolean;
  /** Frames accepted into the queue. */
  enqueuedPackets: number;
  /** Record bytes accepted into the queue. */
  enqueuedBytes: number;
  /** Frames acknowledged by the server. */
  ackedPackets: number;
  /** Batches acknowledged by the server. */
  ackedBatches: number;
  /** Frames discarded by the overflow policy. */
  droppedPackets: number;
  /** Record bytes discarded by the overflow policy. */
  droppedBytes: number;
  /** Frames held now (open batch, unsent and unacknowledged batches). */
  queuedPackets: number;
  /** Record bytes held now. */
  queuedBytes: number;
  /** Batches written to a socket (re-sends included). */
  sentBatches: number;
  /** Batches written again after a reconnect. */
  resentBatches: number;
  /** Successful hellos. */
  connects: number;
  /** Connections lost or refused after a successful TCP connect, and failed attempts. */
  disconnects: number;
  /** Last error, as `CODE: message`. */
  lastError: string | undefined;
}

/** Events of {@link TransportClient}. */
export interface TransportClientEvents {
  /** The server accepted the hello. */
  connect: (info: { host: string; port: number; remote: string }) => void;
  /** A connection ended or a connect attempt failed; `err` says why; a reconnect follows in `retryInMs`. */
  disconnect: (err: DbtapError, retryInMs: number | undefined) => void;
  /** The queue started dropping frames (emitted once per overflow episode). */
  overflow: (stats: TransportClientStats) => void;
  /** Every batch up to `seq` was acknowledged. */
  ack: (seq: number) => void;
}

interface PendingBatch {
  seq: number;
  n: number;
  records: Uint8Array;
  /** Written at least once (a later write is a re-send). */
  sent: boolean;
}

/**
 * Sends frames to a {@link TransportServer}. Frames are copied into batches
 * (sealed by count, bytes or time), each with a sequence number; a batch is
 * kept until the server acknowledges it and re-sent after a reconnect, so
 * nothing is lost while the queue has room. When it has none, the
 * {@link OverflowPolicy} decides and every discarded frame is counted.
 */
export class TransportClient extends EventEmitter<TransportClientEvents> {
  private readonly o: Required<Omit<TransportClientOptions, 'token' | 'tls' | 'port' | 'agentId' | 'localAddress'>> & {
    localAddress: string | undefined;
    port: number;
    token: string | undefined;
    tls: ConnectionOptions | undefined;
  };
  private readonly identity: AgentIdentity;
  private readonly c: TransportClientStats;
  private open: BatchBuilder | undefined;
  private openTimer: NodeJS.Timeout | undefined;
  private pending: PendingBatch[] = [];
  private sentIndex = 0; // pending[0..sentIndex) are written on the current connection
  private nextSeq = 1;
  private socket: Socket | undefined;
  private ready = false;
  private started = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastRx = 0;
  private overflowing = false;
  private drainWaiters: Array<() => void> = [];

  constructor(options: TransportClientOptions) {
    super();
    if (!options || typeof options.host !== 'string' || options.host.length === 0) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'TransportClient needs a server host');
    }
    const heartbeatMs = positive(options.heartbeatMs, 5000, 'heartbeatMs');
    const tls = options.tls === true ? {} : options.tls === false || options.tls === undefined ? undefined : options.tls;
    this.o = {
      host: options.host,
      port: positive(options.port, isIPv6(options.host) ? DEFAULT_PORT_IPV6 : DEFAULT_PORT_IPV4, 'port'),
      token: options.token,
      tls,
      batchMaxPackets: positive(options.batchMaxPackets, 1000, 'batchMaxPackets'),
      batchMaxBytes: positive(options.batchMaxBytes, 1 << 20, 'batchMaxBytes'),
      batchMaxDelayMs: positive(options.batchMaxDelayMs, 50, 'batchMaxDelayMs'),
      queueMaxPackets: positive(options.queueMaxPackets, 200_000, 'queueMaxPackets'),
      queueMaxBytes: positive(options.queueMaxBytes, 256 << 20, 'queueMaxBytes'),
      overflow: options.overflow ?? 'drop-newest',
      reconnectMinMs: positive(options.reconnectMinMs, 250, 'reconnectMinMs'),
      reconnectMaxMs: positive(options.reconnectMaxMs, 30_000, 'reconnectMaxMs'),
      reconnectJitter: Math.min(1, Math.max(0, options.reconnectJitter ?? 0.5)),
      heartbeatMs,
      deadAfterMs: positive(options.deadAfterMs, heartbeatMs * 3, 'deadAfterMs'),
      connectTimeoutMs: positive(options.connectTimeoutMs, 10_000, 'connectTimeoutMs'),
      maxMessageBytes: positive(options.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes'),
      localAddress: options.localAddress,
    };
    if (this.o.overflow !== 'drop-newest' && this.o.overflow !== 'drop-oldest') {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `unknown overflow policy ${JSON.stringify(this.o.overflow)} (drop-newest or drop-oldest)`);
    }
    const host = hostname();
    this.identity = { id: options.agentId ?? host, hostname: host, instance: randomBytes(8).toString('hex'), version: AGENT_VERSION };
    this.c = {
      connected: false,
      enqueuedPackets: 0,
      enqueuedBytes: 0,
      ackedPackets: 0,
      ackedBatches: 0,
      droppedPackets: 0,
      droppedBytes: 0,
      queuedPackets: 0,
      queuedBytes: 0,
      sentBatches: 0,
      resentBatches: 0,
      connects: 0,
      disconnects: 0,
      lastError: undefined,
    };
  }

  /** The identity sent in the hello (its `instance` is random per client). */
  get agent(): AgentIdentity {
    return this.identity;
  }

  /** `host:port` of the server. */
  get target(): string {
    return formatHostPort(this.o.host, this.o.port);
  }

  /** True while connected and past the hello. */
  get connected(): boolean {
    return this.ready;
  }

  /** A snapshot of the counters. */
  stats(): TransportClientStats {
    return { ...this.c, connected: this.ready };
  }

  /** Starts connecting (and reconnecting until {@link TransportClient.stop}). */
  start(): this {
    if (this.stopped) throw new DbtapError(AgentErrorCodes.CLOSED, 'the transport client was stopped');
    if (!this.started) {
      this.started = true;
      this.connectNow();
    }
    return this;
  }

  /**
   * Queues one frame (its bytes are copied). Returns false when the overflow
   * policy discarded it.
   */
  send(frame: Frame): boolean {
    if (this.stopped) return false;
    const size = RECORD_HEADER_BYTES + frame.data.length;
    if (this.c.queuedPackets + 1 > this.o.queueMaxPackets || this.c.queuedBytes + size > this.o.queueMaxBytes) {
      if (!this.makeRoom(size)) {
        this.drop(1, size);
        return false;
      }
    }
    this.overflowing = false;
    let b = this.open;
    if (b === undefined || !b.add(frame)) {
      b = this.newBatch(size);
      b.add(frame);
    }
    this.accepted(b, 1, size);
    return true;
  }

  /**
   * Queues `n` frames already packed as batch records (what
   * {@link LiveCaptureSource} emits as `records`): one copy for the whole
   * block instead of one per frame. Near the queue bound it falls back to
   * frame-by-frame so the overflow policy applies per frame. Returns the
   * number of frames accepted.
   */
  sendRecords(records: Uint8Array, n: number): number {
    if (this.stopped || n === 0) return 0;
    const size = records.length;
    if (this.c.queuedPackets + n <= this.o.queueMaxPackets && this.c.queuedBytes + size <= this.o.queueMaxBytes) {
      this.overflowing = false;
      let b = this.open;
      if (b === undefined || !b.addRecords(records, n)) {
        b = this.newBatch(size);
        b.addRecords(records, n);
      }
      this.accepted(b, n, size);
      return n;
    }
    const frames = decodeBatchFrames(records, n);
    if (frames instanceof DbtapError) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `sendRecords: ${frames.message}`);
    let ok = 0;
    for (const f of frames) if (this.send(f)) ok++;
    return ok;
  }

  // Seals the open batch (if any) and opens one with room for at least `size` bytes.
  private newBatch(size: number): BatchBuilder {
    if (this.open !== undefined) this.seal();
    const b = (this.open = new BatchBuilder(Math.max(this.o.batchMaxBytes, size)));
    this.openTimer = setTimeout(() => this.seal(), this.o.batchMaxDelayMs);
    return b;
  }

  private accepted(b: BatchBuilder, n: number, size: number): void {
    this.c.enqueuedPackets += n;
    this.c.enqueuedBytes += size;
    this.c.queuedPackets += n;
    this.c.queuedBytes += size;
    if (b.count >= this.o.batchMaxPackets || b.bytes >= this.o.batchMaxBytes) this.seal();
  }

  /**
   * True while the queue is below 90% of both bounds: a producer that can
   * wait (a file replay) asks this before sending, a live capture cannot wait.
   */
  hasRoom(): boolean {
    return this.c.queuedPackets < this.o.queueMaxPackets * 0.9 && this.c.queuedBytes < this.o.queueMaxBytes * 0.9;
  }

  /** Seals the open batch now (sending it when connected). */
  flush(): void {
    this.seal();
  }

  /**
   * Resolves true once every queued frame is acknowledged, false when
   * `timeoutMs` passes first.
   */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    this.seal();
    if (this.c.queuedPackets === 0) return true;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.drainWaiters.push(done);
    });
  }

  /**
   * Flushes, waits up to `timeoutMs` for the acknowledgements, then closes.
   * Resolves to the final counters; frames still queued are reported in `queuedPackets`.
   */
  async stop(timeoutMs = 10_000): Promise<TransportClientStats> {
    if (!this.stopped && this.started && timeoutMs > 0) await this.drain(timeoutMs);
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.openTimer);
    clearInterval(this.heartbeat);
    const s = this.socket;
    this.socket = undefined;
    this.ready = false;
    if (s) {
      s.removeAllListeners('close');
      s.on('error', () => {});
      s.end();
      setTimeout(() => s.destroy(), 1000).unref();
    }
    return this.stats();
  }

  // --- queue -------------------------------------------------------------

  private drop(n: number, bytes: number): void {
    this.c.droppedPackets += n;
    this.c.droppedBytes += bytes;
    if (!this.overflowing) {
      this.overflowing = true;
      debug('queue full (%d packets, %d bytes): %s', this.c.queuedPackets, this.c.queuedBytes, this.o.overflow);
      this.emit('overflow', this.stats());
    }
  }

  // drop-oldest: discard whole batches from the front until `size` more bytes and one more frame fit.
  private makeRoom(size: number): boolean {
    if (this.o.overflow !== 'drop-oldest') return false;
    const fits = () => this.c.queuedPackets + 1 <= this.o.queueMaxPackets && this.c.queuedBytes + size <= this.o.queueMaxBytes;
    while (!fits()) {
      if (this.pending.length === 0) this.seal();
      const b = this.pending.shift();
      if (b === undefined) return false;
      if (this.sentIndex > 0) this.sentIndex--;
      this.c.queuedPackets -= b.n;
      this.c.queuedBytes -= b.records.length;
      this.drop(b.n, b.records.length);
    }
    return true;
  }

  private seal(): void {
    const b = this.open;
    if (b === undefined) return;
    clearTimeout(this.openTimer);
    this.openTimer = undefined;
    this.open = undefined;
    if (b.count === 0) return;
    this.pending.push({ seq: this.nextSeq++, n: b.count, records: b.seal(), sent: false });
    this.pumpOut();
  }

  private acked(seq: number): void {
    let k = 0;
    while (k < this.pending.length && this.pending[k]!.seq <= seq) {
      const b = this.pending[k]!;
      this.c.ackedBatches++;
      this.c.ackedPackets += b.n;
      this.c.queuedPackets -= b.n;
      this.c.queuedBytes -= b.records.length;
      k++;
    }
    if (k > 0) {
      this.pending.splice(0, k);
      this.sentIndex = Math.max(0, this.sentIndex - k);
      this.emit('ack', seq);
      this.pumpOut();
    }
    if (this.c.queuedPackets === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  // Writes pending batches while the socket buffer has room.
  private pumpOut(): void {
    const s = this.socket;
    if (!this.ready || s === undefined) return;
    while (this.sentIndex < this.pending.length && s.writableLength < 4 << 20) {
      const b = this.pending[this.sentIndex++]!;
      s.cork();
      s.write(encodeBatchHead(b.seq, b.n, b.records.length));
      s.write(b.records);
      s.uncork();
      this.c.sentBatches++;
      if (b.sent) this.c.resentBatches++;
      b.sent = true;
    }
  }

  // --- connection --------------------------------------------------------

  private connectNow(): void {
    if (this.stopped) return;
    const { host, port, localAddress } = this.o;
    const target = this.target;
    debug('connecting to %s', target);
    const s = this.o.tls ? tlsConnect({ servername: isIPv6(host) || /^[\d.]+$/.test(host) ? undefined : host, ...this.o.tls, host, port, localAddress } as ConnectionOptions) : tcpConnect({ host, port, localAddress });
    this.socket = s;
    this.ready = false;
    const reader = new MessageReader(this.o.maxMessageBytes);
    let failure: DbtapError | undefined;
    let connected = false;
    s.setTimeout(this.o.connectTimeoutMs, () => {
      failure ??= new DbtapError(AgentErrorCodes.CONNECT, `connect ${target} failed: ETIMEDOUT`);
      s.destroy();
    });
    s.once(this.o.tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      s.setNoDelay(true);
      s.write(encodeMessage({ t: 'hello', v: PROTOCOL_VERSION, token: this.o.token, agent: this.identity }));
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      const reason = err.code ?? err.message;
      failure ??= new DbtapError(AgentErrorCodes.CONNECT, connected ? `connection to ${target} failed: ${reason}` : `connect ${target} failed: ${reason}`, { code: err.code }, { cause: err });
    });
    s.on('data', (chunk: Buffer) => {
      this.lastRx = Date.now();
      const err = reader.push(chunk, (body) => {
        if (failure) return;
        const m = decodeMessage(body);
        if (m instanceof DbtapError) {
          failure = m;
          s.destroy();
          return;
        }
        switch (m.t) {
          case 'hello':
            if (this.ready) return;
            if (m.v !== PROTOCOL_VERSION) {
              failure = new DbtapError(AgentErrorCodes.VERSION, `server speaks protocol version ${m.v}, this agent ${PROTOCOL_VERSION}`);
              s.destroy();
              return;
            }
            this.onReady(s, m.lastSeq ?? 0, (e) => {
              failure ??= e;
              s.destroy();
            });
            return;
          case 'ack':
            this.acked(m.seq);
            return;
          case 'hb':
            return;
          case 'error':
            failure = new DbtapError(m.code as `DBTAP_E_${string}`, `server ${target} closed the connection: ${m.code}: ${m.message}`);
            s.destroy();
            return;
          default:
            failure = new DbtapError(AgentErrorCodes.PROTOCOL, `unexpected ${m.t} message from the server`);
            s.destroy();
        }
      });
      if (err) {
        failure ??= err;
        s.destroy();
      }
    });
    s.on('drain', () => this.pumpOut());
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = undefined;
      const wasReady = this.ready;
      this.ready = false;
      this.sentIndex = 0;
      clearInterval(this.heartbeat);
      const err = failure ?? new DbtapError(AgentErrorCodes.CONNECT, connected ? `connection to ${target} closed by the server` : `connect ${target} failed`);
      if (wasReady) this.attempt = 0;
      this.c.disconnects++;
      this.c.lastError = `${err.code}: ${err.message}`;
      // A refused token or version will not fix itself quickly: back off fully.
      if (err.code === AgentErrorCodes.AUTH || err.code === AgentErrorCodes.VERSION) this.attempt = Math.max(this.attempt, 30);
      const delay = this.stopped ? undefined : this.nextDelay();
      debug('%s (retry in %s ms)', err.message, delay);
      this.emit('disconnect', err, delay);
      if (delay !== undefined) this.reconnectTimer = setTimeout(() => this.connectNow(), delay);
    });
  }

  private onReady(s: Socket, lastSeq: number, fail: (err: DbtapError) => void): void {
    s.setTimeout(0);
    this.ready = true;
    this.attempt = 0;
    this.c.connects++;
    this.lastRx = Date.now();
    // The server processed these before the connection broke; only the ack was lost.
    if (lastSeq > 0) this.acked(lastSeq);
    this.sentIndex = 0;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastRx > this.o.deadAfterMs) {
        fail(new DbtapError(AgentErrorCodes.HEARTBEAT_TIMEOUT, `server ${this.target} silent for ${this.o.deadAfterMs} ms`));
        return;
      }
      if (s.writableLength < 1 << 20) s.write(encodeMessage({ t: 'hb', ts: Date.now() }));
    }, Math.max(10, Math.min(this.o.heartbeatMs, this.o.deadAfterMs / 2)));
    this.heartbeat.unref();
    debug('connected to %s', this.target);
    this.emit('connect', { host: this.o.host, port: this.o.port, remote: this.target });
    this.pumpOut();
  }

  private nextDelay(): number {
    const base = Math.min(this.o.reconnectMaxMs, this.o.reconnectMinMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(base * (1 - this.o.reconnectJitter * Math.random()));
  }
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `${name} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

// The receiving end of the transport: accepts agents, checks their token,
// hands each batch to the embedding application and acknowledges it only once
// the application is done with it.
import { createServer as createTcpServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { EventEmitter } from 'eventemitter3';
import createDebug from 'debug';
import { DbtapError, ErrorCodes, type Frame } from '@dbtap/core';
import { AgentErrorCodes } from '../errors.js';
import { AgentIdentities, DEFAULT_MAX_SEQ_JUMP, type AgentCredential } from './identity.js';
import {
  DEFAULT_MAX_HELLO_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_PORT_IPV4,
  DEFAULT_PORT_IPV6,
  MessageReader,
  PROTOCOL_VERSION,
  decodeBatchFrames,
  decodeMessage,
  encodeMessage,
  type AgentIdentity,
  type BatchMessage,
} from './protocol.js';

const debug = createDebug('dbtap:agent:server');

/** An agent connected to a {@link TransportServer}. */
export interface AgentInfo extends AgentIdentity {
  /** Peer address as seen by the server. */
  readonly remoteAddress: string;
  /** Peer port. */
  readonly remotePort: number;
  /** True when the connection is TLS. */
  readonly tls: boolean;
  /** Subject CN of the verified client certificate, when one was presented. */
  readonly certificateSubject: string | undefined;
  /** Name of the per-agent credential the hello matched; `undefined` for the shared token or an open listener. */
  readonly credential: string | undefined;
}

/** Options of {@link TransportServer}. */
export interface TransportServerOptions {
  /**
   * Receives every batch, in sequence order per agent. The acknowledgement is
   * sent only after the returned promise resolves; a slow consumer delays
   * acknowledgements (and, through TCP, the agent) but never loses a frame.
   * A rejection closes the agent's connection; the agent re-sends.
   */
  onBatch: (agent: AgentInfo, frames: Frame[], seq: number) => Promise<void> | void;
  /**
   * Batches of one connection handed to `onBatch` before the oldest of them
   * has finished (default 1: one after the other). With 2, a consumer can
   * decode a batch while it still stores the one before; it must then keep
   * their results in order itself. Acknowledgements always go out one after
   * the other in sequence order, each once its own `onBatch` has resolved
   * and every earlier one has too. After a rejection no later batch of the
   * connection is acknowledged or recorded as processed.
   */
  batchesInFlight?: number;
  /**
   * Shared token(s) an agent must present. Omitted: any agent is accepted
   * (only sensible on loopback or with client certificates).
   */
  token?: string | readonly string[];
  /**
   * Per-agent credentials, each bound to the agent ids it may announce: a
   * hello naming an id its credential is not bound to (or, with the shared
   * token, an id some credential owns) is refused with
   * `DBTAP_E_AGENT_IDENTITY` and counted. See {@link AgentIdentities}.
   */
  agents?: readonly AgentCredential[];
  /**
   * Largest step a batch sequence number may take past the last one
   * processed for its agent instance (0 for an instance not seen before); a
   * larger one closes the connection with `DBTAP_E_SEQ_JUMP`, counted, and
   * nothing is recorded for it. Agents number batches one by one; a jump
   * beyond the batches an agent's queue can drop would otherwise make every
   * later batch look already processed. Default {@link DEFAULT_MAX_SEQ_JUMP}.
   */
  maxSeqJump?: number;
  /** TLS options (`key`, `cert`, `ca`, `requestCert`, `rejectUnauthorized`...); omitted: plain TCP. */
  tls?: TlsOptions;
  /** Largest message accepted; larger ones close the connection. Default 16 MiB. */
  maxMessageBytes?: number;
  /**
   * Largest message accepted before the hello is authenticated: an
   * unauthenticated peer may make the server buffer no more than this.
   * Default 64 KiB.
   */
  maxHelloBytes?: number;
  /** Connections held at once (authenticated or not); more are refused at accept. Default 1024. */
  maxConnections?: number;
  /** Connections held at once from one peer address; more are refused at accept. Default 64. */
  maxConnectionsPerAddress?: number;
  /** Heartbeat interval in ms. Default 5000. */
  heartbeatMs?: number;
  /** A connection silent for this long is closed. Default 3 heartbeats. */
  deadAfterMs?: number;
  /** An accepted connection must say hello within this many ms. Default 10000. */
  helloTimeoutMs?: number;
  /** Bytes received but not yet processed per connection before reading pauses. Default 32 MiB. */
  maxPendingBytes?: number;
  /** Agent instances whose last processed sequence number is remembered for de-duplication. Default 4096. */
  rememberInstances?: number;
  /**
   * The last batch sequence number durably processed for an agent instance
   * this process does not remember (e.g. after a restart): kept by the
   * consumer in the same transaction as the batch's results, it makes
   * re-sent batches after a crash duplicates that are acknowledged but not
   * delivered again. Asked once per agent id and instance, before its
   * first batch; positions are kept per agent id and instance, so an agent
   * (authenticated by its credential) can not move another agent's position.
   */
  resumeSeq?: (instance: string, agentId: string) => number | Promise<number>;
}

/** Where to listen. */
export interface ListenOptions {
  /** Address; default `0.0.0.0`. */
  host?: string;
  /** Port; default 9999 for IPv4 hosts and 9998 for IPv6 hosts, 0 for any free port. */
  port?: number;
}

/** Counters of a {@link TransportServer}. */
export interface TransportServerStats {
  /** Connections open now. */
  connections: number;
  /** Connections that completed the hello. */
  accepted: number;
  /** Connections closed because of a bad token, garbage, a version mismatch, a timeout or a connection limit. */
  refused: number;
  /** Batches handed to `onBatch` and acknowledged. */
  batches: number;
  /** Frames in those batches. */
  frames: number;
  /** Record bytes in those batches. */
  bytes: number;
  /** Batches received again after a reconnect and acknowledged without being processed twice. */
  duplicateBatches: number;
  /** Hellos refused because the credential is not bound to the announced agent id (`DBTAP_E_AGENT_IDENTITY`; also in `refused`). */
  identityRefused: number;
  /** Connections closed for a batch sequence number beyond `maxSeqJump` (`DBTAP_E_SEQ_JUMP`; also in `refused`). */
  seqJumps: number;
}

/** Events of {@link TransportServer}. */
export interface TransportServerEvents {
  /** An agent completed the hello. */
  connect: (agent: AgentInfo) => void;
  /** An agent's connection ended; `reason` says why. */
  disconnect: (agent: AgentInfo, reason: string) => void;
  /** A connection was refused or failed; `remote` is `address:port`. */
  clientError: (err: DbtapError, remote: string) => void;
  /** `onBatch` threw or rejected. */
  batchError: (err: unknown, agent: AgentInfo) => void;
}

/**
 * The receiving end of the agent transport, embeddable in any process. Speaks
 * the length-prefixed msgpack protocol of {@link PROTOCOL_VERSION}; wrong
 * tokens, garbage and oversized messages get an error message and a closed
 * connection, never an exception in the host process.
 */
export class TransportServer extends EventEmitter<TransportServerEvents> {
  private readonly opts: Required<Omit<TransportServerOptions, 'token' | 'agents' | 'tls' | 'resumeSeq'>> & Pick<TransportServerOptions, 'tls' | 'resumeSeq'>;
  private readonly identities: AgentIdentities;
  private readonly servers: Server[] = [];
  private readonly conns = new Set<Connection>();
  private readonly connsByAddress = new Map<string, number>();
  private readonly lastSeqByInstance = new Map<string, number>();
  private readonly counters: TransportServerStats = { connections: 0, accepted: 0, refused: 0, batches: 0, frames: 0, bytes: 0, duplicateBatches: 0, identityRefused: 0, seqJumps: 0 };

  constructor(options: TransportServerOptions) {
    super();
    if (typeof options?.onBatch !== 'function') throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'TransportServer needs an onBatch function');
    const heartbeatMs = options.heartbeatMs ?? 5000;
    this.opts = {
      onBatch: options.onBatch,
      batchesInFlight: options.batchesInFlight ?? 1,
      tls: options.tls,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxHelloBytes: options.maxHelloBytes ?? DEFAULT_MAX_HELLO_BYTES,
      maxConnections: options.maxConnections ?? 1024,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 64,
      heartbeatMs,
      deadAfterMs: options.deadAfterMs ?? heartbeatMs * 3,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      maxPendingBytes: options.maxPendingBytes ?? 32 << 20,
      rememberInstances: options.rememberInstances ?? 4096,
      resumeSeq: options.resumeSeq,
      maxSeqJump: options.maxSeqJump ?? DEFAULT_MAX_SEQ_JUMP,
    };
    if (!Number.isSafeInteger(this.opts.maxSeqJump) || this.opts.maxSeqJump < 1) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'maxSeqJump must be a whole number of at least 1');
    if (!Number.isSafeInteger(this.opts.batchesInFlight) || this.opts.batchesInFlight < 1 || this.opts.batchesInFlight > 64) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'batchesInFlight must be a whole number from 1 to 64');
    }
    this.identities = new AgentIdentities(options.token, options.agents);
  }

  /**
   * Starts listening. Without arguments it listens on `0.0.0.0:9999` and
   * `[::]:9998`; pass one or more {@link ListenOptions} to choose. Resolves to
   * the bound addresses (useful with port 0).
   */
  async listen(where?: ListenOptions | readonly ListenOptions[]): Promise<AddressInfo[]> {
    const list: ListenOptions[] = where === undefined ? [{ host: '0.0.0.0' }, { host: '::' }] : Array.isArray(where) ? [...where] : [where as ListenOptions];
    const out: AddressInfo[] = [];
    for (const l of list) {
      const host = l.host ?? '0.0.0.0';
      const port = l.port ?? (isIPv6(host) ? DEFAULT_PORT_IPV6 : DEFAULT_PORT_IPV4);
      const server = this.opts.tls ? createTlsServer(this.opts.tls, (s) => this.accept(s, true)) : createTcpServer((s) => this.accept(s, false));
      if (this.opts.tls) {
        // Handshake failures (unknown CA, missing client certificate) are client errors, not server errors.
        server.on('tlsClientError', (err: Error, s: TLSSocket) => {
          this.counters.refused++;
          this.emit('clientError', new DbtapError(AgentErrorCodes.AUTH, `TLS handshake failed: ${err.message}`), `${s.remoteAddress}:${s.remotePort}`);
        });
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: isIPv6(host) }, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        throw new DbtapError(AgentErrorCodes.CONNECT, `listen ${formatHostPort(host, port)} failed: ${err.code ?? err.message}`, { host, port }, { cause: err });
      });
      server.on('error', (err) => debug('listener error: %s', err.message));
      this.servers.push(server);
      const addr = server.address() as AddressInfo;
      debug('listening on %s', formatHostPort(addr.address, addr.port));
      out.push(addr);
    }
    return out;
  }

  /** Bound addresses. */
  addresses(): AddressInfo[] {
    return this.servers.map((s) => s.address() as AddressInfo).filter((a) => a !== null);
  }

  /** A snapshot of the counters. */
  stats(): TransportServerStats {
    return { ...this.counters, connections: this.conns.size };
  }

  /** Agents connected now. */
  agents(): AgentInfo[] {
    const out: AgentInfo[] = [];
    for (const c of this.conns) if (c.agent) out.push(c.agent);
    return out;
  }

  /**
   * Stops listening and closes every connection. Batches still inside
   * `onBatch` finish but are not acknowledged; agents re-send them. With
   * `abort`, sockets are destroyed at once (what a crash looks like to agents).
   */
  async close(options: { abort?: boolean } = {}): Promise<void> {
    const closing = this.servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const c of this.conns) c.shutdown(options.abort ? undefined : 'server shutting down', options.abort === true);
    await Promise.all(closing);
  }

  /** @internal */
  accept(socket: Socket, tls: boolean): void {
    const address = socket.remoteAddress ?? '?';
    const fromAddress = this.connsByAddress.get(address) ?? 0;
    const o = this.opts;
    if (this.conns.size >= o.maxConnections || fromAddress >= o.maxConnectionsPerAddress) {
      // Refused before anything is read or buffered: no message, the peer may not even be an agent.
      const limit = this.conns.size >= o.maxConnections ? `${o.maxConnections} connections in total` : `${o.maxConnectionsPerAddress} connections from ${address}`;
      this.counters.refused++;
      this.emit('clientError', new DbtapError(AgentErrorCodes.CONNECTION_LIMIT, `the listener already holds ${limit}`), formatHostPort(address, socket.remotePort ?? 0));
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.connsByAddress.set(address, fromAddress + 1);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const c = new Connection(this, socket, tls);
    this.conns.add(c);
    socket.on('close', () => {
      this.conns.delete(c);
      const left = (this.connsByAddress.get(address) ?? 1) - 1;
      if (left > 0) this.connsByAddress.set(address, left);
      else this.connsByAddress.delete(address);
      c.closed();
    });
  }

  /** @internal */
  get identity(): AgentIdentities {
    return this.identities;
  }

  /** @internal */
  get options() {
    return this.opts;
  }

  /** @internal */
  lastSeq(agent: AgentIdentity): number {
    return this.lastSeqByInstance.get(seqKey(agent)) ?? 0;
  }

  /** @internal Loads the durable sequence number of an instance this process does not remember. */
  async resume(agent: AgentIdentity): Promise<void> {
    const key = seqKey(agent);
    if (this.lastSeqByInstance.has(key) || this.opts.resumeSeq === undefined) return;
    const seq = await this.opts.resumeSeq(agent.instance, agent.id);
    if (!this.lastSeqByInstance.has(key) && Number.isSafeInteger(seq) && seq > 0) this.lastSeqByInstance.set(key, seq);
  }

  /** @internal */
  processed(agent: AgentInfo, seq: number, frames: number, bytes: number): void {
    const m = this.lastSeqByInstance;
    const key = seqKey(agent);
    m.delete(key); // re-insert: the Map's order is the eviction order
    m.set(key, seq);
    if (m.size > this.opts.rememberInstances) m.delete(m.keys().next().value!);
    this.counters.batches++;
    this.counters.frames += frames;
    this.counters.bytes += bytes;
  }

  /** @internal */
  count(what: 'accepted' | 'refused' | 'duplicateBatches' | 'identityRefused' | 'seqJumps'): void {
    this.counters[what]++;
  }
}

// Sequence numbers belong to an agent id and its instance: one agent can not claim another's.
function seqKey(agent: AgentIdentity): string {
  return `${agent.id}/${agent.instance}`;
}

/** `host:port`, with brackets around IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

// One accepted socket: hello, then batches processed strictly in order.
class Connection {
  agent: AgentInfo | undefined;
  private readonly reader: MessageReader;
  private readonly remote: string;
  private queue: BatchMessage[] = [];
  private queuedBytes = 0;
  private busy = false;
  private ready: Promise<void> = Promise.resolve();
  private done = false;
  private paused = false;
  private lastRx = Date.now();
  private readonly timer: NodeJS.Timeout;
  private readonly helloTimer: NodeJS.Timeout;
  private closeReason = 'connection closed by agent';

  constructor(
    private readonly server: TransportServer,
    private readonly socket: Socket,
    private readonly tls: boolean,
  ) {
    const o = server.options;
    // until the hello is authenticated, only a small message may be buffered
    this.reader = new MessageReader(Math.min(o.maxHelloBytes, o.maxMessageBytes));
    this.remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.closeReason = `socket error: ${err.code ?? err.message}`;
    });
    this.helloTimer = setTimeout(() => {
      if (!this.agent) this.refuse(new DbtapError(AgentErrorCodes.HELLO_TIMEOUT, `no hello within ${o.helloTimeoutMs} ms`));
    }, o.helloTimeoutMs);
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(o.heartbeatMs, o.deadAfterMs / 2)));
    this.timer.unref();
    this.helloTimer.unref();
  }

  private tick(): void {
    if (this.done) return;
    const o = this.server.options;
    if (Date.now() - this.lastRx > o.deadAfterMs && !this.paused) {
      this.fail(new DbtapError(AgentErrorCodes.HEARTBEAT_TIMEOUT, `nothing received for ${o.deadAfterMs} ms`));
      return;
    }
    if (this.agent) this.write(encodeMessage({ t: 'hb', ts: Date.now() }));
  }

  private data(chunk: Buffer): void {
    if (this.done) return;
    this.lastRx = Date.now();
    const err = this.reader.push(chunk, (body) => this.message(body));
    if (err) this.refuse(err);
  }

  private message(body: Buffer): void {
    if (this.done) return;
    const m = decodeMessage(body);
    if (m instanceof DbtapError) {
      this.refuse(m);
      return;
    }
    if (!this.agent) {
      if (m.t !== 'hello') {
        this.refuse(new DbtapError(AgentErrorCodes.PROTOCOL, `expected hello, got ${m.t}`));
        return;
      }
      if (m.v !== PROTOCOL_VERSION) {
        this.refuse(new DbtapError(AgentErrorCodes.VERSION, `protocol version ${m.v} is not supported (this server speaks ${PROTOCOL_VERSION})`));
        return;
      }
      if (!m.agent) {
        this.refuse(new DbtapError(AgentErrorCodes.PROTOCOL, 'hello lacks the agent identity'));
        return;
      }
      const s = this.socket as TLSSocket;
      const cert = this.tls && typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate() : undefined;
      const cn = cert && cert.subject ? cert.subject.CN : undefined;
      const subject = Array.isArray(cn) ? cn.join(',') : cn;
      // only a certificate the TLS layer verified against its CA identifies an agent
      const verdict = this.server.identity.check(m.token, this.tls && s.authorized === true ? subject : undefined, m.agent.id);
      if (!verdict.ok) {
        if (verdict.error.code === AgentErrorCodes.AGENT_IDENTITY) this.server.count('identityRefused');
        this.refuse(verdict.error);
        return;
      }
      clearTimeout(this.helloTimer);
      this.reader.limit = this.server.options.maxMessageBytes;
      this.agent = {
        ...m.agent,
        remoteAddress: this.socket.remoteAddress ?? '',
        remotePort: this.socket.remotePort ?? 0,
        tls: this.tls,
        certificateSubject: subject,
        credential: verdict.credential,
      };
      const o = this.server.options;
      this.server.count('accepted');
      const agent = this.agent;
      // batches wait in the queue (pump awaits this) until the instance's durable position is known
      this.ready = this.server.resume(agent).then(
        () => {
          if (this.done) return;
          this.write(encodeMessage({ t: 'hello', v: PROTOCOL_VERSION, lastSeq: this.server.lastSeq(agent), heartbeatMs: o.heartbeatMs, maxMessageBytes: o.maxMessageBytes }));
          debug('agent %s (%s) connected from %s', agent.id, agent.instance, this.remote);
          this.server.emit('connect', agent);
        },
        (err: unknown) => {
          this.fail(new DbtapError(AgentErrorCodes.SERVER, `cannot resume agent ${agent.instance}: ${(err as Error)?.message ?? String(err)}`));
          throw err;
        },
      );
      this.ready.catch(() => {});
      return;
    }
    switch (m.t) {
      case 'batch':
        this.queue.push(m);
        this.queuedBytes += m.frames.length;
        if (this.queuedBytes > this.server.options.maxPendingBytes && !this.paused) {
          // Backpressure: stop reading until the consumer catches up.
          this.paused = true;
          this.socket.pause();
        }
        void this.pump();
        return;
      case 'hb':
        return;
      case 'error':
        this.closeReason = `agent reported ${m.code}: ${m.message}`;
        this.socket.end();
        return;
      default:
        this.refuse(new DbtapError(AgentErrorCodes.PROTOCOL, `unexpected ${m.t} message from an agent`));
    }
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    // Batches started and not yet acknowledged, oldest first (at most batchesInFlight).
    const inFlight: { b: BatchMessage; done: Promise<void> | undefined }[] = [];
    try {
      try {
        await this.ready;
      } catch {
        return;
      }
      const agent = this.agent!;
      for (;;) {
        while (this.queue.length > 0 && !this.done && inFlight.length < this.server.options.batchesInFlight) {
          const b = this.queue.shift()!;
          this.queuedBytes -= b.frames.length;
          const last = Math.max(this.server.lastSeq(agent), inFlight.at(-1)?.b.seq ?? 0);
          if (b.seq <= last) {
            // Already processed before a reconnect whose ack was lost: ack again (in order), do not deliver twice.
            this.server.count('duplicateBatches');
            inFlight.push({ b, done: undefined });
            continue;
          }
          if (b.seq - last > this.server.options.maxSeqJump) {
            this.server.count('seqJumps');
            this.refuse(new DbtapError(AgentErrorCodes.SEQ_JUMP, `batch ${b.seq} jumps ${b.seq - last} past the last one processed (${last}) for agent ${agent.id}, more than ${this.server.options.maxSeqJump}`));
            break;
          }
          const frames = decodeBatchFrames(b.frames, b.n);
          if (frames instanceof DbtapError) {
            this.refuse(frames);
            break;
          }
          let done: Promise<void>;
          try {
            done = Promise.resolve(this.server.options.onBatch(agent, frames, b.seq));
          } catch (err) {
            done = Promise.reject(err);
          }
          done.catch(() => {}); // awaited below, in order
          inFlight.push({ b, done });
        }
        const f = inFlight.shift();
        if (f === undefined) return;
        if (f.done !== undefined) {
          try {
            await f.done;
          } catch (err) {
            this.server.emit('batchError', err, agent);
            this.fail(new DbtapError(AgentErrorCodes.SERVER, `batch ${f.b.seq} could not be processed: ${(err as Error)?.message ?? String(err)}`));
            // the later ones were started but are neither acknowledged nor recorded: the agent re-sends from this one
            await Promise.allSettled(inFlight.map((g) => g.done));
            return;
          }
          // Recorded even when the connection closed meanwhile: the agent re-sends
          // the unacknowledged batch and the duplicate is then recognised.
          this.server.processed(agent, f.b.seq, f.b.n, f.b.frames.length);
        }
        if (this.done) continue;
        this.write(encodeMessage({ t: 'ack', seq: f.b.seq }));
        if (this.paused && this.queuedBytes <= this.server.options.maxPendingBytes / 2) {
          this.paused = false;
          this.lastRx = Date.now();
          this.socket.resume();
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private write(buf: Buffer): void {
    if (!this.done && this.socket.writable) this.socket.write(buf);
  }

  // A client error: tell the peer why, count it, close.
  private refuse(err: DbtapError): void {
    if (this.done) return;
    this.server.count('refused');
    this.server.emit('clientError', err, this.remote);
    debug('refusing %s: %s %s', this.remote, err.code, err.message);
    this.fail(err);
  }

  private fail(err: DbtapError): void {
    if (this.done) return;
    this.closeReason = `${err.code}: ${err.message}`;
    this.write(encodeMessage({ t: 'error', code: err.code, message: err.message }));
    this.done = true;
    this.socket.end();
    // A peer that never reads must not keep the socket open.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  shutdown(reason: string | undefined, abort: boolean): void {
    if (abort) {
      this.closeReason = 'server aborted';
      this.done = true;
      this.socket.destroy();
      return;
    }
    this.fail(new DbtapError(AgentErrorCodes.CLOSED, reason ?? 'closing'));
  }

  closed(): void {
    this.done = true;
    clearInterval(this.timer);
    clearTimeout(this.helloTimer);
    this.queue = [];
    if (this.agent) {
      debug('agent %s disconnected: %s', this.agent.id, this.closeReason);
      this.server.emit('disconnect', this.agent, this.closeReason);
    }
  }
}

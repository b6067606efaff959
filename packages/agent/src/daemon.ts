// The agent daemon: one capture source feeding one transport client, with
// logging, a status socket, reload and a flushing stop.
import { createServer, connect, isIPv6, type Server } from 'node:net';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { EventEmitter } from 'eventemitter3';
import { DbtapError, ErrorCodes, type Frame } from '@dbtap/core';
import { AgentErrorCodes } from './errors.js';
import type { AgentConfig } from './config.js';
import { AgentLogger } from './log.js';
import { TransportClient, type TransportClientOptions, type TransportClientStats } from './transport/client.js';
import type { CaptureSource, CaptureSourceStats } from './capture/source.js';
import { LiveCaptureSource } from './capture/live.js';
import { PcapReplaySource } from './capture/replay.js';

/** Live counters of a running agent, as `dbtap-agent status` prints them. */
export interface AgentStatus {
  /** Agent id sent to the server. */
  agentId: string;
  /** Random id of this agent process. */
  instance: string;
  /** Process id. */
  pid: number;
  /** Start time, ISO-8601. */
  startedAt: string;
  /** Seconds since start. */
  uptimeSec: number;
  /** Server `host:port`. */
  server: string;
  /** Connected and past the hello. */
  connected: boolean;
  /** The capture source. */
  source: CaptureSourceStats & {
    kind: 'live' | 'replay';
    name: string;
    running: boolean;
    lastError: string | undefined;
    /**
     * True when `kernelReceived`, `kernelDrops` and `interfaceDrops` are the
     * kernel's own counters; false when the libpcap binding in use cannot read
     * them (they are then absent: unknown, not zero).
     */
    kernelCounters: boolean;
  };
  /** The transport queue and connection counters. */
  transport: TransportClientStats;
}

/** Events of {@link AgentDaemon}. */
export interface AgentDaemonEvents {
  /** A replay source reached the end of its file (live sources never end by themselves). */
  sourceEnd: () => void;
}

/** Reads TLS files and resolves `send_device` into client options. */
export function clientOptionsFromConfig(config: AgentConfig): TransportClientOptions {
  const s = config.server;
  const read = (what: string, p: string | undefined) => {
    if (p === undefined) return undefined;
    try {
      return readFileSync(p);
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `cannot read TLS ${what} ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path: p });
    }
  };
  let localAddress: string | undefined;
  if (s.sendDevice !== undefined) {
    const want = isIPv6(s.host) ? 'IPv6' : 'IPv4';
    const addrs = networkInterfaces()[s.sendDevice];
    if (!addrs) throw new DbtapError(ErrorCodes.CONFIG, `send_device "${s.sendDevice}" does not exist; devices: ${Object.keys(networkInterfaces()).join(', ')}`);
    const a = addrs.find((x) => x.family === want && !(want === 'IPv6' && x.scopeid));
    if (!a) throw new DbtapError(ErrorCodes.CONFIG, `send_device "${s.sendDevice}" has no ${want} address to connect from`);
    localAddress = a.address;
  }
  return {
    host: s.host,
    port: s.port,
    token: s.token,
    tls: s.tls ? { ca: read('CA', s.tls.ca), cert: read('certificate', s.tls.cert), key: read('key', s.tls.key), servername: s.tls.servername, rejectUnauthorized: s.tls.rejectUnauthorized ?? true } : undefined,
    agentId: config.agentId,
    localAddress,
    batchMaxPackets: config.batch.maxPackets,
    batchMaxBytes: config.batch.maxBytes,
    batchMaxDelayMs: config.batch.maxDelayMs,
    queueMaxPackets: config.queue.maxPackets,
    queueMaxBytes: config.queue.maxBytes,
    overflow: config.queue.overflow,
    reconnectMinMs: config.reconnect.minMs,
    reconnectMaxMs: config.reconnect.maxMs,
    reconnectJitter: config.reconnect.jitter,
    heartbeatMs: config.heartbeat.intervalMs,
    deadAfterMs: config.heartbeat.deadAfterMs,
  };
}

// Error codes after which re-opening the capture cannot help.
const FATAL_SOURCE = new Set<string>([AgentErrorCodes.UNKNOWN_DEVICE, AgentErrorCodes.INVALID_FILTER, AgentErrorCodes.PERMISSION, ErrorCodes.IO, ErrorCodes.BAD_CAPTURE_FORMAT]);

/**
 * The `dbtap-agent` daemon as a class: captures with the configured source
 * and delivers through a {@link TransportClient}. Every connect, disconnect
 * and error is logged with its reason.
 */
export class AgentDaemon extends EventEmitter<AgentDaemonEvents> {
  private config: AgentConfig;
  private readonly log: AgentLogger;
  private client: TransportClient;
  private source: CaptureSource | undefined;
  private sourceError: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private statusServer: Server | undefined;
  private readonly startedAt = Date.now();
  private stopping = false;

  constructor(config: AgentConfig, options: { logger?: AgentLogger } = {}) {
    super();
    this.config = config;
    this.log = options.logger ?? new AgentLogger(config.logFile);
    this.client = this.makeClient(config);
  }

  private makeClient(config: AgentConfig): TransportClient {
    const c = new TransportClient(clientOptionsFromConfig(config));
    c.on('connect', (i) => this.log.info(`connected to ${i.remote} as ${c.agent.id} (instance ${c.agent.instance})`));
    c.on('disconnect', (err, retry) => this.log.warn(`${err.message}${retry === undefined ? '' : `; retrying in ${retry} ms`}`));
    c.on('overflow', (s) => this.log.error(`queue full (${s.queuedPackets} packets, ${s.queuedBytes} bytes): ${config.queue.overflow}, ${s.droppedPackets} packets dropped so far`));
    return c;
  }

  private makeSource(config: AgentConfig): CaptureSource {
    const s = config.source;
    if (s.kind === 'live') return new LiveCaptureSource({ device: s.device, filter: s.filter, snapLen: s.snapLen, bufferSize: s.bufferSize, pollMs: s.pollMs, binding: s.binding });
    const client = () => this.client;
    return new PcapReplaySource({ path: s.path, pace: s.pace, speed: s.speed, ready: () => client().hasRoom() });
  }

  /** Connects, opens the source and the status socket. Rejects when the source cannot open. */
  async start(): Promise<void> {
    this.log.info(`starting: server ${this.client.target}, source ${describeSource(this.config)}`);
    this.client.start();
    await this.openSource();
    await this.listenStatus();
  }

  private async openSource(): Promise<void> {
    const src = this.makeSource(this.config);
    // A live capture hands over packed records: one copy per block into the queue.
    if (src instanceof LiveCaptureSource) src.on('records', (r, n) => this.client.sendRecords(r, n));
    else src.on('frame', (f: Frame) => this.client.send(f));
    src.on('drops', (d, total) => {
      const parts = [
        d.kernelDrops > 0 ? `${d.kernelDrops} in the kernel ring (raise buffer_size)` : '',
        d.interfaceDrops > 0 ? `${d.interfaceDrops} at the interface` : '',
        d.sourceDrops > 0 ? `${d.sourceDrops} in the capture process` : '',
      ].filter(Boolean);
      const received = total.kernelReceived === undefined ? '' : `${total.kernelReceived} received, `;
      this.log.warn(
        `capture on ${src.name} lost packets: ${parts.join(', ')}; totals: ${received}${total.frames} delivered, ${(total.kernelDrops ?? 0) + (total.interfaceDrops ?? 0) + total.sourceDrops} lost`,
      );
    });
    src.on('error', (err) => {
      this.sourceError = `${err.code}: ${err.message}`;
      this.log.error(`capture: ${err.code}: ${err.message}`);
    });
    src.on('end', () => {
      if (this.source !== src || this.stopping) return;
      if (this.config.source.kind === 'replay') {
        this.client.flush();
        this.log.info(`replay of ${src.name} finished: ${src.stats().frames} frames`);
        this.emit('sourceEnd');
        return;
      }
      // A live capture ended by itself (device gone): try again until it is back.
      this.source = undefined;
      this.retryTimer = setTimeout(() => void this.retrySource(), 5000);
    });
    try {
      await src.start();
    } catch (err) {
      const e = err as DbtapError;
      this.sourceError = `${e.code}: ${e.message}`;
      this.log.error(`capture: ${e.code ?? 'ERROR'}: ${e.message}`);
      throw err;
    }
    this.source = src;
    this.sourceError = undefined;
    if (src instanceof LiveCaptureSource && !src.kernelCounters) {
      const why = this.config.source.kind === 'live' && this.config.source.binding === 'cap' ? 'capture_binding is cap' : 'the native capture binding is not built (needs libpcap-dev at install)';
      this.log.warn(`capture started on ${src.name}; kernel drop counters unknown: ${why}, so losses in the kernel ring are not counted`);
    } else {
      this.log.info(`capture started on ${src.name}`);
    }
  }

  private async retrySource(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.openSource();
    } catch (err) {
      const code = (err as DbtapError).code;
      if (this.stopping) return;
      // The device may come back (a renamed or re-created interface): keep trying, slowly.
      if (code === AgentErrorCodes.UNKNOWN_DEVICE || !FATAL_SOURCE.has(code)) this.retryTimer = setTimeout(() => void this.retrySource(), 5000);
    }
  }

  private async listenStatus(): Promise<void> {
    const path = this.config.statusSocket;
    if (!path) return;
    if (existsSync(path)) {
      // A socket left by a dead agent is removed; a live agent's is an error.
      const alive = await new Promise<boolean>((r) => {
        const s = connect(path, () => (s.destroy(), r(true)));
        s.on('error', () => r(false));
      });
      if (alive) {
        this.log.warn(`status socket ${path} belongs to another running agent; status disabled`);
        return;
      }
      try {
        unlinkSync(path);
      } catch {
        // listen below reports it
      }
    }
    const server = createServer((s) => {
      s.on('error', () => {});
      s.end(`${JSON.stringify(this.status())}\n`);
    });
    await new Promise<void>((resolve) => {
      server.once('error', (err) => {
        this.log.warn(`status socket ${path} unavailable: ${err.message}`);
        resolve();
      });
      server.listen(path, () => {
        this.statusServer = server;
        resolve();
      });
    });
    server.unref();
  }

  /** Live counters. */
  status(): AgentStatus {
    const src = this.source;
    const zero: CaptureSourceStats = { frames: 0, bytes: 0, truncated: 0, kernelReceived: undefined, kernelDrops: undefined, interfaceDrops: undefined, sourceDrops: 0 };
    const t = this.client.stats();
    return {
      agentId: this.client.agent.id,
      instance: this.client.agent.instance,
      pid: process.pid,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      server: this.client.target,
      connected: t.connected,
      source: {
        ...(src ? src.stats() : zero),
        kind: this.config.source.kind,
        name: src?.name ?? describeSource(this.config),
        running: src !== undefined,
        lastError: this.sourceError,
        kernelCounters: src instanceof LiveCaptureSource ? src.kernelCounters : this.config.source.kind === 'replay',
      },
      transport: t,
    };
  }

  /**
   * Applies a new configuration (SIGHUP). A changed source is re-opened; a
   * changed server or queue gets a new transport client after the old one
   * delivered what it holds (up to 10 s; what is left is logged as lost).
   */
  async reload(config: AgentConfig): Promise<void> {
    this.log.info('reloading configuration');
    const old = this.config;
    this.config = config;
    this.log.setFile(config.logFile);
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (!same(old.server, config.server) || !same(old.queue, config.queue) || !same(old.batch, config.batch) || old.agentId !== config.agentId) {
      const previous = this.client;
      this.client = this.makeClient(config);
      this.client.start();
      const left = await previous.stop(10_000);
      if (left.queuedPackets > 0) this.log.error(`reload: ${left.queuedPackets} packets of the previous transport were not acknowledged and are lost`);
    }
    if (!same(old.source, config.source)) {
      clearTimeout(this.retryTimer);
      const src = this.source;
      this.source = undefined;
      await src?.stop();
      await this.openSource().catch(() => {
        this.retryTimer = setTimeout(() => void this.retrySource(), 5000);
      });
    }
    if (old.statusSocket !== config.statusSocket) {
      await this.closeStatus();
      await this.listenStatus();
    }
    this.log.info('configuration reloaded');
  }

  private async closeStatus(): Promise<void> {
    const s = this.statusServer;
    this.statusServer = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /**
   * Stops capturing, waits up to `timeoutMs` for the queue to be acknowledged
   * (SIGTERM), closes everything and resolves to the final transport counters.
   */
  async stop(timeoutMs = 10_000): Promise<TransportClientStats> {
    if (this.stopping) return this.client.stats();
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.log.info('stopping: flushing the queue');
    const src = this.source;
    await src?.stop();
    if (src) this.log.info(`capture on ${src.name} stopped: ${describeCaptureTotals(src.stats())}`);
    const s = await this.client.stop(timeoutMs);
    await this.closeStatus();
    this.log.info(`stopped: ${s.ackedPackets} packets delivered, ${s.droppedPackets} dropped, ${s.queuedPackets} undelivered`);
    return s;
  }
}

function describeCaptureTotals(s: CaptureSourceStats): string {
  const kernel = s.kernelDrops === undefined ? 'kernel drops unknown' : `${s.kernelReceived} received by the kernel, ${s.kernelDrops} dropped in the kernel ring, ${s.interfaceDrops} at the interface`;
  return `${s.frames} frames delivered, ${kernel}, ${s.sourceDrops} dropped in the capture process`;
}

/**
 * The counters of {@link AgentStatus} in the Prometheus text format (0.0.4),
 * as `dbtap-agent metrics` prints them (e.g. for node_exporter's textfile
 * collector). Kernel counters the capture cannot read are left out, and
 * `dbtap_agent_capture_kernel_counters` is 0.
 */
export function agentMetrics(status: AgentStatus): string {
  const labels = `agent="${escapeLabel(status.agentId)}",source="${escapeLabel(status.source.name)}"`;
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number | boolean | undefined) => {
    if (value === undefined) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${labels}} ${Number(value)}`);
  };
  const c = status.source;
  const t = status.transport;
  metric('dbtap_agent_up_seconds', 'gauge', 'Seconds since the agent started.', status.uptimeSec);
  metric('dbtap_agent_connected', 'gauge', '1 while connected to the server.', status.connected);
  metric('dbtap_agent_capture_running', 'gauge', '1 while the capture source runs.', c.running);
  metric('dbtap_agent_capture_kernel_counters', 'gauge', '1 when the kernel drop counters are read (pcap_stats), 0 when unknown.', c.kernelCounters);
  metric('dbtap_agent_capture_frames_total', 'counter', 'Frames delivered by the capture.', c.frames);
  metric('dbtap_agent_capture_bytes_total', 'counter', 'Captured bytes delivered by the capture.', c.bytes);
  metric('dbtap_agent_capture_truncated_total', 'counter', 'Frames cut by the snap length.', c.truncated);
  metric('dbtap_agent_capture_kernel_received_total', 'counter', 'Frames that passed the filter in the kernel (pcap_stats ps_recv).', c.kernelReceived);
  metric('dbtap_agent_capture_kernel_dropped_total', 'counter', 'Frames the kernel dropped because the capture ring was full (pcap_stats ps_drop).', c.kernelDrops);
  metric('dbtap_agent_capture_interface_dropped_total', 'counter', 'Frames the interface dropped (pcap_stats ps_ifdrop).', c.interfaceDrops);
  metric('dbtap_agent_capture_source_dropped_total', 'counter', 'Frames the capture process dropped because the agent did not keep up.', c.sourceDrops);
  metric('dbtap_agent_transport_acked_packets_total', 'counter', 'Frames acknowledged by the server.', t.ackedPackets);
  metric('dbtap_agent_transport_dropped_packets_total', 'counter', 'Frames discarded by the queue overflow policy.', t.droppedPackets);
  metric('dbtap_agent_transport_queued_packets', 'gauge', 'Frames held in the queue.', t.queuedPackets);
  metric('dbtap_agent_transport_queued_bytes', 'gauge', 'Record bytes held in the queue.', t.queuedBytes);
  metric('dbtap_agent_transport_disconnects_total', 'counter', 'Lost connections and failed connection attempts.', t.disconnects);
  return `${out.join('\n')}\n`;
}

// Prometheus label values escape backslash, double quote and newline.
function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (ch) => (ch === '\n' ? '\\n' : `\\${ch}`));
}

function describeSource(c: AgentConfig): string {
  return c.source.kind === 'live' ? `${c.source.device} filter ${JSON.stringify(c.source.filter)}` : `replay ${c.source.path}`;
}

/** Reads the status of the agent listening on `socketPath`. */
export function readAgentStatus(socketPath: string, timeoutMs = 3000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(socketPath);
    const t = setTimeout(() => {
      s.destroy();
      reject(new DbtapError(AgentErrorCodes.CONNECT, `no answer from the agent status socket ${socketPath}`));
    }, timeoutMs);
    s.on('data', (c) => chunks.push(c));
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(t);
      reject(new DbtapError(AgentErrorCodes.CONNECT, `cannot reach the agent status socket ${socketPath}: ${err.code ?? err.message} (is the agent running?)`));
    });
    s.on('end', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AgentStatus);
      } catch (err) {
        reject(new DbtapError(AgentErrorCodes.PROTOCOL, `bad status from ${socketPath}: ${(err as Error).message}`));
      }
    });
  });
}

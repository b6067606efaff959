import type { CloseReason, Direction, Endpoint } from '../event.js';
import { ipToString } from '../packet/address.js';
import type { DecodedPacket } from '../packet/types.js';
import { TcpFlags } from '../packet/types.js';
import type { Timestamp } from '../time.js';
import { TcpStream } from './stream.js';
import type { StreamCounters } from './stream.js';

/** One TCP connection, both directions. */
export interface Flow<T> {
  /** Stable, readable id: `client>server#n`. */
  readonly id: string;
  /** The connecting side. */
  readonly client: Endpoint;
  /** The listening (audited) side. */
  readonly server: Endpoint;
  /** True when the capture did not see the connection's SYN. */
  readonly midStream: boolean;
  /** First packet's timestamp. */
  readonly firstTs: Timestamp;
  /** Last packet's timestamp. */
  lastTs: Timestamp;
  /** Packets seen, by direction (index = {@link Direction}). */
  readonly packets: [number, number];
  /** Per-direction reassembly counters (index = {@link Direction}). */
  readonly streams: readonly [StreamCounters, StreamCounters];
  /** Free slot for the owner (e.g. the protocol session). */
  user: T | undefined;
}

/** Receives a flow's life: the decoder contract of the design, per connection. */
export interface FlowHandler<T> {
  /** A new connection was seen. */
  open(flow: Flow<T>, ts: Timestamp): void;
  /** In-order bytes in one direction (a view, valid during the call). */
  data(flow: Flow<T>, dir: Direction, bytes: Uint8Array, ts: Timestamp): void;
  /** Bytes that will never be seen in one direction. */
  gap(flow: Flow<T>, dir: Direction, nbytes: number, ts: Timestamp): void;
  /** The connection ended (always called once per opened flow). */
  close(flow: Flow<T>, reason: CloseReason, ts: Timestamp): void;
}

/** Bounds and policies of a {@link FlowTable}. */
export interface FlowTableOptions {
  /** A flow with no packet for this long is closed with reason `timeout` (µs). */
  idleTimeoutUs: number;
  /** Flows tracked at once; beyond this the least recently active is evicted. */
  maxFlows: number;
  /** Out-of-order bytes held by one direction before a hole is given up as a gap. */
  maxStreamBufferBytes: number;
  /** Out-of-order bytes held by all flows; beyond this the least recently active flows are evicted. */
  maxBufferedBytes: number;
  /** After FIN/RST, later packets of the same connection are absorbed for this long (µs). */
  lingerUs: number;
  /**
   * Says whether a port is a server port, to orient connections whose SYN
   * was not captured. Without it (or when neither port matches) the lower
   * port is taken as the server.
   */
  isServerPort?: (port: number) => boolean;
}

/** Defaults for {@link FlowTableOptions}. */
export const defaultFlowTableOptions: Readonly<FlowTableOptions> = Object.freeze({
  idleTimeoutUs: 600_000_000,
  maxFlows: 100_000,
  maxStreamBufferBytes: 4 << 20,
  maxBufferedBytes: 256 << 20,
  lingerUs: 5_000_000,
});

/** Counters of a {@link FlowTable}. */
export interface FlowTableStats {
  /** TCP packets processed. */
  packets: number;
  /** Packets that were not TCP (or not decodable) and were ignored. */
  ignored: number;
  /** Flows opened. */
  flows: number;
  /** Flows open now. */
  active: number;
  /** Flows closed, by reason. */
  closedFin: number;
  closedRst: number;
  timeouts: number;
  /** Flows evicted to honour maxFlows or maxBufferedBytes. */
  evictions: number;
  /** Flows picked up without their SYN. */
  midStream: number;
  /** Payload bytes delivered, all flows. */
  bytesDelivered: number;
  /** Gap bytes reported, all flows. */
  gapBytes: number;
  /** Gaps reported, all flows. */
  gaps: number;
  /** Out-of-order bytes held now, all flows. */
  bufferedBytes: number;
}

class FlowState<T> implements Flow<T> {
  user: T | undefined = undefined;
  lastTs: Timestamp;
  readonly packets: [number, number] = [0, 0];
  readonly streams: readonly [StreamCounters, StreamCounters];
  readonly tcp: [TcpStream, TcpStream];
  closed = false;
  closedAt = 0;

  constructor(
    readonly id: string,
    readonly key: string,
    readonly clientKey: string,
    readonly client: Endpoint,
    readonly server: Endpoint,
    readonly midStream: boolean,
    readonly firstTs: Timestamp,
    table: FlowTable<T>,
    handler: FlowHandler<T>,
    maxPending: number,
    account: (delta: number) => void,
  ) {
    this.lastTs = firstTs;
    const mk = (dir: Direction): TcpStream =>
      new TcpStream(
        {
          data: (bytes, ts) => {
            table.stats.bytesDelivered += bytes.length;
            handler.data(this, dir, bytes, ts);
          },
          gap: (n, ts) => {
            table.stats.gapBytes += n;
            table.stats.gaps++;
            handler.gap(this, dir, n, ts);
          },
        },
        maxPending,
        account,
      );
    this.tcp = [mk(0), mk(1)];
    this.streams = [this.tcp[0].counters, this.tcp[1].counters];
  }
}

/** Map key of one endpoint; IPv4 as one number, which is much cheaper than text (see bench/reassembly). */
function endpointKey(ip: Uint8Array, port: number): string {
  if (ip.length === 4) return `${((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0}|${port}`;
  return `${ipToString(ip)}|${port}`;
}

/**
 * Tracks TCP connections (both directions of a 5-tuple are one flow),
 * reassembles each direction with a {@link TcpStream}, and reports each
 * flow's life to a {@link FlowHandler}. Bounded by flow count and held
 * bytes (least recently active flows are evicted and counted), flows idle
 * longer than the timeout are closed. Time is the packets' time, so a
 * capture file replays exactly as it happened.
 */
export class FlowTable<T = unknown> {
  /** Counters since construction. */
  readonly stats: FlowTableStats = {
    packets: 0, ignored: 0, flows: 0, active: 0, closedFin: 0, closedRst: 0, timeouts: 0,
    evictions: 0, midStream: 0, bytesDelivered: 0, gapBytes: 0, gaps: 0, bufferedBytes: 0,
  };
  private readonly options: FlowTableOptions;
  // Insertion order is activity order: a flow is re-inserted on every packet,
  // so the first entry is always the least recently active.
  private readonly flows = new Map<string, FlowState<T>>();
  private readonly lingering = new Map<string, FlowState<T>>();
  private lastExpiry = -Infinity;
  private counter = 0;
  private readonly account = (delta: number): void => {
    this.stats.bufferedBytes += delta;
  };

  /**
   * @param handler Receives every flow's open, data, gaps and close.
   * @param options Bounds (defaults: {@link defaultFlowTableOptions}).
   */
  constructor(
    private readonly handler: FlowHandler<T>,
    options: Partial<FlowTableOptions> = {},
  ) {
    this.options = { ...defaultFlowTableOptions, ...options };
  }

  /** Flows open now. */
  get size(): number {
    return this.flows.size;
  }

  /** Open flows, least recently active first. */
  activeFlows(): IterableIterator<Flow<T>> {
    return this.flows.values();
  }

  /** Feeds one decoded packet. Non-TCP packets are counted and ignored. Never throws from bad input. */
  process(pkt: DecodedPacket): void {
    const tcp = pkt.tcp;
    if (!tcp || (pkt.status !== 'ok' && pkt.status !== 'truncated')) {
      this.stats.ignored++;
      return;
    }
    this.stats.packets++;
    const ts = pkt.ts;
    if (ts - this.lastExpiry >= 1_000_000) this.expire(ts);
    const srcKey = endpointKey(pkt.srcIp, tcp.srcPort);
    const dstKey = endpointKey(pkt.dstIp, tcp.dstPort);
    const key = srcKey < dstKey ? `${srcKey}>${dstKey}` : `${dstKey}>${srcKey}`;
    const flags = tcp.flags;
    const isSyn = (flags & TcpFlags.SYN) !== 0;
    const isRst = (flags & TcpFlags.RST) !== 0;
    const isFin = (flags & TcpFlags.FIN) !== 0;

    let flow = this.flows.get(key);
    if (!flow) {
      const old = this.lingering.get(key);
      if (old) {
        // A fresh SYN on a closed connection's tuple is a new connection (port reuse).
        if (!(isSyn && !(flags & TcpFlags.ACK))) return;
        this.lingering.delete(key);
      }
      // Only a SYN or data opens a flow: stray ACKs, FINs and RSTs of unseen connections do not.
      const len = pkt.payload.length + pkt.missingBytes;
      if (!isSyn && len === 0) return;
      flow = this.open(pkt, key, srcKey, dstKey, isSyn, (flags & TcpFlags.ACK) !== 0);
    } else {
      // LRU order: move to the end.
      this.flows.delete(key);
      this.flows.set(key, flow);
    }
    flow.lastTs = ts;
    const dir: Direction = srcKey === flow.clientKey ? 0 : 1;
    flow.packets[dir]++;
    const stream = flow.tcp[dir];
    let seq = tcp.seq;
    if (isSyn) {
      stream.syn(seq);
      seq = (seq + 1) >>> 0;
    }
    if (pkt.payload.length > 0 || pkt.missingBytes > 0) stream.segment(seq, pkt.payload, pkt.missingBytes, ts);
    if (isFin) stream.fin(seq, pkt.payload.length + pkt.missingBytes);
    if ((flags & TcpFlags.ACK) !== 0) flow.tcp[dir === 0 ? 1 : 0].acked(tcp.ack, ts);
    if (isRst) {
      this.close(flow, 'rst', ts);
      this.stats.closedRst++;
      return;
    }
    if (flow.tcp[0].finished && flow.tcp[1].finished) {
      this.close(flow, 'fin', ts);
      this.stats.closedFin++;
      return;
    }
    if (this.stats.bufferedBytes > this.options.maxBufferedBytes) this.evictForMemory(ts);
  }

  /** Closes flows idle since before `now - idleTimeout`, and forgets lingering closed ones. */
  expire(now: Timestamp): void {
    this.lastExpiry = now;
    const { idleTimeoutUs, lingerUs } = this.options;
    for (const flow of this.flows.values()) {
      if (now - flow.lastTs <= idleTimeoutUs) break;
      this.close(flow, 'timeout', now);
      this.stats.timeouts++;
    }
    for (const [key, flow] of this.lingering) {
      if (now - flow.closedAt <= lingerUs) break;
      this.lingering.delete(key);
    }
  }

  /** Closes every open flow (end of capture, shutdown). */
  flush(ts: Timestamp, reason: CloseReason = 'end-of-capture'): void {
    for (const flow of [...this.flows.values()]) this.close(flow, reason, ts);
    this.lingering.clear();
  }

  private open(pkt: DecodedPacket, key: string, srcKey: string, dstKey: string, isSyn: boolean, hasAck: boolean): FlowState<T> {
    const tcp = pkt.tcp!;
    // Orientation: SYN alone comes from the client, SYN+ACK from the server;
    // otherwise a known server port decides, then the lower port.
    let srcIsClient: boolean;
    let midStream = false;
    if (isSyn) srcIsClient = !hasAck;
    else {
      midStream = true;
      const isServer = this.options.isServerPort;
      const dstServer = isServer?.(tcp.dstPort) ?? false;
      const srcServer = isServer?.(tcp.srcPort) ?? false;
      if (dstServer !== srcServer) srcIsClient = dstServer;
      else srcIsClient = tcp.srcPort > tcp.dstPort || (tcp.srcPort === tcp.dstPort && srcKey > dstKey);
    }
    const src: Endpoint = { ip: ipToString(pkt.srcIp), port: tcp.srcPort };
    const dst: Endpoint = { ip: ipToString(pkt.dstIp), port: tcp.dstPort };
    const client = srcIsClient ? src : dst;
    const server = srcIsClient ? dst : src;
    const n = ++this.counter;
    const fmt = (e: Endpoint): string => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`);
    const id = `${fmt(client)}>${fmt(server)}#${n}`;
    if (this.flows.size >= this.options.maxFlows) {
      const oldest = this.flows.values().next().value;
      if (oldest) this.evict(oldest, pkt.ts);
    }
    const flow = new FlowState<T>(
      id, key, srcIsClient ? srcKey : dstKey, client, server, midStream, pkt.ts,
      this, this.handler, this.options.maxStreamBufferBytes, this.account,
    );
    this.flows.set(key, flow);
    this.stats.flows++;
    this.stats.active++;
    if (midStream) this.stats.midStream++;
    this.handler.open(flow, pkt.ts);
    return flow;
  }

  private evictForMemory(ts: Timestamp): void {
    for (const flow of [...this.flows.values()]) {
      if (this.stats.bufferedBytes <= this.options.maxBufferedBytes) return;
      this.evict(flow, ts);
    }
  }

  private evict(flow: FlowState<T>, ts: Timestamp): void {
    // Held out-of-order data is delivered with its holes reported as gaps: no byte goes unaccounted.
    this.close(flow, 'evicted', ts);
    this.stats.evictions++;
  }

  private close(flow: FlowState<T>, reason: CloseReason, ts: Timestamp): void {
    if (flow.closed) return;
    flow.closed = true;
    flow.closedAt = ts;
    this.flows.delete(flow.key);
    this.stats.active--;
    // Whatever waits behind a hole is delivered now, the hole reported as a gap.
    flow.tcp[0].flush(ts);
    flow.tcp[1].flush(ts);
    this.handler.close(flow, reason, ts);
    if (reason === 'fin' || reason === 'rst') this.lingering.set(flow.key, flow);
  }
}

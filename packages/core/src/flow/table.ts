import type { CloseReason, Direction, Endpoint } from '../event.js';
import { ipToString } from '../packet/address.js';
import type { DecodedPacket } from '../packet/types.js';
import { TcpFlags } from '../packet/types.js';
import type { Timestamp } from '../time.js';
import { TcpStream } from './stream.js';
import { tupleHash } from './hash.js';
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
  // Intrusive links: in the active list (least recently active first) while
  // open, in the lingering list (oldest close first) once closed by FIN/RST.
  prev: FlowState<T> | undefined = undefined;
  next: FlowState<T> | undefined = undefined;
  /** Next flow in the same hash bucket. */
  chain: FlowState<T> | undefined = undefined;
  /** Still in the table's buckets (open, or lingering after FIN/RST). */
  indexed = true;

  constructor(
    readonly id: string,
    /** Bucket of the tuple ({@link tupleHash}). */
    readonly hash: number,
    /** The tuple, oriented: address keys ({@link ipKey}) and ports. */
    readonly clientIp: number | string,
    readonly clientPort: number,
    readonly serverIp: number | string,
    readonly serverPort: number,
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

/** A doubly linked list threaded through the flows' own links: O(1) append, unlink and move-to-end, nothing allocated. */
class FlowList<T> {
  head: FlowState<T> | undefined = undefined;
  tail: FlowState<T> | undefined = undefined;

  push(f: FlowState<T>): void {
    f.next = undefined;
    f.prev = this.tail;
    if (this.tail) this.tail.next = f;
    else this.head = f;
    this.tail = f;
  }

  unlink(f: FlowState<T>): void {
    if (f.prev) f.prev.next = f.next;
    else this.head = f.next;
    if (f.next) f.next.prev = f.prev;
    else this.tail = f.prev;
    f.prev = undefined;
    f.next = undefined;
  }

  /** Moves `f`, which is in the list, to the end. */
  touch(f: FlowState<T>): void {
    if (this.tail === f) return;
    this.unlink(f);
    this.push(f);
  }

  clear(): void {
    this.head = undefined;
    this.tail = undefined;
  }

  /** Head first; the flow handed out may be unlinked before the next step. */
  *[Symbol.iterator](): IterableIterator<FlowState<T>> {
    for (let f = this.head; f !== undefined; ) {
      const next = f.next;
      yield f;
      f = next;
    }
  }
}

/** An address as a key compared with `===`: IPv4 as its unsigned 32-bit number, IPv6 as text. */
function ipKey(ip: Uint8Array): number | string {
  if (ip.length === 4) return ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0;
  return ipToString(ip);
}

/** Text of one endpoint; orders the two sides of a connection whose ports are equal. */
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
  // Open and lingering flows by tuple hash. A packet computes one small
  // integer and walks a chain that is almost always one flow long, instead
  // of building three strings; activity order is kept by moving the flow to
  // the end of an intrusive list (the Map is not re-inserted per packet).
  private readonly buckets = new Map<number, FlowState<T>>();
  /** Open flows, least recently active first. */
  private readonly active = new FlowList<T>();
  /** Flows closed by FIN/RST, oldest close first. */
  private readonly lingering = new FlowList<T>();
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
    return this.stats.active;
  }

  /** Open flows, least recently active first. */
  activeFlows(): IterableIterator<Flow<T>> {
    return this.active[Symbol.iterator]();
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
    const srcPort = tcp.srcPort;
    const dstPort = tcp.dstPort;
    const srcIp = ipKey(pkt.srcIp);
    const dstIp = ipKey(pkt.dstIp);
    const hash = tupleHash(pkt.srcIp, srcPort, pkt.dstIp, dstPort);
    const flags = tcp.flags;
    const isSyn = (flags & TcpFlags.SYN) !== 0;
    const isRst = (flags & TcpFlags.RST) !== 0;
    const isFin = (flags & TcpFlags.FIN) !== 0;

    let dir: Direction = 0;
    let flow = this.buckets.get(hash);
    for (; flow !== undefined; flow = flow.chain) {
      if (flow.clientPort === srcPort && flow.serverPort === dstPort && flow.clientIp === srcIp && flow.serverIp === dstIp) break;
      if (flow.clientPort === dstPort && flow.serverPort === srcPort && flow.clientIp === dstIp && flow.serverIp === srcIp) {
        dir = 1;
        break;
      }
    }
    if (flow === undefined || flow.closed) {
      if (flow !== undefined) {
        // A lingering closed connection; a fresh SYN on its tuple is a new connection (port reuse).
        if (!(isSyn && !(flags & TcpFlags.ACK))) return;
        this.forget(flow);
      }
      // Only a SYN or data opens a flow: stray ACKs, FINs and RSTs of unseen connections do not.
      const len = pkt.payload.length + pkt.missingBytes;
      if (!isSyn && len === 0) return;
      flow = this.open(pkt, hash, srcIp, dstIp, isSyn, (flags & TcpFlags.ACK) !== 0);
      dir = flow.clientPort === srcPort && flow.clientIp === srcIp ? 0 : 1;
    } else {
      this.active.touch(flow);
    }
    flow.lastTs = ts;
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
    for (const flow of this.active) {
      if (now - flow.lastTs <= idleTimeoutUs) break;
      this.close(flow, 'timeout', now);
      this.stats.timeouts++;
    }
    for (const flow of this.lingering) {
      if (now - flow.closedAt <= lingerUs) break;
      this.forget(flow);
    }
  }

  /** Closes every open flow (end of capture, shutdown). */
  flush(ts: Timestamp, reason: CloseReason = 'end-of-capture'): void {
    for (const flow of this.active) this.close(flow, reason, ts);
    for (const flow of this.lingering) this.forget(flow);
  }

  private open(pkt: DecodedPacket, hash: number, srcIp: number | string, dstIp: number | string, isSyn: boolean, hasAck: boolean): FlowState<T> {
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
      else srcIsClient = tcp.srcPort > tcp.dstPort || (tcp.srcPort === tcp.dstPort && endpointKey(pkt.srcIp, tcp.srcPort) > endpointKey(pkt.dstIp, tcp.dstPort));
    }
    const src: Endpoint = { ip: ipToString(pkt.srcIp), port: tcp.srcPort };
    const dst: Endpoint = { ip: ipToString(pkt.dstIp), port: tcp.dstPort };
    const client = srcIsClient ? src : dst;
    const server = srcIsClient ? dst : src;
    const n = ++this.counter;
    const fmt = (e: Endpoint): string => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`);
    const id = `${fmt(client)}>${fmt(server)}#${n}`;
    if (this.stats.active >= this.options.maxFlows) {
      const oldest = this.active.head;
      if (oldest) this.evict(oldest, pkt.ts);
    }
    const flow = new FlowState<T>(
      id, hash,
      srcIsClient ? srcIp : dstIp, client.port, srcIsClient ? dstIp : srcIp, server.port,
      client, server, midStream, pkt.ts,
      this, this.handler, this.options.maxStreamBufferBytes, this.account,
    );
    flow.chain = this.buckets.get(hash);
    this.buckets.set(hash, flow);
    this.active.push(flow);
    this.stats.flows++;
    this.stats.active++;
    if (midStream) this.stats.midStream++;
    this.handler.open(flow, pkt.ts);
    return flow;
  }

  private evictForMemory(ts: Timestamp): void {
    for (const flow of this.active) {
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
    this.active.unlink(flow);
    this.stats.active--;
    // Whatever waits behind a hole is delivered now, the hole reported as a gap.
    flow.tcp[0].flush(ts);
    flow.tcp[1].flush(ts);
    this.handler.close(flow, reason, ts);
    if (reason === 'fin' || reason === 'rst') this.lingering.push(flow);
    else this.unindex(flow);
  }

  /** Drops a lingering closed flow: later packets of its tuple are a new connection. */
  private forget(flow: FlowState<T>): void {
    this.lingering.unlink(flow);
    this.unindex(flow);
  }

  private unindex(flow: FlowState<T>): void {
    if (!flow.indexed) return;
    flow.indexed = false;
    const head = this.buckets.get(flow.hash);
    if (head === flow) {
      if (flow.chain === undefined) this.buckets.delete(flow.hash);
      else this.buckets.set(flow.hash, flow.chain);
    } else {
      for (let f = head; f !== undefined; f = f.chain) {
        if (f.chain === flow) {
          f.chain = flow.chain;
          break;
        }
      }
    }
    flow.chain = undefined;
  }
}

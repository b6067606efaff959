import {
  type Direction,
  PacketDecoder,
  FlowTable,
  type AuditEvent,
  type CloseReason,
  type Flow,
  type FlowHandler,
  type FlowTableOptions,
  type Frame,
  type Timestamp,
} from '@dbtap/core';
import {
  FlowDetector,
  createOpaqueSession,
  defaultDetectionLimits,
  defaultSessionOptions,
  newSessionStats,
  type DetectionLimits,
  type ProtocolDecoder,
  type ProtocolRegistry,
  type ProtocolSession,
  type SessionContext,
  type SessionOptions,
  type SessionStats,
} from '@dbtap/protocols';
import type { AuditObjectTable } from './objects.js';
import type { WorkerPool } from './workers.js';

/** Options of an {@link AuditPipeline}. */
export interface PipelineOptions {
  /** The decoders flows may use (detection picks among them). */
  registry: ProtocolRegistry;
  /**
   * Server ports to audit, mapped to a protocol name, or `undefined` to use
   * the registry's default ports. A port listed here marks its side of a
   * connection as the server even when the capture missed the SYN, and its
   * protocol is the fallback when content detection is undecided.
   */
  ports?: ReadonlyMap<number, string | undefined>;
  /** Record-shaping options passed to every session. */
  session?: Partial<SessionOptions>;
  /** Flow table limits (idle timeout, memory cap). */
  flows?: Partial<FlowTableOptions>;
  /** Detection buffering limits. */
  detection?: Partial<DetectionLimits>;
  /**
   * Audit objects: a connection to an object's address and port is decoded
   * with the object's protocol (no detection), its text charset applies, and
   * its records carry the object's id; a disabled object's traffic is
   * ignored. Swap with {@link AuditPipeline.setObjects}.
   */
  objects?: AuditObjectTable;
  /**
   * Put before every flow id (and so every record id) this pipeline makes,
   * e.g. the agent and its instance: flow numbering restarts with each
   * pipeline, and two sources may see the same addresses and ports.
   */
  flowIdPrefix?: string;
  /** Receives every audit record, in the order sessions produce them. */
  onEvent(event: AuditEvent): void;
  /**
   * Told the id of every flow as it opens, before its first record (a
   * worker reports openings so flow numbers can follow the order of the
   * whole capture, see {@link WorkerPool}).
   */
  onFlowOpen?: (flowId: string) => void;
}

/** Counters of an {@link AuditPipeline}. */
export interface PipelineStats {
  /** Frames handed to the pipeline. */
  frames: number;
  /** Frames whose headers were cut by the capture (payload partly missing). */
  truncatedFrames: number;
  /** Frames with inconsistent headers. */
  malformedFrames: number;
  /** Frames of protocols dbtap does not audit (ARP, UDP, ...). */
  otherFrames: number;
  /** TCP connections seen. */
  flows: number;
  /** Connections decoded by a database protocol. */
  decodedFlows: number;
  /** Connections whose protocol could not be determined. */
  undetectedFlows: number;
  /** Connections to disabled audit objects (not decoded). */
  disabledFlows: number;
  /** Connections per protocol name. */
  flowsByProtocol: Record<string, number>;
  /** Audit records emitted. */
  events: number;
  /** Records with status `error`. */
  errorEvents: number;
  /** Gaps reported by reassembly. */
  gaps: number;
  /** Bytes missing in those gaps. */
  gapBytes: number;
  /** Summed counters of every session (closed and open). */
  sessions: SessionStats;
}

interface FlowState {
  detector: FlowDetector | undefined;
  session: ProtocolSession | undefined;
  ignored: boolean;
  objectId: string | undefined;
  charset: string | undefined;
  /** The audit object's database type, for the records of a flow no decoder reads. */
  dbType: string | undefined;
}

const sessionStatKeys = Object.keys(newSessionStats()) as (keyof SessionStats)[];

/**
 * Frames in, audit records out: link/IP/TCP decoding, defragmentation, the
 * flow table and reassembly (all `@dbtap/core`), protocol detection and the
 * protocol sessions (`@dbtap/protocols`). One instance is single-threaded
 * and keeps every flow isolated: a malformed or undecodable flow never
 * disturbs another.
 */
export class AuditPipeline {
  /** Counters; read at any time. */
  readonly stats: PipelineStats;
  private readonly packets: PacketDecoder;
  private readonly flows: FlowTable<FlowState>;
  private readonly sessionOptions: SessionOptions;
  private readonly detection: DetectionLimits;
  private readonly live = new Set<FlowState>();
  private lastTs: Timestamp = 0;
  private objects: AuditObjectTable | undefined;
  private ports: Set<number>;

  constructor(private readonly options: PipelineOptions) {
    this.sessionOptions = { ...defaultSessionOptions, ...options.session };
    this.detection = { ...defaultDetectionLimits, ...options.detection };
    this.stats = {
      frames: 0,
      truncatedFrames: 0,
      malformedFrames: 0,
      otherFrames: 0,
      flows: 0,
      decodedFlows: 0,
      undetectedFlows: 0,
      disabledFlows: 0,
      flowsByProtocol: {},
      events: 0,
      errorEvents: 0,
      gaps: 0,
      gapBytes: 0,
      sessions: newSessionStats(),
    };
    this.packets = new PacketDecoder();
    this.objects = options.objects;
    this.ports = this.serverPorts();
    const handler: FlowHandler<FlowState> = {
      open: (flow) => this.open(flow),
      data: (flow, dir, bytes, ts) => this.data(flow, dir, bytes, ts),
      gap: (flow, dir, nbytes, ts) => this.gap(flow, dir, nbytes, ts),
      close: (flow, reason, ts) => this.close(flow, reason, ts),
    };
    this.flows = new FlowTable<FlowState>(handler, { ...options.flows, isServerPort: (port) => this.ports.has(port) });
  }

  /**
   * Replaces the audit objects. Connections opened from now on follow the
   * new table; open ones keep the object, protocol and charset they started with.
   */
  setObjects(objects: AuditObjectTable | undefined): void {
    this.objects = objects;
    this.ports = this.serverPorts();
  }

  private serverPorts(): Set<number> {
    const ports = new Set<number>();
    if (this.options.ports !== undefined) {
      for (const p of this.options.ports.keys()) ports.add(p);
    } else {
      for (const d of this.options.registry.list()) for (const p of d.defaultPorts) ports.add(p);
    }
    if (this.objects !== undefined) for (const p of this.objects.ports()) ports.add(p);
    return ports;
  }

  private portDecoder(port: number): ProtocolDecoder | undefined {
    const reg = this.options.registry;
    if (this.options.ports !== undefined) {
      if (!this.options.ports.has(port)) return undefined;
      const name = this.options.ports.get(port);
      return name !== undefined ? reg.get(name) : reg.forPort(port);
    }
    return reg.forPort(port);
  }

  /** Feeds one captured frame. */
  push(frame: Frame): void {
    this.stats.frames++;
    this.lastTs = frame.ts;
    const pkt = this.packets.decode(frame);
    switch (pkt.status) {
      case 'ok':
        break;
      case 'truncated':
        this.stats.truncatedFrames++;
        break;
      case 'malformed':
        this.stats.malformedFrames++;
        return;
      case 'fragment':
        return;
      default:
        this.stats.otherFrames++;
        return;
    }
    if (pkt.tcp === undefined) {
      this.stats.otherFrames++;
      return;
    }
    this.flows.process(pkt);
  }

  /** Counters of the packet layer (fragments, truncation) and the flow table. */
  layerStats(): { packets: PacketDecoder['stats']; flows: FlowTable<FlowState>['stats'] } {
    return { packets: this.packets.stats, flows: this.flows.stats };
  }

  /** Ends the capture: closes every open flow, flushing pending requests as records. */
  finish(ts: Timestamp = this.lastTs): PipelineStats {
    this.flows.flush(ts);
    return this.snapshot();
  }

  /** Advances capture time without a frame (live sources): expires idle flows. */
  tick(ts: Timestamp): void {
    this.flows.expire(ts);
  }

  /** A copy of the counters with the session counters of still-open flows added. */
  snapshot(): PipelineStats {
    const sessions = { ...this.stats.sessions };
    for (const st of this.live) {
      if (st.session !== undefined) addStats(sessions, st.session.stats);
    }
    return { ...this.stats, flowsByProtocol: { ...this.stats.flowsByProtocol }, sessions };
  }

  private open(flow: Flow<FlowState>): void {
    this.stats.flows++;
    const route = this.objects?.resolve(flow.server.ip, flow.server.port);
    const state: FlowState = { detector: undefined, session: undefined, ignored: false, objectId: route?.object.id, charset: route?.object.charset, dbType: route?.object.dbType };
    flow.user = state;
    this.live.add(state);
    this.options.onFlowOpen?.(this.flowIdOf(flow));
    if (route !== undefined && !route.enabled) {
      state.ignored = true;
      this.stats.disabledFlows++;
      return;
    }
    const decoder = route !== undefined ? this.options.registry.get(route.object.dbType) : undefined;
    if (decoder !== undefined) {
      // the object says what the server speaks: no detection needed
      this.startSession(flow, state, decoder);
      return;
    }
    state.detector = new FlowDetector(this.options.registry, flow.server.port, this.portDecoder(flow.server.port), this.detection);
  }

  private data(flow: Flow<FlowState>, dir: Direction, bytes: Uint8Array, ts: Timestamp): void {
    const st = flow.user;
    if (st === undefined || st.ignored) return;
    if (st.session !== undefined) {
      st.session.data(dir, bytes, ts);
      return;
    }
    this.settle(flow, st, st.detector!.data(dir, bytes, ts));
  }

  private gap(flow: Flow<FlowState>, dir: Direction, nbytes: number, ts: Timestamp): void {
    this.stats.gaps++;
    this.stats.gapBytes += nbytes;
    const st = flow.user;
    if (st === undefined || st.ignored) return;
    if (st.session !== undefined) {
      st.session.gap(dir, nbytes, ts);
      return;
    }
    this.settle(flow, st, st.detector!.gap(dir, nbytes, ts));
  }

  private close(flow: Flow<FlowState>, reason: CloseReason, ts: Timestamp): void {
    const st = flow.user;
    if (st === undefined) return;
    if (st.session === undefined && !st.ignored && st.detector !== undefined) {
      this.settle(flow, st, st.detector.finish());
    }
    if (st.session !== undefined) {
      st.session.close(reason, ts);
      addStats(this.stats.sessions, st.session.stats);
    }
    this.live.delete(st);
    flow.user = undefined;
  }

  private settle(flow: Flow<FlowState>, st: FlowState, outcome: ReturnType<FlowDetector['data']>): void {
    if (outcome.state === 'pending') return;
    const detector = st.detector!;
    st.detector = undefined;
    const session =
      outcome.state === 'undetected'
        ? this.startOpaque(flow, st)
        : this.startSession(flow, st, outcome.decoder);
    for (const chunk of detector.drain()) {
      if (chunk.kind === 'data') session.data(chunk.dir, chunk.bytes, chunk.ts);
      else session.gap(chunk.dir, chunk.nbytes, chunk.ts);
    }
  }

  private startSession(flow: Flow<FlowState>, st: FlowState, decoder: ProtocolDecoder): ProtocolSession {
    this.stats.decodedFlows++;
    this.stats.flowsByProtocol[decoder.name] = (this.stats.flowsByProtocol[decoder.name] ?? 0) + 1;
    const session = decoder.createSession(this.sessionContext(flow, st));
    st.session = session;
    return session;
  }

  /** No decoder reads this flow: it still gets its connection record (endpoints, timing, bytes, TLS facts). */
  private startOpaque(flow: Flow<FlowState>, st: FlowState): ProtocolSession {
    this.stats.undetectedFlows++;
    const session = createOpaqueSession(this.sessionContext(flow, st), st.dbType ?? 'unknown');
    st.session = session;
    return session;
  }

  private flowIdOf(flow: Flow<FlowState>): string {
    return this.options.flowIdPrefix === undefined ? flow.id : this.options.flowIdPrefix + flow.id;
  }

  private sessionContext(flow: Flow<FlowState>, st: FlowState): SessionContext {
    const objectId = st.objectId;
    return {
      flowId: this.flowIdOf(flow),
      client: flow.client,
      server: flow.server,
      midStream: flow.midStream,
      options: st.charset !== undefined ? { ...this.sessionOptions, charset: st.charset } : this.sessionOptions,
      emit: (event) => {
        if (objectId !== undefined) event.auditObjectId = objectId;
        if (event.kind === 'connection') {
          // Packets are the flow table's to count: sessions see only bytes.
          event.packetsIn = flow.packets[0];
          event.packetsOut = flow.packets[1];
        }
        this.emit(event);
      },
    };
  }

  private emit(event: AuditEvent): void {
    this.stats.events++;
    if (event.status === 'error') this.stats.errorEvents++;
    this.options.onEvent(event);
  }
}

function addStats(into: SessionStats, from: SessionStats): void {
  for (const k of sessionStatKeys) into[k] += from[k];
}

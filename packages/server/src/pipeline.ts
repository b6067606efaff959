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
  decodeState,
  encodeState,
  newSessionStats,
  MAX_SESSION_STATE_BYTES,
  MAX_SOURCE_STATE_BYTES,
  type SessionSnapshot,
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
   * whole capture, see {@link WorkerPool}); `resumed` for a connection that
   * continues a kept session under the id it had ({@link AuditPipeline.resumeSessions}).
   */
  onFlowOpen?: (flowId: string, resumed?: boolean) => void;
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
  /** Sessions continued from the state an earlier process kept ({@link AuditPipeline.resumeSessions}). */
  resumedSessions?: number;
  /** Kept states a session could not use (another version, another protocol); the connection continued mid-session. */
  stateRefused?: number;
  /** Session states left out of {@link AuditPipeline.sessionStates} for their size. */
  stateSkipped?: number;
}

interface FlowState {
  /** `client>server` endpoints: what a restored session is matched by. */
  key: string;
  /** The id its records carry (a restored session keeps the one it had). */
  flowId: string;
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
  // Sessions of an earlier process waiting for their connection's next packet, by endpoints.
  private readonly resumable = new Map<string, FlowSessionState>();
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
      resumedSessions: 0,
      stateRefused: 0,
      stateSkipped: 0,
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

  /**
   * The state of the open connections' sessions (see
   * `@dbtap/protocols` `kit/session-state.ts`), as text to keep with the
   * ingest position: {@link AuditPipeline.resumeSessions} in a later process
   * continues them. A session's snapshot larger than
   * `MAX_SESSION_STATE_BYTES`, and sessions past `MAX_SOURCE_STATE_BYTES` in
   * all, are left out and counted in `stateSkipped`; `undefined` when no
   * session has state.
   */
  sessionStates(): { text: string | undefined; sessions: number; skipped: number } {
    const { flows, skipped } = this.flowStates();
    const joined = joinSessionStates(flows);
    this.stats.stateSkipped = (this.stats.stateSkipped ?? 0) + joined.skipped;
    return { ...joined, skipped: skipped + joined.skipped };
  }

  /**
   * Each open session's state, in the order the connections opened, before
   * the bound on a source (`joinSessionStates` applies it): a worker
   * thread's share of {@link AuditPipeline.sessionStates}. Snapshots larger
   * than `MAX_SESSION_STATE_BYTES` are left out and counted in `stateSkipped`.
   */
  flowStates(): { flows: FlowSessionState[]; skipped: number } {
    const flows: FlowSessionState[] = [];
    let skipped = 0;
    for (const st of this.live) {
      const snap = st.session?.snapshot?.();
      if (snap === undefined) continue;
      const state = encodeState(snap);
      if (state.length > MAX_SESSION_STATE_BYTES) {
        skipped++;
        continue;
      }
      flows.push({ key: st.key, flowId: st.flowId, objectId: st.objectId, charset: st.charset, state });
    }
    this.stats.stateSkipped = (this.stats.stateSkipped ?? 0) + skipped;
    return { flows, skipped };
  }

  /**
   * Takes the text of {@link AuditPipeline.sessionStates} of an earlier
   * process: the next packet of each of those connections (seen mid-stream
   * by this pipeline) resumes its session with its identity, prepared
   * statements and record numbering. Returns how many sessions wait; text
   * that is not such a state is ignored (0).
   */
  resumeSessions(text: string): number {
    const flows = parseSessionStates(text);
    if (flows === undefined) return 0;
    for (const f of flows) this.resumable.set(f.key, f);
    return this.resumable.size;
  }

  // A connection of a kept state: its decoder continues from the snapshot, under the flow id it had.
  private resume(flow: Flow<FlowState>, st: FlowState): boolean {
    const saved = this.resumable.get(st.key);
    if (saved === undefined) return false;
    this.resumable.delete(st.key);
    let snap: SessionSnapshot;
    try {
      snap = decodeState(saved.state) as SessionSnapshot;
    } catch {
      return false;
    }
    const decoder = typeof snap?.protocol === 'string' ? this.options.registry.get(snap.protocol) : undefined;
    if (decoder === undefined) return false;
    st.flowId = saved.flowId;
    st.objectId = saved.objectId ?? st.objectId;
    st.charset = saved.charset ?? st.charset;
    const session = this.startSession(flow, st, decoder);
    if (session.restore?.(snap) !== true) {
      this.stats.stateRefused = (this.stats.stateRefused ?? 0) + 1;
      return true;
    }
    this.stats.resumedSessions = (this.stats.resumedSessions ?? 0) + 1;
    return true;
  }

  private open(flow: Flow<FlowState>): void {
    this.stats.flows++;
    const route = this.objects?.resolve(flow.server.ip, flow.server.port);
    const key = endpointsKey(flow);
    const flowId = this.options.flowIdPrefix === undefined ? flow.id : this.options.flowIdPrefix + flow.id;
    const state: FlowState = { key, flowId, detector: undefined, session: undefined, ignored: false, objectId: route?.object.id, charset: route?.object.charset, dbType: route?.object.dbType };
    flow.user = state;
    this.live.add(state);
    if (flow.midStream && this.resumable.size > 0 && this.resume(flow, state)) {
      this.options.onFlowOpen?.(state.flowId, true);
      return;
    }
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
      flowId: st.flowId,
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

/**
 * Kept session states (of {@link AuditPipeline.flowStates}, in order) as
 * the text {@link AuditPipeline.resumeSessions} reads: sessions past
 * `MAX_SOURCE_STATE_BYTES` in all are left out (`skipped`); `text` is
 * `undefined` when none is kept.
 */
export function joinSessionStates(all: readonly FlowSessionState[]): { text: string | undefined; sessions: number; skipped: number } {
  const flows: FlowSessionState[] = [];
  let bytes = 0;
  let skipped = 0;
  for (const f of all) {
    if (bytes + f.state.length > MAX_SOURCE_STATE_BYTES) {
      skipped++;
      continue;
    }
    bytes += f.state.length;
    flows.push(f);
  }
  return { text: flows.length > 0 ? JSON.stringify({ v: 1, flows }) : undefined, sessions: flows.length, skipped };
}

/**
 * The kept sessions of a {@link AuditPipeline.sessionStates} text, or
 * `undefined` when the text is not such a state.
 */
export function parseSessionStates(text: string): FlowSessionState[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const flows = (doc as { v?: unknown; flows?: unknown } | null)?.flows;
  if ((doc as { v?: unknown } | null)?.v !== 1 || !Array.isArray(flows)) return undefined;
  return (flows as FlowSessionState[]).filter((f) => f !== null && typeof f === 'object' && typeof f.key === 'string' && typeof f.flowId === 'string' && typeof f.state === 'string');
}

/** One kept session, as {@link AuditPipeline.sessionStates} writes it. */
export interface FlowSessionState {
  /** The connection's endpoints, `clientIp:port>serverIp:port`. */
  key: string;
  /** The id its records carry. */
  flowId: string;
  /** Its audit object. */
  objectId: string | undefined;
  /** Its audit object's text charset. */
  charset: string | undefined;
  /** The session's snapshot, encoded. */
  state: string;
}

function endpointsKey(flow: Flow<unknown>): string {
  return `${flow.client.ip}:${flow.client.port}>${flow.server.ip}:${flow.server.port}`;
}

function addStats(into: SessionStats, from: SessionStats): void {
  for (const k of sessionStatKeys) into[k] += from[k];
}

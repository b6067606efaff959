// Every core: the server's pipelines run in worker threads, one
// AuditPipeline per source in each worker, frames sharded by connection.
//
//   main thread                         worker k (worker.ts)
//   batch of frames --shard by flow-->  AuditPipeline per source: reassembly,
//                                       decode, rules, masking
//   records (renumbered) <--------------  records + the flows it opened
//   store (one writer), then the ack
//
// Flow ids carry a number in the order flows open (`client>server#n`). A
// worker numbers only its own flows, so it reports each opening with the
// index of the frame that opened it, and the main thread renumbers records
// by the order of those frames in the whole stream: ids are those of an
// in-process pipeline fed the same frames.
//
// The workers run the per-record rules (verdicts and stateless alerts); the
// stateful detectors (counts, distinct counts and sums in time windows,
// grouped by client or user) run once, here, over the records of every
// worker merged into the order one pipeline would have produced them (by
// the index of the frame that completed each), before the records are
// stored: one client's connections on several workers are counted
// together, and the alerts are those of an in-process server.
//
// Session state kept with the ingest position (AuditPipeline.sessionStates)
// goes the same way: a batch that asks for it gets each worker's sessions'
// states, renumbered and merged here in the order their connections opened
// under the same bounds; after a restart, each kept session is sent only to
// the worker its endpoints hash to (WorkerPool.resume), and a resumed
// connection is reported as an opening that takes a flow number (as it does
// in one pipeline) while its records keep the id they had.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodePacket, parseIp, DbtapError, defaultDefragOptions, ErrorCodes, type AuditEvent, type ErrorCode, type Frame, type Timestamp } from '@dbtap/core';
import { ServerErrorCodes } from './errors.js';
import { startWorker } from './thread.js';
import { createDefaultRegistry, type SessionOptions } from '@dbtap/protocols';
import { AuditCatalog } from './catalog.js';
import { registryDialects, type RecordMask } from './compose.js';
import { RecordMasker } from './masking/masker.js';
import { loadRuleSelection, RuleRouter } from './rules.js';
import type { RuleGroupDef } from './http/providers.js';
import type { MaskingConfig } from './masking/config.js';
import type { AuditObjectDef } from './objects.js';
import { joinSessionStates, parseSessionStates, type FlowSessionState, type PipelineStats } from './pipeline.js';
import type { RuleSelection } from './rules.js';

/**
 * How a worker builds its pipelines: everything a function of the main
 * thread would otherwise supply, as data (a worker cannot be handed
 * functions). Decoders are the default registry's.
 */
export interface WorkerSetup {
  /** Server ports to audit (detection decides the protocol); default every decoder's default ports. */
  ports?: readonly number[];
  /** Audit objects and rule groups, as in the config (changes follow with {@link WorkerPool.setCatalog}). */
  catalog?: { objects: readonly AuditObjectDef[]; ruleGroups: readonly RuleGroupDef[] };
  /** The rules that judge records; omitted: records are not judged. */
  rules?: RuleSelection;
  /** Masking applied after the rules. */
  masking?: MaskingConfig;
  /** Record-shaping options of every session. */
  session?: Partial<SessionOptions>;
}

/** Most workers a pool (and the `workers` config key) allows. */
export const MAX_WORKERS = 256;

/** Default number of workers: one per core but one (the main thread stores and serves), at least 1. */
export function defaultWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Frames of one worker's share of a batch, packed for transfer. */
export interface PackedFrames {
  /** Per frame: ts, linkType, origLen, interfaceId, byte length, index in the batch. */
  meta: Float64Array;
  /** The frames' bytes, back to back. */
  data: Uint8Array;
}

/** Messages to a worker. */
export type ToWorker =
  | { t: 'batch'; id: number; source: string; prefix: string | undefined; frames: PackedFrames; states?: boolean }
  | { t: 'resume'; source: string; prefix: string | undefined; text: string }
  | { t: 'tick'; id: number; ts: Timestamp; sources?: ReadonlyMap<string, Timestamp> }
  | { t: 'finish'; id: number; source: string }
  | { t: 'catalog'; objects: readonly AuditObjectDef[]; ruleGroups: readonly RuleGroupDef[] };

/** Messages from a worker. */
export type FromWorker =
  | { t: 'ready' }
  | {
      t: 'done';
      id: number;
      /** Records and alerts, masked. */
      records: AuditEvent[];
      /** Per record of a batch: the index of the frame that completed it (empty for a tick or finish). */
      at: number[];
      /** Records the masking changed, as the rules saw them, by their index in `records` (for the detectors). */
      plain: Array<[index: number, record: AuditEvent]>;
      /** Flows opened, with the frame that opened them; `true` third: a kept session resumed under that id. */
      opens: Array<[flowId: string, frameIndex: number, resumed?: true]>;
      stats?: PipelineStats;
      /** A batch with `states`: the worker's open sessions' states ({@link AuditPipeline.flowStates}). */
      states?: FlowSessionState[];
    }
  | { t: 'failed'; id: number; code: ErrorCode; message: string };

const META = 6;

/** Packs frames (with the index each is reported under) into two transferable buffers. */
export function packFrames(routed: readonly Routed[]): PackedFrames {
  let bytes = 0;
  for (const r of routed) bytes += r.frame.data.length;
  const meta = new Float64Array(routed.length * META);
  const data = new Uint8Array(bytes);
  let off = 0;
  for (let k = 0; k < routed.length; k++) {
    const { frame: f, at } = routed[k]!;
    meta.set([f.ts, f.linkType, f.origLen, f.interfaceId ?? 0, f.data.length, at], k * META);
    data.set(f.data, off);
    off += f.data.length;
  }
  return { meta, data };
}

/** The frames of {@link packFrames}, as views into its buffer, with their batch indexes. */
export function unpackFrames(packed: PackedFrames): { frames: Frame[]; indexes: number[] } {
  const { meta, data } = packed;
  const frames: Frame[] = [];
  const indexes: number[] = [];
  let off = 0;
  for (let k = 0; k < meta.length; k += META) {
    const len = meta[k + 4]!;
    const frame: Frame = { ts: meta[k]!, linkType: meta[k + 1]!, data: data.subarray(off, off + len), origLen: meta[k + 2]! };
    if (meta[k + 3]! !== 0) frame.interfaceId = meta[k + 3]!;
    frames.push(frame);
    indexes.push(meta[k + 5]!);
    off += len;
  }
  return { frames, indexes };
}

// FNV-1a over bytes, for an order-independent endpoint pair hash.
function fnv(bytes: Uint8Array, h: number): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
  return h >>> 0;
}

/**
 * The worker (0 .. count-1) a frame belongs to: a hash of its two
 * endpoints (address and port) that is the same in both directions, so
 * every frame of a connection reaches one worker. An IP fragment hashes by
 * the address pair alone (a later fragment has no ports; a
 * {@link WorkerPool} sends the fragments of a TCP datagram to its
 * connection's worker instead), and frames with no TCP/IP go to worker 0,
 * where they are counted.
 */
export function shardOf(frame: Frame, count: number): number {
  if (count <= 1) return 0;
  const pkt = decodePacket(frame);
  if (pkt.ipVersion === 0) return 0;
  if (pkt.tcp !== undefined && pkt.status !== 'fragment') return endpointShard(pkt.srcIp, pkt.tcp.srcPort, pkt.dstIp, pkt.tcp.dstPort, count);
  return endpointShard(pkt.srcIp, -1, pkt.dstIp, -1, count);
}

// The endpoint pair hash of shardOf; a port of -1 hashes the address alone.
function endpointShard(srcIp: Uint8Array, srcPort: number, dstIp: Uint8Array, dstPort: number, count: number): number {
  const a = fnv(srcIp, 2166136261);
  const b = fnv(dstIp, 2166136261);
  let h: number;
  if (srcPort >= 0) {
    const ea = Math.imul(a ^ srcPort, 16777619) >>> 0;
    const eb = Math.imul(b ^ dstPort, 16777619) >>> 0;
    h = (ea ^ eb) + Math.imul(Math.min(ea, eb), 31);
  } else {
    h = (a ^ b) + Math.imul(Math.min(a, b), 31);
  }
  // a final avalanche, so that ports differing in their low bits spread
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return ((h ^ (h >>> 16)) >>> 0) % count;
}

/**
 * The worker of a kept session's connection, from its endpoints key
 * (`clientIp:port>serverIp:port`, see {@link FlowSessionState}): the
 * worker {@link shardOf} gives its frames; 0 for a key that is not one.
 */
export function shardOfKey(key: string, count: number): number {
  if (count <= 1) return 0;
  const ends = key.split('>').map((e) => {
    const colon = e.lastIndexOf(':');
    return { ip: parseIp(e.slice(0, colon)), port: Number(e.slice(colon + 1)) };
  });
  const [a, b] = ends;
  if (ends.length !== 2 || a!.ip === undefined || b!.ip === undefined) return 0;
  return endpointShard(a!.ip, a!.port, b!.ip, b!.port, count);
}

/** A frame routed to a worker, with the index it is reported under (the frame of the batch it belongs to, or that released it). */
export interface Routed {
  frame: Frame;
  at: number;
}

/**
 * Routes the fragments of IP datagrams (per source) to the worker of their
 * connection: the first fragment of a TCP datagram carries its ports, so
 * its datagram's fragments go to the worker {@link shardOf} gives the
 * connection's unfragmented segments; fragments that come before it are
 * held until it arrives. A datagram whose first fragment does not come
 * within the reassembly timeout (or beyond the datagram bound) has its
 * held fragments sent by address pair, where reassembly counts them as it
 * does in process.
 */
export class FragmentRouter {
  private readonly datagrams = new Map<string, { worker: number | undefined; held: Frame[]; firstTs: number }>();

  /** @param count Workers of the pool. */
  constructor(private readonly count: number) {}

  /** Appends `frame` (index `at` of its batch) to the share of its worker. */
  route(frame: Frame, at: number, shares: Routed[][]): void {
    const count = this.count;
    if (count <= 1) return void shares[0]!.push({ frame, at });
    const pkt = decodePacket(frame);
    const frag = pkt.fragment;
    if (pkt.status !== 'fragment' || frag === undefined) return void shares[shardOf(frame, count)]!.push({ frame, at });
    this.expire(pkt.ts, at, shares);
    const key = `${pkt.ipVersion}|${pkt.srcIp.join('.')}|${pkt.dstIp.join('.')}|${frag.proto}|${frag.id}`;
    let dg = this.datagrams.get(key);
    if (dg === undefined) {
      if (this.datagrams.size >= defaultDefragOptions.maxDatagrams) this.release(this.datagrams.keys().next().value!, at, shares);
      this.datagrams.set(key, (dg = { worker: undefined, held: [], firstTs: pkt.ts }));
    }
    if (dg.worker === undefined && frag.offset === 0) {
      const p = pkt.payload;
      dg.worker = frag.proto === 6 && p.length >= 4 ? endpointShard(pkt.srcIp, (p[0]! << 8) | p[1]!, pkt.dstIp, (p[2]! << 8) | p[3]!, count) : endpointShard(pkt.srcIp, -1, pkt.dstIp, -1, count);
      for (const f of dg.held) shares[dg.worker]!.push({ frame: f, at });
      dg.held = [];
    }
    if (dg.worker !== undefined) shares[dg.worker]!.push({ frame, at });
    else dg.held.push(frame);
  }

  // datagrams whose first fragment is older than the reassembly timeout
  private expire(now: number, at: number, shares: Routed[][]): void {
    for (const [key, dg] of this.datagrams) {
      if (now - dg.firstTs <= defaultDefragOptions.timeoutUs) break;
      this.release(key, at, shares);
    }
  }

  private release(key: string, at: number, shares: Routed[][]): void {
    const dg = this.datagrams.get(key)!;
    this.datagrams.delete(key);
    for (const f of dg.held) shares[shardOf(f, this.count)]!.push({ frame: f, at });
  }
}

/** Flows whose renumbering a source keeps (oldest forgotten first); alerts may name records of recent flows. */
const MAX_RENUMBERED_FLOWS = 100_000;

/** Per source: the next flow number, and each worker's flow ids mapped to the whole stream's. */
class SourceNumbering {
  private next = 0;
  private readonly ids: Array<Map<string, string>>;
  // the order flows opened in, by the id their records carry (for the order of kept session states)
  private readonly order = new Map<string, number>();

  constructor(workers: number) {
    this.ids = Array.from({ length: workers }, () => new Map());
  }

  /** Numbers the flows a batch opened, in the order of the frames that opened them. */
  opened(opens: ReadonlyArray<{ worker: number; flowId: string; frame: number; resumed?: true }>): void {
    const sorted = [...opens].sort((x, y) => x.frame - y.frame || x.worker - y.worker);
    for (const o of sorted) {
      const n = ++this.next;
      // a resumed session's records keep the id it had: it takes a number only
      const global = o.resumed === true ? o.flowId : `${o.flowId.slice(0, o.flowId.lastIndexOf('#') + 1)}${n}`;
      if (o.resumed !== true) {
        const map = this.ids[o.worker]!;
        map.set(o.flowId, global);
        if (map.size > MAX_RENUMBERED_FLOWS) map.delete(map.keys().next().value!);
      }
      this.order.set(global, n);
      if (this.order.size > MAX_RENUMBERED_FLOWS) this.order.delete(this.order.keys().next().value!);
    }
  }

  /** Kept session states of the workers, renumbered, in the order their flows opened (as one pipeline lists them). */
  states(perWorker: ReadonlyArray<readonly FlowSessionState[] | undefined>): FlowSessionState[] {
    const all: FlowSessionState[] = [];
    for (let k = 0; k < perWorker.length; k++) {
      const map = this.ids[k]!;
      for (const f of perWorker[k] ?? []) all.push({ ...f, flowId: map.get(f.flowId) ?? f.flowId });
    }
    const rank = (f: FlowSessionState): number => this.order.get(f.flowId) ?? Infinity;
    return all.sort((x, y) => rank(x) - rank(y));
  }

  /** Rewrites the flow ids in a worker's record (its flow, its id, the ids an alert names). */
  renumber(worker: number, record: AuditEvent): void {
    const map = this.ids[worker]!;
    const local = record.flowId;
    const global = map.get(local);
    if (global !== undefined) {
      record.flowId = global;
      if (record.id.startsWith(local)) record.id = global + record.id.slice(local.length);
    }
    const ids = record.alert?.eventIds;
    if (ids !== undefined) (record.alert as { eventIds: readonly string[] }).eventIds = ids.map((id) => renumberId(map, id));
  }

  /** Forgets a worker's flows (it was restarted). */
  reset(worker: number): void {
    this.ids[worker]!.clear();
  }
}

// `prefix client>server#n:seq`: the flow id ends at the ':' after a '#'.
function renumberId(map: ReadonlyMap<string, string>, id: string): string {
  for (let p = id.indexOf('#'); p >= 0; p = id.indexOf('#', p + 1)) {
    const end = id.indexOf(':', p);
    const flow = end < 0 ? id : id.slice(0, end);
    const global = map.get(flow);
    if (global !== undefined) return global + id.slice(flow.length);
  }
  return id;
}

interface Pending {
  resolve(m: FromWorker & { t: 'done' }): void;
  reject(err: Error): void;
}

/** One worker thread and the requests it has not answered. */
class WorkerSlot {
  worker: Worker;
  readonly pending = new Map<number, Pending>();
  /** Settles once the worker has built its pipelines' rules and masking (or failed to start). */
  ready!: Promise<void>;

  constructor(
    private readonly index: number,
    private readonly setup: WorkerSetup,
    private readonly onCrash: (index: number, err: Error) => void,
  ) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = startWorker(this.setup);
    let started!: () => void;
    this.ready = new Promise<void>((resolve) => (started = resolve));
    w.once('exit', () => started());
    w.on('message', (m: FromWorker) => {
      if (m.t === 'ready') return started();
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.t === 'done') p.resolve(m);
      else p.reject(new DbtapError(m.code as ErrorCode, m.message));
    });
    w.on('error', (err) => this.crashed(w, err));
    w.on('exit', (code) => this.crashed(w, new DbtapError(ServerErrorCodes.WORKER_FAILED, `worker ${this.index} exited with code ${code}`)));
    // a worker holds the process only while it has requests to answer
    w.unref();
    return w;
  }

  private crashed(w: Worker, err: Error): void {
    if (w !== this.worker) return;
    const failure = new DbtapError(ServerErrorCodes.WORKER_FAILED, `worker ${this.index} failed: ${err.message}`);
    for (const p of this.pending.values()) p.reject(failure);
    this.pending.clear();
    this.worker = this.spawn();
    this.onCrash(this.index, failure);
  }

  request(id: number, m: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker & { t: 'done' }> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker?.unref();
      };
      this.pending.set(id, {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.worker.ref();
      this.worker.postMessage(m, transfer);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined as unknown as Worker;
    await w.terminate();
  }
}


/**
 * The stateful detectors of a pool's rules, run in the main thread over
 * the records of every worker in stream order, with the catalog's rule
 * groups, masking their alerts as the workers mask records. A record's
 * alerts keep the order of its rules, stateless (from its worker) and
 * detector alerts mixed, as one rule engine gives them.
 */
class DetectorStage {
  private readonly catalog: AuditCatalog;
  private readonly router: RuleRouter;
  private readonly mask: RecordMask | undefined;
  private readonly order: Map<string, number>;

  constructor(setup: WorkerSetup & { rules: RuleSelection }) {
    const ruleSet = loadRuleSelection(setup.rules);
    this.order = new Map(ruleSet.rules.map((r, i) => [r.id, i]));
    const dialectFor = registryDialects(createDefaultRegistry());
    this.catalog = new AuditCatalog({ objects: [...(setup.catalog?.objects ?? [])], ruleGroups: [...(setup.catalog?.ruleGroups ?? [])], ruleFileGroups: ruleSet.groups.keys() });
    this.router = new RuleRouter(ruleSet, this.catalog, { dialectFor, part: 'detectors' });
    this.mask = setup.masking !== undefined ? new RecordMasker(setup.masking, { dialectFor }).mask : undefined;
  }

  /** Follows a catalog change of the server (rule groups rebuild the detectors, as in-process). */
  setCatalog(objects: readonly AuditObjectDef[], ruleGroups: readonly RuleGroupDef[]): void {
    this.catalog.reloadConfig(objects, ruleGroups);
  }

  /** The records with the detectors' alerts inserted; `plain` gives a masked record as the rules saw it. */
  run(records: readonly AuditEvent[], plain: ReadonlyMap<AuditEvent, AuditEvent>): AuditEvent[] {
    const out: AuditEvent[] = [];
    for (let i = 0; i < records.length; ) {
      const r = records[i++]!;
      out.push(r);
      if (r.kind === 'alert') continue;
      const raised = this.router.detect(plain.get(r) ?? r);
      if (raised.length === 0) continue;
      const alerts: AuditEvent[] = raised.map((a) => (this.mask === undefined ? a : this.mask(a)));
      // the record's stateless alerts follow it
      while (i < records.length && records[i]!.kind === 'alert' && records[i]!.id.startsWith(`${r.id}:alert:`)) alerts.push(records[i++]!);
      const rank = (a: AuditEvent): number => this.order.get(a.alert?.ruleId ?? '') ?? Infinity;
      for (const a of alerts.sort((x, y) => rank(x) - rank(y))) out.push(a);
    }
    return out;
  }
}

/** What a {@link WorkerPool} request yields: records, in the order each worker produced them, worker by worker. */
export interface PoolResult {
  /** Records and alerts, with flow ids numbered as one pipeline would. */
  records: AuditEvent[];
  /** A push with `states`: the source's open sessions' states, merged as {@link AuditPipeline.sessionStates} gives them. */
  sessions?: { text: string | undefined; sessions: number; skipped: number };
  /** Each worker's counters for the source, after `finish`. */
  stats?: PipelineStats[];
}

/**
 * Worker threads that run the server's {@link AuditPipeline}s: each
 * worker keeps one pipeline per source, each frame goes to the worker of
 * its connection ({@link shardOf}), and a request resolves once every
 * worker has answered, so a caller that stores the records before
 * acknowledging loses nothing it acknowledged. A worker that dies fails
 * the requests it held (the caller must not acknowledge them), is logged
 * by the caller's `onCrash` and is started again with empty pipelines.
 */
export class WorkerPool {
  private readonly slots: WorkerSlot[];
  private readonly numbering = new Map<string, SourceNumbering>();
  // each source's counters as each worker last reported them
  private readonly counters = new Map<string, Array<PipelineStats | undefined>>();
  private nextId = 0;
  private readonly detectors: DetectorStage | undefined;
  private readonly fragments = new Map<string, FragmentRouter>();

  /**
   * @param count Worker threads, at least 1.
   * @param setup How each worker builds its pipelines.
   * @param onCrash Told of a worker that died (after its requests failed).
   */
  constructor(
    count: number,
    setup: WorkerSetup,
    private readonly onCrash: (err: Error) => void = () => {},
  ) {
    if (!Number.isInteger(count) || count < 1 || count > MAX_WORKERS) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `a worker pool needs a whole number of workers from 1 to ${MAX_WORKERS}, not ${count}`);
    this.slots = Array.from({ length: count }, (_, i) => new WorkerSlot(i, setup, (index, err) => this.crashed(index, err)));
    const rules = setup.rules;
    this.detectors = rules !== undefined ? new DetectorStage({ ...setup, rules }) : undefined;
  }

  /** Resolves once every worker has started (loaded its rules and masking). */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  /** Worker threads in the pool. */
  get size(): number {
    return this.slots.length;
  }

  private crashed(index: number, err: Error): void {
    for (const n of this.numbering.values()) n.reset(index);
    this.onCrash(err);
  }

  private numberingFor(source: string): SourceNumbering {
    let n = this.numbering.get(source);
    if (n === undefined) {
      n = new SourceNumbering(this.slots.length);
      this.numbering.set(source, n);
    }
    return n;
  }

  /**
   * Audits a batch of one source's frames; resolves with the records once
   * every worker is done with its share, and with `states` also with the
   * state of the source's open sessions after the batch (to keep with its
   * ingest position).
   */
  async push(source: string, frames: readonly Frame[], flowIdPrefix?: string, states = false): Promise<PoolResult> {
    const shares: Routed[][] = this.slots.map(() => []);
    let router = this.fragments.get(source);
    if (router === undefined) this.fragments.set(source, (router = new FragmentRouter(this.slots.length)));
    for (let i = 0; i < frames.length; i++) router.route(frames[i]!, i, shares);
    const id = ++this.nextId;
    const settled = await Promise.allSettled(
      this.slots.map((slot, k) => {
        const packed = packFrames(shares[k]!);
        return slot.request(id, { t: 'batch', id, source, prefix: flowIdPrefix, frames: packed, ...(states ? { states } : {}) }, [packed.meta.buffer as ArrayBuffer, packed.data.buffer as ArrayBuffer]);
      }),
    );
    const empty: FromWorker & { t: 'done' } = { t: 'done', id, records: [], at: [], plain: [], opens: [] };
    const replies = settled.map((r) => (r.status === 'fulfilled' ? r.value : empty));
    let counters = this.counters.get(source);
    if (counters === undefined) this.counters.set(source, (counters = this.slots.map(() => undefined)));
    for (let k = 0; k < replies.length; k++) if (replies[k]!.stats !== undefined) counters[k] = replies[k]!.stats;
    const records = this.collect(source, replies, true);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw new WorkerBatchError(failed.reason as Error, records);
    if (!states) return { records };
    return { records, sessions: joinSessionStates(this.numberingFor(source).states(replies.map((r) => r.states))) };
  }

  /**
   * Gives a source's workers the session states an earlier process kept
   * (the text of {@link AuditPipeline.sessionStates}, before the source's
   * first batch): each session goes to the worker its connection's frames
   * go to, where its next packet resumes it. Returns how many were sent (0
   * for text that is not such a state).
   */
  resume(source: string, text: string, flowIdPrefix?: string): number {
    const shares: FlowSessionState[][] = this.slots.map(() => []);
    const flows = parseSessionStates(text) ?? [];
    for (const f of flows) shares[shardOfKey(f.key, this.slots.length)]!.push(f);
    for (let k = 0; k < shares.length; k++) {
      if (shares[k]!.length > 0) this.slots[k]!.worker.postMessage({ t: 'resume', source, prefix: flowIdPrefix, text: JSON.stringify({ v: 1, flows: shares[k] }) } satisfies ToWorker);
    }
    return flows.length;
  }

  /** Advances every worker's clock to `ts`, or a source's to its entry in `sources`: idle flows of every source close. */
  async tick(ts: Timestamp, sources?: ReadonlyMap<string, Timestamp>): Promise<Map<string, AuditEvent[]>> {
    const id = ++this.nextId;
    const replies = await Promise.all(this.slots.map((slot) => slot.request(id, { t: 'tick', id, ts, ...(sources !== undefined ? { sources } : {}) })));
    // a tick's records come grouped by source, in the `source` attribute the worker gives them
    const bySource = new Map<string, { records: AuditEvent[]; plain: Map<AuditEvent, AuditEvent> }>();
    for (let k = 0; k < replies.length; k++) {
      const reply = replies[k]!;
      const plain = new Map(reply.plain);
      for (let i = 0; i < reply.records.length; i++) {
        const r = reply.records[i]!;
        const source = (r as AuditEvent & { [SOURCE]?: string })[SOURCE];
        if (source === undefined) continue;
        delete (r as AuditEvent & { [SOURCE]?: string })[SOURCE];
        const n = this.numbering.get(source);
        n?.renumber(k, r);
        let list = bySource.get(source);
        if (list === undefined) bySource.set(source, (list = { records: [], plain: new Map() }));
        list.records.push(r);
        const p = plain.get(i);
        if (p !== undefined) {
          n?.renumber(k, p);
          list.plain.set(r, p);
        }
      }
    }
    const out = new Map<string, AuditEvent[]>();
    for (const [source, { records, plain }] of bySource) out.set(source, this.detectors?.run(records, plain) ?? records);
    return out;
  }

  /** Ends a source in every worker: its flows close; resolves with the last records and each worker's counters. */
  async finish(source: string): Promise<PoolResult> {
    const id = ++this.nextId;
    const replies = await Promise.all(this.slots.map((slot) => slot.request(id, { t: 'finish', id, source })));
    const records = this.collect(source, replies, false);
    this.numbering.delete(source);
    this.counters.delete(source);
    this.fragments.delete(source);
    return { records, stats: replies.map((r) => r.stats).filter((s): s is PipelineStats => s !== undefined) };
  }

  /** Each open source's counters as its workers last reported them (after its last batch), one entry per worker. */
  stats(): Map<string, PipelineStats[]> {
    const out = new Map<string, PipelineStats[]>();
    for (const [source, list] of this.counters) out.set(source, list.filter((s): s is PipelineStats => s !== undefined));
    return out;
  }

  /** Replaces the audit objects and rule groups in every worker (new connections follow them). */
  setCatalog(objects: readonly AuditObjectDef[], ruleGroups: readonly RuleGroupDef[]): void {
    for (const slot of this.slots) slot.worker.postMessage({ t: 'catalog', objects, ruleGroups } satisfies ToWorker);
    this.detectors?.setCatalog(objects, ruleGroups);
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }

  // Renumbers the workers' records, merges them into stream order (a batch's by the frame that completed each; a
  // finish's worker by worker) and runs the detectors over them.
  private collect(source: string, replies: ReadonlyArray<FromWorker & { t: 'done' }>, byFrame: boolean): AuditEvent[] {
    const numbering = this.numberingFor(source);
    numbering.opened(replies.flatMap((r, worker) => r.opens.map(([flowId, frame, resumed]) => ({ worker, flowId, frame, ...(resumed === true ? { resumed } : {}) }))));
    const merged: Array<{ r: AuditEvent; at: number }> = [];
    const plain = new Map<AuditEvent, AuditEvent>();
    for (let k = 0; k < replies.length; k++) {
      const reply = replies[k]!;
      for (let i = 0; i < reply.records.length; i++) {
        const r = reply.records[i]!;
        numbering.renumber(k, r);
        merged.push({ r, at: byFrame ? (reply.at[i] ?? 0) : 0 });
      }
      for (const [i, p] of reply.plain) {
        numbering.renumber(k, p);
        plain.set(reply.records[i]!, p);
      }
    }
    // stable: records completed by one frame keep their worker's order
    if (byFrame) merged.sort((x, y) => x.at - y.at);
    const records = merged.map((m) => m.r);
    return this.detectors?.run(records, plain) ?? records;
  }
}

/**
 * A batch that a worker failed (it died, or threw): the batch must not be
 * acknowledged. The other workers did consume their frames, so `records`
 * holds what they made of them, to be kept: when the agent sends the batch
 * again, their reassembly takes those frames for retransmissions.
 */
export class WorkerBatchError extends DbtapError {
  /** The records the other workers produced from the batch. */
  readonly records: AuditEvent[];

  /** @param cause The worker's failure. @param records What the others produced. */
  constructor(cause: Error, records: AuditEvent[]) {
    super(cause instanceof DbtapError ? cause.code : ServerErrorCodes.WORKER_FAILED, cause.message);
    this.records = records;
  }
}

/** The property a worker puts the source on for the records of a tick (removed before they go on). */
export const SOURCE = '__dbtapSource';

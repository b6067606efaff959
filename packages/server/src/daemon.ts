import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { DbtapError, ErrorCodes, formatTimestamp, US_PER_SEC, type AuditEvent, type Frame } from '@dbtap/core';
import { ServerErrorCodes } from './errors.js';
import { TransportServer, type AgentCredential, type AgentInfo, type LogLevel, type TransportServerOptions } from '@dbtap/agent';
import { createDefaultRegistry, newSessionStats, type ProtocolRegistry } from '@dbtap/protocols';
import type { AuditPipeline, PipelineStats } from './pipeline.js';
import { createAuditFlow, type RecordMask, type RecordProcessor } from './compose.js';
import type { AuditCatalog } from './catalog.js';
import type { Notifier } from './notify/notifier.js';
import { SqliteStore, type AuditStore } from './store/index.js';
import type { MetricSample } from './http/server.js';
import { Histogram, ProcessMetrics } from './http/metrics.js';
import type { IntegrityOptions } from './integrity/index.js';
import type { MaskingConfig } from './masking/config.js';
import type { RuleSelection } from './rules.js';
import { WorkerBatchError, WorkerPool, type PoolResult } from './workers.js';

/** Where the server listens and keeps its data. */
export interface AuditServerOptions {
  /** Directory of the embedded store (created when missing). Default `./data`. */
  dataDir?: string;
  /** The store; default a {@link SqliteStore} at `<dataDir>/audit.db`. */
  store?: AuditStore;
  /** Agent listeners; default `0.0.0.0:9999` and `[::]:9998`. An empty list disables them. */
  agentListen?: ReadonlyArray<{ host: string; port: number }>;
  /** Shared token(s) agents must present; without one (and without `agentCredentials`) any agent is accepted. */
  agentToken?: string | readonly string[];
  /** TLS of the agent listeners (Node TLS server options, e.g. from `listenerTlsOptions`); omitted: plain TCP. */
  agentTls?: TransportServerOptions['tls'];
  /** Per-agent credentials bound to the agent ids each may announce ({@link TransportServerOptions.agents}). */
  agentCredentials?: readonly AgentCredential[];
  /** Bounds on unauthenticated peers of the agent listeners (defaults of {@link TransportServerOptions}). */
  agentLimits?: AgentLimits;
  /** Server ports to audit (detection by content decides the protocol; the port says which side is the server). */
  ports?: readonly number[];
  /** Decoders; default every decoder dbtap ships. */
  registry?: ProtocolRegistry;
  /** Audit objects (and rule groups): which protocol, charset and object id each server endpoint gets; changes apply to new connections at once. */
  catalog?: AuditCatalog;
  /** Receives every record once it is stored (alerts to syslog, webhooks, files); closed by {@link AuditServer.stop}. */
  notifier?: Notifier;
  /** Applied to every record before it is stored (rules, enrichment): the judge stage of {@link createAuditFlow}. */
  processRecord?: RecordProcessor;
  /**
   * Masks sensitive values (e.g. {@link RecordMasker.mask}): applied to each
   * record and alert after `processRecord`, so rules judge the statement as
   * sent, and before anything is stored or handed on.
   */
  mask?: RecordMask;
  /** Tamper evidence of the default store (the key that signs its chain); ignored with `store`. */
  integrity?: IntegrityOptions;
  /** Records are written in batches of at most this many. Default 1000. */
  maxBatch?: number;
  /** HTTP API server factory, given the store and the server; the server listens it. */
  api?: { host: string; port: number; create: (store: AuditStore, server: AuditServer) => Server };
  /** Receives log lines (connects, disconnects, errors) with their level (`info` when absent). */
  log?: (line: string, level?: LogLevel) => void;
  /**
   * Frames stamped later than this many seconds past the server's clock are
   * refused (counted, not audited), as are frames before 1970-01-01 or with
   * a timestamp that is not a finite number. Default one day.
   */
  maxFutureSeconds?: number;
  /**
   * Pipeline worker threads: each connection's frames are reassembled,
   * decoded, judged and masked in one of `count` workers (see
   * {@link WorkerPool}), which build their rules and masking from `rules`
   * and `masking` and use the default decoders; the main thread runs the
   * stateful detectors over every worker's records, stores and
   * acknowledges. `processRecord`, `mask` and `registry` (functions a
   * worker cannot be given) are then refused with
   * `DBTAP_E_INVALID_ARGUMENT`. Absent or a count of 0: pipelines run in
   * the main thread.
   */
  workers?: AuditServerWorkers;
}

/** The worker threads of an {@link AuditServer} and how they judge and mask records. */
export interface AuditServerWorkers {
  /** Worker threads; 0 runs pipelines in the main thread. */
  count: number;
  /** Rules the workers judge records with (with the catalog's rule groups); omitted: records are not judged. */
  rules?: RuleSelection;
  /** Masking the workers apply after the rules. */
  masking?: MaskingConfig;
}

/** What an agent listener allows peers that have not (yet) said hello, and how many connections it holds. */
export type AgentLimits = Pick<TransportServerOptions, 'helloTimeoutMs' | 'maxHelloBytes' | 'maxConnections' | 'maxConnectionsPerAddress' | 'maxSeqJump'>;

/** The store's ingest position source of an agent instance: per agent id, so one agent's position is not another's to move. */
function agentPosition(agentId: string, instance: string): string {
  return `agent:${agentId}/${instance}`;
}

/** A batch's ingest position with the state of the sessions open after it, committed together. */
function withSessions(position: { source: string; seq: number } | undefined, sessions: string | undefined): { source: string; seq: number; sessions?: string } | undefined {
  return position !== undefined && sessions !== undefined ? { ...position, sessions } : position;
}

/** Default of {@link AuditServerOptions.maxFutureSeconds}: one day. */
export const DEFAULT_MAX_FUTURE_SECONDS = 86_400;

/** Refusals of one kind are logged at most this often (ms), with the count since the last line. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

// One line per interval; the line says how many were not logged since the last.
class ThrottledLog {
  private at = -Infinity;
  private unlogged = 0;

  note(write: (more: string) => void): void {
    const now = Date.now();
    if (now - this.at < REFUSAL_LOG_INTERVAL_MS) {
      this.unlogged++;
      return;
    }
    const more = this.unlogged > 0 ? ` (and ${this.unlogged} more since the last report)` : '';
    this.at = now;
    this.unlogged = 0;
    write(more);
  }
}

/** Counters of a running {@link AuditServer}. */
export interface AuditServerStats {
  /** Agents connected now. */
  agents: number;
  /** Batches received and acknowledged. */
  batches: number;
  /** Frames received. */
  frames: number;
  /** Frames refused because their timestamp is not a number, before 1970 or too far in the future. */
  refusedFrames: number;
  /** Records written to the store. */
  records: number;
  /** Alerts written to the store. */
  alerts: number;
  /** Pipeline counters summed over agents (including closed pipelines' totals at close time). */
  pipelines: PipelineStats[];
}

/**
 * The audit server: receives agent batches, runs one {@link AuditPipeline}
 * per agent (flows of different agents never mix), applies the record
 * processor (rules), writes records to the store, and only then
 * acknowledges the batch, so a record acknowledged to an agent is durable
 * and a slow store slows agents down instead of losing data.
 */
export class AuditServer {
  /** The store records go to. */
  readonly store: AuditStore;
  private readonly transport: TransportServer | undefined;
  private readonly pipelines = new Map<string, { pipeline: AuditPipeline; pending: AuditEvent[] }>();
  private readonly pool: WorkerPool | undefined;
  // sources whose pipelines live in the pool's workers
  private readonly pooled = new Set<string>();
  /**
   * Per source, the newest frame time and the wall time it came: idle flows
   * close by the source's own clock (that frame time plus the wall time
   * since), so that an imported capture or an agent whose clock is off is
   * not judged by this host's clock.
   */
  private readonly clocks = new Map<string, { frameTs: number; at: number }>();
  /** Per source, the last write started: the next one starts after it, so records and positions commit in batch order. */
  private readonly writing = new Map<string, Promise<void>>();
  private readonly counters = { batches: 0, frames: 0, refusedFrames: 0, records: 0, alerts: 0 };
  private readonly frameRefusals = new ThrottledLog();
  private readonly peerRefusals = new ThrottledLog();
  private http: Server | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly log: (line: string, level?: LogLevel) => void;
  private readonly endedTotals = { flows: 0, malformed: 0, gaps: 0 };
  private lastAppendSeconds = 0;
  private readonly registry: ProtocolRegistry;
  // latency histograms and process figures of /metrics (http/metrics.ts)
  private readonly batchSeconds = new Histogram('dbtap_agent_batch_seconds', 'Agent batch ingest latency (decode, rules, store commit) until the acknowledgement, seconds.');
  private readonly commitSeconds = new Histogram('dbtap_store_commit_seconds', 'Store append (commit) latency per chunk of records, seconds.');
  private readonly processMetrics = new ProcessMetrics();

  /** @param options Listeners, store and processing (all optional). */
  constructor(private readonly options: AuditServerOptions = {}) {
    this.log = options.log ?? (() => {});
    this.registry = options.registry ?? createDefaultRegistry();
    const workers = options.workers;
    const threaded = workers !== undefined && workers.count > 0;
    if (options.store) this.store = options.store;
    else {
      const dir = options.dataDir ?? './data';
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        throw new DbtapError(ErrorCodes.IO, `cannot create data directory ${dir}: ${(err as Error).message}`);
      }
      this.store = new SqliteStore({
        path: join(dir, 'audit.db'),
        ...(options.integrity !== undefined ? { integrity: options.integrity } : {}),
        ...(threaded ? { writerThread: true } : {}),
      });
    }
    const listen = options.agentListen ?? [{ host: '0.0.0.0', port: 9999 }, { host: '::', port: 9998 }];
    if (listen.length > 0) {
      this.transport = new TransportServer({
        onBatch: (agent, frames, seq) => this.onBatch(agent, frames, seq),
        // with workers, the next batch is decoded while the store commits this one (writes stay in order: see ingest)
        ...(threaded ? { batchesInFlight: 2 } : {}),
        // after a restart, batches the store already holds are acknowledged, not decoded again
        resumeSeq: (instance, agentId) => this.store.ingestPosition(agentPosition(agentId, instance)),
        ...(options.agentToken !== undefined ? { token: options.agentToken } : {}),
        ...(options.agentTls !== undefined ? { tls: options.agentTls } : {}),
        ...(options.agentCredentials !== undefined ? { agents: options.agentCredentials } : {}),
        ...options.agentLimits,
      });
      this.transport.on('connect', (a) => this.log(`agent ${a.id} connected from ${a.remoteAddress}:${a.remotePort}`));
      this.transport.on('disconnect', (a, reason) => this.log(`agent ${a.id} disconnected: ${reason}`));
      // any peer can cause refusals: a flood of them must not flood the log
      this.transport.on('clientError', (err, remote) => this.peerRefusals.note((more) => this.log(`refused ${remote}: ${err.code}: ${err.message}${more}`, 'warn')));
    }
    if (threaded) {
      // functions of the main thread cannot be run by a worker: refused rather than silently not used
      const local = (['processRecord', 'mask', 'registry'] as const).filter((k) => options[k] !== undefined);
      if (local.length > 0) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `${local.join(', ')} cannot be used with worker threads (workers.count ${workers.count}): give the rules and masking in workers.rules and workers.masking (workers use the default decoders), or set workers.count to 0`);
      const catalog = options.catalog;
      this.pool = new WorkerPool(
        workers.count,
        {
          ...(options.ports !== undefined ? { ports: options.ports } : {}),
          ...(catalog !== undefined ? { catalog: { objects: catalog.objects(), ruleGroups: catalog.ruleGroups() } } : {}),
          ...(workers.rules !== undefined ? { rules: workers.rules } : {}),
          ...(workers.masking !== undefined ? { masking: workers.masking } : {}),
        },
        (err) => this.log(`${(err as DbtapError).code ?? ServerErrorCodes.WORKER_FAILED}: ${err.message}; it was restarted, its connections continue mid-stream and unacknowledged batches are sent again`, 'error'),
      );
      catalog?.onChange(() => this.pool!.setCatalog(catalog.objects(), catalog.ruleGroups()));
    }
    options.catalog?.onChange((change) => {
      if (change !== 'objects') return;
      const table = options.catalog!.table;
      for (const slot of this.pipelines.values()) slot.pipeline.setObjects(table);
      this.log(`audit objects changed: ${table.objects.length} object(s) on port(s) ${table.ports().join(', ') || '(none)'}`);
    });
  }

  /** Starts the agent listeners and the API; resolves with the bound addresses. */
  async start(): Promise<{ agents: string[]; api?: string }> {
    const agents: string[] = [];
    if (this.transport) {
      const listen = this.options.agentListen ?? [{ host: '0.0.0.0', port: 9999 }, { host: '::', port: 9998 }];
      for (const a of await this.transport.listen(listen.map((l) => ({ host: l.host, port: l.port })))) {
        agents.push(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
      }
    }
    let api: string | undefined;
    if (this.options.api) {
      const { host, port, create } = this.options.api;
      const server = create(this.store, this);
      this.http = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new DbtapError(ErrorCodes.IO, `API cannot listen on ${host}:${port}: ${err.message}`)));
        server.listen(port, host, () => resolve());
      });
      const addr = server.address();
      api = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(addr);
    }
    // batches wait for no worker start-up (rules compile in each worker)
    await this.pool?.ready();
    // Live traffic: close flows idle by the wall clock even when no packet comes.
    this.tickTimer = setInterval(() => this.tick(), 5000);
    this.tickTimer.unref();
    return api !== undefined ? { agents, api } : { agents };
  }

  /** Audits frames from one source (an agent, or an imported capture) into the store. */
  async ingest(source: string, frames: Iterable<Frame>, position?: { source: string; seq: number }, flowIdPrefix?: string): Promise<void> {
    // one frame with an absurd timestamp costs that frame, never the batch it came in
    const maxTs = (Date.now() / 1000 + (this.options.maxFutureSeconds ?? DEFAULT_MAX_FUTURE_SECONDS)) * US_PER_SEC;
    let newest = -1;
    if (this.pool !== undefined) {
      const accepted: Frame[] = [];
      for (const f of frames) {
        if (f.ts >= 0 && f.ts <= maxTs) {
          accepted.push(f);
          if (f.ts > newest) newest = f.ts;
        } else this.refuseFrame(source, f.ts, maxTs);
      }
      this.advanceClock(source, newest);
      if (!this.pooled.has(source) && position !== undefined) {
        // as in process: the sessions kept at the position resume, each in the worker of its connection
        const kept = await this.store.ingestSessions?.(position.source);
        const n = kept !== undefined ? this.pool.resume(source, kept, flowIdPrefix) : 0;
        if (n > 0) this.log(`${source}: ${n} session(s) kept at position ${await this.store.ingestPosition(position.source)} resume with their context`);
      }
      this.pooled.add(source);
      let result: PoolResult;
      try {
        result = await this.pool.push(source, accepted, flowIdPrefix, position !== undefined);
      } catch (err) {
        // what the other workers made of the batch is kept; the batch itself is not acknowledged
        if (err instanceof WorkerBatchError) await this.write(err.records);
        throw err;
      }
      await this.writeInOrder(source, result.records, withSessions(position, result.sessions?.text));
      return;
    }
    let slot = this.pipelines.get(source);
    if (slot === undefined) {
      // A source with a position may have had connections open when an earlier process stopped: resume their sessions.
      const kept = position !== undefined ? await this.store.ingestSessions?.(position.source) : undefined;
      slot = this.pipelineFor(source, flowIdPrefix);
      if (kept !== undefined) {
        const n = slot.pipeline.resumeSessions(kept);
        if (n > 0) this.log(`${source}: ${n} session(s) kept at position ${await this.store.ingestPosition(position!.source)} resume with their context`);
      }
    }
    for (const f of frames) {
      if (f.ts >= 0 && f.ts <= maxTs) {
        slot.pipeline.push(f);
        if (f.ts > newest) newest = f.ts;
      } else this.refuseFrame(source, f.ts, maxTs);
    }
    this.advanceClock(source, newest);
    // the open sessions' state commits with the position it belongs to
    await this.writeInOrder(source, slot.pending, withSessions(position, position !== undefined ? slot.pipeline.sessionStates().text : undefined));
  }

  /**
   * {@link write} after the source's previous write has finished. When that
   * one failed this one fails too: a position must never commit ahead of a
   * batch that did not.
   */
  private writeInOrder(source: string, pending: AuditEvent[], position?: { source: string; seq: number; sessions?: string }): Promise<void> {
    const before = this.writing.get(source);
    const done = before === undefined ? this.write(pending, position) : before.then(() => this.write(pending, position));
    this.writing.set(source, done);
    const forget = (): void => {
      if (this.writing.get(source) === done) this.writing.delete(source);
    };
    done.then(forget, forget);
    return done;
  }

  private advanceClock(source: string, frameTs: number): void {
    const c = this.clocks.get(source);
    if (c === undefined) {
      if (frameTs >= 0) this.clocks.set(source, { frameTs, at: Date.now() * 1000 });
    } else if (frameTs > c.frameTs) {
      c.frameTs = frameTs;
      c.at = Date.now() * 1000;
    }
  }

  /** Now by the clock of `source` (see {@link clocks}); this host's clock for a source with no frame yet. */
  private sourceNow(source: string, now: number): number {
    const c = this.clocks.get(source);
    return c === undefined ? now : c.frameTs + Math.max(0, now - c.at);
  }

  private refuseFrame(source: string, ts: number, maxTs: number): void {
    this.counters.refusedFrames++;
    this.frameRefusals.note((more) => this.log(`refused a frame from ${source}: timestamp ${ts} us is not within 1970-01-01 .. ${formatTimestamp(maxTs)}${more}`, 'warn'));
  }

  /** Ends a source: closes its flows, stores the last records. */
  async endSource(source: string): Promise<PipelineStats | undefined> {
    // the last records come after every batch of the source
    await this.writing.get(source)?.catch(() => undefined);
    if (this.pool !== undefined && this.pooled.has(source)) return this.endPooledSource(this.pool, source);
    const slot = this.pipelines.get(source);
    if (!slot) return undefined;
    const stats = slot.pipeline.finish();
    this.pipelines.delete(source);
    this.clocks.delete(source);
    this.endedTotals.flows += stats.flows;
    this.endedTotals.malformed += stats.sessions.malformed;
    this.endedTotals.gaps += stats.gaps;
    await this.write(slot.pending);
    return stats;
  }

  private async endPooledSource(pool: WorkerPool, source: string): Promise<PipelineStats> {
    this.pooled.delete(source);
    this.clocks.delete(source);
    const { records, stats = [] } = await pool.finish(source);
    const total = sumPipelineStats(stats);
    this.endedTotals.flows += total.flows;
    this.endedTotals.malformed += total.sessions.malformed;
    this.endedTotals.gaps += total.gaps;
    await this.write(records);
    return total;
  }

  /** Prometheus samples: agents, frames, flows, records, decode errors, gaps, queue depth, store latency. */
  metrics(): MetricSample[] {
    const st = this.stats();
    const ended = this.endedTotals;
    const sum = (f: (p: PipelineStats) => number, base: number): number => st.pipelines.reduce((a, p) => a + f(p), base);
    const t = this.transport?.stats();
    const pending = [...this.pipelines.values()].reduce((a, s) => a + s.pending.length, 0);
    return [
      { name: 'dbtap_agents_connected', help: 'Agents connected now', type: 'gauge', value: st.agents },
      { name: 'dbtap_agent_batches_total', help: 'Agent batches received and acknowledged', type: 'counter', value: st.batches },
      { name: 'dbtap_agent_refused_total', help: 'Agent connections refused (token, garbage, version, oversized message before the hello, hello timeout, connection limits)', type: 'counter', value: t?.refused ?? 0 },
      { name: 'dbtap_frames_total', help: 'Frames received from agents and imports', type: 'counter', value: st.frames },
      { name: 'dbtap_frames_refused_total', help: 'Frames refused for a timestamp that is not a number, before 1970 or too far in the future', type: 'counter', value: st.refusedFrames },
      { name: 'dbtap_records_total', help: 'Audit records stored', type: 'counter', value: st.records },
      { name: 'dbtap_alerts_total', help: 'Alerts stored', type: 'counter', value: st.alerts },
      { name: 'dbtap_flows_total', help: 'TCP connections seen', type: 'counter', value: sum((p) => p.flows, ended.flows) },
      { name: 'dbtap_decode_errors_total', help: 'Malformed protocol messages', type: 'counter', value: sum((p) => p.sessions.malformed, ended.malformed) },
      { name: 'dbtap_gaps_total', help: 'Gaps in reassembled streams', type: 'counter', value: sum((p) => p.gaps, ended.gaps) },
      { name: 'dbtap_store_queue_records', help: 'Records waiting to be stored', type: 'gauge', value: pending },
      { name: 'dbtap_store_append_seconds_last', help: 'Duration of the last store append', type: 'gauge', value: this.lastAppendSeconds },
      ...this.batchSeconds.samples(),
      ...this.commitSeconds.samples(),
      ...(this.options.notifier?.metrics() ?? []),
      ...this.processMetrics.samples(),
    ];
  }

  /** Counters now. */
  stats(): AuditServerStats {
    return {
      agents: this.transport?.agents().length ?? 0,
      ...this.counters,
      pipelines: [...this.pipelines.values()].map((s) => s.pipeline.snapshot()).concat([...(this.pool?.stats().values() ?? [])].map(sumPipelineStats)),
    };
  }

  /** Stops listening, closes every flow, flushes records and closes the store. */
  async stop(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.processMetrics.close();
    await this.transport?.close();
    if (this.http) await new Promise<void>((r) => this.http!.close(() => r()));
    for (const source of [...this.pipelines.keys(), ...this.pooled.keys()]) await this.endSource(source);
    await this.pool?.close();
    await this.options.notifier?.close();
    await this.store.close();
  }

  private pipelineFor(source: string, flowIdPrefix?: string): { pipeline: AuditPipeline; pending: AuditEvent[] } {
    let slot = this.pipelines.get(source);
    if (!slot) {
      const pending: AuditEvent[] = [];
      const ports = this.options.ports;
      const pipeline = createAuditFlow({
        registry: this.registry,
        ...(ports ? { ports: new Map(ports.map((p) => [p, undefined])) } : {}),
        ...(this.options.catalog ? { objects: this.options.catalog.table } : {}),
        ...(flowIdPrefix !== undefined ? { flowIdPrefix } : {}),
        judge: this.options.processRecord,
        mask: this.options.mask,
        sink: (r) => pending.push(r),
      });
      slot = { pipeline, pending };
      this.pipelines.set(source, slot);
    }
    return slot;
  }

  private async onBatch(agent: AgentInfo, frames: Frame[], seq: number): Promise<void> {
    this.counters.batches++;
    this.counters.frames += frames.length;
    const acknowledged = this.batchSeconds.startTimer();
    // flow ids carry the agent and its instance: numbering restarts with every agent run, and agents may see the same addresses
    await this.ingest(`agent:${agent.id}/${agent.instance}`, frames, { source: agentPosition(agent.id, agent.instance), seq }, `${agent.id}.${agent.instance.slice(0, 8)}/`);
    acknowledged();
  }

  /** Stores pending records; the position (if any) commits with the last chunk, or alone when there are none. */
  private async write(pending: AuditEvent[], position?: { source: string; seq: number; sessions?: string }): Promise<void> {
    const max = this.options.maxBatch ?? 1000;
    if (pending.length === 0 && position !== undefined) {
      await this.store.append([], { position });
      return;
    }
    while (pending.length > 0) {
      const batch = pending.splice(0, max);
      const t0 = process.hrtime.bigint();
      await this.store.append(batch, pending.length === 0 && position !== undefined ? { position } : undefined);
      this.lastAppendSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.commitSeconds.observe(this.lastAppendSeconds);
      // notified after the commit: an alert that reaches a SIEM is already in the store
      const notifier = this.options.notifier;
      if (notifier !== undefined) for (const e of batch) notifier.notify(e);
      for (const e of batch) {
        if (e.kind === 'alert') this.counters.alerts++;
        else this.counters.records++;
      }
    }
  }

  private tick(): void {
    const now = Date.now() * 1000;
    if (this.pool !== undefined && this.pooled.size > 0) {
      const sources = new Map<string, number>();
      for (const source of this.pooled) sources.set(source, this.sourceNow(source, now));
      this.pool
        .tick(now, sources)
        .then(async (bySource) => {
          for (const records of bySource.values()) await this.write(records);
        })
        .catch((err: unknown) => this.log(`idle flows could not be closed or stored: ${(err as Error).message}`, 'error'));
    }
    for (const [source, slot] of this.pipelines) slot.pipeline.tick(this.sourceNow(source, now));
    for (const slot of this.pipelines.values()) {
      if (slot.pending.length > 0) this.write(slot.pending).catch((err: unknown) => this.log(`store write failed: ${(err as Error).message}`, 'error'));
    }
  }
}

/** Counters of several pipelines (the workers' shares of one source) added up. */
export function sumPipelineStats(all: readonly PipelineStats[]): PipelineStats {
  const total: PipelineStats = { frames: 0, truncatedFrames: 0, malformedFrames: 0, otherFrames: 0, flows: 0, decodedFlows: 0, undetectedFlows: 0, disabledFlows: 0, flowsByProtocol: {}, events: 0, errorEvents: 0, gaps: 0, gapBytes: 0, sessions: newSessionStats() };
  for (const p of all) {
    for (const k of ['frames', 'truncatedFrames', 'malformedFrames', 'otherFrames', 'flows', 'decodedFlows', 'undetectedFlows', 'disabledFlows', 'events', 'errorEvents', 'gaps', 'gapBytes'] as const) total[k] += p[k];
    for (const k of ['resumedSessions', 'stateRefused', 'stateSkipped'] as const) if (p[k] !== undefined) total[k] = (total[k] ?? 0) + p[k];
    for (const [name, n] of Object.entries(p.flowsByProtocol)) total.flowsByProtocol[name] = (total.flowsByProtocol[name] ?? 0) + n;
    for (const k of Object.keys(total.sessions) as (keyof typeof total.sessions)[]) total.sessions[k] += p.sessions[k];
  }
  return total;
}

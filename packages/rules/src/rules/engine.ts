// The rule engine: enrich records from their SQL, evaluate the candidate
// rules of each record's class, and run stateful detectors whose sliding
// windows follow record timestamps (never the wall clock), so replaying a
// capture gives the same alerts as seeing it live.
import type { AuditEvent, RiskLevel } from '@dbtap/core';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { analyzeTokens as analyzeTokens_, type SqlAnalysis } from '../sql/analyze.js';
import { dialectForDbType as dialectForDbType_ } from '../sql/dialect.js';
import { TokenBuffer, scanSql as scanSql_ } from '../sql/lexer.js';
import { EvalContext } from './context.js';
import { INDEX_KEYS as INDEX_KEYS_, indexKey as indexKey_ } from './compile.js';
import { fieldDef as fieldDef_, type FieldDef } from './fields.js';
import type { CompiledRule, RuleSet } from './ruleset.js';
import type { AlertRecord } from './types.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const analyzeTokens = analyzeTokens_;
const dialectForDbType = dialectForDbType_;
const scanSql = scanSql_;
const INDEX_KEYS = INDEX_KEYS_;
const indexKey = indexKey_;
const fieldDef = fieldDef_;

/** Options of {@link RuleEngine}. */
export interface RuleEngineOptions {
  /** Rule group to evaluate for every record (all enabled rules when absent). */
  readonly group?: string;
  /** Group per record, e.g. from its `auditObjectId`; falls back to `group` when it returns undefined. */
  readonly groupFor?: (event: AuditEvent) => string | undefined;
  /** Time zone of time-of-day conditions: `UTC` (default), `local`, or minutes east of UTC. */
  readonly timezone?: 'UTC' | 'local' | number;
  /** Most groups each detector keeps (least recently used ones are evicted and counted). Default 100,000. */
  readonly maxGroups?: number;
  /** SQL analyses kept for repeated statement texts (0 disables). Default 4,096. */
  readonly analysisCacheSize?: number;
}

/** Outcome of evaluating one record. */
export interface Verdict {
  /** Highest risk of the stateless rules that matched (`none` when none did). */
  readonly risk: RiskLevel;
  /** Ids of the stateless rules that matched, in rule order. */
  readonly ruleIds: string[];
  /** Alert records raised (stateless `alert` rules and detectors that crossed their threshold). */
  readonly alerts: AlertRecord[];
}

/** Counters of a {@link RuleEngine}. */
export interface RuleEngineStats {
  /** Records evaluated. */
  events: number;
  /** Records that matched at least one rule. */
  matched: number;
  /** Alert records raised. */
  alerts: number;
  /** Records whose SQL was analysed by `enrich`. */
  analysed: number;
  /** Analyses served from the cache. */
  analysisCacheHits: number;
  /** Detector groups currently held (all detectors). */
  detectorGroups: number;
  /** Detector groups evicted to stay within `maxGroups`. */
  detectorEvictions: number;
}

const RISK_RANK: Readonly<Record<RiskLevel, number>> = { none: 0, info: 1, low: 2, medium: 3, high: 4 };
const EMPTY: Verdict = Object.freeze({ risk: 'none', ruleIds: [], alerts: [] }) as unknown as Verdict;

/** Per-group detector state. Count and distinct state stay below the threshold (a firing resets the group). */
interface GroupState {
  /** Timestamps of counted events (count detectors), oldest first from `head`. */
  ts: number[];
  /** Record ids beside `ts`. */
  ids: string[];
  head: number;
  /** value -> last seen (distinct detectors). */
  seen: Map<string, number> | undefined;
  /** Bucketed sums (sum detectors). */
  sums: Float64Array | undefined;
  buckets: Float64Array | undefined;
  firstTs: number;
}

const SUM_BUCKETS = 60;

class Detector {
  readonly groups = new Map<string, GroupState>();
  evictions = 0;
  private readonly groupDefs: FieldDef[];
  private readonly valueDef: FieldDef | undefined;

  constructor(
    readonly rule: CompiledRule,
    private readonly maxGroups: number,
  ) {
    const d = rule.detector!;
    this.groupDefs = d.groupBy.map((g) => fieldDef(g)!);
    this.valueDef = d.distinct !== undefined ? fieldDef(d.distinct) : d.sum !== undefined ? fieldDef(d.sum) : undefined;
  }

  /** Adds a matching event; returns an alert when the threshold is reached. */
  add(ctx: EvalContext): AlertRecord | undefined {
    const d = this.rule.detector!;
    const ev = ctx.event;
    const now = ev.ts;
    let key = '';
    for (let i = 0; i < this.groupDefs.length; i++) {
      const v = this.groupDefs[i]!.get(ctx);
      key += (i === 0 ? '' : '\u0001') + (v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v));
    }
    let st = this.groups.get(key);
    if (st === undefined) {
      if (this.groups.size >= this.maxGroups) {
        // evict the least recently touched group (Map keeps insertion order; touched groups are re-inserted)
        const oldest = this.groups.keys().next().value as string;
        this.groups.delete(oldest);
        this.evictions++;
      }
      st = { ts: [], ids: [], head: 0, seen: undefined, sums: undefined, buckets: undefined, firstTs: now };
    } else this.groups.delete(key);
    this.groups.set(key, st);

    const since = now - d.windowUs;
    let value: number;
    if (d.distinct !== undefined) {
      const raw = this.valueDef!.get(ctx);
      if (raw === undefined) return undefined;
      const seen = (st.seen ??= new Map());
      for (const [k, t] of seen) if (t < since) seen.delete(k);
      seen.set(String(raw), now);
      value = seen.size;
      if (seen.size === 1) st.firstTs = now;
    } else if (d.sum !== undefined) {
      const raw = this.valueDef!.get(ctx);
      if (typeof raw !== 'number' || raw === 0) return undefined;
      const width = d.windowUs / SUM_BUCKETS;
      const b = Math.floor(now / width);
      const sums = (st.sums ??= new Float64Array(SUM_BUCKETS));
      const buckets = (st.buckets ??= new Float64Array(SUM_BUCKETS).fill(-Infinity));
      const slot = ((b % SUM_BUCKETS) + SUM_BUCKETS) % SUM_BUCKETS;
      if (buckets[slot] !== b) {
        buckets[slot] = b;
        sums[slot] = 0;
      }
      sums[slot]! += raw;
      value = 0;
      for (let i = 0; i < SUM_BUCKETS; i++) if (buckets[i]! > b - SUM_BUCKETS) value += sums[i]!;
    } else {
      const ts = st.ts;
      while (st.head < ts.length && ts[st.head]! < since) st.head++;
      if (st.head > 32 && st.head * 2 > ts.length) {
        ts.splice(0, st.head);
        st.ids.splice(0, st.head);
        st.head = 0;
      }
      ts.push(now);
      st.ids.push(ev.id);
      value = ts.length - st.head;
      st.firstTs = ts[st.head]!;
    }
    if (value < d.threshold) return undefined;
    // fire, then start the group afresh
    const group: Record<string, string> = {};
    const parts = key.split('\u0001');
    d.groupBy.forEach((g, i) => (group[g] = parts[i] ?? ''));
    const distinctValues = st.seen !== undefined ? [...st.seen.keys()] : undefined;
    const eventIds = st.seen === undefined && st.sums === undefined ? st.ids.slice(Math.max(st.head, st.ids.length - 50)) : undefined;
    const firstTs = st.firstTs;
    this.groups.delete(key);
    const what = d.distinct !== undefined ? `distinct ${d.distinct}` : d.sum !== undefined ? d.sum : 'events';
    const groupText = d.groupBy.map((g) => `${g}=${group[g]}`).join(' ');
    return makeAlert(ev, this.rule, `${this.rule.name}: ${value} ${what} in ${formatWindow(d.windowUs)}${groupText ? ` for ${groupText}` : ''} (threshold ${d.threshold})`, {
      group,
      value,
      threshold: d.threshold,
      windowUs: d.windowUs,
      firstTs,
      ...(distinctValues !== undefined ? { distinctValues } : {}),
      ...(eventIds !== undefined ? { eventIds } : {}),
    });
  }
}

function formatWindow(us: number): string {
  if (us % 3_600_000_000 === 0) return `${us / 3_600_000_000}h`;
  if (us % 60_000_000 === 0) return `${us / 60_000_000}m`;
  if (us % 1_000_000 === 0) return `${us / 1_000_000}s`;
  return `${us / 1000}ms`;
}

function makeAlert(ev: AuditEvent, rule: CompiledRule, reason: string, extra: Partial<AlertRecord['alert']> = {}): AlertRecord {
  const { rows: _r, columns: _c, params: _p, risk: _k, ruleIds: _i, ...rest } = ev;
  void _r;
  void _c;
  void _p;
  void _k;
  void _i;
  return { ...rest, id: `${ev.id}:alert:${rule.id}`, kind: 'alert', risk: rule.risk, ruleIds: [rule.id], alert: { ...extra, ruleId: rule.id, name: rule.name, reason } };
}

/** Candidate rules of one group, by index key. */
interface GroupIndex {
  readonly ignore: Map<string, CompiledRule[]>;
  readonly rules: Map<string, CompiledRule[]>;
}

/**
 * Evaluates a {@link RuleSet} over audit records.
 *
 * ```ts
 * const engine = new RuleEngine(defaultRuleSet());
 * const { risk, ruleIds, alerts } = engine.process(event); // also sets event.risk / event.ruleIds
 * ```
 */
export class RuleEngine {
  private readonly ctx = new EvalContext();
  private readonly indexes = new Map<string, GroupIndex>();
  private readonly detectors = new Map<string, Detector>();
  private readonly cache = new Map<string, SqlAnalysis>();
  private readonly cacheSize: number;
  private readonly buf = new TokenBuffer();
  private readonly counters: RuleEngineStats = { events: 0, matched: 0, alerts: 0, analysed: 0, analysisCacheHits: 0, detectorGroups: 0, detectorEvictions: 0 };
  private lastAnalysis: { event: AuditEvent; analysis: SqlAnalysis } | undefined = undefined;

  constructor(
    readonly ruleSet: RuleSet,
    private readonly options: RuleEngineOptions = {},
  ) {
    const tz = options.timezone ?? 'UTC';
    if (tz !== 'UTC' && tz !== 'local' && (typeof tz !== 'number' || !Number.isFinite(tz))) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `timezone must be 'UTC', 'local' or minutes east of UTC, not ${String(tz)}`);
    this.ctx.tzOffsetMin = tz === 'UTC' ? 0 : tz === 'local' ? NaN : tz;
    this.cacheSize = options.analysisCacheSize ?? 4096;
    const maxGroups = options.maxGroups ?? 100_000;
    if (!(maxGroups >= 1)) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'maxGroups must be at least 1');
    for (const r of ruleSet.rules) if (r.detector !== undefined) this.detectors.set(r.id, new Detector(r, maxGroups));
    if (options.group !== undefined && !ruleSet.groups.has(options.group)) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `unknown rule group '${options.group}'`);
  }

  private index(group: string | undefined): GroupIndex {
    const key = group ?? '\u0000all';
    let ix = this.indexes.get(key);
    if (ix === undefined) {
      const rules = this.ruleSet.select(group);
      ix = { ignore: new Map(), rules: new Map() };
      for (const k of INDEX_KEYS) {
        const cand = rules.filter((r) => r.indexKeys === undefined || r.indexKeys.includes(k));
        ix.ignore.set(k, cand.filter((r) => r.action === 'ignore'));
        ix.rules.set(k, cand.filter((r) => r.action !== 'ignore'));
      }
      this.indexes.set(key, ix);
    }
    return ix;
  }

  /**
   * Fills `statementType`, `verb`, `objects` and `fingerprint` from the SQL
   * text where the decoder left them empty. Returns the same event.
   */
  enrich(event: AuditEvent): AuditEvent {
    const sql = event.sql;
    if (sql === undefined || sql.length === 0) return event;
    if (event.statementType !== undefined && event.verb !== undefined && event.objects !== undefined && event.fingerprint !== undefined) return event;
    const dialect = dialectForDbType(event.dbType);
    let a: SqlAnalysis | undefined;
    const ck = this.cacheSize > 0 ? dialect + '\u0000' + sql : '';
    if (this.cacheSize > 0) {
      a = this.cache.get(ck);
      if (a !== undefined) this.counters.analysisCacheHits++;
    }
    if (a === undefined) {
      a = analyzeTokens(scanSql(sql, dialect, this.buf), true);
      this.counters.analysed++;
      if (this.cacheSize > 0) {
        if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(ck, a);
      }
    }
    if (a.statements.length > 0) {
      event.statementType ??= a.type;
      if (event.verb === undefined && a.verb.length > 0) event.verb = a.verb;
      event.objects ??= a.objects;
      event.fingerprint ??= a.fingerprint;
    }
    this.lastAnalysis = { event, analysis: a };
    return event;
  }

  /** Evaluates the rules on a record (without changing it). */
  evaluate(event: AuditEvent): Verdict {
    this.counters.events++;
    const ctx = this.ctx;
    const la = this.lastAnalysis;
    ctx.reset(event, la !== undefined && la.event === event ? la.analysis : undefined);
    this.lastAnalysis = undefined;
    const group = this.options.groupFor?.(event) ?? this.options.group;
    const ix = this.index(group);
    const key = indexKey(event.kind, event.statementType);
    const ignore = ix.ignore.get(key);
    if (ignore !== undefined) for (let i = 0; i < ignore.length; i++) if (ignore[i]!.test(ctx)) return EMPTY;
    const rules = ix.rules.get(key);
    if (rules === undefined || rules.length === 0) return EMPTY;
    let rank = 0;
    let ruleIds: string[] | undefined;
    let alerts: AlertRecord[] | undefined;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!r.test(ctx)) continue;
      if (r.detector !== undefined) {
        const a = this.detectors.get(r.id)!.add(ctx);
        if (a !== undefined) (alerts ??= []).push(a);
        continue;
      }
      (ruleIds ??= []).push(r.id);
      const rr = RISK_RANK[r.risk];
      if (rr > rank) rank = rr;
      if (r.action === 'alert') {
        let reason = r.description.length > 0 ? `${r.name}: ${r.description}` : r.name;
        if (r.fields.includes('sql.injection')) {
          const s = ctx.getSqli();
          if (s !== undefined && s.reasons.length > 0) reason = `${r.name}: ${s.reasons.join(', ')} (score ${s.score})`;
        }
        (alerts ??= []).push(makeAlert(event, r, reason));
      }
    }
    if (ruleIds === undefined && alerts === undefined) return EMPTY;
    if (ruleIds !== undefined) this.counters.matched++;
    if (alerts !== undefined) this.counters.alerts += alerts.length;
    return { risk: rank === 4 ? 'high' : rank === 3 ? 'medium' : rank === 2 ? 'low' : rank === 1 ? 'info' : 'none', ruleIds: ruleIds ?? [], alerts: alerts ?? [] };
  }

  /** {@link enrich}, {@link evaluate}, then writes `risk` and `ruleIds` onto the record. */
  process(event: AuditEvent): Verdict {
    this.enrich(event);
    const v = this.evaluate(event);
    event.risk = v.risk;
    event.ruleIds = v.ruleIds;
    return v;
  }

  /** Counters since construction. */
  stats(): RuleEngineStats {
    let groups = 0;
    let evictions = 0;
    for (const d of this.detectors.values()) {
      groups += d.groups.size;
      evictions += d.evictions;
    }
    return { ...this.counters, detectorGroups: groups, detectorEvictions: evictions };
  }

  /** Forgets detector state (windows) and the analysis cache. */
  reset(): void {
    for (const d of this.detectors.values()) d.groups.clear();
    this.cache.clear();
  }
}

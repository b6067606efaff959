// The rule engine: enrich records from their SQL, evaluate the candidate
// rules of each record's class, and run stateful detectors whose sliding
// windows follow record timestamps (never the wall clock), so replaying a
// capture gives the same alerts as seeing it live.
import type { AuditEvent, RiskLevel } from '@dbtap/core';
import { DbtapError, ErrorCodes, riskOfRank as riskOfRank_, riskRank as riskRank_ } from '@dbtap/core';
import { analyzeTokens as analyzeTokens_, type SqlAnalysis } from '../sql/analyze.js';
import { dialectForDbType as dialectForDbType_, dialectOptions as dialectOptions_, type Dialect, type DialectOptions } from '../sql/dialect.js';
import { TokenBuffer, scanSql as scanSql_ } from '../sql/lexer.js';
import { ShapeCache } from '../sql/shape.js';
import { EvalContext, type ShapeEntry } from './context.js';
import { FALSE, INDEX_KEYS as INDEX_KEYS_, ShapeFacts, indexKey as indexKey_, type ShapeTest } from './compile.js';
import { fieldDef as fieldDef_, type FieldDef } from './fields.js';
import type { CompiledDetector, CompiledRule, RuleSet } from './ruleset.js';
import type { AlertRecord } from './types.js';
import type { Predicate } from './compile.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const analyzeTokens = analyzeTokens_;
const dialectForDbType = dialectForDbType_;
const dialectOptions = dialectOptions_;
const scanSql = scanSql_;
const INDEX_KEYS = INDEX_KEYS_;
const indexKey = indexKey_;
const fieldDef = fieldDef_;
const riskRank = riskRank_;
const riskOfRank = riskOfRank_;

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
  /** SQL analyses kept for repeated statement shapes (texts that differ only in literal values); 0 disables. Default 4,096. */
  readonly analysisCacheSize?: number;
  /**
   * The SQL dialect of a record, e.g. the one its protocol decoder declares;
   * when absent or returning undefined, {@link dialectForDbType} of the
   * record's `dbType` decides.
   */
  readonly dialectFor?: (event: AuditEvent) => Dialect | undefined;
  /**
   * Evaluate every rule's whole condition on every record, without the
   * index by record class and statement shape (the results are the same;
   * this exists to check that). Default false.
   */
  readonly exhaustive?: boolean;
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
  /** Rule conditions evaluated: the candidates the index chose for each record (allow-list rules included). */
  candidates: number;
  /** Alert records raised. */
  alerts: number;
  /** Records whose SQL was analysed by `enrich`. */
  analysed: number;
  /** Analyses served from the cache (a statement of a shape seen before). */
  analysisCacheHits: number;
  /** Detector groups currently held (all detectors). */
  detectorGroups: number;
  /** Detector groups evicted to stay within `maxGroups`. */
  detectorEvictions: number;
}

const EMPTY: Verdict = Object.freeze({ risk: 'none', ruleIds: [], alerts: [] }) as unknown as Verdict;

/**
 * Per-group detector state. Count and distinct state stay below the
 * threshold (a firing resets the group), so they are bounded by it; sums
 * are kept in a fixed ring of buckets.
 */
interface GroupState {
  /** Timestamps of counted events (count detectors), oldest first from `head`. */
  ts: number[];
  /** Record ids beside `ts`. */
  ids: string[];
  head: number;
  /** value -> last seen (distinct detectors). */
  seen: Map<string, number> | undefined;
  /** Sum per bucket (sum detectors), a ring indexed by bucket number modulo SUM_BUCKETS. */
  sums: Float64Array | undefined;
  /** Bucket number each ring slot holds. */
  buckets: Float64Array | undefined;
  /** Sum of the ring. */
  total: number;
  /** Newest bucket number seen. */
  lastBucket: number;
  firstTs: number;
  /** Touched since the eviction hand last passed (second-chance eviction). */
  ref: boolean;
}

/** Sum windows are kept as this many buckets (an event leaves the sum between 59/60 and 60/60 of a window after it). */
const SUM_BUCKETS = 60;

class Detector {
  readonly groups = new Map<string, GroupState>();
  evictions = 0;
  private readonly groupDefs: FieldDef[];
  private readonly valueDef: FieldDef | undefined;
  private readonly spec: CompiledDetector;

  constructor(
    readonly rule: CompiledRule,
    private readonly maxGroups: number,
  ) {
    const d = rule.detector!;
    this.spec = d;
    this.groupDefs = d.groupBy.map((g) => fieldDef(g)!);
    this.valueDef = d.distinct !== undefined ? fieldDef(d.distinct) : d.sum !== undefined ? fieldDef(d.sum) : undefined;
  }

  private key(ctx: EvalContext): string {
    const defs = this.groupDefs;
    if (defs.length === 1) return keyPart(defs[0]!.get(ctx));
    let key = '';
    for (let i = 0; i < defs.length; i++) key += (i === 0 ? '' : '\u0001') + keyPart(defs[i]!.get(ctx));
    return key;
  }

  /**
   * Makes room for a new group: second-chance (clock) eviction in insertion
   * order. A group touched since the hand last passed is moved to the back
   * instead of being evicted, which approximates least-recently-used
   * without reordering the map on every hit.
   */
  private evictOne(): void {
    for (;;) {
      const it = this.groups.entries().next();
      if (it.done === true) return;
      const [k, st] = it.value;
      this.groups.delete(k);
      if (st.ref) {
        st.ref = false;
        this.groups.set(k, st);
        continue;
      }
      this.evictions++;
      return;
    }
  }

  /** Adds a matching event; returns an alert when the threshold is reached. */
  add(ctx: EvalContext): AlertRecord | undefined {
    const d = this.spec;
    const ev = ctx.event;
    const now = ev.ts;
    const key = this.key(ctx);
    let st = this.groups.get(key);
    if (st === undefined) {
      if (this.groups.size >= this.maxGroups) this.evictOne();
      st = { ts: [], ids: [], head: 0, seen: undefined, sums: undefined, buckets: undefined, total: 0, lastBucket: -Infinity, firstTs: now, ref: false };
      this.groups.set(key, st);
    } else st.ref = true;

    // The window is (now - length, now]: an event exactly one window old no longer counts.
    const since = now - d.windowUs;
    let value: number;
    if (d.distinct !== undefined) {
      const raw = this.valueDef!.get(ctx);
      if (raw === undefined) return undefined;
      const seen = (st.seen ??= new Map());
      for (const [k, t] of seen) if (t <= since) seen.delete(k);
      seen.set(String(raw), now);
      value = seen.size;
      if (seen.size === 1) st.firstTs = now;
    } else if (d.sum !== undefined) {
      const raw = this.valueDef!.get(ctx);
      if (typeof raw !== 'number' || raw === 0) return undefined;
      value = addToRing(st, Math.floor(now / (d.windowUs / SUM_BUCKETS)), raw);
    } else {
      const ts = st.ts;
      while (st.head < ts.length && ts[st.head]! <= since) st.head++;
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
    const parts = d.groupBy.length === 1 ? [key] : key.split('\u0001');
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

function keyPart(v: unknown): string {
  return v === undefined ? '' : typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : String(v);
}

/**
 * Adds `amount` in bucket `b` of a group's ring and returns the sum of the
 * last SUM_BUCKETS buckets. A running total avoids summing the ring per
 * event; buckets that fall out of the window are subtracted as the newest
 * bucket number advances (at most SUM_BUCKETS steps, however long the gap).
 */
function addToRing(st: GroupState, b: number, amount: number): number {
  const sums = (st.sums ??= new Float64Array(SUM_BUCKETS));
  const buckets = (st.buckets ??= new Float64Array(SUM_BUCKETS).fill(-Infinity));
  if (b > st.lastBucket) {
    if (b - st.lastBucket >= SUM_BUCKETS) {
      sums.fill(0);
      st.total = 0;
    } else {
      for (let k = st.lastBucket + 1; k <= b; k++) {
        const slot = ((k % SUM_BUCKETS) + SUM_BUCKETS) % SUM_BUCKETS;
        st.total -= sums[slot]!;
        sums[slot] = 0;
        buckets[slot] = k;
      }
    }
    st.lastBucket = b;
  }
  const slot = ((b % SUM_BUCKETS) + SUM_BUCKETS) % SUM_BUCKETS;
  if (b > st.lastBucket - SUM_BUCKETS) {
    // a late event still inside the ring counts in its own bucket
    if (buckets[slot] !== b) {
      st.total -= sums[slot]!;
      sums[slot] = 0;
      buckets[slot] = b;
    }
    sums[slot] += amount;
    st.total += amount;
  }
  return st.total;
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

/** Candidates of one index key: rules with their conditions compiled for that key. */
interface Candidates {
  readonly ignore: CompiledRule[];
  readonly ignoreTests: Predicate[];
  readonly ignoreShape: (ShapeTest | undefined)[];
  readonly rules: CompiledRule[];
  readonly tests: Predicate[];
  readonly shape: (ShapeTest | undefined)[];
  /** Some condition here reads a field a statement shape decides (so filtering by shape can drop rules). */
  readonly shaped: boolean;
}

function emptyCandidates(): Candidates {
  return { ignore: [], ignoreTests: [], ignoreShape: [], rules: [], tests: [], shape: [], shaped: false };
}

/** Candidate rules of one group, by index key. */
type GroupIndex = Map<string, Candidates>;

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
  private readonly cache: ShapeCache<ShapeEntry> | undefined;
  private readonly buf = new TokenBuffer();
  private readonly counters: RuleEngineStats = { events: 0, matched: 0, candidates: 0, alerts: 0, analysed: 0, analysisCacheHits: 0, detectorGroups: 0, detectorEvictions: 0 };
  /** The analysis `enrich` found for `lastEvent`, handed to `evaluate` of the same record. */
  private lastEvent: AuditEvent | undefined = undefined;
  private lastAnalysis: SqlAnalysis | undefined = undefined;
  /** The shape entry, dialect and facts `enrich` found for `lastEvent`. */
  private lastShape: ShapeEntry | undefined = undefined;
  private lastDialect: DialectOptions | undefined = undefined;
  private lastKnown = 0;
  /** Whether `enrich` scanned `lastEvent`'s text into `buf` (its tokens can serve the injection detector). */
  private lastScanned = false;
  /** Index of the fixed group (when there is no per-record `groupFor`). */
  private fixedIndex: GroupIndex | undefined = undefined;

  constructor(
    readonly ruleSet: RuleSet,
    private readonly options: RuleEngineOptions = {},
  ) {
    const tz = options.timezone ?? 'UTC';
    if (tz !== 'UTC' && tz !== 'local' && (typeof tz !== 'number' || !Number.isInteger(tz) || Math.abs(tz) > 24 * 60)) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `timezone must be 'UTC', 'local' or whole minutes east of UTC, not ${String(tz)}`);
    this.ctx.tzOffsetMin = tz === 'UTC' ? 0 : tz === 'local' ? NaN : tz;
    const cacheSize = options.analysisCacheSize ?? 4096;
    if (!(cacheSize >= 0)) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'analysisCacheSize must be 0 or more');
    this.cache = cacheSize > 0 ? new ShapeCache<ShapeEntry>(cacheSize) : undefined;
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
      ix = new Map();
      const exhaustive = this.options.exhaustive === true;
      for (const k of INDEX_KEYS) {
        const c = emptyCandidates();
        let shaped = false;
        for (const r of rules) {
          if (!exhaustive && r.indexKeys !== undefined && !r.indexKeys.includes(k)) continue;
          const test = exhaustive ? r.test : r.testFor(k);
          if (test === false) continue; // cannot match records of this key
          const st = exhaustive ? undefined : r.shapeTestFor(k);
          if (st !== undefined) shaped = true;
          if (r.action === 'ignore') {
            c.ignore.push(r);
            c.ignoreTests.push(test);
            c.ignoreShape.push(st);
          } else {
            c.rules.push(r);
            c.tests.push(test);
            c.shape.push(st);
          }
        }
        ix.set(k, { ...c, shaped });
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
    const dialect = dialectOptions(this.options.dialectFor?.(event) ?? dialectForDbType(event.dbType));
    // The record fields below come from the analysis alone when the decoder set none of them.
    const enriched = event.statementType === undefined && event.verb === undefined && event.objects === undefined && event.fingerprint === undefined;
    let a: SqlAnalysis | undefined;
    let entry: ShapeEntry | undefined;
    // Keyed by shape (literals dropped), so the many executions of one
    // application statement share one analysis. Statement offsets in a
    // shared analysis are those of its first text; nothing here reads them.
    const cache = this.cache;
    let scanned = false;
    if (cache !== undefined) {
      entry = cache.get(sql, dialect);
      if (entry !== undefined) {
        a = entry.analysis;
        this.counters.analysisCacheHits++;
      }
    }
    if (a === undefined) {
      a = analyzeTokens(scanSql(sql, dialect, this.buf), true);
      scanned = true;
      this.counters.analysed++;
      if (cache !== undefined && cache.set((entry = { analysis: a, sqli: undefined, from: undefined, known: 0, filtered: undefined })) === false) entry = undefined;
    }
    if (a.statements.length > 0) {
      event.statementType ??= a.type;
      if (event.verb === undefined && a.verb.length > 0) event.verb = a.verb;
      event.objects ??= a.objects;
      event.fingerprint ??= a.fingerprint;
    }
    this.lastEvent = event;
    this.lastAnalysis = a;
    this.lastShape = entry;
    this.lastDialect = dialect;
    this.lastKnown = ShapeFacts.analysis | (enriched ? ShapeFacts.enriched : 0);
    this.lastScanned = scanned;
    return event;
  }

  /** Evaluates the rules on a record (without changing it). */
  evaluate(event: AuditEvent): Verdict {
    this.counters.events++;
    const ctx = this.ctx;
    let shape: ShapeEntry | undefined;
    let known = 0;
    if (this.lastEvent === event) {
      shape = this.lastShape;
      known = this.lastKnown;
      ctx.reset(event, this.lastAnalysis, shape, this.lastDialect, this.lastScanned ? this.buf : undefined);
    } else ctx.reset(event);
    this.lastEvent = undefined;
    this.lastAnalysis = undefined;
    this.lastShape = undefined;
    const groupFor = this.options.groupFor;
    const ix = groupFor === undefined ? (this.fixedIndex ??= this.index(this.options.group)) : this.index(groupFor(event) ?? this.options.group);
    let cand = ix.get(indexKey(event.kind, event.statementType));
    if (cand === undefined) return EMPTY;
    if (shape !== undefined && cand.shaped) {
      // Candidates by statement shape: rules whose condition the shape
      // already decides to be false are dropped, once per shape.
      if (shape.sqli !== undefined && shape.sqli !== null) known |= ShapeFacts.verdict;
      if (shape.from === cand && shape.known === known) cand = shape.filtered as Candidates;
      else {
        const f = filterByShape(cand, ctx, known);
        shape.from = cand;
        shape.known = known;
        shape.filtered = f;
        cand = f;
      }
    }
    const ignoreTests = cand.ignoreTests;
    for (let i = 0; i < ignoreTests.length; i++) {
      if (ignoreTests[i]!(ctx)) {
        this.counters.candidates += i + 1;
        return EMPTY;
      }
    }
    this.counters.candidates += ignoreTests.length;
    const rules = cand.rules;
    const tests = cand.tests;
    if (rules.length === 0) return EMPTY;
    this.counters.candidates += rules.length;
    let rank = 0;
    let ruleIds: string[] | undefined;
    let alerts: AlertRecord[] | undefined;
    for (let i = 0; i < rules.length; i++) {
      if (!tests[i]!(ctx)) continue;
      const r = rules[i]!;
      if (r.detector !== undefined) {
        const a = this.detectors.get(r.id)!.add(ctx);
        if (a !== undefined) (alerts ??= []).push(a);
        continue;
      }
      (ruleIds ??= []).push(r.id);
      const rr = riskRank(r.risk);
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
    return { risk: riskOfRank(rank), ruleIds: ruleIds ?? [], alerts: alerts ?? [] };
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
    this.cache?.clear();
    this.lastEvent = undefined;
    this.lastAnalysis = undefined;
    this.lastShape = undefined;
  }
}

/** The candidates of `c` that the facts of the record's statement shape (in `ctx`) leave possible. */
function filterByShape(c: Candidates, ctx: EvalContext, known: number): Candidates {
  const out = emptyCandidates();
  keepPossible(c.ignore, c.ignoreTests, c.ignoreShape, out.ignore, out.ignoreTests, out.ignoreShape, ctx, known);
  keepPossible(c.rules, c.tests, c.shape, out.rules, out.tests, out.shape, ctx, known);
  return out;
}

/** Copies the rules (with their tests) whose shape test does not rule them out. */
function keepPossible(rules: CompiledRule[], tests: Predicate[], shape: (ShapeTest | undefined)[], toRules: CompiledRule[], toTests: Predicate[], toShape: (ShapeTest | undefined)[], ctx: EvalContext, known: number): void {
  for (let i = 0; i < rules.length; i++) {
    const st = shape[i];
    if (st !== undefined && st(ctx, known) === FALSE) continue;
    toRules.push(rules[i]!);
    toTests.push(tests[i]!);
    toShape.push(st);
  }
}

// What a compiled condition reads: the audit record plus values derived from
// it on demand (SQL analysis, injection verdict, local time). Each derived
// value is computed at most once per event, and only when a rule asks.
import type { AuditEvent } from '@dbtap/core';
import { analyzeTokens as analyzeTokens_, type SqlAnalysis } from '../sql/analyze.js';
import { dialectForDbType as dialectForDbType_, type DialectOptions } from '../sql/dialect.js';
import { TokenBuffer, scanSql as scanSql_ } from '../sql/lexer.js';
import { detectInjectionTokens as detectInjectionTokens_, verdictReadLiterals as verdictReadLiterals_, type SqlInjectionResult } from '../sql/sqli.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const analyzeTokens = analyzeTokens_;
const dialectForDbType = dialectForDbType_;
const scanSql = scanSql_;
const detectInjectionTokens = detectInjectionTokens_;
const verdictReadLiterals = verdictReadLiterals_;

/**
 * @internal What the engine keeps per statement shape (texts that differ
 * only in literal values): the analysis, the injection verdict when it read
 * no literal, and the candidate rules the shape leaves.
 */
export interface ShapeEntry {
  readonly analysis: SqlAnalysis;
  /** undefined: not computed yet; null: it read literals, so it holds for one text only. */
  sqli: SqlInjectionResult | null | undefined;
  /** The candidates (of one index key and group) last filtered for this shape, the facts known then, and the result. */
  from: unknown;
  known: number;
  filtered: unknown;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

const scratch = new TokenBuffer();

/** @internal Evaluation state of one event. */
export class EvalContext {
  event: AuditEvent = undefined as unknown as AuditEvent;
  private analysisDone = false;
  private analysis: SqlAnalysis | undefined = undefined;
  private sqliDone = false;
  private sqli: SqlInjectionResult | undefined = undefined;
  /** The shape entry of the event's text, when the engine has one. */
  private shape: ShapeEntry | undefined = undefined;
  /** Tokens of the event's text already scanned in `dialect` (checked against the text before use). */
  private tokens: TokenBuffer | undefined = undefined;
  /** Dialect the engine chose for the event's text (undefined: from its `dbType`). */
  private dialect: DialectOptions | undefined = undefined;
  private timeDone = false;
  private minuteOfDay = 0;
  private weekday = 0;
  /** Minutes east of UTC for time-of-day conditions, or NaN for the process's local zone. */
  tzOffsetMin = 0;

  /** Derived list fields computed for this event (several rules read the same ones), by slot number. */
  private readonly memoValue: unknown[] = [];
  /** The evaluation each slot was computed in (a slot from an earlier one is stale). */
  private readonly memoEpoch: number[] = [];
  private epoch = 0;

  /**
   * Starts the evaluation of `event`. The engine also hands over what it
   * already has for the event's text: its analysis, its shape entry (typed
   * loosely here: the entry is the engine's business), the dialect it
   * chose, and tokens it scanned.
   */
  reset(event: AuditEvent, analysis?: SqlAnalysis, shape?: object, dialect?: DialectOptions, tokens?: TokenBuffer): void {
    this.event = event;
    this.epoch++;
    this.analysisDone = analysis !== undefined;
    this.analysis = analysis;
    this.shape = shape as ShapeEntry | undefined;
    this.dialect = dialect;
    this.tokens = tokens;
    this.sqliDone = false;
    this.sqli = undefined;
    this.timeDone = false;
  }

  /** A derived value in slot `slot`, computed once per event. */
  cached<T>(slot: number, compute: (c: EvalContext) => T): T {
    if (this.memoEpoch[slot] === this.epoch) return this.memoValue[slot] as T;
    const v = compute(this);
    this.memoValue[slot] = v;
    this.memoEpoch[slot] = this.epoch;
    return v;
  }

  /** SQL analysis of the event's text (undefined without SQL). */
  getAnalysis(): SqlAnalysis | undefined {
    if (!this.analysisDone) {
      this.analysisDone = true;
      const sql = this.event.sql;
      if (sql !== undefined && sql.length > 0) {
        this.analysis = analyzeTokens(scanSql(sql, this.dialect ?? dialectForDbType(this.event.dbType), scratch), true);
      }
    }
    return this.analysis;
  }

  /** Injection verdict of the event's text (undefined without SQL). */
  getSqli(): SqlInjectionResult | undefined {
    if (!this.sqliDone) {
      this.sqliDone = true;
      const e = this.shape;
      if (e !== undefined && e.sqli !== undefined && e.sqli !== null) this.sqli = e.sqli;
      else {
        const sql = this.event.sql;
        if (sql !== undefined && sql.length > 0) {
          const t = this.tokens;
          this.sqli = detectInjectionTokens(t !== undefined && t.sql === sql ? t : scanSql(sql, this.dialect ?? dialectForDbType(this.event.dbType), scratch));
          if (e !== undefined && e.sqli === undefined) e.sqli = verdictReadLiterals() ? null : this.sqli;
        }
      }
    }
    return this.sqli;
  }

  private time(): void {
    if (this.timeDone) return;
    this.timeDone = true;
    const ms = Math.floor(this.event.ts / 1000);
    if (Number.isNaN(this.tzOffsetMin)) {
      const d = new Date(ms);
      this.minuteOfDay = d.getHours() * 60 + d.getMinutes();
      this.weekday = d.getDay();
    } else {
      // Plain arithmetic for a fixed offset (no Date per event): minutes
      // since the epoch in that zone; 1970-01-01 was a Thursday (day 4).
      const minutes = Math.floor(ms / 60_000) + this.tzOffsetMin;
      const days = Math.floor(minutes / 1440);
      this.minuteOfDay = minutes - days * 1440;
      this.weekday = (((days + 4) % 7) + 7) % 7;
    }
  }

  /** Minutes since local midnight. */
  getMinuteOfDay(): number {
    this.time();
    return this.minuteOfDay;
  }

  /** `sun` ... `sat`. */
  getWeekday(): string {
    this.time();
    return WEEKDAYS[this.weekday]!;
  }
}

import type { AlertInfo, AuditEvent, RiskLevel } from '@dbtap/core';

/** Risk a rule assigns (the record's `risk` is the highest of the rules that matched). */
export type RuleRisk = Exclude<RiskLevel, 'none'>;

/** What happens when a rule matches. */
export type RuleAction =
  /** Tag the record (risk, rule id) and raise an alert record. */
  | 'alert'
  /** Tag the record only. */
  | 'log'
  /** Stop evaluating: the record gets no risk and no rule ids (an allow-list entry). */
  | 'ignore';

/** A stateful detector: counts matching events per group in a sliding window. */
export interface DetectorSpec {
  /** Window length: a number of seconds, or text such as `90s`, `5m`, `1h`, `500ms`. */
  readonly window: string | number;
  /** Fire when the aggregate reaches this value. */
  readonly threshold: number;
  /** Fields whose values form the group key (e.g. `[client.ip]`); none = one global group. */
  readonly groupBy?: readonly string[];
  /** Count distinct values of this field instead of events (account sharing: `client.ip`). */
  readonly distinct?: string;
  /** Sum this numeric field instead of counting events (bulk export: `rowsReturned`). */
  readonly sum?: string;
}

/**
 * A rule as written in a rule file or passed as a plain object. Only `id`
 * is required when the entry amends an earlier rule (`override` / `append`).
 */
export interface RuleSpec {
  /** Stable identifier, e.g. `dangerous.drop-table`. */
  readonly id: string;
  /** Short human name. */
  readonly name?: string;
  /** What the rule is for. */
  readonly description?: string;
  /** Risk it assigns. */
  readonly risk?: RuleRisk;
  /** Condition in the rule language (docs/rules.md). */
  readonly condition?: string;
  /** Action on match; `log` by default, `alert` for detectors. */
  readonly action?: RuleAction;
  /** Disabled rules are compiled (so errors show) but never evaluated. */
  readonly enabled?: boolean;
  /** Free-form tags; groups can select rules by tag. */
  readonly tags?: readonly string[];
  /** Makes the rule stateful. */
  readonly detector?: DetectorSpec;
  /** Amend an earlier rule with the same id: replace only the fields given here. */
  readonly override?: boolean;
  /** Amend an earlier rule with the same id: its condition becomes `(old) and (this condition)`. */
  readonly append?: boolean;
}

/** A whole rule file as data (what YAML/JSON files hold). */
export interface RuleFileContent {
  /** Named value lists, or `{ items, append: true }` to extend a list defined earlier. */
  readonly lists?: Readonly<Record<string, readonly (string | number)[] | { readonly items: readonly (string | number)[]; readonly append?: boolean }>>;
  /** Named conditions, or `{ condition, append: true }` to OR more into a macro defined earlier. */
  readonly macros?: Readonly<Record<string, string | { readonly condition: string; readonly append?: boolean }>>;
  /** Rules. */
  readonly rules?: readonly RuleSpec[];
  /** Rule groups: name to members (rule ids, `id*` prefixes, or `tag:<tag>`). */
  readonly groups?: Readonly<Record<string, readonly string[]>>;
}

/** Severity of a diagnostic. */
export type DiagnosticSeverity = 'error' | 'warning';

/** A problem found while loading or compiling rules. */
export interface Diagnostic {
  /** Stable code, e.g. `DBTAP_E_RULE_SYNTAX`. */
  readonly code: string;
  /** Errors keep a file from loading; warnings do not. */
  readonly severity: DiagnosticSeverity;
  /** Human-readable explanation. */
  readonly message: string;
  /** File (or source name) the problem is in. */
  readonly file: string;
  /** 1-based line, 0 when unknown (plain-object sources). */
  readonly line: number;
  /** 1-based column, 0 when unknown. */
  readonly column: number;
}

/** Details of an alert record: the core {@link AlertInfo} plus the detector's window and threshold. */
export interface AlertDetails extends AlertInfo {
  /** Threshold configured (stateful rules). */
  readonly threshold?: number;
  /** Window length in microseconds (stateful rules). */
  readonly windowUs?: number;
  /** Timestamp of the first event counted in the window. */
  readonly firstTs?: number;
  /** Distinct values seen, for distinct-count detectors (at most the threshold). */
  readonly distinctValues?: readonly string[];
}

/**
 * An alert: an audit record of kind `alert`. It copies the who/where fields
 * of the event that raised it, carries the rule's risk and id, and explains
 * itself in `alert`.
 */
export type AlertRecord = AuditEvent & {
  /** Always `alert`. */
  kind: 'alert';
  /** Why the alert was raised. */
  alert: AlertDetails;
};

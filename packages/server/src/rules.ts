import { DbtapError, type AuditEvent, type RiskLevel } from '@dbtap/core';
import { builtinRuleFiles, formatDiagnostic, loadRuleFiles, RuleEngine, RuleErrorCodes, RuleSet, type AlertRecord, type RuleEngineOptions, type RuleEngineStats } from '@dbtap/rules';
import type { AuditCatalog } from './catalog.js';
import type { RecordProcessor } from './compose.js';

/** Which rules an audit applies. */
export interface RuleSelection {
  /** The built-in policy library: all default policies (`true`), none (`false`), or the named ones. */
  builtin: boolean | readonly string[];
  /** Rule files loaded after the library (they may append to or override it). */
  files: readonly string[];
}

/**
 * Loads and compiles the selected rules. Any error diagnostic throws
 * `DBTAP_E_RULE_LOAD` listing every `file:line:column` problem.
 */
export function loadRuleSelection(sel: RuleSelection): RuleSet {
  const include = sel.builtin === false ? [] : builtinRuleFiles(sel.builtin === true ? undefined : sel.builtin);
  const r = loadRuleFiles(sel.files, { include });
  if (!r.ok) {
    const lines = r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    throw new DbtapError(RuleErrorCodes.LOAD, `rules do not load:\n  ${lines.join('\n  ')}`, { diagnostics: r.diagnostics });
  }
  return r.ruleSet;
}

/**
 * A {@link RecordProcessor} that runs a rule engine: fills statement type,
 * objects and fingerprint, sets `risk` and `ruleIds`, and appends the alerts
 * the record raised (stateless alert rules and stateful detectors).
 * `options` go to the engine (e.g. `dialectFor` from {@link registryDialects}).
 */
export function rulesProcessor(ruleSet: RuleSet, options?: RuleEngineOptions): { process: RecordProcessor; engine: RuleEngine } {
  const engine = new RuleEngine(ruleSet, options);
  return {
    engine,
    process: (event: AuditEvent) => {
      const v = engine.process(event);
      return v.alerts.length === 0 ? [event] : [event, ...v.alerts];
    },
  };
}

/**
 * Which rules a {@link RuleRouter} runs: all of them, the per-record ones
 * (everything but detectors: verdicts and stateless alerts, which depend on
 * the record alone), or the stateful detectors (with the `ignore` rules,
 * which keep a record from reaching them), whose windows must see every
 * record of the server in order.
 */
export type RulePart = 'all' | 'per-record' | 'detectors';

/** Options of {@link RuleRouter}. */
export interface RuleRouterOptions {
  /** The SQL dialect of a record (e.g. from `registryDialects`); absent: the record's `dbType` decides. */
  dialectFor?: RuleEngineOptions['dialectFor'];
  /** The rules run; default `all`. */
  part?: RulePart;
}

// Group name no rule file can define: records of objects whose group is switched off.
const DISABLED_GROUP = '\u0000disabled';

/**
 * Rules per audit object: each record is judged by the rule group of its
 * audit object (all enabled rules when the object names none), using the
 * groups of the rule files plus those of the catalog (the config file's
 * `ruleGroups` and API changes). A catalog group can switch its rules off
 * (`enabled: false`) or raise/lower the risk of its matches (`risk`).
 * Changing the groups rebuilds the engine: detector windows start afresh.
 */
export class RuleRouter {
  private engine: RuleEngine;
  private overrides = new Map<string, { enabled: boolean; risk?: RiskLevel }>();

  /**
   * Rebuilds on every rule-group change of the catalog. `options.dialectFor`
   * goes to the engine (see {@link registryDialects}).
   */
  constructor(
    private readonly base: RuleSet,
    private readonly catalog: AuditCatalog,
    private readonly options: RuleRouterOptions = {},
  ) {
    this.engine = this.build();
    catalog.onChange((c) => {
      if (c === 'ruleGroups') this.engine = this.build();
    });
  }

  /** The {@link RecordProcessor}: verdict on the record, plus the alerts it raised. */
  readonly process: RecordProcessor = (event: AuditEvent) => {
    const v = this.engine.process(event);
    const group = this.catalog.ruleGroupOf(event.auditObjectId);
    const risk = group !== undefined ? this.overrides.get(group)?.risk : undefined;
    if (risk !== undefined && v.ruleIds.length > 0) event.risk = risk;
    if (v.alerts.length === 0) return [event];
    if (risk !== undefined) for (const a of v.alerts) a.risk = risk;
    return [event, ...v.alerts];
  };

  /**
   * The alerts the record raises, without changing its verdict fields
   * (`risk`, `ruleIds`): for the `detectors` part, run over records another
   * router's `per-record` part judged.
   */
  detect(event: AuditEvent): AlertRecord[] {
    this.engine.enrich(event);
    // the detectors see the record as an `all` router does: before its verdict is written
    const { risk: verdict, ruleIds } = event;
    delete event.risk;
    delete event.ruleIds;
    const alerts = this.engine.evaluate(event).alerts;
    if (verdict !== undefined) event.risk = verdict;
    if (ruleIds !== undefined) event.ruleIds = ruleIds;
    if (alerts.length === 0) return alerts;
    const group = this.catalog.ruleGroupOf(event.auditObjectId);
    const risk = group !== undefined ? this.overrides.get(group)?.risk : undefined;
    if (risk !== undefined) for (const a of alerts) a.risk = risk;
    return alerts;
  }

  /** Counters of the current engine. */
  stats(): RuleEngineStats {
    return this.engine.stats();
  }

  private build(): RuleEngine {
    const groups = new Map<string, string[]>([...this.base.groups].map(([k, v]) => [k, [...v]]));
    this.overrides = new Map();
    for (const g of this.catalog.ruleGroups()) {
      // a catalog group without ruleIds adjusts the rule-file group of the same name
      if (g.ruleIds !== undefined) groups.set(g.id, [...g.ruleIds]);
      else if (!groups.has(g.id)) groups.set(g.id, []);
      this.overrides.set(g.id, { enabled: g.enabled, ...(g.risk !== undefined ? { risk: g.risk } : {}) });
    }
    groups.set(DISABLED_GROUP, []);
    const part = this.options.part ?? 'all';
    const rules = part === 'all' ? [...this.base.rules] : this.base.rules.filter((r) => (part === 'detectors' ? r.detector !== undefined || r.action === 'ignore' : r.detector === undefined));
    const set = new RuleSet(rules, groups, new Map([...this.base.lists].map(([k, v]) => [k, [...v]])), [...this.base.warnings]);
    return new RuleEngine(set, {
      ...(this.options.dialectFor !== undefined ? { dialectFor: this.options.dialectFor } : {}),
      groupFor: (e) => {
        const g = this.catalog.ruleGroupOf(e.auditObjectId);
        if (g === undefined) return undefined;
        return this.overrides.get(g)?.enabled === false ? DISABLED_GROUP : g;
      },
    });
  }
}

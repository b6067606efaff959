import { DbtapError, type AuditEvent } from '@dbtap/core';
import { builtinRuleFiles, formatDiagnostic, loadRuleFiles, RuleEngine, type RuleSet } from '@dbtap/rules';
import type { RecordProcessor } from './daemon.js';

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
    throw new DbtapError('DBTAP_E_RULE_LOAD', `rules do not load:\n  ${lines.join('\n  ')}`, { diagnostics: r.diagnostics });
  }
  return r.ruleSet;
}

/**
 * A {@link RecordProcessor} that runs a rule engine: fills statement type,
 * objects and fingerprint, sets `risk` and `ruleIds`, and appends the alerts
 * the record raised (stateless alert rules and stateful detectors).
 */
export function rulesProcessor(ruleSet: RuleSet): { process: RecordProcessor; engine: RuleEngine } {
  const engine = new RuleEngine(ruleSet);
  return {
    engine,
    process: (event: AuditEvent) => {
      const v = engine.process(event);
      return v.alerts.length === 0 ? [event] : [event, ...v.alerts];
    },
  };
}

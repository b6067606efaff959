import { DbtapError, ErrorCodes } from '@dbtap/core';
import { parseRuleText, compileRules, type RuleSet } from '../rules/ruleset.js';
import type { RuleFile } from '../rules/loader.js';
import { BUILTIN_POLICIES } from './library.js';

/** A shipped policy as listed by {@link builtinPolicies}. */
export interface PolicyInfo {
  /** Name to enable it by. */
  readonly name: string;
  /** What it watches for. */
  readonly description: string;
  /** Part of the default library. */
  readonly defaultEnabled: boolean;
  /** Ids of its rules. */
  readonly ruleIds: readonly string[];
}

const parsed = new Map<string, RuleFile>();

function policy(name: string): (typeof BUILTIN_POLICIES)[number] {
  const p = BUILTIN_POLICIES.find((x) => x.name === name);
  if (p === undefined) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `unknown built-in policy '${name}' (known: ${BUILTIN_POLICIES.map((x) => x.name).join(', ')})`);
  return p;
}

/** The shipped policies. */
export function builtinPolicies(): PolicyInfo[] {
  return BUILTIN_POLICIES.map((p) => ({
    name: p.name,
    description: p.description,
    defaultEnabled: p.defaultEnabled,
    ruleIds: (loadBuiltinPolicy(p.name).content.rules ?? []).map((r) => r.id),
  }));
}

/** YAML text of a shipped policy (a starting point for your own files). */
export function builtinPolicyText(name: string): string {
  return policy(name).text;
}

/**
 * A shipped policy as a rule file, ready for `compileRules` or as
 * `LoadOptions.include`.
 * @throws DbtapError `DBTAP_E_INVALID_ARGUMENT` for an unknown name.
 */
export function loadBuiltinPolicy(name: string): RuleFile {
  let f = parsed.get(name);
  if (f === undefined) {
    f = parseRuleText(policy(name).text, `builtin:${name}`);
    parsed.set(name, f);
  }
  return f;
}

/** Rule files of the named policies (the default library when `names` is absent), in library order. */
export function builtinRuleFiles(names?: readonly string[]): RuleFile[] {
  if (names !== undefined) for (const n of names) policy(n);
  return BUILTIN_POLICIES.filter((p) => (names === undefined ? p.defaultEnabled : names.includes(p.name))).map((p) => loadBuiltinPolicy(p.name));
}

/** The default library compiled: every policy enabled by default (or the named ones). */
export function defaultRuleSet(names?: readonly string[]): RuleSet {
  return compileRules(builtinRuleFiles(names));
}

import { RISK_LEVELS, type RiskLevel } from '@dbtap/core';
import { ServerErrorCodes } from '../errors.js';
import { failWith, validateAuditObjects, type AuditObjectDef, type ValidationFailure } from '../objects.js';
import { checkKeys } from '../validate.js';

export type { AuditObjectDef } from '../objects.js';

/** Error codes of the HTTP API; a view of {@link ServerErrorCodes}. */
export const HttpErrorCodes = {
  BAD_REQUEST: ServerErrorCodes.BAD_REQUEST,
  BAD_JSON: ServerErrorCodes.BAD_JSON,
  PAYLOAD_TOO_LARGE: ServerErrorCodes.PAYLOAD_TOO_LARGE,
  NOT_FOUND: ServerErrorCodes.NOT_FOUND,
  UNKNOWN_REPORT: ServerErrorCodes.UNKNOWN_REPORT,
  METHOD_NOT_ALLOWED: ServerErrorCodes.METHOD_NOT_ALLOWED,
  INTERNAL: ServerErrorCodes.INTERNAL,
  BAD_HOST: ServerErrorCodes.BAD_HOST,
  CROSS_ORIGIN: ServerErrorCodes.CROSS_ORIGIN,
  UNSUPPORTED_MEDIA_TYPE: ServerErrorCodes.UNSUPPORTED_MEDIA_TYPE,
} as const;

/** A named set of rules that is switched on or off together. */
export interface RuleGroupDef {
  /** Stable id. 1 to 128 characters of `[A-Za-z0-9_.:-]`. */
  id: string;
  /** Display name. */
  name?: string;
  /** Whether the group's rules are evaluated. */
  enabled: boolean;
  /** Ids of the rules in the group. */
  ruleIds?: string[];
  /** When set, matches of the group's rules get this risk level instead of the rule's own. */
  risk?: RiskLevel;
  /** Free text. */
  description?: string;
}

/**
 * Where the API reads and writes a list of settings (audit objects or rule
 * groups). `replace` receives a validated list and swaps it in whole; it
 * may reject with a `DbtapError` (shown to the client as a 400) when the
 * daemon cannot apply it.
 */
export interface ListProvider<T> {
  /** The current list. */
  list(): Promise<readonly T[]> | readonly T[];
  /** Replaces the whole list. */
  replace(items: readonly T[]): Promise<void> | void;
}

/** Provider of the audit objects behind `/api/objects`. */
export type ObjectProvider = ListProvider<AuditObjectDef>;
/** Provider of the rule groups behind `/api/rule-groups`. */
export type RuleGroupProvider = ListProvider<RuleGroupDef>;

/** A {@link ListProvider} that keeps the list in memory (the default when none is given). */
export class MemoryListProvider<T> implements ListProvider<T> {
  private items: readonly T[];
  constructor(initial: readonly T[] = []) {
    this.items = structuredClone(initial);
  }
  /** {@inheritDoc ListProvider.list} */
  list(): readonly T[] {
    return structuredClone(this.items);
  }
  /** {@inheritDoc ListProvider.replace} */
  replace(items: readonly T[]): void {
    this.items = structuredClone(items);
  }
}

const idRe = /^[A-Za-z0-9_.:-]{1,128}$/;

const fail: ValidationFailure = failWith(HttpErrorCodes.BAD_REQUEST);

function str(o: Record<string, unknown>, key: string, path: string, required: boolean, max = 1024): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) fail(`${path}.${key}`, 'required');
    return undefined;
  }
  if (typeof v !== 'string' || v === '' || v.length > max) fail(`${path}.${key}`, `expected a non-empty string of at most ${max} characters`);
  return v;
}


function list(value: unknown, key: string): Record<string, unknown>[] {
  const arr = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
  if (!Array.isArray(arr)) fail(key, `expected a body of the form { "${key}": [ ... ] }`);
  if (arr.length > 10_000) fail(key, 'more than 10000 entries');
  return arr.map((x, i) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) fail(`${key}[${i}]`, 'expected an object');
    return x as Record<string, unknown>;
  });
}

function uniqueIds(items: readonly { id: string }[], key: string): void {
  const seen = new Set<string>();
  items.forEach((x, i) => {
    if (seen.has(x.id)) fail(`${key}[${i}].id`, `duplicate id ${JSON.stringify(x.id)}`);
    seen.add(x.id);
  });
}

/** Validates the body of `PUT /api/objects`; throws `DBTAP_E_BAD_REQUEST` naming the offending field. */
export function parseAuditObjects(body: unknown): AuditObjectDef[] {
  const arr = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).objects : undefined;
  if (!Array.isArray(arr)) fail('objects', 'expected a body of the form { "objects": [ ... ] }');
  return validateAuditObjects(arr, 'objects', fail);
}

/** Validates the body of `PUT /api/rule-groups`; throws `DBTAP_E_BAD_REQUEST` naming the offending field. */
export function parseRuleGroups(body: unknown): RuleGroupDef[] {
  const out = list(body, 'ruleGroups').map((o, i): RuleGroupDef => {
    const p = `ruleGroups[${i}]`;
    checkKeys(o, ['id', 'name', 'enabled', 'ruleIds', 'risk', 'description'], p, fail, 'field');
    const id = str(o, 'id', p, true)!;
    if (!idRe.test(id)) fail(`${p}.id`, 'expected 1 to 128 characters of A-Z a-z 0-9 _ . : -');
    if (typeof o.enabled !== 'boolean') fail(`${p}.enabled`, 'required: true or false');
    const def: RuleGroupDef = { id, enabled: o.enabled };
    if (o.ruleIds !== undefined) {
      if (!Array.isArray(o.ruleIds) || o.ruleIds.length > 10_000 || !o.ruleIds.every((r) => typeof r === 'string' && r !== '' && r.length <= 256)) {
        fail(`${p}.ruleIds`, 'expected an array of non-empty strings');
      }
      def.ruleIds = [...(o.ruleIds as string[])];
    }
    if (o.risk !== undefined) {
      if (!(RISK_LEVELS as readonly unknown[]).includes(o.risk)) fail(`${p}.risk`, `expected one of ${RISK_LEVELS.join(', ')}`);
      def.risk = o.risk as RiskLevel;
    }
    const name = str(o, 'name', p, false);
    const description = str(o, 'description', p, false, 4096);
    if (name !== undefined) def.name = name;
    if (description !== undefined) def.description = description;
    return def;
  });
  uniqueIds(out, 'ruleGroups');
  return out;
}

// One validator for configuration documents: a shape says what a value may
// be (its type, the keys of a mapping, the items of a list), and checking a
// value against it rejects unknown keys at every level with a suggestion
// for the key that was probably meant. Sections with rules of their own
// (audit objects, notification channels, masking rules) check their keys
// with the same `checkKeys`.
import { DbtapError, ErrorCodes } from '@dbtap/core';

/**
 * Reports a problem at a dotted key path and throws: `want` completes the
 * sentence `agents.listen[0].port must be ...`.
 */
export type ConfigFail = (path: string, want: string) => never;

/** What a configuration value may be. */
export type Shape =
  | { readonly kind: 'string'; readonly values?: readonly string[] }
  | { readonly kind: 'integer'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'number' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'list'; readonly items: Shape }
  | { readonly kind: 'map'; readonly keys: Readonly<Record<string, Shape>>; readonly required?: readonly string[] }
  /** Any of the shapes (say, a string or a list of strings), described by `want`. */
  | { readonly kind: 'either'; readonly shapes: readonly Shape[]; readonly want: string }
  /** Checked by the section's own parser. */
  | { readonly kind: 'any' };

/** Shape builders, so a schema reads like the document it describes. */
export const shape = {
  string: (values?: readonly string[]): Shape => (values === undefined ? { kind: 'string' } : { kind: 'string', values }),
  integer: (min?: number, max?: number): Shape => ({ kind: 'integer', ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) }),
  number: (): Shape => ({ kind: 'number' }),
  boolean: (): Shape => ({ kind: 'boolean' }),
  list: (items: Shape): Shape => ({ kind: 'list', items }),
  map: (keys: Record<string, Shape>, required?: readonly string[]): Shape => (required === undefined ? { kind: 'map', keys } : { kind: 'map', keys, required }),
  either: (want: string, ...shapes: Shape[]): Shape => ({ kind: 'either', shapes, want }),
  any: (): Shape => ({ kind: 'any' }),
  port: (): Shape => ({ kind: 'integer', min: 0, max: 65535 }),
} as const;

/** A {@link ConfigFail} that throws `DBTAP_E_CONFIG` naming `file` (when given) and the key path. */
export function configFail(file?: string): ConfigFail {
  return (path, want) => {
    throw new DbtapError(ErrorCodes.CONFIG, `${file !== undefined ? `${file}: ` : ''}${path} must be ${want}`, { ...(file !== undefined ? { file } : {}), path });
  };
}

/**
 * Fails on the first key of `o` that is not in `known`, suggesting the known
 * key it is closest to: `agents.tokens must be one of listen, token
 * (unknown key; did you mean 'token'?)`. With a `(path, message)` failure
 * (the HTTP API's), the message is `unknown field (did you mean ...; allowed: ...)`.
 */
export function checkKeys(o: object, known: readonly string[], path: string, fail: ConfigFail, style: 'config' | 'field' = 'config'): void {
  for (const k of Object.keys(o)) {
    if (known.includes(k)) continue;
    const near = nearest(k, known);
    const at = path === '' ? k : `${path}.${k}`;
    if (style === 'field') fail(at, `unknown field (${near !== undefined ? `did you mean '${near}'? ` : ''}allowed: ${known.join(', ')})`);
    fail(at, `one of ${known.join(', ')} (unknown key${near !== undefined ? `; did you mean '${near}'?` : ''})`);
  }
}

/** Checks `value` against `s` at `path`; returns it unchanged. */
export function checkShape(value: unknown, s: Shape, path: string, fail: ConfigFail): unknown {
  const problem = mismatch(value, s, path, fail);
  if (problem !== undefined) fail(path || '(top level)', problem);
  return value;
}

/** Undefined when `value` fits; otherwise what was wanted. Unknown keys fail at once, at their own path. */
function mismatch(value: unknown, s: Shape, path: string, fail: ConfigFail): string | undefined {
  switch (s.kind) {
    case 'any':
      return undefined;
    case 'string':
      if (typeof value !== 'string' || value === '') return 'a non-empty string';
      if (s.values !== undefined && !s.values.includes(value)) return `one of ${s.values.join(', ')}`;
      return undefined;
    case 'integer': {
      const lo = s.min ?? Number.MIN_SAFE_INTEGER;
      const hi = s.max ?? Number.MAX_SAFE_INTEGER;
      if (!Number.isInteger(value) || (value as number) < lo || (value as number) > hi) return s.min === 0 && s.max === 65535 ? 'a port number (0-65535)' : `a whole number from ${lo} to ${hi}`;
      return undefined;
    }
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'a number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'true or false';
    case 'list':
      if (!Array.isArray(value)) return 'a list';
      value.forEach((item, i) => checkShape(item, s.items, `${path}[${i}]`, fail));
      return undefined;
    case 'map': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'a mapping';
      const known = Object.keys(s.keys);
      checkKeys(value, known, path, fail);
      for (const k of s.required ?? []) if ((value as Record<string, unknown>)[k] === undefined) checkShape(undefined, s.keys[k]!, join(path, k), fail);
      for (const [k, v] of Object.entries(value)) if (v !== undefined) checkShape(v, s.keys[k]!, join(path, k), fail);
      return undefined;
    }
    case 'either':
      for (const alt of s.shapes) {
        // an alternative fits when checking it throws nothing
        try {
          if (mismatch(value, alt, path, fail) === undefined) return undefined;
        } catch {
          // try the next one
        }
      }
      return s.want;
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** The known key within edit distance 2 of `key`, or one it starts or is the start of, if any. */
function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  const low = key.toLowerCase();
  for (const k of known) {
    const kl = k.toLowerCase();
    let d = distance(low, kl);
    // a cut-off key (tokenSha for tokenSha256) or one with a suffix (tokens for token)
    if (low.length >= 3 && kl.startsWith(low)) d = Math.min(d, 2.4);
    else if (kl.length >= 3 && low.startsWith(kl)) d = Math.min(d, 2.5);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

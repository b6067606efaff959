// Masking rules as configured, their validation, and the pieces they compile
// to: replacers (fixed text or keyed hash) and content patterns.
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { checkKeys, configFail, type ConfigFail } from '../validate.js';

/** Content patterns dbtap knows by name (see `docs/integrity.md`). */
export type BuiltinPattern = 'card' | 'iban' | 'email' | 'us-ssn';

/** The names of the {@link BuiltinPattern}s. */
export const BUILTIN_PATTERNS: readonly BuiltinPattern[] = ['card', 'iban', 'email', 'us-ssn'];

/**
 * Passwords in account statements: `CREATE USER ... IDENTIFIED BY '...'`
 * (also `WITH plugin BY|AS`, MariaDB `VIA ... USING`), `ALTER USER` (and its
 * `REPLACE '...'`), `SET PASSWORD [FOR ...] = ...`, `PASSWORD('...')`,
 * PostgreSQL `CREATE|ALTER ROLE|USER ... [ENCRYPTED] PASSWORD '...'`,
 * T-SQL `CREATE|ALTER LOGIN ... WITH PASSWORD = '...'`, replication
 * `MASTER_PASSWORD`/`SOURCE_PASSWORD`, the key argument of
 * `AES_ENCRYPT`-style functions, `password=` in connection strings, and
 * values of columns named like passwords (see `columns`).
 */
export interface PasswordMaskRule {
  /** Rule type. */
  type: 'password';
  /** Replacement for this rule (default: the config's). */
  replacement?: string;
  /**
   * Columns treated as holding passwords: literals compared with or
   * assigned to them, and their result values, are masked. Default
   * `password`, `passwd`, `pwd`, `authentication_string`, `rolpassword`.
   */
  columns?: string[];
}

/** Values matching a content pattern, wherever they occur (literals, parameters, rows, messages). */
export interface PatternMaskRule {
  /** Rule type. */
  type: 'pattern';
  /** Name for messages (defaults to the builtin's name or `pattern`). */
  name?: string;
  /** A built-in pattern (with its check digits); or give `regex`. */
  builtin?: BuiltinPattern;
  /** A JavaScript regular expression (without slashes). */
  regex?: string;
  /** Its flags: any of `i`, `m`, `s`, `u` (`g` is implied). */
  flags?: string;
  /** Only matches whose digits pass the Luhn check (payment cards, some national ids). */
  luhn?: boolean;
  /** Replacement for this rule (default: the config's). */
  replacement?: string;
}

/**
 * Literals of named columns: compared or assigned in `WHERE`, `SET`,
 * `ON DUPLICATE KEY UPDATE`, `IN (...)`, `BETWEEN`, and listed in
 * `INSERT ... (columns) VALUES (...)`, whether written in the SQL or bound as
 * parameters; and those columns' values in result rows.
 */
export interface ColumnMaskRule {
  /** Rule type. */
  type: 'column';
  /** Column names (case-insensitive), or `table.column` to mask only in statements naming that table. */
  columns: string[];
  /** Replacement for this rule (default: the config's). */
  replacement?: string;
}

/** One masking rule. */
export type MaskRule = PasswordMaskRule | PatternMaskRule | ColumnMaskRule;

/** What to mask and with what. */
export interface MaskingConfig {
  /** The rules, applied together. */
  rules: MaskRule[];
  /**
   * Default replacement: fixed text (default `***`; at most 64 characters,
   * no quotes, backslashes or control characters), or `hash`: `h:` and 16
   * hex digits of HMAC-SHA-256 under `hashKey`, so equal values stay
   * recognisable as equal without being readable.
   */
  replacement?: string;
  /** Key of `hash` replacements, at least 16 bytes (text or bytes). Required when any replacement is `hash`. */
  hashKey?: Uint8Array | string;
}

/**
 * The masking of a server whose configuration has no `masking` section: the
 * `password` rule alone, so the secrets of account statements (and
 * password-like result columns) are never stored. `masking: false` turns
 * it off.
 */
export const DEFAULT_MASKING: MaskingConfig = { rules: [{ type: 'password' }] };

/** Fails with a path to the bad key. */
export type { ConfigFail } from '../validate.js';

const DEFAULT_TEXT = '***';
const MIN_HASH_KEY = 16;
/** Password-like column names of the `password` rule. */
export const DEFAULT_PASSWORD_COLUMNS: readonly string[] = ['password', 'passwd', 'pwd', 'authentication_string', 'rolpassword'];

/** Turns a raw value (and its normalised form, for hashing) into its replacement. */
export type Replacer = (raw: string, normalized?: string) => string;

const defaultFail: ConfigFail = configFail();

function checkReplacement(v: unknown, path: string, fail: ConfigFail): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64 || /['"`\\\u0000-\u001f\u007f]/.test(v)) {
    fail(path, "'hash' or a text of 1 to 64 characters without quotes, backslashes or control characters");
  }
  return v;
}

/** Builds the replacer of a replacement setting. */
export function makeReplacer(replacement: string, hashKey: Buffer | undefined): Replacer {
  if (replacement !== 'hash') return () => replacement;
  const key = hashKey!;
  return (raw, normalized) => `h:${createHmac('sha256', key).update(normalized ?? raw, 'utf8').digest('hex').slice(0, 16)}`;
}

/** True when the digits of `s` pass the Luhn check (ISO/IEC 7812-1 annex B). */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let n = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) continue;
    let d = c - 0x30;
    if (n % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    n++;
  }
  return n > 0 && sum % 10 === 0;
}

/** True for an IBAN whose check digits are right (ISO 13616: mod 97 = 1). */
export function ibanValid(s: string): boolean {
  const t = s.replace(/ /g, '').toUpperCase();
  if (t.length < 15 || t.length > 34) return false;
  const r = t.slice(4) + t.slice(0, 4);
  let rem = 0;
  for (const ch of r) {
    const c = ch.charCodeAt(0);
    const v = c >= 0x30 && c <= 0x39 ? String(c - 0x30) : c >= 0x41 && c <= 0x5a ? String(c - 55) : null;
    if (v === null) return false;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - 0x30)) % 97;
  }
  return rem === 1;
}

/** A compiled content pattern. */
export interface CompiledPattern {
  /** Name for stats and messages. */
  readonly name: string;
  /** Global regular expression. */
  readonly re: RegExp;
  /** Extra check of a match (check digits); absent when every match counts. */
  readonly valid?: (m: string) => boolean;
  /** Normal form of a match for hashing (e.g. digits only), so spellings of one value hash alike. */
  readonly normalize: (m: string) => string;
  /** Its replacer. */
  readonly replace: Replacer;
}

const digitsOnly = (m: string): string => m.replace(/[^0-9]/g, '');

// Payment card numbers: 13 to 19 digits, optionally grouped by spaces or
// dashes, starting with an issuer digit 2-6 (ISO/IEC 7812 major industry
// identifiers of cards in use), Luhn-valid. Microsecond timestamps (starting
// with 1) are not mistaken for cards.
const BUILTIN: Record<BuiltinPattern, { source: string; flags: string; valid?: (m: string) => boolean; normalize?: (m: string) => string }> = {
  card: { source: '(?<![0-9])[2-6](?:[ -]?[0-9]){12,18}(?![0-9])', flags: '', valid: luhnValid, normalize: digitsOnly },
  iban: { source: '\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b', flags: '', valid: ibanValid, normalize: (m) => m.replace(/ /g, '').toUpperCase() },
  email: { source: "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}", flags: '', normalize: (m) => m.toLowerCase() },
  'us-ssn': { source: '(?<![0-9-])(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![0-9-])', flags: '', normalize: digitsOnly },
};

/** A masking configuration compiled for use. */
export interface CompiledMasking {
  /** Replacer of the password rule, when there is one. */
  password?: Replacer;
  /** Password-like columns (lower case) of the password rule. */
  passwordColumns: ReadonlySet<string>;
  /** Column rules by lower-case column name; `table` restricts to statements naming it. */
  columns: ReadonlyMap<string, ReadonlyArray<{ table?: string; replace: Replacer }>>;
  /** Content patterns. */
  patterns: readonly CompiledPattern[];
}

/**
 * Validates a masking configuration (as parsed from YAML/JSON, or built in
 * code) and compiles it. Throws `DBTAP_E_CONFIG` naming the bad key
 * (`masking.rules[2].regex`, ...).
 */
export function compileMasking(config: MaskingConfig, path = 'masking', fail: ConfigFail = defaultFail): CompiledMasking {
  if (config === null || typeof config !== 'object') fail(path, 'a mapping');
  if (!Array.isArray(config.rules)) fail(`${path}.rules`, 'a list of rules');
  const defaultReplacement = config.replacement === undefined ? DEFAULT_TEXT : checkReplacement(config.replacement, `${path}.replacement`, fail);
  let hashKey: Buffer | undefined;
  if (config.hashKey !== undefined) {
    const k = config.hashKey;
    if (typeof k !== 'string' && !(k instanceof Uint8Array)) fail(`${path}.hashKey`, 'text or bytes');
    hashKey = typeof k === 'string' ? Buffer.from(k, 'utf8') : Buffer.from(k);
    if (hashKey.length < MIN_HASH_KEY) fail(`${path}.hashKey`, `at least ${MIN_HASH_KEY} bytes`);
  }
  const replacerAt = (v: unknown, at: string): Replacer => {
    const r = v === undefined ? defaultReplacement : checkReplacement(v, at, fail);
    if (r === 'hash' && hashKey === undefined) fail(`${path}.hashKey`, "set (hashKeyFile, or DBTAP_MASKING_KEY) when a replacement is 'hash'");
    return makeReplacer(r, hashKey);
  };
  const out: { password?: Replacer; passwordColumns: Set<string>; columns: Map<string, Array<{ table?: string; replace: Replacer }>>; patterns: CompiledPattern[] } = {
    passwordColumns: new Set(),
    columns: new Map(),
    patterns: [],
  };
  config.rules.forEach((rule: unknown, i: number) => {
    const at = `${path}.rules[${i}]`;
    if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) fail(at, 'a mapping with a type');
    const r = rule as Record<string, unknown>;
    const allowed = (keys: string[]): void => checkKeys(r, keys, at, fail);
    const names = (v: unknown, p: string): string[] => {
      if (!Array.isArray(v) || v.some((c) => typeof c !== 'string' || !/^[^\s.]+(\.[^\s.]+)?$/.test(c))) fail(p, 'a list of column names (name or table.name)');
      return (v as string[]).map((c) => c.toLowerCase());
    };
    switch (r.type) {
      case 'password': {
        allowed(['type', 'replacement', 'columns']);
        if (out.password !== undefined) fail(at, 'the only rule of type password');
        out.password = replacerAt(r.replacement, `${at}.replacement`);
        const cols = r.columns === undefined ? DEFAULT_PASSWORD_COLUMNS : names(r.columns, `${at}.columns`);
        for (const c of cols) out.passwordColumns.add(c);
        break;
      }
      case 'column': {
        allowed(['type', 'replacement', 'columns']);
        const cols = names(r.columns, `${at}.columns`);
        if (cols.length === 0) fail(`${at}.columns`, 'a non-empty list of column names');
        const replace = replacerAt(r.replacement, `${at}.replacement`);
        for (const c of cols) {
          const dot = c.indexOf('.');
          const name = dot < 0 ? c : c.slice(dot + 1);
          const entry = dot < 0 ? { replace } : { table: c.slice(0, dot), replace };
          const list = out.columns.get(name) ?? [];
          list.push(entry);
          out.columns.set(name, list);
        }
        break;
      }
      case 'pattern': {
        allowed(['type', 'name', 'builtin', 'regex', 'flags', 'luhn', 'replacement']);
        if ((r.builtin === undefined) === (r.regex === undefined)) fail(at, 'given exactly one of builtin and regex');
        if (r.name !== undefined && (typeof r.name !== 'string' || r.name === '')) fail(`${at}.name`, 'a non-empty string');
        if (r.luhn !== undefined && typeof r.luhn !== 'boolean') fail(`${at}.luhn`, 'true or false');
        const replace = replacerAt(r.replacement, `${at}.replacement`);
        if (r.builtin !== undefined) {
          if (!BUILTIN_PATTERNS.includes(r.builtin as BuiltinPattern)) fail(`${at}.builtin`, `one of ${BUILTIN_PATTERNS.join(', ')}`);
          if (r.flags !== undefined) fail(`${at}.flags`, 'absent with builtin');
          const b = BUILTIN[r.builtin as BuiltinPattern];
          const valid = r.luhn === true ? luhnValid : b.valid;
          out.patterns.push({
            name: (r.name as string | undefined) ?? (r.builtin as string),
            re: new RegExp(b.source, `g${b.flags}`),
            ...(valid !== undefined ? { valid } : {}),
            normalize: b.normalize ?? ((m) => m),
            replace,
          });
        } else {
          if (typeof r.regex !== 'string' || r.regex === '') fail(`${at}.regex`, 'a non-empty regular expression');
          const flags = r.flags === undefined ? '' : r.flags;
          if (typeof flags !== 'string' || !/^[imsu]*$/.test(flags) || new Set(flags).size !== flags.length) fail(`${at}.flags`, 'some of i, m, s, u (each once)');
          let re: RegExp;
          try {
            re = new RegExp(r.regex as string, `g${flags}`);
          } catch (err) {
            fail(`${at}.regex`, `a valid regular expression (${(err as Error).message})`);
          }
          if (new RegExp(`^(?:${r.regex as string})$`, flags).test('')) fail(`${at}.regex`, 'a regular expression that cannot match the empty string');
          out.patterns.push({
            name: (r.name as string | undefined) ?? 'pattern',
            re,
            ...(r.luhn === true ? { valid: luhnValid } : {}),
            normalize: r.luhn === true ? digitsOnly : (m) => m,
            replace,
          });
        }
        break;
      }
      default:
        fail(`${at}.type`, 'password, pattern or column');
    }
  });
  return out;
}

/**
 * Reads the `masking:` section of a configuration file: the
 * {@link MaskingConfig} fields, with `hashKeyFile` (a file holding the hash
 * key) instead of `hashKey`; the environment variable `DBTAP_MASKING_KEY`
 * (the key itself) overrides it. Validates everything a
 * `RecordMasker` would; throws `DBTAP_E_CONFIG` with the key path
 * (`masking.rules[2].regex`, ...).
 */
export function parseMaskingConfig(doc: unknown, path = 'masking', env: NodeJS.ProcessEnv = process.env, fail: ConfigFail = defaultFail): MaskingConfig {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail(path, 'a mapping');
  const d = doc as Record<string, unknown>;
  checkKeys(d, ['rules', 'replacement', 'hashKeyFile'], path, fail);
  const cfg: MaskingConfig = { rules: d.rules as MaskRule[] };
  if (d.replacement !== undefined) cfg.replacement = d.replacement as string;
  if (env.DBTAP_MASKING_KEY) cfg.hashKey = env.DBTAP_MASKING_KEY;
  else if (d.hashKeyFile !== undefined) {
    if (typeof d.hashKeyFile !== 'string' || d.hashKeyFile === '') fail(`${path}.hashKeyFile`, 'a file path');
    cfg.hashKey = readKeyFile(d.hashKeyFile, `${path}.hashKeyFile`, fail);
  }
  compileMasking(cfg, path, fail);
  return cfg;
}

/** Reads a key file: its bytes, without one trailing newline. */
export function readKeyFile(file: string, path: string, fail: ConfigFail = defaultFail): Buffer {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch (err) {
    fail(path, `a readable file (${(err as Error).message})`);
  }
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return b.subarray(0, end);
}

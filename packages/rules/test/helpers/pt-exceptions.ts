// The intended differences between dbtap fingerprints and pt-fingerprint
// (Percona Toolkit 3.x, QueryRewriter::fingerprint), each as a named,
// narrow rewrite. A query agrees when both fingerprints are equal after the
// rewrites it needs; every rewrite used is counted. docs/rules.md lists the
// same names with the reasons.
import { TokenFlag, tokenize, type Dialect } from '../../src/index.js';

/** One intended difference. */
export interface FingerprintException {
  /** Name, as listed in docs/rules.md. */
  readonly name: string;
  /** Applies the difference: rewrites dbtap's and/or pt's fingerprint so this difference disappears. */
  readonly rewrite: (c: { sql: string; dialect: Dialect; ours: string; pt: string }) => { ours: string; pt: string };
}

// pt's pattern for a multi-row INSERT, which it cuts after the first row.
const PT_MULTI_ROW = /^\s*((?:INSERT|REPLACE)(?: IGNORE)?\s+INTO.+?VALUES\s*\(.*?\))\s*,\s*\(/is;

function cutAfterFirstRow(fp: string): string {
  const v = fp.search(/\bvalues\s*\(/);
  if (v < 0) return fp;
  let i = fp.indexOf('(', v);
  if (fp.startsWith('(?+)', i)) return fp.slice(0, i + 4);
  let depth = 0;
  for (; i < fp.length; i++) {
    if (fp[i] === '(') depth++;
    else if (fp[i] === ')' && --depth === 0) return fp.slice(0, i + 1);
  }
  return fp;
}

/** pt's passes after number replacement (lists, UNION repeats, the first LIMIT), re-applied after a rewrite removed what stopped them. */
function ptLater(fp: string): string {
  return ptUnionRepeat(fp.replace(/\b(in|values?)(?:[\s,]*\([\s?,]*\))+/g, '$1(?+)')).replace(/\blimit \?(?:, ?\?| offset \?)?/, 'limit ?');
}

/**
 * pt's number pattern applied to the names in a fingerprint. The pattern
 * is case-sensitive and pt applies it before lower-casing, so each name is
 * taken as the query spells it.
 */
function digitsInNames(fp: string, sql: string): string {
  const lowerSql = sql.toLowerCase();
  return fp.replace(/[a-z_$][a-z0-9_$]*(?:\.[a-z0-9_$]+)*\.?/g, (name) => {
    if (!/[0-9]/.test(name)) return name;
    const at = lowerSql.indexOf(name);
    const original = at >= 0 && lowerSql.length === sql.length ? sql.slice(at, at + name.length) : name;
    return original.replace(/[0-9+-][0-9a-f.xb+-]*/g, '?').replace(/[xb.+-]\?/g, '?').toLowerCase();
  });
}

/** pt's UNION folding: `select x union select x` -> `select x /*repeat union*\/`. */
function ptUnionRepeat(fp: string): string {
  return fp.replace(/\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+/g, '$1 /*repeat$2*/');
}

/** Every intended difference, in the order they are applied. */
export const FINGERPRINT_EXCEPTIONS: readonly FingerprintException[] = [
  {
    // pt recognises two tool query shapes and returns a name instead of a fingerprint.
    name: 'tool-queries',
    rewrite: (c) => (c.pt === 'mysqldump' || c.pt === 'percona-toolkit' ? { ours: c.ours, pt: c.ours } : c),
  },
  {
    // A text cut inside a string or comment (a truncated capture): pt's
    // regular expressions pair the quotes differently; the lexer marks the
    // literal unterminated and stops there.
    name: 'unterminated-literal',
    rewrite: (c) => (tokenize(c.sql, c.dialect).some((t) => (t.flags & TokenFlag.Unterminated) !== 0) ? { ours: '<unterminated>', pt: '<unterminated>' } : c),
  },
  {
    // PostgreSQL dollar quoting ($$...$$, $tag$...$tag$) is one string; pt
    // does not know it and fingerprints the body.
    name: 'dollar-quoted-strings',
    rewrite: (c) => (c.dialect === 'postgres' && /\$[A-Za-z_]*\$/.test(c.sql) ? { ours: '<dollar-quoted>', pt: '<dollar-quoted>' } : c),
  },
  {
    // pt keeps one blank when the query text ends in whitespace.
    name: 'trailing-space',
    rewrite: (c) => ({ ours: c.ours, pt: c.pt.replace(/\s+$/, '') }),
  },
  {
    // PostgreSQL $1 placeholders: pt replaces only the digits ($?).
    name: 'positional-parameters',
    rewrite: (c) => ({ ours: c.ours, pt: ptLater(c.pt.replace(/\$\?/g, '?')) }),
  },
  {
    // "name" is a quoted identifier outside MySQL; pt treats it as a string.
    name: 'ansi-quoted-identifiers',
    rewrite: (c) => (c.dialect === 'mysql' ? c : { ours: c.ours.replace(/"(?:[^"]|"")*"/g, '?').replace(/\.\?/g, '?'), pt: c.pt }),
  },
  {
    // pt's number pattern is case-sensitive and runs before lower-casing, so
    // upper-case hex digits and exponents survive: 0x1F -> ?f, 5.5E-3 -> ?e?
    // (and its lazy UNION folding can leave them behind: /*repeat union*/e?).
    name: 'upper-case-numbers',
    rewrite: (c) => (/\b0x[0-9a-fA-F]*[A-F]|\d[E][+-]?\d/.test(c.sql) ? { ours: c.ours, pt: ptLater(c.pt.replace(/(\/\*repeat[^*]*\*\/)(?:e\?|[a-f]+(?![a-z0-9_$]))/g, '$1').replace(/\?e\?/g, '?').replace(/\?[a-f]+(?![a-z0-9_$])/g, '?')) } : c),
  },
  {
    // pt matches quoted strings lazily, so 'it''s' is two strings to it (??);
    // its lazy UNION folding can then leave the second one behind (/*repeat union*/?).
    name: 'doubled-quotes',
    rewrite: (c) => (/'[^']*''[^']*'/.test(c.sql) ? { ours: c.ours, pt: ptLater(c.pt.replace(/\?{2,}/g, '?').replace(/(\/\*repeat[^*]*\*\/)\?/g, '$1')) } : c),
  },
  {
    // pt's number pattern starts with a sign, so + and - operators become ? (a + 1 -> a ? ?, a+1 -> a?).
    name: 'arithmetic-signs',
    rewrite: (c) => {
      const parts = c.ours.split('(?+)');
      return { ours: parts.map((p) => p.replace(/[+-]\?/g, '?').replace(/[+-][0-9a-f.xb+-]*/g, '?')).join('(?+)'), pt: c.pt };
    },
  },
  {
    // pt applies its number pattern inside names: t1 -> t?, utf8mb4 -> utf?m?,
    // f1.x -> f?x; names that then look alike also fold pt's UNION repeats.
    name: 'digits-in-names',
    rewrite: (c) => ({ ours: ptUnionRepeat(digitsInNames(c.ours, c.sql)), pt: c.pt }),
  },
  {
    // pt cuts a multi-row INSERT / REPLACE after its first row, dropping what follows (ON DUPLICATE KEY UPDATE, RETURNING).
    name: 'multi-row-insert',
    rewrite: (c) => (PT_MULTI_ROW.test(c.sql) ? { ours: cutAfterFirstRow(c.ours), pt: c.pt } : c),
  },
  {
    // String prefixes stay in pt's output: N'x' -> n?, E'x' -> e?, X'41' -> x?, _utf8mb4'x' -> _utf?m??
    name: 'string-prefixes',
    rewrite: (c) => (/(^|[^A-Za-z0-9_$])(?:[NnEeXxBb]|_[A-Za-z0-9]+)'/.test(c.sql) ? { ours: c.ours, pt: ptLater(c.pt.replace(/(^|[^a-z0-9_$?])(?:n|e|x|b|_[a-z0-9?]+)\?/g, '$1?')) } : c),
  },
  {
    // pt collapses only the first LIMIT of a query.
    name: 'every-limit',
    rewrite: (c) => ({ ours: c.ours, pt: c.pt.replace(/\blimit \?(?:, ?\?| offset \?)?/g, 'limit ?') }),
  },
  {
    // Several statements in one text: dbtap joins their fingerprints with "; ".
    name: 'statement-separator',
    rewrite: (c) => ({ ours: c.ours, pt: c.pt.replace(/\s*;\s*/g, '; ') }),
  },
];

/** Result of comparing one query. */
export interface FingerprintComparison {
  /** True when equal, directly or after the listed exceptions. */
  readonly agrees: boolean;
  /** Exceptions whose rewrite changed something on the way to agreement. */
  readonly used: string[];
  readonly ours: string;
  readonly pt: string;
}

/** Compares dbtap's fingerprint with pt's, applying the exceptions in order until they agree. */
export function compareFingerprints(sql: string, dialect: Dialect, ours: string, pt: string): FingerprintComparison {
  if (ours === pt) return { agrees: true, used: [], ours, pt };
  let c = { sql, dialect, ours, pt };
  const used: string[] = [];
  for (const ex of FINGERPRINT_EXCEPTIONS) {
    const r = ex.rewrite(c);
    if (r.ours !== c.ours || r.pt !== c.pt) {
      used.push(ex.name);
      c = { ...c, ours: r.ours, pt: r.pt };
      if (c.ours === c.pt) return { agrees: true, used, ours, pt };
    }
  }
  return { agrees: false, used, ours: c.ours, pt: c.pt };
}

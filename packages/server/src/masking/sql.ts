// Finds the sensitive literals of a SQL text with the rules package's lexer
// (so quotes, escapes, comments and dollar quoting are read exactly as the
// server reads them) and rewrites the text with those literals replaced.
// Placeholders in sensitive positions name the bound parameters to mask.
import { TokenBuffer, TokenFlag, TokenType, scanSql, type Dialect } from '@dbtap/rules';
import type { CompiledMasking, CompiledPattern, Replacer } from './config.js';

/** Result of masking one SQL text. */
export interface SqlMaskResult {
  /** The text with sensitive literals replaced (the input itself when nothing was). */
  sql: string;
  /** Bound parameters to mask: 0-based index -> replacer. */
  params: Map<number, Replacer>;
  /** Values masked: the literal's value -> its replacement (for values echoed elsewhere in the record). */
  secrets: Map<string, string>;
  /** Number of literals (or parts of literals) replaced. */
  replaced: number;
  /**
   * Secrets written as identifiers (Oracle `IDENTIFIED BY tiger`), lower
   * case -> replacement: fingerprints keep identifiers, so these are
   * replaced there too.
   */
  identifiers: Map<string, string>;
}

const T = TokenType;
const COMPARE = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '<=>', ':=', '==']);
const COMPARE_WORDS = new Set(['like', 'ilike', 'rlike', 'regexp']);
const PASSWORD_WORDS = new Set(['password', 'old_password', 'master_password', 'source_password']);
// Functions whose second argument is a key or pass phrase.
const KEY_FUNCTIONS = new Set(['aes_encrypt', 'aes_decrypt', 'des_encrypt', 'des_decrypt', 'pgp_sym_encrypt', 'pgp_sym_decrypt', 'pgp_sym_encrypt_bytea', 'pgp_sym_decrypt_bytea']);
// `password=...` / `pwd=...` inside connection strings (libpq, ODBC, JDBC URLs).
const CONN_PASSWORD = /\b(password|pwd)(\s*=\s*)([^\s;'"&]+)/gi;
// Procedures taking a password argument: its 0-based positions, and the
// names it may be passed by (T-SQL `@name = value`).
const PASSWORD_PROCEDURES = new Map<string, { readonly positions: readonly number[]; readonly names: readonly string[]; readonly call: 'exec' | 'call' }>([
  // T-SQL (SQL Server, Sybase): sp_addlogin @loginame, @passwd [, @defdb ...]; sp_password @old, @new [, @loginame]
  ['sp_addlogin', { positions: [1], names: ['@passwd'], call: 'exec' }],
  ['sp_password', { positions: [0, 1], names: ['@old', '@new'], call: 'exec' }],
  // Derby / DB2 system procedures: SYSCS_CREATE_USER(USERNAME, PASSWORD), SYSCS_RESET_PASSWORD(USERNAME, PASSWORD), SYSCS_MODIFY_PASSWORD(PASSWORD)
  ['syscs_create_user', { positions: [1], names: [], call: 'call' }],
  ['syscs_reset_password', { positions: [1], names: [], call: 'call' }],
  ['syscs_modify_password', { positions: [0], names: [], call: 'call' }],
]);
// Words without which no password rule can apply: one scan of the lower-cased
// text spares the token walk for most statements.
const PASSWORD_HINT = /identified|password|pwd|_encrypt|_decrypt|sp_addlogin|syscs_create_user/;

/** The literal value a string token denotes (quotes, prefixes and escapes removed). */
export function stringValue(text: string, backslash: boolean): string {
  if (text.startsWith('$')) {
    const end = text.indexOf('$', 1);
    const tag = text.slice(0, end + 1);
    return text.endsWith(tag) && text.length >= 2 * tag.length ? text.slice(tag.length, text.length - tag.length) : text.slice(tag.length);
  }
  if (/^n?q'/i.test(text)) return text.slice(text.indexOf("'") + 2, text.endsWith("'") ? -2 : undefined);
  let i = 0;
  let esc = backslash;
  while (i < text.length && text[i] !== "'" && text[i] !== '"') {
    if (text[i] === 'E' || text[i] === 'e') esc = true;
    i++;
  }
  const q = text[i] ?? "'";
  const body = text.slice(i + 1, text.length > i + 1 && text.endsWith(q) ? -1 : undefined);
  let out = body.split(q + q).join(q);
  if (esc && out.includes('\\')) {
    out = out.replace(/\\(.)/gs, (_m, c: string) => ({ n: '\n', t: '\t', r: '\r', b: '\b', '0': '\0', Z: '\x1a' } as Record<string, string>)[c] ?? c);
  }
  return out;
}

/** Applies content patterns inside a text; returns the new text (the same string when nothing matched). */
export function applyPatterns(text: string, patterns: readonly CompiledPattern[], secrets: Map<string, string> | undefined, count: { n: number }): string {
  let out = text;
  for (const p of patterns) {
    p.re.lastIndex = 0;
    if (!p.re.test(out)) continue;
    p.re.lastIndex = 0;
    out = out.replace(p.re, (m) => {
      if (p.valid !== undefined && !p.valid(m)) return m;
      const r = p.replace(m, p.normalize(m));
      secrets?.set(m, r);
      count.n++;
      return r;
    });
  }
  return out;
}

/** Masks `password=...` in a connection-string-like text. */
export function applyConnPassword(text: string, replace: Replacer, secrets: Map<string, string> | undefined, count: { n: number }): string {
  if (!/password|pwd/i.test(text)) return text;
  return text.replace(CONN_PASSWORD, (_m, k: string, eq: string, v: string) => {
    const r = replace(v);
    secrets?.set(v, r);
    count.n++;
    return `${k}${eq}${r}`;
  });
}

function unquoteIdent(text: string): string {
  const c = text[0];
  if (c === '`' || c === '"' || c === '[') {
    const close = c === '[' ? ']' : c;
    return text.slice(1, text.endsWith(close) ? -1 : undefined).split(close + close).join(close).toLowerCase();
  }
  return text.toLowerCase();
}

/**
 * Masks a SQL text per the compiled rules. `scratch` is reused between calls.
 */
export function maskSql(sql: string, dialect: Dialect, m: CompiledMasking, scratch: TokenBuffer = new TokenBuffer()): SqlMaskResult {
  // Which parts of the rules can apply at all (a substring test each), before
  // the text is lexed: most statements name no secret and skip the lexer.
  // Whatever the lexer's lower case holds, this one holds too (they differ
  // only when lower-casing changes the length, and then only outside ASCII).
  const hints = sql.toLowerCase();
  const passwordHint = m.password !== undefined && PASSWORD_HINT.test(hints);
  let columnHint = false;
  if (m.password !== undefined) for (const c of m.passwordColumns) if (hints.includes(c)) columnHint = true;
  if (!columnHint) for (const c of m.columns.keys()) if (hints.includes(c)) columnHint = true;
  if (!passwordHint && !columnHint && m.patterns.length === 0) return { sql, params: new Map(), secrets: new Map(), replaced: 0, identifiers: new Map() };
  const buf = scanSql(sql, dialect, scratch);
  const backslash = buf.dialect.backslashEscapes;
  const n = buf.count;
  // Significant tokens (comments left out), and each placeholder's parameter index.
  const sig: number[] = [];
  const paramIndex = new Map<number, number>();
  let ordinal = 0;
  for (let i = 0; i < n; i++) {
    const type = buf.type[i]!;
    if (type === T.Comment) continue;
    sig.push(i);
    if (type === T.Param) {
      const text = buf.text(i);
      if (text === '?') paramIndex.set(i, ordinal++);
      else if (/^[$:][0-9]+$/.test(text)) paramIndex.set(i, Number(text.slice(1)) - 1);
    }
  }
  const whole = new Map<number, Replacer>(); // token index -> replacer of the whole token
  const params = new Map<number, Replacer>();
  const oracleLike = dialect === 'oracle' || dialect === 'db2';

  const typeAt = (k: number): number => (k >= 0 && k < sig.length ? buf.type[sig[k]!]! : 0);
  const wordAt = (k: number): string => (typeAt(k) === T.Word ? buf.lowerText(sig[k]!) : '');
  const opAt = (k: number): string => (typeAt(k) === T.Operator ? buf.text(sig[k]!) : '');
  /** Marks the token at sig position k when it is a literal (or placeholder); true when it was. */
  const markToken = (k: number, r: Replacer, words = false): boolean => {
    const type = typeAt(k);
    const i = sig[k]!;
    if (type === T.Param) {
      const p = paramIndex.get(i);
      if (p !== undefined && p >= 0) params.set(p, r);
      return true;
    }
    if (type === T.String || type === T.Number || (words && (type === T.Word || type === T.QuotedIdent))) {
      whole.set(i, r);
      return true;
    }
    return false;
  };
  /** Position of the parenthesis closing the one at k (or the statement end). */
  const closing = (k: number, end: number): number => {
    let depth = 0;
    for (let j = k; j < end; j++) {
      const type = typeAt(j);
      if (type === T.LParen) depth++;
      else if (type === T.RParen && --depth === 0) return j;
    }
    return end;
  };
  /** Marks every literal and placeholder in positions from..to (exclusive). */
  const markRange = (from: number, to: number, r: Replacer): void => {
    for (let j = from; j < to; j++) markToken(j, r);
  };
  /** Marks the value expression starting at k: a literal, a signed number, a typed literal, a call or a parenthesised expression. */
  const markExpr = (k: number, end: number, r: Replacer): number => {
    if (k >= end) return k;
    if (opAt(k) === '-' || opAt(k) === '+') k++;
    if (markToken(k, r)) return k + 1;
    const type = typeAt(k);
    if (type === T.LParen) {
      const w = wordAt(k + 1);
      const c = closing(k, end);
      if (w !== 'select' && w !== 'with' && w !== 'values') markRange(k + 1, c, r);
      return c + 1;
    }
    if (type === T.Word) {
      if (typeAt(k + 1) === T.LParen) {
        const c = closing(k + 1, end);
        markRange(k + 2, c, r);
        return c + 1;
      }
      // DATE '2024-01-01', BINARY 'x', ...
      if (typeAt(k + 1) === T.String) {
        markToken(k + 1, r);
        return k + 2;
      }
    }
    return k;
  };

  /**
   * Marks the password arguments of the procedure named at k: `name(a, b)`,
   * or T-SQL's `EXEC name a, b` / `EXEC name @p = a, ...` (each value one token).
   */
  const markProcedureArgs = (k: number, e: number, spec: { readonly positions: readonly number[]; readonly names: readonly string[] }, r: Replacer): void => {
    let j = k + 1;
    const parens = typeAt(j) === T.LParen;
    const end = parens ? closing(j, e) : e;
    if (parens) j++;
    for (let arg = 0; j < end; arg++) {
      let name: string | undefined;
      if (j < sig.length && buf.text(sig[j]!).startsWith('@') && opAt(j + 1) === '=') {
        name = buf.lowerText(sig[j]!);
        j += 2;
      }
      const on = name !== undefined ? spec.names.includes(name) : spec.positions.includes(arg);
      let x = j;
      if (parens) {
        // the value runs to the next comma at this depth
        for (let depth = 0; x < end; x++) {
          const t = typeAt(x);
          if (t === T.LParen) depth++;
          else if (t === T.RParen) depth--;
          else if (t === T.Comma && depth === 0) break;
        }
        if (on) markRange(j, x, r);
      } else {
        x = on ? Math.max(markExpr(j, end, r), j + 1) : j + 1;
      }
      if (typeAt(x) !== T.Comma) break;
      j = x + 1;
    }
  };

  // Identifiers of each statement, for table-qualified column rules.
  let stmtIdents: Set<string> | undefined;
  let stmtStart = 0;
  let stmtEnd = 0;
  const identsOfStatement = (): Set<string> => {
    if (stmtIdents === undefined) {
      stmtIdents = new Set();
      for (let j = stmtStart; j < stmtEnd; j++) if (typeAt(j) === T.Word || typeAt(j) === T.QuotedIdent) stmtIdents.add(unquoteIdent(buf.text(sig[j]!)));
    }
    return stmtIdents;
  };
  /** The replacer of a sensitive column named by the identifier at k, if it is one. */
  const columnAt = (k: number): Replacer | undefined => {
    const type = typeAt(k);
    if (type !== T.Word && type !== T.QuotedIdent) return undefined;
    const name = unquoteIdent(buf.text(sig[k]!));
    if (m.password !== undefined && m.passwordColumns.has(name)) return m.password;
    const rules = m.columns.get(name);
    if (rules === undefined) return undefined;
    for (const rule of rules) if (rule.table === undefined || identsOfStatement().has(rule.table)) return rule.replace;
    return undefined;
  };

  for (let s = 0; (passwordHint || columnHint) && s < sig.length; ) {
    // One statement: sig positions s..e (exclusive).
    let e = s;
    while (e < sig.length && typeAt(e) !== T.Semicolon) e++;
    stmtStart = s;
    stmtEnd = e;
    stmtIdents = undefined;
    let identified = false;
    for (let k = s; k < e; k++) {
      const type = typeAt(k);
      // ---- passwords ----
      if (passwordHint && type === T.Word) {
        const pw = m.password!;
        const w = wordAt(k);
        if (w === 'identified') {
          identified = true;
          let j = k + 1;
          if (wordAt(j) === 'by') {
            j++;
            if (wordAt(j) === 'password' && typeAt(j + 1) !== T.LParen) j++;
            if (!(wordAt(j) === 'random' && wordAt(j + 1) === 'password')) markToken(j, pw, oracleLike);
          }
        } else if (identified && (w === 'by' || w === 'as' || w === 'using' || w === 'replace') && typeAt(k + 1) !== T.LParen) {
          if (w !== 'replace' || typeAt(k + 1) === T.String || typeAt(k + 1) === T.Param || oracleLike) markToken(k + 1, pw, oracleLike && (w === 'by' || w === 'replace'));
        } else if (PASSWORD_PROCEDURES.has(w)) {
          const spec = PASSWORD_PROCEDURES.get(w)!;
          const before = wordAt(k - 1);
          // a call of the procedure, not a column or table of that name
          const called = spec.call === 'call' ? typeAt(k + 1) === T.LParen : k === s || before === 'exec' || before === 'execute' || typeAt(k - 1) === T.Dot;
          if (called) markProcedureArgs(k, e, spec, pw);
        } else if (PASSWORD_WORDS.has(w) || KEY_FUNCTIONS.has(w)) {
          if (typeAt(k + 1) === T.LParen) {
            // PASSWORD('x'), OLD_PASSWORD('x'); AES_ENCRYPT(data, 'key'): the key argument only.
            const c = closing(k + 1, e);
            if (KEY_FUNCTIONS.has(w)) {
              let depth = 0;
              let arg = 0;
              for (let j = k + 2; j < c; j++) {
                const t = typeAt(j);
                if (t === T.LParen) depth++;
                else if (t === T.RParen) depth--;
                else if (t === T.Comma && depth === 0) arg++;
                else if (arg === 1) markToken(j, pw);
              }
            } else {
              markRange(k + 2, c, pw);
            }
          } else if (PASSWORD_WORDS.has(w)) {
            // [ENCRYPTED] PASSWORD 'x', PASSWORD = 'x', SET PASSWORD FOR u = 'x'
            let j = k + 1;
            if (wordAt(j) === 'for') {
              while (j < e && !COMPARE.has(opAt(j))) j++;
            }
            if (COMPARE.has(opAt(j))) j++;
            markToken(j, pw);
          }
        }
      }
      // ---- sensitive columns: col OP value, value OP col, IN, BETWEEN ----
      if (columnHint && (type === T.Word || type === T.QuotedIdent) && typeAt(k + 1) !== T.LParen && typeAt(k + 1) !== T.Dot) {
        const r = columnAt(k);
        if (r !== undefined) {
          let j = k + 1;
          if (wordAt(j) === 'not') j++;
          const op = opAt(j);
          const w = wordAt(j);
          if (COMPARE.has(op) || COMPARE_WORDS.has(w)) {
            j++;
            if (wordAt(j) === 'binary') j++;
            markExpr(j, e, r);
          } else if (w === 'similar' && wordAt(j + 1) === 'to') {
            markExpr(j + 2, e, r);
          } else if (w === 'in' && typeAt(j + 1) === T.LParen) {
            markExpr(j + 1, e, r);
          } else if (w === 'between') {
            const next = markExpr(j + 1, e, r);
            if (wordAt(next) === 'and') markExpr(next + 1, e, r);
          }
          // value OP col (the column possibly qualified: t.col)
          let before = k - 1;
          while (typeAt(before) === T.Dot && (typeAt(before - 1) === T.Word || typeAt(before - 1) === T.QuotedIdent)) before -= 2;
          if (COMPARE.has(opAt(before))) markToken(before - 1, r);
        }
      }
    }
    // ---- INSERT/REPLACE ... (columns) VALUES (...), (...) ----
    const verb = wordAt(s);
    if (columnHint && (verb === 'insert' || verb === 'replace')) insertValues(s, e);
    s = e + 1;
  }

  function insertValues(s: number, e: number): void {
    let k = s + 1;
    while (k < e && typeAt(k) !== T.LParen && wordAt(k) !== 'values' && wordAt(k) !== 'value' && wordAt(k) !== 'select' && wordAt(k) !== 'set') k++;
    if (typeAt(k) !== T.LParen) return;
    // The column list: identifiers separated by commas (each possibly qualified).
    const c = closing(k, e);
    const cols: Array<Replacer | undefined> = [];
    let current: Replacer | undefined;
    let any = false;
    for (let j = k + 1; j < c; j++) {
      const t = typeAt(j);
      if (t === T.Comma) {
        cols.push(current);
        current = undefined;
      } else if ((t === T.Word || t === T.QuotedIdent) && typeAt(j + 1) !== T.Dot) {
        current = columnAt(j);
        if (current !== undefined) any = true;
      }
    }
    cols.push(current);
    if (!any) return;
    let j = c + 1;
    if (wordAt(j) !== 'values' && wordAt(j) !== 'value') return;
    j++;
    // Each row tuple: items split at top-level commas.
    while (j < e && typeAt(j) === T.LParen) {
      const end = closing(j, e);
      let item = 0;
      let from = j + 1;
      let depth = 0;
      for (let x = j + 1; x <= end; x++) {
        const t = typeAt(x);
        if (t === T.LParen) depth++;
        else if (t === T.RParen && depth > 0) depth--;
        else if ((t === T.Comma && depth === 0) || x === end) {
          const r = cols[item];
          if (r !== undefined) markRange(from, x, r);
          item++;
          from = x + 1;
        }
      }
      j = end + 1;
      if (typeAt(j) !== T.Comma) break;
      j++;
    }
  }

  // ---- rewrite ----
  const secrets = new Map<string, string>();
  const identifiers = new Map<string, string>();
  const count = { n: 0 };
  let out = '';
  let last = 0;
  let changed = false;
  for (let i = 0; i < n; i++) {
    const type = buf.type[i]!;
    const r = whole.get(i);
    let text: string | undefined;
    if (r !== undefined) {
      const raw = buf.text(i);
      const value = type === T.String ? stringValue(raw, backslash) : type === T.QuotedIdent ? unquoteIdent(raw) : raw;
      const rep = type === T.String ? r(value) : type === T.Number && (buf.flags[i]! & TokenFlag.Binary) !== 0 ? r(raw) : r(value);
      secrets.set(value, rep);
      count.n++;
      if (type === T.QuotedIdent || type === T.Word) identifiers.set(value.toLowerCase(), rep);
      text = type === T.QuotedIdent || type === T.Word ? `"${rep}"` : `'${rep}'`;
    } else if (type === T.String || type === T.Comment || type === T.Number) {
      const raw = buf.text(i);
      let t = m.patterns.length > 0 ? applyPatterns(raw, m.patterns, secrets, count) : raw;
      if (passwordHint && type === T.String) t = applyConnPassword(t, m.password!, secrets, count);
      if (t !== raw) text = type === T.Number ? `'${t}'` : t;
    }
    if (text !== undefined) {
      out += sql.slice(last, buf.start[i]) + text;
      last = buf.end[i]!;
      changed = true;
    }
  }
  if (changed) out += sql.slice(last);
  return { sql: changed ? out : sql, params, secrets, replaced: count.n, identifiers };
}

// SQL-injection detection on whole statements, as a database audit sees them
// (the application already glued the input into the text). One walk over
// the scanned tokens looks for the shapes injected input leaves behind and
// scores them; each shape is a named reason. Rates on public corpora are in
// docs/sqli.md.
import { K as K_ } from './keywords.js';
import { TokenBuffer, TokenFlag as TokenFlag_, TokenType as TokenType_, scanSql as scanSql_ } from './lexer.js';
import { dialectOptions as dialectOptions_, type Dialect, type DialectOptions } from './dialect.js';
import { ShapeCache } from './shape.js';
import { nextSig as nextSig_ } from './split.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const K = K_;
const TokenFlag = TokenFlag_;
const TokenType = TokenType_;
const scanSql = scanSql_;
const nextSig = nextSig_;
const dialectOptions = dialectOptions_;

/** Result of {@link detectSqlInjection}. */
export interface SqlInjectionResult {
  /** True when the score reaches the threshold (0.7). */
  readonly injection: boolean;
  /** Names of the shapes found (see {@link SQLI_REASONS}), in text order. */
  readonly reasons: string[];
  /** Combined score in [0, 1]: 1 - product of (1 - weight) over the reasons found. */
  readonly score: number;
}

/**
 * Reasons the detector reports, with their weights. Weights of 0.7 and more
 * flag a statement on their own; the others need company.
 */
export const SQLI_REASONS: Readonly<Record<string, { readonly weight: number; readonly description: string }>> = {
  tautology: { weight: 0.9, description: 'OR followed by an always-true comparison or constant (OR 1=1, OR \'a\'=\'a\', OR 2>1, OR x=x)' },
  'union-select': { weight: 0.9, description: 'UNION SELECT of constants, NULL padding, or system information' },
  'union-probe': { weight: 0.5, description: 'UNION SELECT with some constant columns' },
  'union-column-mismatch': { weight: 0.8, description: 'UNION branches with different numbers of columns (the server rejects it: a probe for the column count)' },
  'union-shape': { weight: 0.5, description: 'UNION of SELECT * with a SELECT of named columns (or the reverse)' },
  'union-after-condition': { weight: 0.45, description: 'UNION right after the WHERE or HAVING clause of the branch before it' },
  'stacked-query': { weight: 0.8, description: 'a query followed by a statement of another kind (DDL, DCL, EXEC, SHUTDOWN, WAITFOR, writes)' },
  'comment-truncation': { weight: 0.8, description: 'a line comment that cuts off quoted SQL (admin\'-- \' AND ...)' },
  'trailing-comment': { weight: 0.5, description: 'a line comment ending the text right after a constant or a short glued comment (1--, \'x\' -- )' },
  'comment-obfuscation': { weight: 0.75, description: 'a block comment used as whitespace between words (UNION/**/SELECT)' },
  'executable-comment': { weight: 0.75, description: 'MySQL executable comment hiding UNION, SELECT or a condition inside a clause' },
  'unterminated-comment': { weight: 0.6, description: 'a block comment that never ends (truncates the rest of the statement)' },
  'unbalanced-quotes': { weight: 0.5, description: 'a string or quoted identifier that never ends' },
  'time-based': { weight: 0.9, description: 'a delay inside a condition or batch: SLEEP, BENCHMARK, pg_sleep, WAITFOR DELAY, DBMS_LOCK.SLEEP' },
  'time-call': { weight: 0.6, description: 'a delay function as the whole statement (SELECT SLEEP(5))' },
  'error-based': { weight: 0.9, description: 'functions used to leak data through error messages: EXTRACTVALUE, UPDATEXML, FLOOR(RAND(0)*2), EXP(~(...)), CONVERT(INT, ...) on system data' },
  'out-of-band': { weight: 0.9, description: 'file and network access: LOAD_FILE, INTO OUTFILE, UTL_HTTP, xp_cmdshell, xp_dirtree, OPENROWSET, COPY ... PROGRAM' },
  'blind-inference': { weight: 0.8, description: 'character-by-character probing: ASCII(SUBSTRING((SELECT ...),n,1)) and the like' },
  'boolean-probe': { weight: 0.7, description: 'AND / OR / XOR followed by a constant comparison no query builder writes (AND 8=3, AND 6=6, AND 3=PI())' },
  'constant-condition': { weight: 0.4, description: 'AND / XOR followed by 1=1, 1=0, TRUE or FALSE after another condition (query builders write these too)' },
  'missing-operator': { weight: 0.5, description: 'two constants, or a constant and a parenthesis, side by side in a condition (-1 (SELECT ...))' },
  'broken-union': { weight: 0.6, description: 'UNION followed by something other than SELECT' },
  'string-comparison': { weight: 0.7, description: "AND / OR / XOR followed by a comparison of two string constants (AND '6'='5', OR ''='')" },
  'string-condition': { weight: 0.7, description: "a bare string constant as an operand of AND / OR / XOR (' AND 'B')" },
  'comparison-chain': { weight: 0.7, description: "a constant compared twice in a row (= 'A' = 'B', = 'A' LIKE 'B')" },
  'literal-arithmetic': { weight: 0.7, description: "arithmetic or bitwise operators between string constants ('A' - 'B', 'A' DIV 'B')" },
  'misplaced-select': { weight: 0.6, description: 'SELECT without parentheses where a value is expected (= SELECT ..., AND SELECT ...)' },
  'unbalanced-parentheses': { weight: 0.5, description: 'a closing parenthesis without an opening one' },
  'dangling-end': { weight: 0.5, description: 'the text ends in an operator, a comma or a keyword that needs more (AND, UNION, WHERE, FROM, ...)' },
  'glued-keyword': { weight: 0.5, description: 'a number run into a keyword (1e0UNION, 1.UNION, 1and)' },
  'system-probe': { weight: 0.75, description: 'a condition that compares system data with a constant: the catalog (AND (SELECT COUNT(*) FROM sys.objects) > 0), the version (AND MID(VERSION(),1,1) = \'8\', @@version LIKE \'8%\'), the account or database (user() = \'root\')' },
  'case-probe': { weight: 0.75, description: 'a CASE that tests a constant or system condition, or whose branch is a subquery of UNIONed constants (CASE WHEN (1=1) THEN 1 ELSE (SELECT 1 UNION SELECT 2) END)' },
  'union-credentials': { weight: 0.6, description: 'a UNION branch that reads credential-like columns (password, pwd_hash, secret, token, ...)' },
  'system-info': { weight: 0.4, description: 'system catalog or server identity (information_schema, @@version, user()) inside a condition or UNION' },
  'encoded-literal': { weight: 0.35, description: 'hex strings or CHAR(n,n,n) building text inside a condition or UNION' },
};

const THRESHOLD = 0.7;

const shared = new TokenBuffer();

/**
 * Times the current detection read the contents of a number or string
 * literal (constant comparisons, UNC paths, hex lengths). A verdict that read
 * none depends only on the statement's shape (see shape.ts): every text that
 * differs from it only in literal values gets the same verdict, so it may be
 * cached per shape.
 */
let literalReads = 0;

/** @internal Whether the last {@link detectInjectionTokens} call read any literal's contents (its verdict then holds for that text only). */
export function verdictReadLiterals(): boolean {
  return literalReads > 0;
}

/** Verdicts of literal-independent statement shapes, for {@link detectSqlInjection}. */
const verdicts = new ShapeCache<SqlInjectionResult>(2048);

/** @internal A copy the caller may change without touching what a cache holds. */
export function copyVerdict(r: SqlInjectionResult): SqlInjectionResult {
  return { injection: r.injection, reasons: r.reasons.slice(), score: r.score };
}

/**
 * Looks for SQL injection in a whole statement (or multi-statement text).
 * Verdicts that do not depend on literal values are kept per statement
 * shape (a bounded cache), so the executions of one application statement
 * are scanned only for their shape.
 *
 * ```ts
 * detectSqlInjection("SELECT * FROM users WHERE name = '' OR '1'='1'")
 * // { injection: true, reasons: ['tautology'], score: 0.9 }
 * ```
 */
export function detectSqlInjection(sql: string, dialect?: Dialect | DialectOptions): SqlInjectionResult {
  const d = dialectOptions(dialect);
  const hit = verdicts.get(sql, d);
  if (hit !== undefined) return copyVerdict(hit);
  const r = detectInjectionTokens(scanSql(sql, d, shared));
  if (literalReads === 0) verdicts.set(copyVerdict(r));
  return r;
}

function isLit(t: number): boolean {
  return t === TokenType.String || t === TokenType.Number;
}

/** Value of a literal token for constant comparison: a number, or the string body. */
function litValue(buf: TokenBuffer, i: number): string | number {
  literalReads++;
  const text = buf.text(i);
  if (buf.type[i] === TokenType.Number) {
    const v = Number(text);
    return Number.isNaN(v) ? text : v;
  }
  let s = text;
  const q = s.indexOf("'") >= 0 ? s.indexOf("'") : s.indexOf('"');
  if (q > 0) s = s.slice(q);
  if (s.length >= 2) s = s.slice(1, -1);
  const asNum = s.trim().length > 0 ? Number(s) : NaN;
  return Number.isNaN(asNum) ? s.toLowerCase() : asNum;
}

function compare(a: string | number, op: string, b: string | number): boolean | undefined {
  if (typeof a !== typeof b) {
    // MySQL compares a string and a number numerically; a non-numeric string is 0
    a = typeof a === 'string' ? parseFloat(a) || 0 : a;
    b = typeof b === 'string' ? parseFloat(b) || 0 : b;
  }
  switch (op) {
    case '=':
    case '==':
    case '<=>':
    case 'like':
    case 'is':
      return a === b;
    case '<>':
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '>=':
      return a >= b;
    default:
      return undefined;
  }
}

/** A condition ends here: end of text, `)`, `;`, comment, or a keyword that starts the next clause. */
function isTerminator(buf: TokenBuffer, j: number): boolean {
  if (j >= buf.count) return true;
  const t = buf.type[j];
  if (t === TokenType.RParen || t === TokenType.Semicolon || t === TokenType.Comment) return true;
  const k = buf.kw[j];
  return k === K.or || k === K.and || k === K.limit || k === K.order || k === K.group || k === K.union || k === K.having || k === K.into || k === K.xor;
}

function opText(buf: TokenBuffer, j: number): string {
  if (buf.type[j] === TokenType.Operator) return buf.text(j);
  const k = buf.kw[j];
  return k === K.like ? 'like' : k === K.is ? 'is' : '';
}

/** Reads `[sign]literal` at j; returns index after it, or -1. */
function litAt(buf: TokenBuffer, j: number): number {
  if (j >= buf.count) return -1;
  if (isLit(buf.type[j]!)) return j + 1;
  if (buf.type[j] === TokenType.Operator && j + 1 < buf.count && buf.type[j + 1] === TokenType.Number) {
    const c = buf.sql.charCodeAt(buf.start[j]!);
    if ((c === 0x2d || c === 0x2b) && buf.end[j]! - buf.start[j]! === 1) return j + 2;
  }
  return -1;
}

function litValueAt(buf: TokenBuffer, j: number, after: number): string | number {
  if (after === j + 2) {
    const v = litValue(buf, j + 1);
    return buf.sql.charCodeAt(buf.start[j]!) === 0x2d && typeof v === 'number' ? -v : v;
  }
  return litValue(buf, j);
}

/** Always-true (or always-false with `wantFalse`) constant condition at j. */
function constantCondition(buf: TokenBuffer, j: number): boolean | undefined {
  const n = buf.count;
  j = nextSig(buf, j, n);
  if (j >= n) return undefined;
  const kw = buf.kw;
  const type = buf.type;
  // (<const>): the input opened a parenthesis the application's SQL closes
  if (type[j] === TokenType.LParen) return constantCondition(buf, j + 1);
  // NOT <const>
  if (kw[j] === K.not) {
    const r = constantCondition(buf, j + 1);
    return r === undefined ? undefined : !r;
  }
  if (kw[j] === K.true || kw[j] === K.false) {
    if (isTerminator(buf, nextSig(buf, j + 1, n))) return kw[j] === K.true;
  }
  const a = litAt(buf, j);
  if (a > 0) {
    const o = nextSig(buf, a, n);
    if (isTerminator(buf, o)) {
      const v = litValueAt(buf, j, a);
      return typeof v === 'number' ? v !== 0 : (parseFloat(v) || 0) !== 0;
    }
    const op = opText(buf, o);
    if (op.length === 0) {
      if (kw[o] === K.between) {
        const lo = litAt(buf, nextSig(buf, o + 1, n));
        if (lo > 0) {
          const an = nextSig(buf, lo, n);
          const hi = kw[an] === K.and ? litAt(buf, nextSig(buf, an + 1, n)) : -1;
          if (hi > 0) {
            const v = litValueAt(buf, j, a);
            const l = litValueAt(buf, nextSig(buf, o + 1, n), lo);
            const h = litValueAt(buf, nextSig(buf, an + 1, n), hi);
            return (compare(v, '>=', l) ?? false) && (compare(v, '<=', h) ?? false);
          }
        }
      }
      return undefined;
    }
    let b0 = nextSig(buf, o + 1, n);
    let negate = false;
    if (op === 'is' && kw[b0] === K.not) {
      negate = true;
      b0 = nextSig(buf, b0 + 1, n);
    }
    if (op === 'is' && (kw[b0] === K.null || kw[b0] === K.true || kw[b0] === K.false)) {
      const v = litValueAt(buf, j, a);
      const r = kw[b0] === K.null ? false : kw[b0] === K.true ? (typeof v === 'number' ? v !== 0 : true) : v === 0;
      return negate ? !r : r;
    }
    const b = litAt(buf, b0);
    if (b > 0) {
      const r = compare(litValueAt(buf, j, a), op, litValueAt(buf, b0, b));
      return r === undefined ? undefined : negate ? !r : r;
    }
    return undefined;
  }
  // x = x with the same column on both sides
  if (type[j] === TokenType.Word && kw[j] === 0) {
    const o = nextSig(buf, j + 1, n);
    const op = opText(buf, o);
    if (op === '=' || op === '<=>' || op === 'like' || op === '>=' || op === '<=') {
      const b = nextSig(buf, o + 1, n);
      if (b < n && type[b] === TokenType.Word && buf.lowerText(b) === buf.lowerText(j) && isTerminator(buf, nextSig(buf, b + 1, n))) return true;
    }
  }
  return undefined;
}

// Functions whose call marks a shape, keyed by keyword id.
const TIME_FN = new Set<number>([K.sleep, K.benchmark, K.pg_sleep, K.pg_sleep_for, K.pg_sleep_until]);
const OOB_FN = new Set<number>([K.load_file, K.xp_cmdshell, K.xp_dirtree, K.xp_fileexist, K.openrowset, K.opendatasource, K.sp_oacreate, K.lo_export, K.lo_import, K.httpuritype, K.pg_read_file, K.pg_ls_dir, K.load_extension]);
const ERR_FN = new Set<number>([K.extractvalue, K.updatexml, K.name_const, K.gtid_subset, K.xmltype, K.json_keys]);
const GEOM_FN = new Set<number>([K.polygon, K.geometrycollection, K.multipoint, K.linestring, K.st_latfromgeohash, K.st_longfromgeohash, K.st_pointfromgeohash]);
const INFER_FN = new Set<number>([K.ascii, K.ord, K.substring, K.substr, K.mid, K.length, K.instr, K.locate, K.hex, K.bin, K.unhex]);
const SYSINFO = new Set<number>([K.information_schema, K.version, K.current_user, K.system_user, K.session_user, K.pg_catalog, K.pg_shadow, K.pg_user, K.pg_database, K.sysobjects, K.syscolumns, K.all_tables, K.user_tables, K.current_database, K.schema_name]);

/** @internal Injection detection over an already scanned buffer. */
export function detectInjectionTokens(buf: TokenBuffer): SqlInjectionResult {
  literalReads = 0;
  const n = buf.count;
  const type = buf.type;
  const kw = buf.kw;
  const flags = buf.flags;
  const mysql = buf.dialect.name === 'mysql';
  const found: string[] = [];
  const add = (r: string): void => {
    if (!found.includes(r)) found.push(r);
  };

  let cond = false; // inside WHERE / HAVING / ON / WHEN / IF(
  let unionCtx = false; // inside a UNION branch's select list
  let stmtIndex = 0;
  let firstKw = 0; // first keyword of the first statement
  let stmtFirstKw = 0; // first keyword of the current statement
  let afterWhere = -1; // index of the last WHERE
  let prev = -1;
  let lastCode = -1; // last non-comment token
  let statementStart = true;
  let firstIsQuery = false;
  let depth = 0; // parenthesis depth
  let betweenDepth = -1; // depth of a BETWEEN waiting for its AND
  let prev2 = -1; // the significant token before prev
  let prev3 = -1;
  const selectAt = SELECT_AT; // last SELECT per depth
  const whereAt = WHERE_AT; // the SELECT whose WHERE / HAVING was seen, per depth
  selectAt.fill(-1);
  whereAt.fill(-1);

  for (let i = 0; i < n; i++) {
    const t = type[i]!;
    if (t === TokenType.Comment) {
      const line = (flags[i]! & TokenFlag.LineComment) !== 0;
      if ((flags[i]! & TokenFlag.Unterminated) !== 0 && !line) add('unterminated-comment');
      const nx = nextSig(buf, i + 1, n);
      if (line) {
        const body = buf.sql.slice(buf.start[i]!, buf.end[i]!);
        if (lastCode >= 0 && (body.indexOf("'") >= 0 || body.indexOf('"') >= 0) && nx >= n) add('comment-truncation');
        else if (lastCode >= 0 && nx >= n && (((flags[i]! & TokenFlag.SpaceBefore) === 0 && body.length <= 4) || (cond && isLit(type[lastCode]!)))) add('trailing-comment');
      } else if (lastCode >= 0 && nx < n && (flags[i]! & TokenFlag.SpaceBefore) === 0 && buf.end[i]! === buf.start[nx]! && type[lastCode] === TokenType.Word && type[nx] === TokenType.Word) {
        add('comment-obfuscation'); // UNION/**/SELECT
      }
      continue;
    }
    if ((flags[i]! & TokenFlag.Unterminated) !== 0) add('unbalanced-quotes');
    if (statementStart) {
      stmtFirstKw = kw[i]!;
      if (stmtIndex === 0) {
        firstKw = stmtFirstKw;
        firstIsQuery = firstKw === K.select || firstKw === K.update || firstKw === K.delete || firstKw === K.insert || firstKw === K.with;
      } else if (firstIsQuery) {
        const k = stmtFirstKw;
        const other = k === K.drop || k === K.create || k === K.alter || k === K.truncate || k === K.grant || k === K.revoke || k === K.exec || k === K.execute || k === K.shutdown || k === K.declare || k === K.waitfor || k === K.rename || k === K.load || k === K.copy || k === K.call || ((k === K.insert || k === K.update || k === K.delete) && firstKw === K.select) || (k === K.select && firstKw !== K.select);
        if (other || (type[i] === TokenType.Word && kw[i] === 0 && buf.lowerText(i).startsWith('xp_'))) add('stacked-query');
      }
      statementStart = false;
      cond = false;
      unionCtx = false;
    }
    if ((flags[i]! & TokenFlag.InExecComment) !== 0 && buf.execComments > 0 && stmtIndex >= 0) {
      const k = kw[i];
      if ((k === K.union || k === K.select || k === K.or || k === K.and || k === K.sleep || k === K.benchmark) && (cond || unionCtx || (prev >= 0 && i > 0 && stmtFirstKw === K.select && k !== K.select))) add('executable-comment');
    }
    switch (t) {
      case TokenType.Semicolon:
        stmtIndex++;
        statementStart = true;
        depth = 0;
        selectAt.fill(-1);
        whereAt.fill(-1);
        break;
      case TokenType.LParen:
        if (cond && prev >= 0 && isLit(type[prev]!)) add('missing-operator');
        depth++;
        break;
      case TokenType.RParen:
        // more ')' than '(': the input closed a parenthesis of the application's SQL
        if (depth === 0) add('unbalanced-parentheses');
        else depth--;
        break;
      case TokenType.Operator: {
        const oc = operatorClass(buf, i);
        if (oc === OP_CMP) {
          if (isChain(buf, prev, prev2, prev3)) add('comparison-chain');
        } else if (oc === OP_ARITH) {
          if (prev >= 0 && type[prev] === TokenType.String && type[nextSig(buf, i + 1, n)] === TokenType.String && !(buf.dialect.name === 'tsql' && buf.sql.charCodeAt(buf.start[i]!) === 0x2b)) add('literal-arithmetic');
        } else if (oc === OP_LOGIC && mysql) {
          // MySQL || and && are OR and AND
          if (buf.sql.charCodeAt(buf.start[i]!) === 0x7c && constantCondition(buf, i + 1) === true) add('tautology');
          if (cond && systemProbe(buf, i + 1)) add('system-probe');
          operandChecks(buf, i, add);
        }
        break;
      }
      case TokenType.Variable:
        if ((cond || unionCtx) && buf.lowerText(i).startsWith('@@')) add('system-info');
        break;
      case TokenType.Number:
      case TokenType.String:
        if (cond && prev >= 0 && isLit(type[prev]!) && !(t === TokenType.String && type[prev] === TokenType.String && mysql)) add('missing-operator');
        if ((cond || unionCtx) && (flags[i]! & TokenFlag.Binary) !== 0) {
          literalReads++;
          if (buf.end[i]! - buf.start[i]! >= 10) add('encoded-literal');
        }
        if (t === TokenType.String && (cond || unionCtx)) {
          // a shape never holds a string opening with a backslash (shape.ts), so this reads no literal of one
          const s = buf.start[i]!;
          if (buf.sql.startsWith("'\\\\\\\\", s) || buf.sql.startsWith("'\\\\", s) && !mysql) add('out-of-band'); // UNC path
        }
        break;
      case TokenType.Word: {
        const k = kw[i]!;
        if (k !== 0 && prev === i - 1 && prev >= 0 && type[prev] === TokenType.Number && (flags[i]! & TokenFlag.SpaceBefore) === 0) add('glued-keyword');
        if (k === 0) {
          if (type[nextSig(buf, i + 1, n)] === TokenType.LParen || buf.lowerText(i).startsWith('xp_')) {
            const w = buf.lowerText(i);
            if (w.startsWith('xp_') || w === 'sp_makewebtask') add('out-of-band');
          }
          break;
        }
        const nx = nextSig(buf, i + 1, n);
        const call = nx < n && type[nx] === TokenType.LParen;
        switch (k) {
          case K.where:
          case K.having:
          case K.on:
          case K.when:
            if (k === K.when && systemProbe(buf, i + 1)) add('system-probe');
            cond = true;
            if (k === K.where) afterWhere = i;
            if (k === K.where || k === K.having) whereAt[depth < 32 ? depth : 31] = selectAt[depth < 32 ? depth : 31]!;
            break;
          case K.select: {
            const pk = prev >= 0 ? kw[prev]! : -1;
            const pt = prev >= 0 ? type[prev]! : 0;
            if ((pt === TokenType.Operator && buf.sql.charCodeAt(buf.start[prev]!) !== 0x2a) || pt === TokenType.Comma || pk === K.and || pk === K.or || pk === K.xor || pk === K.not || pk === K.where || pk === K.having || pk === K.like) add('misplaced-select');
            selectAt[depth < 32 ? depth : 31] = i;
            break;
          }
          case K.like:
          case K.regexp:
          case K.rlike:
          case K.ilike:
            if (isChain(buf, prev, prev2, prev3)) add('comparison-chain');
            break;
          case K.div:
          case K.mod:
            if (prev >= 0 && type[prev] === TokenType.String && type[nx] === TokenType.String) add('literal-arithmetic');
            break;
          case K.case:
            if (caseProbe(buf, i)) add('case-probe');
            cond = true;
            break;
          case K.if:
          case K.iif:
            cond = true;
            break;
          case K.or:
            if (constantCondition(buf, i + 1) === true) add('tautology');
            else if (constantKind(buf, i + 1) === CONST_ODD) add('boolean-probe');
            if (cond && systemProbe(buf, i + 1)) add('system-probe');
            operandChecks(buf, i, add);
            break;
          case K.and: {
            if (betweenDepth === depth) {
              betweenDepth = -1; // the AND of BETWEEN x AND y
              break;
            }
            if (afterWhere >= 0 && prev !== afterWhere) {
              const c = constantKind(buf, i + 1);
              if (c === CONST_ODD) add('boolean-probe');
              else if (c === CONST_TRIVIAL) add('constant-condition');
            }
            if (cond && systemProbe(buf, i + 1)) add('system-probe');
            operandChecks(buf, i, add);
            break;
          }
          case K.between:
            betweenDepth = depth;
            break;
          case K.xor:
            if (constantKind(buf, i + 1) !== CONST_NONE) add('boolean-probe');
            if (cond && systemProbe(buf, i + 1)) add('system-probe');
            operandChecks(buf, i, add);
            break;
          case K.union: {
            unionCtx = true;
            const d = depth < 31 ? depth : 30;
            let left = selectAt[d]!;
            if (left < 0) left = selectAt[d + 1]!;
            checkUnion(buf, i, add, left, left >= 0 && whereAt[d] === left);
            break;
          }
          case K.from:
            // the select list of a UNION branch ends; catalog tables still count
            break;
          case K.into: {
            const x = nextSig(buf, i + 1, n);
            if (kw[x] === K.outfile || kw[x] === K.dumpfile) add('out-of-band');
            break;
          }
          case K.program:
            if (stmtFirstKw === K.copy) add('out-of-band'); // COPY ... TO/FROM PROGRAM (PostgreSQL)
            break;
          case K.waitfor: {
            const x = nextSig(buf, i + 1, n);
            if (kw[x] === K.delay || kw[x] === K.time) add(stmtIndex > 0 || cond || i > 0 ? 'time-based' : 'time-call');
            break;
          }
          case K.dbms_lock:
          case K.dbms_pipe:
          case K.utl_http:
          case K.utl_inaddr:
          case K.dbms_ldap:
          case K.utl_file:
          case K.ctxsys: {
            // package.function(...)
            if (type[nx] === TokenType.Dot) {
              const f = buf.lowerText(nextSig(buf, nx + 1, n));
              if (k === K.dbms_lock && f === 'sleep') add(cond || stmtIndex > 0 ? 'time-based' : 'time-call');
              else if (k === K.dbms_pipe && f === 'receive_message') add(cond || stmtIndex > 0 ? 'time-based' : 'time-call');
              else if (k === K.utl_inaddr || k === K.ctxsys) add('error-based');
              else add('out-of-band');
            }
            break;
          }
          case K.master:
            if (type[nx] === TokenType.Dot) {
              const x = nextSig(buf, nx + 1, n);
              const x2 = type[x] === TokenType.Dot ? nextSig(buf, x + 1, n) : type[nextSig(buf, x + 1, n)] === TokenType.Dot ? nextSig(buf, nextSig(buf, x + 1, n) + 1, n) : x;
              if (buf.lowerText(x2).startsWith('xp_')) add('out-of-band');
            }
            break;
          case K.xp_cmdshell:
          case K.xp_dirtree:
          case K.xp_fileexist:
          case K.sp_oacreate:
          case K.openrowset:
          case K.opendatasource:
          case K.load_file:
            add('out-of-band'); // T-SQL calls them without parentheses too (EXEC xp_cmdshell 'dir')
            break;
          case K.floor:
            // FLOOR(RAND(0)*2): duplicate-key error leak
            if (call && kw[nextSig(buf, nx + 1, n)] === K.rand) add('error-based');
            break;
          case K.exp:
            if (call) {
              const x = nextSig(buf, nx + 1, n);
              if (type[x] === TokenType.Operator && buf.text(x) === '~') add('error-based');
            }
            break;
          case K.convert:
          case K.cast:
            if (call && (cond || unionCtx) && containsSystemData(buf, nx)) add('error-based');
            break;
          default:
            if (!call) {
              if (SYSINFO.has(k) && (cond || unionCtx)) add('system-info');
              break;
            }
            if (TIME_FN.has(k)) add(cond || unionCtx || stmtIndex > 0 || (prev >= 0 && stmtFirstKw !== K.select) || !isWholeSelectCall(buf, i) ? 'time-based' : 'time-call');
            else if (OOB_FN.has(k)) add('out-of-band');
            else if (ERR_FN.has(k)) {
              if (k !== K.xmltype && k !== K.json_keys) add('error-based');
              else if (isSubqueryArg(buf, nx)) add('error-based');
            } else if (GEOM_FN.has(k)) {
              if (isSubqueryArg(buf, nx)) add('error-based');
            } else if (INFER_FN.has(k)) {
              if ((cond || unionCtx) && (isSubqueryArg(buf, nx) || ((k === K.ascii || k === K.ord) && isOneCharAt(buf, nx)))) add('blind-inference');
            } else if (k === K.char || k === K.chr) {
              if ((cond || unionCtx) && countArgs(buf, nx) >= 3) add('encoded-literal');
            } else if (SYSINFO.has(k) && (cond || unionCtx)) add('system-info');
        }
        break;
      }
      default:
        break;
    }
    prev3 = prev2;
    prev2 = prev;
    prev = i;
    lastCode = i;
  }

  // The text ends where more must follow: "... AND", "... UNION", "... =", "... ,".
  let last = n - 1;
  while (last >= 0 && (type[last] === TokenType.Comment || type[last] === TokenType.Semicolon)) last--;
  if (last >= 0 && (flags[last]! & TokenFlag.Unterminated) === 0) {
    const tl = type[last];
    if ((tl === TokenType.Operator && buf.sql.charCodeAt(buf.start[last]!) !== 0x2a) || tl === TokenType.Comma || tl === TokenType.LParen || (tl === TokenType.Word && DANGLING.has(kw[last]!))) add('dangling-end');
  }

  let keep = 1;
  for (const r of found) keep *= 1 - (SQLI_REASONS[r]?.weight ?? 0);
  const score = Math.round((1 - keep) * 1000) / 1000;
  void firstKw;
  return { injection: score >= THRESHOLD, reasons: found, score };
}

/** Index where the operand of a boolean operator starting at `j` ends: its first unmatched `)`, `;`, or a keyword of {@link endsOperand} outside parentheses. */
function operandEnd(buf: TokenBuffer, j: number): number {
  let depth = 0;
  for (; j < buf.count; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen) {
      if (depth === 0) return j;
      depth--;
    } else if (t === TokenType.Semicolon || (depth === 0 && endsOperand(buf.kw[j]!))) return j;
  }
  return j;
}

/** Keywords that end the operand of a boolean operator: the next AND / OR / XOR, THEN, or the next clause. */
function endsOperand(k: number): boolean {
  return k === K.and || k === K.or || k === K.xor || k === K.then || k === K.limit || k === K.order || k === K.group || k === K.union || k === K.having || k === K.into;
}

const CONST_NONE = 0;
const CONST_TRIVIAL = 1;
const CONST_ODD = 2;

// Functions of constants that probes compare (AND 3=PI(), AND ASCII(2)=ASCII(2)).
const PURE_FN = new Set<string>(['pi', 'cos', 'sin', 'tan', 'floor', 'ceil', 'ceiling', 'abs', 'sqrt', 'ascii', 'ord', 'length', 'char', 'chr', 'md5', 'sign', 'round', 'power', 'pow', 'exp', 'ln', 'log', 'conv', 'hex', 'unhex', 'lower', 'upper', 'concat', 'substr', 'substring', 'mid', 'left', 'right', 'reverse', 'bin', 'oct', 'soundex']);

/**
 * Whether the condition at `j` (up to the next AND / OR / `)` / clause) is
 * made of constants only: CONST_TRIVIAL for what query builders write
 * (1=1, 1=0, TRUE, FALSE, 1, 0), CONST_ODD for any other constant condition
 * (8=3, '6'='5', 3=PI()), CONST_NONE when it reads a column, a parameter or
 * a variable.
 */
function constantKind(buf: TokenBuffer, j: number): number {
  const n = buf.count;
  const type = buf.type;
  const kw = buf.kw;
  let depth = 0;
  let tokens = 0;
  let odd = false;
  for (; j < n; j++) {
    const t = type[j]!;
    if (t === TokenType.Comment) {
      if (depth === 0) break;
      continue;
    }
    if (t === TokenType.LParen) {
      depth++;
      continue;
    }
    if (t === TokenType.RParen) {
      if (depth === 0) break;
      depth--;
      continue;
    }
    if (t === TokenType.Semicolon) break;
    const k = kw[j]!;
    if (depth === 0 && endsOperand(k)) break;
    tokens++;
    if (t === TokenType.Number) {
      literalReads++;
      const len = buf.end[j]! - buf.start[j]!;
      const c = buf.sql.charCodeAt(buf.start[j]!);
      if (len !== 1 || (c !== 0x30 && c !== 0x31)) odd = true;
    } else if (t === TokenType.String) odd = true;
    else if (t === TokenType.Word) {
      if (k === K.true || k === K.false || k === K.null || k === K.not || k === K.is || k === K.like || k === K.between || k === K.regexp || k === K.rlike) continue;
      const nx = nextSig(buf, j + 1, n);
      if (nx < n && type[nx] === TokenType.LParen && PURE_FN.has(buf.lowerText(j))) {
        odd = true;
        continue;
      }
      return CONST_NONE;
    } else if (t !== TokenType.Operator) return CONST_NONE; // parameter, variable, quoted name, ...
  }
  if (tokens === 0) return CONST_NONE;
  return odd ? CONST_ODD : CONST_TRIVIAL;
}

const SELECT_AT = new Int32Array(32);
const WHERE_AT = new Int32Array(32);

// Keywords a complete statement cannot end with.
const DANGLING = new Set<number>([K.and, K.or, K.xor, K.not, K.where, K.having, K.union, K.select, K.from, K.by, K.on, K.like, K.in, K.is, K.between, K.into, K.join, K.when, K.then, K.case, K.set, K.values]);

const OP_OTHER = 0;
const OP_CMP = 1;
const OP_ARITH = 2;
const OP_LOGIC = 3;

/** Class of operator token `i`: comparison, arithmetic / bitwise, MySQL logical (`&&`, `||`), or other. */
function operatorClass(buf: TokenBuffer, i: number): number {
  const s = buf.start[i]!;
  const len = buf.end[i]! - s;
  const c0 = buf.sql.charCodeAt(s);
  if (len === 1) {
    if (c0 === 0x3d || c0 === 0x3c || c0 === 0x3e) return OP_CMP; // = < >
    if (c0 === 0x2d || c0 === 0x2b || c0 === 0x2a || c0 === 0x2f || c0 === 0x25 || c0 === 0x5e || c0 === 0x26 || c0 === 0x7c) return OP_ARITH; // - + * / % ^ & |
    return OP_OTHER;
  }
  const c1 = buf.sql.charCodeAt(s + 1);
  if (len === 2) {
    if ((c0 === 0x3c && (c1 === 0x3d || c1 === 0x3e)) || (c0 === 0x3e && c1 === 0x3d) || (c0 === 0x21 && c1 === 0x3d) || (c0 === 0x3d && c1 === 0x3d)) return OP_CMP; // <= <> >= != ==
    if ((c0 === 0x3c && c1 === 0x3c) || (c0 === 0x3e && c1 === 0x3e)) return OP_ARITH; // << >>
    if ((c0 === 0x26 && c1 === 0x26) || (c0 === 0x7c && c1 === 0x7c)) return OP_LOGIC; // && ||
    return OP_OTHER;
  }
  return len === 3 && c0 === 0x3c && c1 === 0x3d && buf.sql.charCodeAt(s + 2) === 0x3e ? OP_CMP : OP_OTHER; // <=>
}

function isCmpToken(buf: TokenBuffer, j: number): boolean {
  if (j < 0 || j >= buf.count) return false;
  const t = buf.type[j];
  if (t === TokenType.Operator) return operatorClass(buf, j) === OP_CMP;
  const k = buf.kw[j];
  return t === TokenType.Word && (k === K.like || k === K.regexp || k === K.rlike || k === K.ilike);
}

/** A comparison right after `<cmp> <constant>`: `= 'A' = 'B'`, `= 'A' NOT LIKE 'B'`, `= 'A' SOUNDS LIKE 'B'`. */
function isChain(buf: TokenBuffer, p1: number, p2: number, p3: number): boolean {
  if (p1 < 0) return false;
  let operand = p1;
  let before = p2;
  if (buf.type[p1] === TokenType.Word && (buf.kw[p1] === K.not || (buf.end[p1]! - buf.start[p1]! === 6 && buf.lowerText(p1) === 'sounds'))) {
    operand = p2;
    before = p3;
  }
  if (operand < 0) return false;
  const t = buf.type[operand];
  return (t === TokenType.String || t === TokenType.Number) && isCmpToken(buf, before);
}

/** The right operand of AND / OR / XOR at `i`: a bare string constant, or two string constants compared. */
function operandChecks(buf: TokenBuffer, i: number, add: (r: string) => void): void {
  const n = buf.count;
  let j = nextSig(buf, i + 1, n);
  while (j < n && buf.type[j] === TokenType.LParen) j = nextSig(buf, j + 1, n);
  if (j >= n || buf.type[j] !== TokenType.String) return;
  const o = nextSig(buf, j + 1, n);
  if (isTerminator(buf, o)) {
    add('string-condition');
    return;
  }
  if (isCmpToken(buf, o)) {
    let b = nextSig(buf, o + 1, n);
    while (b < n && buf.type[b] === TokenType.LParen) b = nextSig(buf, b + 1, n);
    if (b < n && buf.type[b] === TokenType.String) add('string-comparison');
  }
}

/**
 * Shape of the select list after SELECT at `sel`: columns * 4, plus 1 when
 * the list is just `*` (or `t.*`), plus 2 when any item is a star (its
 * width is then unknown).
 */
function selectShape(buf: TokenBuffer, sel: number): number {
  const n = buf.count;
  let depth = 0;
  let cols = 1;
  let colTokens = 0;
  let first = -1;
  let lastTok = -1;
  let anyStar = false;
  for (let j = sel + 1; j < n; j++) {
    const t = buf.type[j]!;
    if (t === TokenType.Comment) continue;
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen) {
      if (--depth < 0) break;
    } else if (t === TokenType.Semicolon) break;
    else if (depth === 0) {
      if (t === TokenType.Comma) {
        cols++;
        colTokens = 0;
        continue;
      }
      const k = buf.kw[j];
      if (k === K.from || k === K.into || k === K.where || k === K.union || k === K.limit || k === K.order || k === K.group || k === K.having) break;
      if (colTokens === 0 && (k === K.distinct || k === K.all)) continue;
    }
    if (colTokens === 0) first = j;
    colTokens++;
    lastTok = j;
    // `*` or `t.*` as a whole item (not a multiplication)
    if (depth === 0 && isStarOp(buf, j)) {
      const p = j - 1;
      if (colTokens === 1 || (p > sel && buf.type[p] === TokenType.Dot)) anyStar = true;
    }
  }
  const star = cols === 1 && isStarOp(buf, lastTok) && (colTokens === 1 || (colTokens === 3 && buf.type[first] !== TokenType.Operator));
  return cols * 4 + (star ? 1 : 0) + (anyStar ? 2 : 0);
}

function isStarOp(buf: TokenBuffer, j: number): boolean {
  return j >= 0 && buf.type[j] === TokenType.Operator && buf.end[j]! - buf.start[j]! === 1 && buf.sql.charCodeAt(buf.start[j]!) === 0x2a;
}

/** `SELECT SLEEP(n)` and nothing else: a delay on purpose, not hidden in a condition. */
function isWholeSelectCall(buf: TokenBuffer, i: number): boolean {
  const n = buf.count;
  let s = i - 1;
  while (s >= 0 && buf.type[s] === TokenType.Comment) s--;
  if (s < 0 || buf.kw[s] !== K.select) return false;
  let depth = 0;
  let j = nextSig(buf, i + 1, n);
  for (; j < n; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) break;
  }
  const after = nextSig(buf, j + 1, n);
  return after >= n || buf.type[after] === TokenType.Semicolon;
}

/**
 * `(SUBSTRING(x, <n>, 1)` (or SUBSTR, MID) at `lp`: one character at a
 * constant position, the unit of character-by-character extraction
 * (ASCII(SUBSTRING(password,1,1)) > 64).
 */
function isOneCharAt(buf: TokenBuffer, lp: number): boolean {
  const n = buf.count;
  const f = nextSig(buf, lp + 1, n);
  const k = buf.kw[f];
  if (f >= n || (k !== K.substring && k !== K.substr && k !== K.mid)) return false;
  const inner = nextSig(buf, f + 1, n);
  if (inner >= n || buf.type[inner] !== TokenType.LParen) return false;
  const rp = closeParen(buf, inner);
  const commas: number[] = [];
  let depth = 0;
  for (let j = inner + 1; j < rp - 1; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen) depth--;
    else if (t === TokenType.Comma && depth === 0) commas.push(j);
  }
  if (commas.length !== 2) return false;
  const pos = nextSig(buf, commas[0]! + 1, n);
  const len = nextSig(buf, commas[1]! + 1, n);
  if (buf.type[pos] !== TokenType.Number || nextSig(buf, pos + 1, n) !== commas[1] || buf.type[len] !== TokenType.Number || nextSig(buf, len + 1, n) !== rp - 1) return false;
  literalReads++;
  return buf.text(len) === '1';
}

/** `fn((SELECT ...` or `fn(SELECT ...`. */
function isSubqueryArg(buf: TokenBuffer, lp: number): boolean {
  const n = buf.count;
  let j = nextSig(buf, lp + 1, n);
  while (j < n && buf.type[j] === TokenType.LParen) j = nextSig(buf, j + 1, n);
  return j < n && buf.kw[j] === K.select;
}

function countArgs(buf: TokenBuffer, lp: number): number {
  let depth = 0;
  let args = 1;
  for (let j = lp; j < buf.count; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return args;
    else if (t === TokenType.Comma && depth === 1) args++;
  }
  return args;
}

function containsSystemData(buf: TokenBuffer, lp: number): boolean {
  let depth = 0;
  for (let j = lp; j < buf.count; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return false;
    else if (t === TokenType.Variable && buf.lowerText(j).startsWith('@@')) return true;
    else if (buf.kw[j] === K.select || SYSINFO.has(buf.kw[j]!) || buf.kw[j] === K.user || buf.kw[j] === K.database) return true;
  }
  return false;
}

/**
 * Inspects UNION [ALL|DISTINCT] SELECT: the right branch's select list, its
 * shape against the left branch (`left`, the left branch's SELECT or -1),
 * and whether the left branch had just ended in a WHERE / HAVING clause.
 */
function checkUnion(buf: TokenBuffer, u: number, add: (r: string) => void, left: number, afterCondition: boolean): void {
  const n = buf.count;
  let j = nextSig(buf, u + 1, n);
  if (buf.kw[j] === K.all || buf.kw[j] === K.distinct) j = nextSig(buf, j + 1, n);
  while (j < n && buf.type[j] === TokenType.LParen) j = nextSig(buf, j + 1, n);
  if (buf.kw[j] !== K.select) {
    if (j < n && buf.kw[j] !== K.values && buf.kw[j] !== K.table) add('broken-union');
    return;
  }
  if (afterCondition) add('union-after-condition');
  if (left >= 0) {
    const l = selectShape(buf, left);
    const r = selectShape(buf, j);
    // SELECT * against named columns only (a `t.*` item makes a width unknown)
    if (((l & 1) !== 0 && (r & 2) === 0) || ((r & 1) !== 0 && (l & 2) === 0)) add('union-shape');
    else if ((l & 2) === 0 && (r & 2) === 0 && l >> 2 !== r >> 2) add('union-column-mismatch');
  }
  let cols = 1;
  let constant = 0;
  let nulls = 0;
  let sys = false;
  let credentials = false;
  let depth = 0;
  let colStart = true;
  for (j = j + 1; j < n; j++) {
    const t = buf.type[j]!;
    if (t === TokenType.Comment) continue;
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen) {
      if (--depth < 0) break;
    } else if (t === TokenType.Semicolon) break;
    else if (depth === 0 && t === TokenType.Comma) {
      cols++;
      colStart = true;
      continue;
    }
    const k = buf.kw[j]!;
    if (depth === 0 && (k === K.from || k === K.union || k === K.where || k === K.limit || k === K.order || k === K.into)) {
      if (k === K.from) {
        const x = nextSig(buf, j + 1, n);
        const kk = buf.kw[x]!;
        if (SYSINFO.has(kk) || kk === K.mysql || kk === K.sys || kk === K.master) sys = true;
      }
      break;
    }
    if (colStart && (t === TokenType.Number || t === TokenType.String || k === K.null)) {
      const nx = nextSig(buf, j + 1, n);
      if (nx >= n || buf.type[nx] === TokenType.Comma || buf.kw[nx] === K.from || buf.type[nx] === TokenType.Comment || buf.type[nx] === TokenType.RParen || buf.type[nx] === TokenType.Semicolon) {
        constant++;
        if (k === K.null) nulls++;
      }
    }
    if ((t === TokenType.Variable && buf.lowerText(j).startsWith('@@')) || SYSINFO.has(k) || k === K.user || k === K.database || k === K.group_concat || k === K.load_file) sys = true;
    if (depth === 0 && (t === TokenType.Word || t === TokenType.QuotedIdent) && isCredentialName(buf.lowerText(j))) credentials = true;
    if ((buf.flags[j]! & TokenFlag.Binary) !== 0) sys = true;
    colStart = false;
  }
  // Benign reports add constant rows too (UNION SELECT 0, 'All'), so only
  // NULL padding, all-constant lists of three or more, or system data count
  // on their own.
  if (sys || nulls >= 2 || (cols >= 3 && constant === cols)) add('union-select');
  else if (constant >= 1) add('union-probe');
  if (credentials) add('union-credentials');
}

// Parts of column names that hold credentials, as injected UNIONs pull them.
const CREDENTIAL_PARTS = ['pass', 'pwd', 'hash', 'secret', 'token', 'credential', 'authentication_string', 'api_key', 'apikey', 'private_key', 'salt'];

/** A column name that looks like it holds a credential (`pwd_hash`, `password`, `api_token`), quotes and qualifiers aside. */
function isCredentialName(lower: string): boolean {
  for (const part of CREDENTIAL_PARTS) if (lower.indexOf(part) >= 0) return true;
  return false;
}

// System catalog tables and views probes count or read (besides the SYSINFO keywords).
const SYSTEM_TABLES = new Set<string>(['sysobjects', 'syscolumns', 'sysusers', 'sysdatabases', 'syslogins', 'all_tables', 'all_users', 'all_tab_columns', 'user_tables', 'dba_users', 'dba_tables', 'dual']);

/**
 * Whether the table reference at `j` (after FROM) is a system catalog:
 * information_schema.*, pg_catalog.* and pg_*, mysql.*, sys.* and master.*,
 * Oracle v$ / gv$ views and dictionary views, T-SQL sys* tables.
 */
function isSystemTable(buf: TokenBuffer, j: number): boolean {
  if (j >= buf.count) return false;
  const k = buf.kw[j]!;
  if (k === K.information_schema || k === K.pg_catalog || k === K.mysql || k === K.sys || k === K.master || SYSINFO.has(k)) return true;
  if (buf.type[j] !== TokenType.Word || buf.type[nextSig(buf, j + 1, buf.count)] === TokenType.LParen) return false; // a function (FROM pg_sleep(5))
  const w = buf.lowerText(j);
  if (w === 'dual') return false; // Oracle's one-row table: constant selects, not catalog reads
  return SYSTEM_TABLES.has(w) || w.startsWith('v$') || w.startsWith('gv$') || w.startsWith('pg_');
}

/** Index after the parenthesis that closes the one at `lp` (or the end of the text). */
function closeParen(buf: TokenBuffer, lp: number): number {
  let depth = 0;
  for (let j = lp; j < buf.count; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return j + 1;
  }
  return buf.count;
}

/** Whether the subquery in the parentheses `[lp, rp)` reads system data: a catalog table, the version, the account. */
function systemSubquery(buf: TokenBuffer, lp: number, rp: number): boolean {
  for (let j = lp + 1; j < rp; j++) {
    const t = buf.type[j];
    const k = buf.kw[j]!;
    if (k === K.from || k === K.join) {
      if (isSystemTable(buf, nextSig(buf, j + 1, rp))) return true;
    } else if ((t === TokenType.Variable && buf.lowerText(j).startsWith('@@')) || (k !== 0 && SYSINFO.has(k))) return true;
  }
  return false;
}

/**
 * Whether the operand of a boolean operator (or WHEN) starting at `j`, up
 * to the next AND / OR / THEN / clause, compares system data with a
 * constant and reads nothing else: `(SELECT COUNT(*) FROM sys.objects) > 0`,
 * `MID(VERSION(),1,1) = '8'`, `@@version LIKE '8%'`, `user() = 'root'`.
 * A column, a parameter or an application subquery anywhere in it makes it
 * an ordinary condition (`owner = current_user`, `schema = database()`).
 * A hand-written scan of tokens: no backtracking, each token seen once.
 */
function systemProbe(buf: TokenBuffer, j: number): boolean {
  const n = buf.count;
  const type = buf.type;
  const kw = buf.kw;
  let sys = false;
  let lit = false;
  let cmp = false;
  // most operands start with a column: no need to find their end
  let f = nextSig(buf, j, n);
  while (f < n && type[f] === TokenType.LParen) f = nextSig(buf, f + 1, n);
  if (f < n && type[f] === TokenType.Word && kw[f] === 0 && type[nextSig(buf, f + 1, n)] !== TokenType.LParen) return false;
  const e = operandEnd(buf, j);
  for (; j < e; j++) {
    const t = type[j]!;
    if (t === TokenType.Comment || t === TokenType.RParen) continue;
    const k = kw[j]!;
    if (t === TokenType.LParen) {
      const x = nextSig(buf, j + 1, n);
      if (x < n && kw[x] === K.select) {
        // a subquery counts as one value: system data, or the application's
        const rp = closeParen(buf, j);
        if (!systemSubquery(buf, j, rp)) return false;
        sys = true;
        j = rp - 1;
      }
      continue;
    }
    switch (t) {
      case TokenType.Number:
      case TokenType.String:
        lit = true;
        break;
      case TokenType.Operator: {
        const oc = operatorClass(buf, j);
        if (oc === OP_CMP) cmp = true;
        else if (oc === OP_LOGIC) return false;
        break;
      }
      case TokenType.Comma:
        break;
      case TokenType.Variable:
        if (!buf.lowerText(j).startsWith('@@')) return false;
        sys = true;
        break;
      case TokenType.Word: {
        if (k === K.like || k === K.regexp || k === K.rlike || k === K.ilike || k === K.in || k === K.between || k === K.is) {
          cmp = true;
          break;
        }
        if (k === K.not || k === K.null || k === K.true || k === K.false) break;
        const call = type[nextSig(buf, j + 1, n)] === TokenType.LParen;
        if ((k !== 0 && SYSINFO.has(k)) || (call && (k === K.user || k === K.database))) {
          sys = true;
          break;
        }
        if (call && (INFER_FN.has(k) || PURE_FN.has(buf.lowerText(j)))) break;
        return false; // a column, or a function of the application's
      }
      default:
        return false; // parameter, quoted name, ...
    }
  }
  return sys && cmp && lit;
}

/**
 * Whether the CASE at `c` is a blind-injection test rather than
 * application logic: some WHEN condition is constant (WHEN (1=1)) or a
 * system probe, or some branch is a subquery of UNIONed constants (which
 * fails with "more than one row" when the branch runs).
 */
function caseProbe(buf: TokenBuffer, c: number): boolean {
  const n = buf.count;
  let nested = 0;
  let depth = 0;
  for (let j = c + 1; j < n; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) {
      depth++;
      continue;
    }
    if (t === TokenType.RParen) {
      if (--depth < 0) return false;
      continue;
    }
    if (t === TokenType.Semicolon) return false;
    const k = buf.kw[j]!;
    if (k === K.case) nested++;
    else if (k === K.end) {
      if (nested === 0) return false;
      nested--;
    } else if (nested === 0 && k === K.when) {
      if (constantKind(buf, j + 1) !== CONST_NONE || systemProbe(buf, j + 1)) return true;
    } else if (nested === 0 && (k === K.then || k === K.else)) {
      if (unionOfConstants(buf, nextSig(buf, j + 1, n))) return true;
    }
  }
  return false;
}

/** `(SELECT <constants> UNION [ALL] SELECT <constants> ...)` at `lp`. */
function unionOfConstants(buf: TokenBuffer, lp: number): boolean {
  if (lp >= buf.count || buf.type[lp] !== TokenType.LParen) return false;
  const rp = closeParen(buf, lp);
  let unions = 0;
  for (let j = lp + 1; j < rp - 1; j++) {
    const t = buf.type[j];
    const k = buf.kw[j]!;
    if (k === K.union) unions++;
    else if (k === K.select || k === K.all || k === K.null || t === TokenType.Number || t === TokenType.String || t === TokenType.Comma || t === TokenType.Comment) continue;
    else return false;
  }
  return unions > 0;
}

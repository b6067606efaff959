// Statement splitting, classification, object extraction and WHERE presence,
// all from one scan of the text (see lexer.ts). Fingerprints are built from
// the same tokens (fingerprint.ts).
import type { ObjectRef, StatementType } from '@dbtap/core';
import { K as K_ } from './keywords.js';
import { TokenBuffer, TokenType as TokenType_, scanSql as scanSql_ } from './lexer.js';
import { dialectOptions as dialectOptions_, type Dialect, type DialectOptions } from './dialect.js';
import { fingerprintRange as fingerprintRange_ } from './fingerprint.js';
import { nextSig as nextSig_, splitStatements as splitStatements_ } from './split.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const K = K_;
const TokenType = TokenType_;
const scanSql = scanSql_;
const dialectOptions = dialectOptions_;
const fingerprintRange = fingerprintRange_;
const nextSig = nextSig_;
const splitStatements = splitStatements_;

/** Classification of one statement of a SQL text. */
export interface StatementAnalysis {
  /** Statement class. */
  readonly type: StatementType;
  /** Leading verb(s) in upper case: `SELECT`, `DROP TABLE`, `GRANT`, `START TRANSACTION`, ... */
  readonly verb: string;
  /** Objects the statement touches, each with the operation on it. */
  readonly objects: ObjectRef[];
  /** A `WHERE` clause at the statement's top level (meaningful for UPDATE and DELETE). */
  readonly hasWhere: boolean;
  /** Normalised shape of this statement. */
  readonly fingerprint: string;
  /** Offset of the statement's first token in the text. */
  readonly start: number;
  /** Offset just past its last token (before any `;`). */
  readonly end: number;
}

/** Analysis of a SQL text that may hold several statements. */
export interface SqlAnalysis {
  /** Dialect used. */
  readonly dialect: Dialect;
  /** Statements in text order (empty for a text of only comments or whitespace). */
  readonly statements: StatementAnalysis[];
  /** Class of the primary statement (see {@link primaryStatement}); `other` when there is none. */
  readonly type: StatementType;
  /** Verb of the primary statement; empty when there is none. */
  readonly verb: string;
  /** Objects of all statements, de-duplicated. */
  readonly objects: ObjectRef[];
  /** WHERE presence of the primary statement. */
  readonly hasWhere: boolean;
  /** Fingerprint of the whole text (statement fingerprints joined by `; `). */
  readonly fingerprint: string;
}

/** Options of {@link analyzeSql}. */
export interface AnalyzeOptions {
  /** Dialect family or custom lexical options; MySQL by default. */
  readonly dialect?: Dialect | DialectOptions;
}

// Rank of statement classes when one text holds several statements: the most
// consequential one speaks for the record (a `SET NAMES utf8; DROP TABLE t`
// batch is a DROP, not a SET).
const RANK: Readonly<Record<StatementType, number>> = { dcl: 8, ddl: 7, delete: 6, update: 5, merge: 5, insert: 4, select: 3, other: 1, tcl: 0 };

/** Index of the statement that represents a multi-statement text: the highest-ranked class, first on ties. */
export function primaryStatement(statements: readonly StatementAnalysis[]): number {
  let best = -1;
  let rank = -1;
  for (let i = 0; i < statements.length; i++) {
    const r = RANK[statements[i]!.type];
    if (r > rank) {
      rank = r;
      best = i;
    }
  }
  return best;
}

const shared = new TokenBuffer();
const ranges: number[] = [];

/**
 * Splits, classifies and fingerprints a SQL text.
 *
 * ```ts
 * analyzeSql('UPDATE shop.orders SET paid = 1', { dialect: 'mysql' })
 * // { type: 'update', verb: 'UPDATE', hasWhere: false,
 * //   objects: [{ schema: 'shop', name: 'orders', op: 'update' }],
 * //   fingerprint: 'update shop.orders set paid = ?', ... }
 * ```
 */
export function analyzeSql(sql: string, opts?: AnalyzeOptions): SqlAnalysis {
  const d = dialectOptions(opts?.dialect);
  const buf = scanSql(sql, d, shared);
  return analyzeTokens(buf, true);
}

/** @internal Analysis over an already scanned buffer. */
export function analyzeTokens(buf: TokenBuffer, withFingerprint: boolean): SqlAnalysis {
  ranges.length = 0;
  splitStatements(buf, ranges);
  const statements: StatementAnalysis[] = [];
  let fp = '';
  for (let r = 0; r < ranges.length; r += 2) {
    const s = ranges[r]!;
    const e = ranges[r + 1]!;
    const st = classifyRange(buf, s, e, withFingerprint);
    if (withFingerprint) fp = fp.length === 0 ? st.fingerprint : st.fingerprint.length === 0 ? fp : `${fp}; ${st.fingerprint}`;
    statements.push(st);
  }
  const p = primaryStatement(statements);
  let objects: ObjectRef[];
  if (statements.length === 1) objects = statements[0]!.objects;
  else {
    objects = [];
    for (const st of statements) for (const o of st.objects) addObject(objects, o.schema, o.name, o.op!);
  }
  const prim = p >= 0 ? statements[p]! : undefined;
  return {
    dialect: buf.dialect.name,
    statements,
    type: prim?.type ?? 'other',
    verb: prim?.verb ?? '',
    objects,
    hasWhere: prim?.hasWhere ?? false,
    fingerprint: fp,
  };
}

// ---- classification -----------------------------------------------------------

const VERB_NAME: Record<number, string> = {
  [K.select]: 'SELECT', [K.insert]: 'INSERT', [K.update]: 'UPDATE', [K.delete]: 'DELETE', [K.merge]: 'MERGE',
  [K.replace]: 'REPLACE', [K.upsert]: 'UPSERT', [K.create]: 'CREATE', [K.alter]: 'ALTER', [K.drop]: 'DROP',
  [K.truncate]: 'TRUNCATE', [K.rename]: 'RENAME', [K.comment]: 'COMMENT', [K.grant]: 'GRANT', [K.revoke]: 'REVOKE',
  [K.deny]: 'DENY', [K.begin]: 'BEGIN', [K.commit]: 'COMMIT', [K.rollback]: 'ROLLBACK', [K.savepoint]: 'SAVEPOINT',
  [K.end]: 'END', [K.abort]: 'ABORT', [K.xa]: 'XA', [K.with]: 'WITH', [K.values]: 'VALUES', [K.table]: 'TABLE',
};

// Object kinds after CREATE / ALTER / DROP / ..., with their verb spelling.
const KIND_NAME: Record<number, string> = {
  [K.table]: 'TABLE', [K.view]: 'VIEW', [K.index]: 'INDEX', [K.database]: 'DATABASE', [K.schema]: 'SCHEMA',
  [K.user]: 'USER', [K.role]: 'ROLE', [K.procedure]: 'PROCEDURE', [K.proc]: 'PROCEDURE', [K.function]: 'FUNCTION',
  [K.trigger]: 'TRIGGER', [K.sequence]: 'SEQUENCE', [K.event]: 'EVENT', [K.tablespace]: 'TABLESPACE',
  [K.type]: 'TYPE', [K.extension]: 'EXTENSION', [K.login]: 'LOGIN', [K.synonym]: 'SYNONYM', [K.package]: 'PACKAGE',
  [K.server]: 'SERVER', [K.directory]: 'DIRECTORY', [K.domain]: 'DOMAIN', [K.policy]: 'POLICY',
  [K.publication]: 'PUBLICATION', [K.subscription]: 'SUBSCRIPTION', [K.statistics]: 'STATISTICS',
  [K.aggregate]: 'AGGREGATE', [K.operator]: 'OPERATOR', [K.rule]: 'RULE', [K.column]: 'COLUMN',
};

// Kinds whose DDL is an account change (classified dcl).
function isAccountKind(kind: number): boolean {
  return kind === K.user || kind === K.role || kind === K.login;
}

// Kinds whose names are recorded as objects.
function isNamedObjectKind(kind: number): boolean {
  return kind !== K.user && kind !== K.role && kind !== K.login && kind !== K.index && kind !== K.column && kind !== K.server && kind !== K.policy && kind !== K.rule && kind !== K.statistics && kind !== K.operator && kind !== K.aggregate;
}

const verbCache = new Map<number, string>();
function ddlVerb(verbKw: number, kind: number, extra: number): string {
  const key = verbKw * 4096 + kind * 4 + extra;
  let v = verbCache.get(key);
  if (v === undefined) {
    let kindName = KIND_NAME[kind] ?? '';
    if (extra === 1) kindName = `MATERIALIZED ${kindName}`;
    else if (extra === 2) kindName = `${kindName} BODY`;
    v = kindName.length > 0 ? `${VERB_NAME[verbKw]} ${kindName}` : VERB_NAME[verbKw]!;
    verbCache.set(key, v);
  }
  return v;
}

// Words that cannot be a table name where one is expected.
const NOT_NAME = new Uint8Array(512);
for (const k of [K.select, K.where, K.set, K.values, K.value, K.on, K.using, K.join, K.left, K.right, K.inner, K.outer, K.cross, K.natural, K.full, K.group, K.order, K.having, K.limit, K.union, K.into, K.as, K.with, K.lateral, K.from, K.returning, K.output, K.window, K.for, K.straight_join, K.partition, K.dual, K.offset, K.fetch, K.when, K.then, K.else, K.end, K.case, K.and, K.or, K.not, K.in, K.exists, K.null, K.true, K.false]) NOT_NAME[k] = 1;

// Words before '(' that open a grouping / subquery rather than a function call.
const GROUP_WORD = new Uint8Array(512);
for (const k of [K.select, K.from, K.join, K.in, K.exists, K.as, K.where, K.and, K.or, K.not, K.on, K.union, K.all, K.using, K.values, K.value, K.into, K.with, K.lateral, K.then, K.else, K.when, K.by, K.having, K.set, K.table, K.any, K.some, K.update, K.delete, K.insert, K.returning, K.do, K.is, K.like, K.between, K.case, K.distinct, K.recursive, K.materialized, K.only, K.return, K.xor, K.limit, K.view, K.merge, K.copy, K.explain]) GROUP_WORD[k] = 1;

/** Mutable statement under construction. */
interface Draft {
  type: StatementType;
  verb: string;
  objects: ObjectRef[];
  hasWhere: boolean;
}

function classifyRange(buf: TokenBuffer, s: number, e: number, withFingerprint: boolean): StatementAnalysis {
  const d: Draft = { type: 'other', verb: '', objects: [], hasWhere: false };
  classifyHead(buf, s, e, d);
  walkObjects(buf, s, e, d);
  return {
    type: d.type,
    verb: d.verb,
    objects: d.objects,
    hasWhere: d.hasWhere,
    fingerprint: withFingerprint ? fingerprintRange(buf, s, e) : '',
    start: buf.start[s]!,
    end: e > s ? buf.end[lastSig(buf, s, e)]! : buf.start[s]!,
  };
}

function lastSig(buf: TokenBuffer, s: number, e: number): number {
  let j = e - 1;
  while (j > s && buf.type[j] === TokenType.Comment) j--;
  return j;
}

function upperWord(buf: TokenBuffer, i: number): string {
  return buf.type[i] === TokenType.Word ? buf.text(i).toUpperCase() : '';
}

function classifyHead(buf: TokenBuffer, s: number, e: number, d: Draft): void {
  const kw = buf.kw;
  const type = buf.type;
  let first = s;
  // "(SELECT ...) UNION (SELECT ...)": look inside leading parentheses
  while (first < e && (type[first] === TokenType.LParen || type[first] === TokenType.Comment)) first++;
  if (first >= e) return;
  const k = kw[first]!;
  const n1 = nextSig(buf, first + 1, e);
  const k1 = n1 < e ? kw[n1]! : 0;
  switch (k) {
    case K.select:
    case K.values:
      d.type = 'select';
      d.verb = VERB_NAME[k]!;
      return;
    case K.table:
      d.type = 'select';
      d.verb = 'TABLE';
      return;
    case K.with: {
      // WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (...) [, ...] <main statement>
      let depth = 0;
      for (let j = n1; j < e; j++) {
        const t = type[j];
        if (t === TokenType.LParen) depth++;
        else if (t === TokenType.RParen) depth--;
        else if (depth === 0 && t === TokenType.Word) {
          const kk = kw[j]!;
          if (kk === K.select || kk === K.insert || kk === K.update || kk === K.delete || kk === K.merge || kk === K.values || kk === K.table) {
            d.type = kk === K.values || kk === K.table ? 'select' : (VERB_NAME[kk]!.toLowerCase() as StatementType);
            d.verb = VERB_NAME[kk]!;
            return;
          }
        }
      }
      d.type = 'select';
      d.verb = 'SELECT';
      return;
    }
    case K.insert:
    case K.replace:
    case K.upsert:
      d.type = 'insert';
      d.verb = VERB_NAME[k]!;
      return;
    case K.update:
      d.type = 'update';
      d.verb = 'UPDATE';
      return;
    case K.delete:
      d.type = 'delete';
      d.verb = 'DELETE';
      return;
    case K.merge:
      d.type = 'merge';
      d.verb = 'MERGE';
      return;
    case K.create:
    case K.alter:
    case K.drop:
    case K.rename:
    case K.truncate:
    case K.comment:
      ddlHead(buf, first, e, k, d);
      return;
    case K.grant:
    case K.revoke:
    case K.deny:
      d.type = 'dcl';
      d.verb = VERB_NAME[k]!;
      return;
    case K.begin:
      if (n1 >= e || type[n1] === TokenType.Semicolon || k1 === K.work || k1 === K.transaction || k1 === K.tran || k1 === K.isolation || k1 === K.read) {
        d.type = 'tcl';
        d.verb = k1 === K.tran || k1 === K.transaction ? 'BEGIN TRANSACTION' : 'BEGIN';
      } else {
        d.type = 'other';
        d.verb = 'BEGIN';
      }
      return;
    case K.start:
      if (k1 === K.transaction) {
        d.type = 'tcl';
        d.verb = 'START TRANSACTION';
      } else d.verb = 'START';
      return;
    case K.commit:
    case K.rollback:
    case K.savepoint:
    case K.abort:
    case K.xa:
      d.type = 'tcl';
      d.verb = VERB_NAME[k]!;
      return;
    case K.end:
      d.type = buf.dialect.name === 'postgres' || n1 >= e ? 'tcl' : 'other';
      d.verb = 'END';
      return;
    case K.release:
      if (k1 === K.savepoint) {
        d.type = 'tcl';
        d.verb = 'RELEASE SAVEPOINT';
      } else d.verb = 'RELEASE';
      return;
    case K.set:
      if (k1 === K.transaction || ((k1 === K.session || k1 === K.global || k1 === K.local) && kw[nextSig(buf, n1 + 1, e)] === K.transaction)) {
        d.type = 'tcl';
        d.verb = 'SET TRANSACTION';
      } else if (k1 === K.password) {
        d.type = 'dcl';
        d.verb = 'SET PASSWORD';
      } else if (k1 === K.role) {
        d.verb = 'SET ROLE';
      } else d.verb = 'SET';
      return;
    case K.load:
      if (k1 === K.data || upperWord(buf, n1) === 'XML') {
        d.type = 'insert';
        d.verb = k1 === K.data ? 'LOAD DATA' : 'LOAD XML';
      } else d.verb = 'LOAD';
      return;
    case K.copy: {
      d.verb = 'COPY';
      // COPY t FROM ... loads rows; COPY t TO ... / COPY (query) TO ... reads them.
      let depth = 0;
      d.type = 'other';
      for (let j = n1; j < e; j++) {
        const t = type[j];
        if (t === TokenType.LParen) depth++;
        else if (t === TokenType.RParen) depth--;
        else if (depth === 0 && kw[j] === K.from) {
          d.type = 'insert';
          break;
        } else if (depth === 0 && kw[j] === K.to) {
          d.type = 'select';
          break;
        }
      }
      return;
    }
    case K.lock:
      d.verb = k1 === K.tables ? 'LOCK TABLES' : 'LOCK TABLE';
      return;
    case K.unlock:
      d.verb = 'UNLOCK TABLES';
      return;
    case K.call:
      d.verb = 'CALL';
      return;
    case K.exec:
    case K.execute:
      d.verb = k === K.exec ? 'EXEC' : 'EXECUTE';
      return;
    case K.explain:
      d.verb = 'EXPLAIN';
      return;
    case K.describe:
    case K.desc:
      d.verb = 'DESCRIBE';
      return;
    default:
      d.verb = upperWord(buf, first);
  }
}

function ddlHead(buf: TokenBuffer, first: number, e: number, verbKw: number, d: Draft): void {
  const kw = buf.kw;
  const type = buf.type;
  let kind = 0;
  let extra = 0;
  let kindAt = -1;
  // Skip modifiers (OR REPLACE, TEMPORARY, UNIQUE, DEFINER = x, ALGORITHM = y, ...)
  // and find the object kind within the next few tokens.
  for (let j = first + 1, steps = 0; j < e && steps < 16; j++, steps++) {
    const t = type[j];
    if (t === TokenType.LParen || t === TokenType.Semicolon) break;
    if (t !== TokenType.Word) continue;
    const k = kw[j]!;
    if (k === K.materialized) {
      extra = 1;
      continue;
    }
    if (KIND_NAME[k] !== undefined) {
      if (k === K.table && verbKw === K.comment) {
        // COMMENT ON TABLE
      }
      kind = k;
      kindAt = j;
      const nx = nextSig(buf, j + 1, e);
      if (k === K.package && nx < e && kw[nx] === K.body) {
        extra = 2;
        kindAt = nx;
      }
      break;
    }
    // an unknown word right after the verb that is not a modifier: TRUNCATE t, RENAME t
    if (verbKw === K.truncate && k === 0) break;
  }
  if (verbKw === K.truncate && kind === 0) kind = K.table; // TRUNCATE t == TRUNCATE TABLE t
  d.type = isAccountKind(kind) ? 'dcl' : 'ddl';
  d.verb = verbKw === K.comment ? 'COMMENT ON' : ddlVerb(verbKw, kind, extra);
  const op = verbKw === K.create ? 'create' : verbKw === K.alter ? 'alter' : verbKw === K.drop ? 'drop' : verbKw === K.rename ? 'rename' : verbKw === K.truncate ? 'truncate' : 'comment';
  let j = kindAt >= 0 ? kindAt + 1 : first + 1;
  if (kind === K.index) {
    // CREATE INDEX name ON t (...) / DROP INDEX name ON t: the table is altered.
    let depth = 0;
    for (let x = j; x < e; x++) {
      const t = type[x];
      if (t === TokenType.LParen) depth++;
      else if (t === TokenType.RParen) depth--;
      else if (depth === 0 && kw[x] === K.on) {
        parseNameList(buf, x + 1, e, 'alter', d, false, false);
        return;
      }
    }
    if (verbKw === K.drop) parseNameList(buf, j, e, 'drop', d, true, false);
    return;
  }
  if (!isNamedObjectKind(kind) && !(verbKw === K.truncate)) return;
  if (verbKw === K.comment) return;
  parseNameList(buf, j, e, op, d, verbKw !== K.create && verbKw !== K.alter, verbKw === K.rename);
}

// ---- object extraction ----------------------------------------------------------

function unquote(buf: TokenBuffer, i: number): string {
  const raw = buf.text(i);
  if (buf.type[i] !== TokenType.QuotedIdent) return raw;
  const q = raw.charCodeAt(0);
  const close = q === 0x5b ? ']' : raw[0]!;
  let inner = raw.length >= 2 && raw.charCodeAt(raw.length - 1) === close.charCodeAt(0) ? raw.slice(1, -1) : raw.slice(1);
  if (q === 0x55 /* U&"..." */) inner = raw.slice(3, -1);
  return inner.indexOf(close) >= 0 ? inner.split(close + close).join(close) : inner;
}

function addObject(list: ObjectRef[], schema: string | undefined, name: string, op: string): void {
  for (const o of list) if (o.name === name && o.schema === schema && o.op === op) return;
  list.push(schema === undefined ? { name, op } : { schema, name, op });
}

let tableFunction = false;

/** Parses a possibly qualified name at `i`; returns the index after it, or -1 (no name there). */
function parseName(buf: TokenBuffer, i: number, e: number, op: string, d: Draft, allowFunction: boolean): number {
  const type = buf.type;
  const kw = buf.kw;
  i = nextSig(buf, i, e);
  if (i >= e) return -1;
  const t = type[i];
  if (t !== TokenType.Word && t !== TokenType.QuotedIdent && !(t === TokenType.Operator && buf.sql.charCodeAt(buf.start[i]!) === 0x2a)) return -1;
  if (t === TokenType.Word && NOT_NAME[kw[i]!] === 1) return -1;
  let p0 = i;
  let p1 = -1;
  let p2 = -1;
  let j = nextSig(buf, i + 1, e);
  while (j + 1 < e && type[j] === TokenType.Dot) {
    const x = nextSig(buf, j + 1, e);
    const tx = type[x];
    if (x >= e || (tx !== TokenType.Word && tx !== TokenType.QuotedIdent && !(tx === TokenType.Operator && buf.sql.charCodeAt(buf.start[x]!) === 0x2a))) break;
    p2 = p1;
    p1 = p0;
    p0 = x;
    j = nextSig(buf, x + 1, e);
  }
  if (!allowFunction && j < e && type[j] === TokenType.LParen) {
    tableFunction = true; // FROM generate_series(...): not a table
    return j;
  }
  void p2;
  addObject(d.objects, p1 >= 0 ? unquote(buf, p1) : undefined, unquote(buf, p0), op);
  return j;
}

/** Skips an alias (`AS x`, `x`), MySQL PARTITION (...), index hints and T-SQL table hints. */
function skipAlias(buf: TokenBuffer, j: number, e: number): number {
  const type = buf.type;
  const kw = buf.kw;
  j = nextSig(buf, j, e);
  if (j < e && kw[j] === K.partition && type[nextSig(buf, j + 1, e)] === TokenType.LParen) j = skipGroup(buf, nextSig(buf, j + 1, e), e);
  if (j < e && kw[j] === K.as) j = nextSig(buf, j + 1, e) + 1;
  else if (j < e && ((type[j] === TokenType.Word && kw[j] === 0) || type[j] === TokenType.QuotedIdent)) j++;
  j = nextSig(buf, j, e);
  // T-SQL WITH (NOLOCK); MySQL USE/FORCE/IGNORE INDEX (...)
  if (j < e && kw[j] === K.with && type[nextSig(buf, j + 1, e)] === TokenType.LParen) j = skipGroup(buf, nextSig(buf, j + 1, e), e);
  return nextSig(buf, j, e);
}

function skipGroup(buf: TokenBuffer, lp: number, e: number): number {
  let depth = 0;
  for (let j = lp; j < e; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return j + 1;
  }
  return e;
}

/** Skips modifiers that may precede a table name. */
function skipTableModifiers(buf: TokenBuffer, j: number, e: number): number {
  const kw = buf.kw;
  for (;;) {
    j = nextSig(buf, j, e);
    if (j >= e) return j;
    const k = kw[j];
    if (k === K.only || k === K.low_priority || k === K.ignore || k === K.quick || k === K.delayed || k === K.high_priority || k === K.table) {
      j++;
      continue;
    }
    if (k === K.if) {
      // IF [NOT] EXISTS
      let x = nextSig(buf, j + 1, e);
      if (x < e && kw[x] === K.not) x = nextSig(buf, x + 1, e);
      if (x < e && kw[x] === K.exists) {
        j = x + 1;
        continue;
      }
    }
    if (buf.type[j] === TokenType.Word && buf.lower.startsWith('concurrently', buf.start[j]!) && buf.end[j]! - buf.start[j]! === 12) {
      j++;
      continue;
    }
    return j;
  }
}

/** A comma-separated list of names (FROM a, b / DROP TABLE a, b / RENAME TABLE a TO b, c TO d). */
function parseNameList(buf: TokenBuffer, j: number, e: number, op: string, d: Draft, list: boolean, renamePairs: boolean): number {
  for (;;) {
    j = skipTableModifiers(buf, j, e);
    if (j < e && buf.type[j] === TokenType.LParen) {
      // derived table "(SELECT ...) AS x, t2": its tables come from the walk; continue the list after it
      if (!list || op !== 'read') return j;
      j = skipAlias(buf, skipGroup(buf, j, e), e);
      if (j < e && buf.type[j] === TokenType.Comma) {
        j++;
        continue;
      }
      return j;
    }
    tableFunction = false;
    let after = parseName(buf, j, e, op, d, op !== 'read');
    if (after < 0) return j;
    if (tableFunction) after = skipGroup(buf, after, e);
    j = renamePairs ? nextSig(buf, after, e) : op === 'read' || op === 'delete' || op === 'update' ? skipAlias(buf, after, e) : nextSig(buf, after, e);
    if (renamePairs && j < e && buf.kw[j] === K.to) {
      const a2 = parseName(buf, j + 1, e, op, d, true);
      if (a2 < 0) return j;
      j = nextSig(buf, a2, e);
    }
    if (list && j < e && buf.type[j] === TokenType.Comma) {
      j++;
      continue;
    }
    return j;
  }
}

const FN_STACK = new Uint8Array(64);

function walkObjects(buf: TokenBuffer, s: number, e: number, d: Draft): void {
  const type = buf.type;
  const kw = buf.kw;
  const stype = d.type;
  let first = nextSig(buf, s, e);
  while (first < e && type[first] === TokenType.LParen) first = nextSig(buf, first + 1, e);
  if (first >= e) return;
  const k0 = kw[first]!;
  // statement-specific heads
  if (stype === 'dcl') {
    if (k0 === K.grant || k0 === K.revoke || k0 === K.deny) {
      let depth = 0;
      for (let j = first + 1; j < e; j++) {
        const t = type[j];
        if (t === TokenType.LParen) depth++;
        else if (t === TokenType.RParen) depth--;
        else if (depth === 0 && kw[j] === K.on) {
          let x = nextSig(buf, j + 1, e);
          const kk = kw[x]!;
          if (KIND_NAME[kk] !== undefined && kk !== K.table) {
            // GRANT ... ON SCHEMA s / ON DATABASE d / ON FUNCTION f: the name is the object
            x = x + 1;
          }
          parseNameList(buf, x, e, VERB_NAME[k0]!.toLowerCase(), d, true, false);
          break;
        } else if (depth === 0 && (kw[j] === K.to || kw[j] === K.from)) break;
      }
    }
    return;
  }
  if (k0 === K.lock) {
    // LOCK TABLES a READ, b AS x WRITE (MySQL); LOCK [TABLE] [ONLY] t, u IN ... MODE (PostgreSQL)
    let j = nextSig(buf, first + 1, e);
    if (j < e && (buf.kw[j] === K.tables || buf.kw[j] === K.table)) j = nextSig(buf, j + 1, e);
    if (j < e && buf.kw[j] === K.only) j = nextSig(buf, j + 1, e);
    while (j < e) {
      const after = parseName(buf, j, e, 'lock', d, true);
      if (after < 0) return;
      j = after;
      while (j < e && buf.type[j] !== TokenType.Comma && buf.kw[j] !== K.in) j++;
      if (j >= e || buf.type[j] !== TokenType.Comma) return;
      j = nextSig(buf, j + 1, e);
    }
    return;
  }
  if (k0 === K.call || k0 === K.exec || k0 === K.execute) {
    const x = nextSig(buf, first + 1, e);
    if (x < e && (type[x] === TokenType.Word || type[x] === TokenType.QuotedIdent)) parseName(buf, x, e, 'execute', d, true);
    return;
  }
  if (k0 === K.describe || k0 === K.desc) {
    parseName(buf, first + 1, e, 'describe', d, false);
    return;
  }
  if (k0 === K.copy) {
    parseName(buf, first + 1, e, stype === 'insert' ? 'insert' : 'read', d, true);
    // COPY (query) TO: the query's tables come from the walk below
  }
  if (k0 === K.update) parseNameList(buf, first + 1, e, 'update', d, true, false);
  else if ((k0 === K.insert || k0 === K.replace) && type[nextSig(buf, first + 1, e)] === TokenType.Word) {
    // INSERT t VALUES (...) without INTO (MySQL, T-SQL)
    const x = skipTableModifiers(buf, first + 1, e);
    if (x < e && kw[x] !== K.into) parseName(buf, x, e, 'insert', d, true);
  }

  // CTE names are not tables
  let ctes: string[] | undefined;
  if (k0 === K.with) {
    ctes = [];
    let depth = 0;
    let expectName = true;
    for (let j = first + 1; j < e; j++) {
      const t = type[j];
      if (t === TokenType.Comment) continue;
      if (t === TokenType.LParen) depth++;
      else if (t === TokenType.RParen) depth--;
      else if (depth === 0) {
        if (t === TokenType.Comma) expectName = true;
        else if (expectName && (t === TokenType.Word || t === TokenType.QuotedIdent) && kw[j] !== K.recursive) {
          ctes.push(unquote(buf, j).toLowerCase());
          expectName = false;
        } else if (t === TokenType.Word && (kw[j] === K.select || kw[j] === K.insert || kw[j] === K.update || kw[j] === K.delete || kw[j] === K.merge)) break;
      }
    }
  }

  // general walk: FROM / JOIN / INTO / USING / WHERE
  const fnStack = FN_STACK;
  let depth = 0;
  let prev = -1;
  let fromSeen = false;
  for (let j = s; j < e; j++) {
    const t = type[j];
    if (t === TokenType.Comment) continue;
    if (t === TokenType.LParen) {
      const pt = prev >= 0 ? type[prev] : 0;
      const isFn = (pt === TokenType.Word && GROUP_WORD[kw[prev]!] !== 1) || pt === TokenType.QuotedIdent;
      if (depth < 64) fnStack[depth] = isFn ? 1 : 0;
      depth++;
      prev = j;
      continue;
    }
    if (t === TokenType.RParen) {
      if (depth > 0) depth--;
      prev = j;
      continue;
    }
    if (t === TokenType.Word) {
      const k = kw[j]!;
      if (k !== 0 && !(depth > 0 && depth <= 64 && fnStack[depth - 1] === 1)) {
        if (k === K.where) {
          if (depth === 0) d.hasWhere = true;
        } else if (k === K.from) {
          const op = stype === 'delete' && depth === 0 && !fromSeen ? 'delete' : stype === 'insert' && k0 === K.copy ? 'insert' : 'read';
          if (depth === 0) fromSeen = true;
          if (!(k0 === K.copy && depth === 0)) parseNameList(buf, j + 1, e, op, d, true, false);
        } else if (k === K.join) {
          parseNameList(buf, j + 1, e, 'read', d, false, false);
        } else if (k === K.into) {
          const x = skipTableModifiers(buf, j + 1, e);
          if (x < e && type[x] !== TokenType.Variable && type[x] !== TokenType.Param && kw[x] !== K.outfile && kw[x] !== K.dumpfile) {
            const op = stype === 'insert' ? 'insert' : stype === 'merge' ? 'merge' : stype === 'select' ? 'create' : 'insert';
            if (stype !== 'select' || buf.dialect.name !== 'oracle') parseName(buf, x, e, op, d, true);
          }
        } else if (k === K.using && (stype === 'delete' || stype === 'merge') && depth === 0) {
          parseNameList(buf, j + 1, e, 'read', d, true, false);
        }
      }
    }
    prev = j;
  }
  if (ctes !== undefined && ctes.length > 0) {
    d.objects = d.objects.filter((o) => o.schema !== undefined || !ctes!.includes(o.name.toLowerCase()));
  }
}

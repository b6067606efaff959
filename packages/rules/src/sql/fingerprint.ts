// Statement fingerprints in the manner of pt-fingerprint (Percona Toolkit,
// QueryRewriter::fingerprint): literals become `?`, IN and VALUES lists of
// literals collapse to `(?+)`, LIMIT forms to `limit ?`, ASC after ORDER BY
// goes, comments go, whitespace collapses, everything is lower case. Built
// from tokens, so `'it''s'` is one literal and `t1` stays `t1`; every
// intended difference from pt-fingerprint is listed in docs/rules.md.
import { K as K_ } from './keywords.js';
import { TokenBuffer, TokenFlag as TokenFlag_, TokenType as TokenType_, scanSql as scanSql_ } from './lexer.js';
import { dialectOptions as dialectOptions_, type Dialect, type DialectOptions } from './dialect.js';
import { ShapeCache } from './shape.js';
import { nextSig as nextSig_, splitStatements as splitStatements_ } from './split.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const K = K_;
const TokenFlag = TokenFlag_;
const TokenType = TokenType_;
const scanSql = scanSql_;
const nextSig = nextSig_;
const splitStatements = splitStatements_;
const dialectOptions = dialectOptions_;


function isLiteral(buf: TokenBuffer, i: number): boolean {
  const t = buf.type[i];
  return t === TokenType.String || t === TokenType.Number || t === TokenType.Param || (t === TokenType.Word && buf.kw[i] === K.null);
}

/** True when `lp` opens a parenthesised list of only literals, commas and signs; returns the index after `)` or -1. */
function pureList(buf: TokenBuffer, lp: number, e: number): number {
  const type = buf.type;
  for (let j = lp + 1; j < e; j++) {
    const t = type[j];
    if (t === TokenType.RParen) return j + 1;
    if (t === TokenType.Comma || t === TokenType.Comment || isLiteral(buf, j)) continue;
    if (t === TokenType.Operator && buf.end[j]! - buf.start[j]! === 1) {
      const c = buf.sql.charCodeAt(buf.start[j]!);
      if (c === 0x2d || c === 0x2b) continue;
    }
    return -1;
  }
  return -1;
}

function matchParen(buf: TokenBuffer, lp: number, e: number): number {
  let depth = 0;
  for (let j = lp; j < e; j++) {
    const t = buf.type[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return j + 1;
  }
  return e;
}

const UNION_REPEAT = /\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+/g;

/** @internal Fingerprint of tokens `[s, e)` of a scanned buffer. */
export function fingerprintRange(buf: TokenBuffer, s: number, e: number): string {
  const type = buf.type;
  const flags = buf.flags;
  const kw = buf.kw;
  const start = buf.start;
  const end = buf.end;
  const lower = buf.lower;
  const first = nextSig(buf, s, e);
  if (first >= e) return '';
  // pt: CALL name(...) -> "call name"
  if (kw[first] === K.call) {
    const nameAt = nextSig(buf, first + 1, e);
    let j = nameAt;
    while (j < e && (type[j] === TokenType.Word || type[j] === TokenType.QuotedIdent || type[j] === TokenType.Dot) && (j === nameAt || (flags[j]! & TokenFlag.SpaceBefore) === 0)) j++;
    if (j > nameAt && j < e && type[j] === TokenType.LParen && (flags[j]! & TokenFlag.SpaceBefore) === 0) return `call ${lower.slice(start[nameAt], end[j - 1])}`;
  }
  // pt: USE db -> "use ?"
  if (kw[first] === K.use) {
    const x = nextSig(buf, first + 1, e);
    if (x < e && nextSig(buf, x + 1, e) >= e) return 'use ?';
  }

  let out = '';
  let lastT = 0; // type of the last significant token emitted or skipped
  let lastKw = 0;
  let orderBy = false;
  let dropStart = -1;
  let dropEnd = -1;
  for (let i = first; i < e; i++) {
    if (i === dropStart) {
      i = dropEnd - 1;
      continue;
    }
    const t = type[i]!;
    if (t === TokenType.Comment) continue;
    const sp = out.length > 0 && (flags[i]! & TokenFlag.SpaceBefore) !== 0 ? ' ' : '';
    switch (t) {
      case TokenType.String:
      case TokenType.Number:
      case TokenType.Param:
        out += sp + '?';
        break;
      case TokenType.Operator: {
        const c = buf.sql.charCodeAt(start[i]!);
        if ((c === 0x2d || c === 0x2b) && end[i]! - start[i]! === 1 && i + 1 < e && type[i + 1] === TokenType.Number && (flags[i + 1]! & TokenFlag.SpaceBefore) === 0) {
          // unary sign: "= -1" -> "= ?"
          if (lastT === 0 || lastT === TokenType.Operator || lastT === TokenType.LParen || lastT === TokenType.Comma || (lastT === TokenType.Word && lastKw !== 0 && lastKw !== K.null && lastKw !== K.end)) {
            out += sp + '?';
            i++;
            lastT = TokenType.Number;
            lastKw = 0;
            continue;
          }
        }
        out += sp + lower.slice(start[i], end[i]);
        break;
      }
      case TokenType.Word: {
        const k = kw[i]!;
        if (k === K.null) {
          out += sp + '?';
          break;
        }
        if (k === K.asc && orderBy) {
          lastT = t;
          lastKw = k;
          continue;
        }
        if (k === K.order) {
          const x = nextSig(buf, i + 1, e);
          if (x < e && kw[x] === K.by) orderBy = true;
        } else if (k === K.in || k === K.values || k === K.value) {
          const lp = nextSig(buf, i + 1, e);
          if (lp < e && type[lp] === TokenType.LParen) {
            let after = pureList(buf, lp, e);
            if (after > 0) {
              if (k !== K.in) {
                // further rows: , (...)
                for (;;) {
                  const c = nextSig(buf, after, e);
                  if (c >= e || type[c] !== TokenType.Comma) break;
                  const lp2 = nextSig(buf, c + 1, e);
                  if (lp2 >= e || type[lp2] !== TokenType.LParen) break;
                  const a2 = pureList(buf, lp2, e);
                  if (a2 < 0) break;
                  after = a2;
                }
              }
              out += sp + lower.slice(start[i], end[i]) + '(?+)';
              i = after - 1;
              lastT = TokenType.RParen;
              lastKw = 0;
              continue;
            }
            if (k !== K.in) {
              // VALUES rows with expressions: keep the first row, drop the rest (pt shortens multi-row INSERTs)
              const r = matchParen(buf, lp, e);
              let z = r;
              for (;;) {
                const c = nextSig(buf, z, e);
                if (c >= e || type[c] !== TokenType.Comma) break;
                const lp2 = nextSig(buf, c + 1, e);
                if (lp2 >= e || type[lp2] !== TokenType.LParen) break;
                z = matchParen(buf, lp2, e);
              }
              if (z > r) {
                dropStart = r;
                dropEnd = z;
              }
            }
          }
        } else if (k === K.limit) {
          const a = nextSig(buf, i + 1, e);
          if (a < e && isLiteral(buf, a)) {
            let endAt = a + 1;
            const b = nextSig(buf, a + 1, e);
            if (b < e && (type[b] === TokenType.Comma || kw[b] === K.offset)) {
              const c = nextSig(buf, b + 1, e);
              if (c < e && isLiteral(buf, c)) endAt = c + 1;
            }
            out += sp + 'limit ?';
            i = endAt - 1;
            lastT = TokenType.Number;
            lastKw = 0;
            continue;
          }
        }
        out += sp + lower.slice(start[i], end[i]);
        break;
      }
      default:
        out += sp + lower.slice(start[i], end[i]);
    }
    lastT = t;
    lastKw = kw[i]!;
  }
  if (out.indexOf('union') >= 0) out = out.replace(UNION_REPEAT, '$1 /*repeat$2*/');
  return out;
}

const shared = new TokenBuffer();

/**
 * The fingerprint of a SQL text: the shape that stays when literals are
 * replaced (`select * from t where id = ?`). Statements of a multi-statement
 * text are joined with `; `.
 */
export function fingerprint(sql: string, dialect?: Dialect | DialectOptions): string {
  const d = dialectOptions(dialect);
  const hit = fingerprints.get(sql, d);
  if (hit !== undefined) return hit;
  const f = fingerprintText(scanSql(sql, d, shared));
  fingerprints.set(f);
  return f;
}

/**
 * Fingerprints by statement shape: texts that differ only in literal values
 * have the same fingerprint, so the executions of one application statement
 * are scanned only for their shape (bounded; see shape.ts).
 */
const fingerprints = new ShapeCache<string>(2048);

function fingerprintText(buf: TokenBuffer): string {
  const ranges: number[] = [];
  splitStatements(buf, ranges);
  let out = '';
  for (let r = 0; r < ranges.length; r += 2) {
    const f = fingerprintRange(buf, ranges[r]!, ranges[r + 1]!);
    if (f.length > 0) out = out.length === 0 ? f : `${out}; ${f}`;
  }
  return out;
}

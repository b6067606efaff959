// Splitting a text into statements: top-level semicolons end statements,
// except inside stored-program bodies (BEGIN ... END) and PL/SQL units.
import { K as K_ } from './keywords.js';
import { TokenType as TokenType_, type TokenBuffer } from './lexer.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const K = K_;
const TokenType = TokenType_;

/** @internal Index of the next non-comment token at or after `i` (or `e`). */
export function nextSig(buf: TokenBuffer, i: number, e: number): number {
  const type = buf.type;
  while (i < e && type[i] === TokenType.Comment) i++;
  return i;
}

/**
 * How a statement ends: 0 = at the next top-level `;`; 1 = a MySQL compound
 * statement (stored program body) whose `;` inside BEGIN...END do not end it;
 * 2 = the rest of the text (Oracle PL/SQL blocks and units, T-SQL program
 * bodies, which run to the end of the batch).
 */
function endMode(buf: TokenBuffer, s: number): number {
  const kw = buf.kw;
  const d = buf.dialect.name;
  const k = kw[s];
  if (k === K.begin || k === K.declare) {
    if (d === 'oracle' || d === 'db2') return 2;
    if (d === 'mysql') {
      const j = nextSig(buf, s + 1, buf.count);
      return j < buf.count && kw[j] === K.not ? 1 : 0; // MariaDB BEGIN NOT ATOMIC
    }
    return 0;
  }
  if (k !== K.create && k !== K.alter) return 0;
  // look for the object kind among the next few tokens
  let j = s + 1;
  for (let steps = 0; j < buf.count && steps < 12; j++, steps++) {
    const t = buf.type[j];
    if (t === TokenType.Semicolon || t === TokenType.LParen) break;
    const kk = kw[j];
    if (kk === K.procedure || kk === K.function || kk === K.trigger || kk === K.event || kk === K.package || kk === K.proc) {
      return d === 'mysql' || d === 'postgres' ? (d === 'mysql' ? 1 : 0) : 2;
    }
    if (kk === K.view && d === 'tsql') return 2;
    if (kk === K.type && d === 'oracle') return 2;
    if (kk === K.table || kk === K.index || kk === K.user) break;
  }
  return 0;
}

/** @internal Appends `[start, end)` token ranges of the statements of `buf` to `out`. */
export function splitStatements(buf: TokenBuffer, out: number[]): void {
  const n = buf.count;
  const type = buf.type;
  const kw = buf.kw;
  let i = 0;
  while (i < n) {
    let s = i;
    while (s < n && (type[s] === TokenType.Comment || type[s] === TokenType.Semicolon)) s++;
    if (s >= n) break;
    const mode = endMode(buf, s);
    let j = s;
    if (mode === 2) j = n;
    else {
      let depth = 0;
      let block = 0;
      let prev = -1;
      for (; j < n; j++) {
        const t = type[j];
        if (t === TokenType.Comment) continue;
        if (t === TokenType.LParen) depth++;
        else if (t === TokenType.RParen) {
          if (depth > 0) depth--;
        } else if (t === TokenType.Semicolon) {
          if (depth === 0 && block <= 0) break;
        } else if (mode === 1 && t === TokenType.Word) {
          const k = kw[j];
          const nx = nextSig(buf, j + 1, n);
          const followedByParen = nx < n && type[nx] === TokenType.LParen;
          if (k === K.begin || k === K.case) block++;
          else if (k === K.end) {
            block--;
            // END IF / END LOOP / END CASE / END WHILE / END REPEAT close one block
            const kk = nx < n ? kw[nx] : 0;
            if (kk === K.if || kk === K.loop || kk === K.case || kk === K.while || kk === K.repeat) j = nx;
          } else if ((k === K.loop || k === K.while || k === K.repeat) && !followedByParen) block++;
          else if (k === K.if) {
            const pk = prev >= 0 ? kw[prev] : 0;
            const pt = prev >= 0 ? type[prev] : TokenType.Semicolon;
            if (pt === TokenType.Semicolon || pk === K.begin || pk === K.then || pk === K.else || pk === K.do || pk === K.loop || pk === K.repeat) block++;
          }
        }
        prev = j;
      }
    }
    out.push(s, j);
    i = j + 1;
  }
}


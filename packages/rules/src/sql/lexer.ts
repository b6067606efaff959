// A single-pass SQL scanner over UTF-16 char codes. No regular expression
// runs per token: character classes come from a 128-entry table, keywords
// from one Map lookup per word. The scanner fills a reusable TokenBuffer
// (parallel typed arrays), which classification, fingerprinting and the
// injection detector then walk without re-lexing.
import { MAX_KEYWORD_LENGTH as MAX_KEYWORD_LENGTH_, keywordAt as keywordAt_ } from './keywords.js';
import { dialectOptions as dialectOptions_, type Dialect, type DialectOptions } from './dialect.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const MAX_KEYWORD_LENGTH = MAX_KEYWORD_LENGTH_;
const keywordAt = keywordAt_;
const dialectOptions = dialectOptions_;

/** Token classes. */
export const TokenType = {
  /** Unquoted identifier or keyword. */
  Word: 1,
  /** Quoted identifier: `"x"` (ANSI), `` `x` `` (MySQL), `[x]` (T-SQL). */
  QuotedIdent: 2,
  /** String constant of any quoting form (including `X'..'`, `E'..'`, `$$..$$`, `q'[..]'`). */
  String: 3,
  /** Numeric constant (decimal, exponent, `0x..`, `0b..`). */
  Number: 4,
  /** Placeholder: `?`, `$1`, `:name`, T-SQL `@p1`. */
  Param: 5,
  /** MySQL user or system variable: `@x`, `@@version`. */
  Variable: 6,
  /** Operator: `=`, `<>`, `||`, `::`, `->>`, ... */
  Operator: 7,
  /** `(` */
  LParen: 8,
  /** `)` */
  RParen: 9,
  /** `,` */
  Comma: 10,
  /** `;` */
  Semicolon: 11,
  /** `.` */
  Dot: 12,
  /** A comment (block, `--` or `#`). */
  Comment: 13,
} as const;
/** One of the {@link TokenType} values. */
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/** Bits of a token's flags. */
export const TokenFlag = {
  /** Whitespace or a comment precedes the token. */
  SpaceBefore: 1,
  /** A string, quoted identifier or comment that runs to the end of the text. */
  Unterminated: 2,
  /** The token sits inside a MySQL executable comment `/*! ... *\/`. */
  InExecComment: 4,
  /** A line comment (`--` or `#`), for Comment tokens. */
  LineComment: 8,
  /** A hex or bit string (`X'..'`, `B'..'`, `0x..`), for String and Number tokens. */
  Binary: 16,
} as const;

// ---- character classes ----------------------------------------------------
const C_SPACE = 1;
const C_IDSTART = 2;
const C_IDPART = 4;
const C_DIGIT = 8;
const CLS = new Uint8Array(128);
for (const c of [9, 10, 11, 12, 13, 32]) CLS[c] = C_SPACE;
for (let c = 0x41; c <= 0x5a; c++) CLS[c] = C_IDSTART | C_IDPART;
for (let c = 0x61; c <= 0x7a; c++) CLS[c] = C_IDSTART | C_IDPART;
CLS[0x5f] = C_IDSTART | C_IDPART; // _
CLS[0x24] = C_IDPART; // $ inside identifiers (MySQL, PostgreSQL, Oracle)
for (let c = 0x30; c <= 0x39; c++) CLS[c] = C_DIGIT | C_IDPART;

function isIdPart(c: number): boolean {
  return c >= 128 ? c !== 0xa0 && c !== 0x3000 && c !== 0xfeff : (CLS[c]! & C_IDPART) !== 0;
}
function isIdStart(c: number): boolean {
  return c >= 128 ? c !== 0xa0 && c !== 0x3000 && c !== 0xfeff : (CLS[c]! & C_IDSTART) !== 0;
}
function isSpace(c: number): boolean {
  return c < 128 ? CLS[c] === C_SPACE : c === 0xa0 || c === 0x3000 || c === 0xfeff;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * The tokens of one SQL text as parallel arrays, reused between calls to
 * {@link scanSql} (so a busy pipeline allocates nothing per statement once
 * the arrays have grown to its longest statement).
 */
export class TokenBuffer {
  /** Number of tokens. */
  count = 0;
  /** The text scanned. */
  sql = '';
  /** The text in lower case (same length as `sql`), for keyword and fingerprint slices. */
  lower = '';
  /** Dialect the text was scanned with. */
  dialect: DialectOptions = dialectOptions('mysql');
  /** Token class per token ({@link TokenType}). */
  type = new Uint8Array(64);
  /** {@link TokenFlag} bits per token. */
  flags = new Uint8Array(64);
  /** Keyword id per token (0 for none). */
  kw = new Uint16Array(64);
  /** Start offset (UTF-16 units) per token. */
  start = new Int32Array(64);
  /** End offset (exclusive) per token. */
  end = new Int32Array(64);
  /** Number of MySQL executable comments seen. */
  execComments = 0;

  /** Text of token `i` as written. */
  text(i: number): string {
    return this.sql.slice(this.start[i], this.end[i]);
  }

  /** Text of token `i` in lower case. */
  lowerText(i: number): string {
    return this.lower.slice(this.start[i], this.end[i]);
  }

  /** @internal */
  push(type: number, flags: number, kw: number, start: number, end: number): void {
    let n = this.count;
    if (n === this.type.length) this.grow();
    this.type[n] = type;
    this.flags[n] = flags;
    this.kw[n] = kw;
    this.start[n] = start;
    this.end[n] = end;
    this.count = n + 1;
  }

  private grow(): void {
    const size = this.type.length * 2;
    const t = new Uint8Array(size);
    t.set(this.type);
    this.type = t;
    const f = new Uint8Array(size);
    f.set(this.flags);
    this.flags = f;
    const k = new Uint16Array(size);
    k.set(this.kw);
    this.kw = k;
    const s = new Int32Array(size);
    s.set(this.start);
    this.start = s;
    const e = new Int32Array(size);
    e.set(this.end);
    this.end = e;
  }
}

/** One token, as returned by {@link tokenize}. */
export interface Token {
  /** Token class. */
  readonly type: TokenType;
  /** Text as written (for strings, with quotes). */
  readonly text: string;
  /** Start offset in the SQL text. */
  readonly start: number;
  /** End offset (exclusive). */
  readonly end: number;
  /** {@link TokenFlag} bits. */
  readonly flags: number;
}

/**
 * Splits SQL text into tokens (an allocating convenience around
 * {@link scanSql}; the analysis functions use the buffer directly).
 */
export function tokenize(sql: string, dialect?: Dialect | DialectOptions): Token[] {
  const buf = new TokenBuffer();
  scanSql(sql, dialect, buf);
  const out: Token[] = [];
  for (let i = 0; i < buf.count; i++) {
    out.push({ type: buf.type[i] as TokenType, text: buf.text(i), start: buf.start[i]!, end: buf.end[i]!, flags: buf.flags[i]! });
  }
  return out;
}

/** Scans `sql` into `buf` (which is reset first). Never throws: any input yields tokens. */
export function scanSql(sql: string, dialect: Dialect | DialectOptions | undefined, buf: TokenBuffer): TokenBuffer {
  const d = dialectOptions(dialect);
  buf.count = 0;
  buf.execComments = 0;
  buf.sql = sql;
  buf.dialect = d;
  let lower = sql.toLowerCase();
  // Lower-casing can change the length for a few characters (U+0130); then
  // offsets would not line up, so fall back to an ASCII-only lower case.
  if (lower.length !== sql.length) lower = asciiLower(sql);
  buf.lower = lower;

  const n = sql.length;
  let i = 0;
  let space = 0; // SpaceBefore for the next token
  let exec = 0; // InExecComment while inside /*! ... */
  while (i < n) {
    const c = sql.charCodeAt(i);
    // whitespace
    if (c < 128 ? CLS[c] === C_SPACE : isSpace(c)) {
      i++;
      space = TokenFlag.SpaceBefore;
      continue;
    }
    const start = i;
    const fl = space | exec;
    space = 0;

    // ---- words and prefixed strings ---------------------------------------
    if (c < 128 ? (CLS[c]! & C_IDSTART) !== 0 : isIdStart(c)) {
      const c1 = i + 1 < n ? sql.charCodeAt(i + 1) : 0;
      if (c1 === 0x27 /* ' */) {
        const lc = c | 0x20;
        // X'..' hex, B'..' bit, N'..' national, E'..' escape (PostgreSQL), Q'..' (Oracle)
        if (lc === 0x78 || lc === 0x62) {
          i = scanQuoted(sql, i + 2, 0x27, false, buf, fl | TokenFlag.Binary, start);
          continue;
        }
        if (lc === 0x6e) {
          i = scanQuoted(sql, i + 2, 0x27, d.backslashEscapes, buf, fl, start);
          continue;
        }
        if (lc === 0x65 && d.escapeStrings) {
          i = scanQuoted(sql, i + 2, 0x27, true, buf, fl, start);
          continue;
        }
        if (lc === 0x71 && d.qQuote && i + 2 < n) {
          i = scanQQuote(sql, i + 2, buf, fl, start);
          continue;
        }
      } else if ((c | 0x20) === 0x6e && (c1 | 0x20) === 0x71 && d.qQuote && i + 2 < n && sql.charCodeAt(i + 2) === 0x27) {
        i = scanQQuote(sql, i + 3, buf, fl, start); // NQ'..'
        continue;
      } else if ((c | 0x20) === 0x75 && c1 === 0x26 && i + 2 < n) {
        // PostgreSQL U&'..' and U&".."
        const q = sql.charCodeAt(i + 2);
        if (q === 0x27) {
          i = scanQuoted(sql, i + 3, 0x27, false, buf, fl, start);
          continue;
        }
        if (q === 0x22) {
          i = scanQuotedIdent(sql, i + 3, 0x22, buf, fl, start);
          continue;
        }
      }
      // hash the lower-case word as it is read (keywords.ts hashStep)
      let h = lower.charCodeAt(i);
      i++;
      while (i < n) {
        const ch = sql.charCodeAt(i);
        if (ch < 128 ? (CLS[ch]! & C_IDPART) === 0 : !isIdPart(ch)) break;
        h = (Math.imul(h, 31) + lower.charCodeAt(i)) | 0;
        i++;
      }
      // MySQL charset introducer: _utf8mb4'abc' is one string constant.
      if (c === 0x5f && i < n && d.doubleQuoteString && sql.charCodeAt(i) === 0x27) {
        i = scanQuoted(sql, i + 1, 0x27, d.backslashEscapes, buf, fl, start);
        continue;
      }
      const len = i - start;
      const kw = len <= MAX_KEYWORD_LENGTH ? keywordAt(lower, start, i, h) : 0;
      buf.push(TokenType.Word, fl, kw, start, i);
      continue;
    }

    // ---- numbers -----------------------------------------------------------
    if (isDigit(c) || (c === 0x2e && i + 1 < n && isDigit(sql.charCodeAt(i + 1)))) {
      i = scanNumber(sql, i, buf, fl, d);
      continue;
    }

    switch (c) {
      case 0x27: // '
        i = scanQuoted(sql, i + 1, 0x27, d.backslashEscapes, buf, fl, start);
        continue;
      case 0x22: // "
        if (d.doubleQuoteString) i = scanQuoted(sql, i + 1, 0x22, d.backslashEscapes, buf, fl, start);
        else i = scanQuotedIdent(sql, i + 1, 0x22, buf, fl, start);
        continue;
      case 0x60: // `
        if (d.backtickIdent) {
          i = scanQuotedIdent(sql, i + 1, 0x60, buf, fl, start);
          continue;
        }
        break;
      case 0x5b: // [
        if (d.bracketIdent) {
          i = scanQuotedIdent(sql, i + 1, 0x5d, buf, fl, start);
          continue;
        }
        break;
      case 0x28:
        buf.push(TokenType.LParen, fl, 0, i, i + 1);
        i++;
        continue;
      case 0x29:
        buf.push(TokenType.RParen, fl, 0, i, i + 1);
        i++;
        continue;
      case 0x2c:
        buf.push(TokenType.Comma, fl, 0, i, i + 1);
        i++;
        continue;
      case 0x3b:
        buf.push(TokenType.Semicolon, fl, 0, i, i + 1);
        i++;
        continue;
      case 0x2e:
        buf.push(TokenType.Dot, fl, 0, i, i + 1);
        i++;
        continue;
      case 0x3f: // ?
        // PostgreSQL JSON operators ?| ?& stay operators.
        if (d.dollarQuotes && i + 1 < n && (sql.charCodeAt(i + 1) === 0x7c || sql.charCodeAt(i + 1) === 0x26)) {
          buf.push(TokenType.Operator, fl, 0, i, i + 2);
          i += 2;
          continue;
        }
        buf.push(TokenType.Param, fl, 0, i, i + 1);
        i++;
        continue;
      case 0x2d: // -
        if (i + 1 < n && sql.charCodeAt(i + 1) === 0x2d) {
          // MySQL 11.7: "--" starts a comment only when followed by whitespace or a control character.
          if (!d.dashCommentNeedsSpace || i + 2 >= n || sql.charCodeAt(i + 2) <= 0x20) {
            i = scanLineComment(sql, i, buf, fl);
            space = TokenFlag.SpaceBefore;
            continue;
          }
        }
        break;
      case 0x23: // #
        if (d.hashComment) {
          i = scanLineComment(sql, i, buf, fl);
          space = TokenFlag.SpaceBefore;
          continue;
        }
        if (d.hashIdent && i + 1 < n && (sql.charCodeAt(i + 1) === 0x23 || isIdStart(sql.charCodeAt(i + 1)))) {
          i += 2;
          while (i < n && isIdPart(sql.charCodeAt(i))) i++;
          buf.push(TokenType.Word, fl, 0, start, i);
          continue;
        }
        break;
      case 0x2f: // /
        if (i + 1 < n && sql.charCodeAt(i + 1) === 0x2a) {
          // MySQL executable comment /*! ... */ or MariaDB /*M! ... */: the body is SQL.
          if (d.executableComments && exec === 0 && i + 2 < n) {
            let j = i + 2;
            if ((sql.charCodeAt(j) | 0x20) === 0x6d && j + 1 < n && sql.charCodeAt(j + 1) === 0x21) j++;
            if (sql.charCodeAt(j) === 0x21) {
              j++;
              // optional version number, e.g. /*!40101 or /*!100108
              let k = j;
              while (k < n && k - j < 6 && isDigit(sql.charCodeAt(k))) k++;
              if (k - j === 5 || k - j === 6) j = k;
              exec = TokenFlag.InExecComment;
              buf.execComments++;
              i = j;
              space = TokenFlag.SpaceBefore;
              continue;
            }
          }
          i = scanBlockComment(sql, i, buf, fl, d.nestedComments);
          space = TokenFlag.SpaceBefore;
          continue;
        }
        break;
      case 0x2a: // *
        if (exec !== 0 && i + 1 < n && sql.charCodeAt(i + 1) === 0x2f) {
          exec = 0;
          i += 2;
          space = TokenFlag.SpaceBefore;
          continue;
        }
        break;
      case 0x24: // $
        if (d.dollarQuotes) {
          const j = scanDollar(sql, i, buf, fl);
          if (j > 0) {
            i = j;
            continue;
          }
        }
        if (d.dollarParams && i + 1 < n && isDigit(sql.charCodeAt(i + 1))) {
          i += 2;
          while (i < n && isDigit(sql.charCodeAt(i))) i++;
          buf.push(TokenType.Param, fl, 0, start, i);
          continue;
        }
        break;
      case 0x3a: // :
        if (d.colonParams && i + 1 < n) {
          const c1 = sql.charCodeAt(i + 1);
          if (isIdStart(c1) || isDigit(c1) || c1 === 0x22) {
            i += 2;
            if (c1 === 0x22) {
              while (i < n && sql.charCodeAt(i) !== 0x22) i++;
              if (i < n) i++;
            } else while (i < n && isIdPart(sql.charCodeAt(i))) i++;
            buf.push(TokenType.Param, fl, 0, start, i);
            continue;
          }
        }
        break;
      case 0x40: // @
        i = scanAt(sql, i, buf, fl, d);
        continue;
      case 0x4e: // N (national) is handled with words
      default:
        break;
    }
    // ---- operators ----------------------------------------------------------
    i = scanOperator(sql, i, buf, fl);
  }
  return buf;
}

function asciiLower(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c | 0x20) : s[i];
  }
  return out;
}

/** A quoted string starting after its opening quote at `i`; doubled quotes escape, as may backslashes. */
function scanQuoted(sql: string, i: number, q: number, backslash: boolean, buf: TokenBuffer, fl: number, start: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === q) {
      if (i + 1 < n && sql.charCodeAt(i + 1) === q) {
        i += 2;
        continue;
      }
      buf.push(TokenType.String, fl, 0, start, i + 1);
      return i + 1;
    }
    if (c === 0x5c && backslash) {
      i += 2;
      continue;
    }
    i++;
  }
  buf.push(TokenType.String, fl | TokenFlag.Unterminated, 0, start, n);
  return n;
}

/** A quoted identifier after its opening quote; the closing quote doubled escapes it. */
function scanQuotedIdent(sql: string, i: number, q: number, buf: TokenBuffer, fl: number, start: number): number {
  const n = sql.length;
  while (i < n) {
    if (sql.charCodeAt(i) === q) {
      if (i + 1 < n && sql.charCodeAt(i + 1) === q) {
        i += 2;
        continue;
      }
      buf.push(TokenType.QuotedIdent, fl, 0, start, i + 1);
      return i + 1;
    }
    i++;
  }
  buf.push(TokenType.QuotedIdent, fl | TokenFlag.Unterminated, 0, start, n);
  return n;
}

/** Oracle q'<delim>...<delim>' with [] {} () <> pairing; `i` is at the delimiter. */
function scanQQuote(sql: string, i: number, buf: TokenBuffer, fl: number, start: number): number {
  const n = sql.length;
  const open = sql.charCodeAt(i);
  const close = open === 0x5b ? 0x5d : open === 0x7b ? 0x7d : open === 0x28 ? 0x29 : open === 0x3c ? 0x3e : open;
  i++;
  while (i + 1 < n) {
    if (sql.charCodeAt(i) === close && sql.charCodeAt(i + 1) === 0x27) {
      buf.push(TokenType.String, fl, 0, start, i + 2);
      return i + 2;
    }
    i++;
  }
  buf.push(TokenType.String, fl | TokenFlag.Unterminated, 0, start, n);
  return n;
}

/** PostgreSQL dollar quoting `$tag$...$tag$` (4.1.2.4); returns 0 when `$` does not open one. */
function scanDollar(sql: string, i: number, buf: TokenBuffer, fl: number): number {
  const n = sql.length;
  let j = i + 1;
  if (j < n && sql.charCodeAt(j) !== 0x24) {
    if (!isIdStart(sql.charCodeAt(j))) return 0;
    while (j < n && sql.charCodeAt(j) !== 0x24) {
      const c = sql.charCodeAt(j);
      if (!isIdPart(c) || c === 0x24) return 0;
      j++;
    }
    if (j >= n) return 0;
  }
  if (j >= n) return 0;
  const tag = sql.slice(i, j + 1); // $tag$
  const close = sql.indexOf(tag, j + 1);
  if (close < 0) {
    buf.push(TokenType.String, fl | TokenFlag.Unterminated, 0, i, n);
    return n;
  }
  buf.push(TokenType.String, fl, 0, i, close + tag.length);
  return close + tag.length;
}

function scanNumber(sql: string, i: number, buf: TokenBuffer, fl: number, d: DialectOptions): number {
  const n = sql.length;
  const start = i;
  const c0 = sql.charCodeAt(i);
  if (c0 === 0x30 && i + 2 <= n) {
    const c1 = sql.charCodeAt(i + 1) | 0x20;
    if (c1 === 0x78 && i + 2 < n && isHex(sql.charCodeAt(i + 2))) {
      i += 2;
      while (i < n && isHex(sql.charCodeAt(i))) i++;
      return finishNumber(sql, start, i, buf, fl | TokenFlag.Binary, d);
    }
    if (c1 === 0x62 && i + 2 < n && (sql.charCodeAt(i + 2) === 0x30 || sql.charCodeAt(i + 2) === 0x31)) {
      i += 2;
      while (i < n && (sql.charCodeAt(i) === 0x30 || sql.charCodeAt(i) === 0x31)) i++;
      return finishNumber(sql, start, i, buf, fl | TokenFlag.Binary, d);
    }
  }
  while (i < n && isDigit(sql.charCodeAt(i))) i++;
  if (i < n && sql.charCodeAt(i) === 0x2e) {
    // "1..10" (PL/SQL ranges) is not a decimal point
    if (!(i + 1 < n && sql.charCodeAt(i + 1) === 0x2e)) {
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
    }
  }
  if (i < n && (sql.charCodeAt(i) | 0x20) === 0x65) {
    let j = i + 1;
    if (j < n && (sql.charCodeAt(j) === 0x2b || sql.charCodeAt(j) === 0x2d)) j++;
    if (j < n && isDigit(sql.charCodeAt(j))) {
      i = j;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
    }
  }
  return finishNumber(sql, start, i, buf, fl, d);
}

function finishNumber(sql: string, start: number, i: number, buf: TokenBuffer, fl: number, d: DialectOptions): number {
  const n = sql.length;
  // "1abc" is an identifier in MySQL (names may begin with digits); keep it one word.
  // A decimal point or an exponent ends the number instead: MySQL reads
  // "1e0UNION" and "1.UNION" as a number followed by UNION.
  let plain = true;
  for (let k = start; k < i; k++) {
    const c = sql.charCodeAt(k);
    if (c === 0x2e || (c | 0x20) === 0x65) {
      plain = false;
      break;
    }
  }
  if (plain && i < n && isIdPart(sql.charCodeAt(i)) && sql.charCodeAt(i) !== 0x24) {
    while (i < n && isIdPart(sql.charCodeAt(i))) i++;
    buf.push(TokenType.Word, fl & ~TokenFlag.Binary, 0, start, i);
    return i;
  }
  // Oracle BINARY_FLOAT / BINARY_DOUBLE suffixes: 1.5f, 2.0d (plain 2d is a word above).
  if (d.name === 'oracle' && i < n) {
    const c = sql.charCodeAt(i) | 0x20;
    if ((c === 0x66 || c === 0x64) && !(i + 1 < n && isIdPart(sql.charCodeAt(i + 1)))) i++;
  }
  buf.push(TokenType.Number, fl, 0, start, i);
  return i;
}

function scanLineComment(sql: string, i: number, buf: TokenBuffer, fl: number): number {
  const n = sql.length;
  const start = i;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) break;
    i++;
  }
  buf.push(TokenType.Comment, fl | TokenFlag.LineComment, 0, start, i);
  return i;
}

function scanBlockComment(sql: string, i: number, buf: TokenBuffer, fl: number, nested: boolean): number {
  const n = sql.length;
  const start = i;
  let depth = 1;
  i += 2;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x2a && i + 1 < n && sql.charCodeAt(i + 1) === 0x2f) {
      i += 2;
      if (--depth === 0) {
        buf.push(TokenType.Comment, fl, 0, start, i);
        return i;
      }
      continue;
    }
    if (nested && c === 0x2f && i + 1 < n && sql.charCodeAt(i + 1) === 0x2a) {
      depth++;
      i += 2;
      continue;
    }
    i++;
  }
  buf.push(TokenType.Comment, fl | TokenFlag.Unterminated, 0, start, n);
  return n;
}

function scanAt(sql: string, i: number, buf: TokenBuffer, fl: number, d: DialectOptions): number {
  const n = sql.length;
  const start = i;
  i++;
  if (i < n && sql.charCodeAt(i) === 0x40) i++; // @@system_variable
  if (i < n) {
    const c = sql.charCodeAt(i);
    if ((c === 0x27 || c === 0x22 || c === 0x60) && i === start + 1 && start > 0) {
      const p = sql.charCodeAt(start - 1);
      if (p === 0x27 || p === 0x22 || p === 0x60 || isIdPart(p)) {
        // 'user'@'host' account names: '@' joins two names
        buf.push(TokenType.Operator, fl, 0, start, start + 1);
        return start + 1;
      }
    }
    if (c === 0x27 || c === 0x22 || c === 0x60) {
      // MySQL @'quoted var'
      i++;
      while (i < n && sql.charCodeAt(i) !== c) i++;
      if (i < n) i++;
    } else {
      while (i < n && (isIdPart(sql.charCodeAt(i)) || sql.charCodeAt(i) === 0x2e)) i++;
    }
  }
  if (i === start + 1) {
    buf.push(TokenType.Operator, fl, 0, start, i); // a lone '@' (PostgreSQL absolute value)
    return i;
  }
  buf.push(d.atParams && sql.charCodeAt(start + 1) !== 0x40 ? TokenType.Param : TokenType.Variable, fl, 0, start, i);
  return i;
}

// Two- and three-character operators; anything else is one character.
function scanOperator(sql: string, i: number, buf: TokenBuffer, fl: number): number {
  const n = sql.length;
  const c = sql.charCodeAt(i);
  const c1 = i + 1 < n ? sql.charCodeAt(i + 1) : 0;
  const c2 = i + 2 < n ? sql.charCodeAt(i + 2) : 0;
  let len = 1;
  switch (c) {
    case 0x3c: // <
      if (c1 === 0x3d) len = c2 === 0x3e ? 3 : 2; // <= <=>
      else if (c1 === 0x3e || c1 === 0x3c || c1 === 0x40) len = 2; // <> << <@
      break;
    case 0x3e: // >
      if (c1 === 0x3d || c1 === 0x3e) len = 2;
      break;
    case 0x21: // !
      if (c1 === 0x3d || c1 === 0x7e) len = c1 === 0x7e && c2 === 0x2a ? 3 : 2; // != !~ !~*
      else if (c1 === 0x3c || c1 === 0x3e) len = 2; // T-SQL !< !>
      break;
    case 0x7c: // |
      if (c1 === 0x7c) len = c2 === 0x2f ? 3 : 2; // || ||/
      else if (c1 === 0x2f) len = 2;
      break;
    case 0x26: // &
      if (c1 === 0x26) len = 2;
      break;
    case 0x3a: // :
      if (c1 === 0x3a || c1 === 0x3d) len = 2; // :: :=
      break;
    case 0x2d: // -
      if (c1 === 0x3e) len = c2 === 0x3e ? 3 : 2; // -> ->>
      break;
    case 0x23: // # (PostgreSQL #> #>>)
      if (c1 === 0x3e) len = c2 === 0x3e ? 3 : 2;
      break;
    case 0x7e: // ~
      if (c1 === 0x2a || c1 === 0x7e) len = 2;
      break;
    case 0x40: // @
      if (c1 === 0x3e) len = 2;
      break;
    case 0x3d: // =
      if (c1 === 0x3d || c1 === 0x3e) len = 2; // == =>
      break;
    default:
      break;
  }
  buf.push(TokenType.Operator, fl, 0, i, i + len);
  return i + len;
}

/** True when token `i` of `buf` is the keyword `id`. */
export function isKw(buf: TokenBuffer, i: number, id: number): boolean {
  return i < buf.count && buf.kw[i] === id;
}


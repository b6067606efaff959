// A cheap cache key for SQL analysis: the text with the contents of number
// and string literals dropped, found by a scan much simpler than the lexer.
// Two texts with the same shape differ only in literal values, so their
// statement classes, verbs, objects, WHERE presence and fingerprints are
// the same (offsets into the text are not). Whenever the scan meets
// something whose lexing it does not reproduce exactly (comments,
// backslashes in MySQL strings, dollar quotes, numbers run into names,
// T-SQL brackets), it gives up: the caller then analyses the text without
// the cache.
import type { DialectOptions } from './dialect.js';

/** Longer texts (bulk INSERTs, generated SQL) are analysed every time rather than kept as keys. */
const MAX_SHAPED = 4096;

const ID = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) ID[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ID[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ID[c] = 1;
ID[0x5f] = 1; // _
ID[0x24] = 1; // $

function isIdChar(c: number): boolean {
  return c >= 128 || ID[c] === 1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Writes the shape of `sql` into `out` (the dialect's first letter, then the
 * text with each number as `0` and each string as `''`) and returns its
 * length, or -1 when the text needs the full lexer.
 */
function scanShape(sql: string, d: DialectOptions, out: Uint16Array): number {
  const n = sql.length;
  if (n > MAX_SHAPED) return -1;
  let o = 0;
  out[o++] = d.name.charCodeAt(0) + (d.name === 'db2' ? 1 : 0); // m p t o e: one letter per family
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c >= 128 || (ID[c] === 1 && !isDigit(c))) {
      // $$ and $tag$ open PostgreSQL dollar-quoted strings; $1 is a parameter
      if (c === 0x24 && d.dollarQuotes && !(i + 1 < n && isDigit(sql.charCodeAt(i + 1)))) return -1;
      // names (with any digits in them) are copied as they are
      out[o++] = c;
      i++;
      while (i < n) {
        const ch = sql.charCodeAt(i);
        if (!isIdChar(ch)) break;
        out[o++] = ch;
        i++;
      }
      continue;
    }
    if (isDigit(c)) {
      // a number: digits with an optional fraction; exponents and hex go to the lexer
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      if (i < n && sql.charCodeAt(i) === 0x2e) {
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
      }
      if (i < n && (isIdChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 0x2e)) return -1;
      out[o++] = 0x30;
      continue;
    }
    switch (c) {
      case 0x27: // '
      case 0x22: {
        // "
        if (c === 0x22 && !d.doubleQuoteString) {
          // a quoted name: copied as it is
          out[o++] = c;
          i++;
          for (;;) {
            if (i >= n) return -1;
            const ch = sql.charCodeAt(i++);
            out[o++] = ch;
            if (ch === 0x22) break;
          }
          continue;
        }
        // the character before a quote may make it a prefixed string (N'..', X'..', E'..', _utf8'..')
        if (i > 0 && isIdChar(sql.charCodeAt(i - 1))) return -1;
        i++;
        // a string opening with a backslash may be a UNC path (\\\\host\share), which the
        // injection detector tells apart by its contents
        if (i < n && sql.charCodeAt(i) === 0x5c) return -1;
        for (;;) {
          if (i >= n) return -1; // unterminated: the lexer's business
          const ch = sql.charCodeAt(i);
          if (ch === 0x5c && (d.backslashEscapes || c === 0x22)) return -1;
          if (ch === c) {
            if (i + 1 < n && sql.charCodeAt(i + 1) === c) {
              i += 2; // doubled quote
              continue;
            }
            break;
          }
          i++;
        }
        i++;
        out[o++] = 0x27;
        out[o++] = 0x27;
        continue;
      }
      case 0x60: {
        // `name`, copied as it is
        if (!d.backtickIdent) return -1;
        out[o++] = c;
        i++;
        for (;;) {
          if (i >= n) return -1;
          const ch = sql.charCodeAt(i++);
          out[o++] = ch;
          if (ch === 0x60) break;
        }
        continue;
      }
      case 0x2d: // -- comments
        if (i + 1 < n && sql.charCodeAt(i + 1) === 0x2d) return -1;
        break;
      case 0x2f: // /* comments
        if (i + 1 < n && sql.charCodeAt(i + 1) === 0x2a) return -1;
        break;
      case 0x23: // # comments (MySQL), #temp names (T-SQL)
      case 0x5b: // [names] (T-SQL)
      case 0x5c: // backslash outside strings
        return -1;
      default:
        break;
    }
    out[o++] = c;
    i++;
  }
  return o;
}

/** @internal The literal-free shape of `sql`, or undefined when the text needs the full lexer. */
export function shapeKey(sql: string, d: DialectOptions): string | undefined {
  const out = new Uint16Array(Math.min(sql.length, MAX_SHAPED) * 2 + 2);
  const len = scanShape(sql, d, out);
  return len < 0 ? undefined : String.fromCharCode(...out.subarray(0, len));
}

/**
 * @internal A bounded map from statement shapes to values. Looking a text
 * up scans it once into a reused buffer and compares the buffer with the
 * stored shapes of the same hash: no string is built unless the shape is
 * new. When full it starts over (a steady application has far fewer
 * shapes than the capacity; a stream of ever-new shapes stays bounded).
 */
export class ShapeCache<V> {
  private readonly buf = new Uint16Array(MAX_SHAPED * 2 + 2);
  private len = -1;
  private hash = 0;
  private readonly mask: number;
  private readonly hashes: Int32Array;
  private readonly keys: (Uint16Array | undefined)[];
  private readonly values: (V | undefined)[];
  /** Entries held. */
  size = 0;

  constructor(readonly capacity: number) {
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.mask = slots - 1;
    this.hashes = new Int32Array(slots);
    this.keys = new Array<Uint16Array | undefined>(slots).fill(undefined);
    this.values = new Array<V | undefined>(slots).fill(undefined);
  }

  /** The value stored for the shape of `sql`; remembers the shape for a following {@link set}. */
  get(sql: string, d: DialectOptions): V | undefined {
    const buf = this.buf;
    const len = scanShape(sql, d, buf);
    this.len = len;
    if (len < 0) return undefined;
    let h = 0x811c9dc5 | 0; // FNV-1a
    for (let i = 0; i < len; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    this.hash = h;
    let slot = h & this.mask;
    for (;;) {
      const k = this.keys[slot];
      if (k === undefined) return undefined;
      if (this.hashes[slot] === h && k.length === len) {
        let same = true;
        for (let i = 0; i < len; i++) {
          if (k[i] !== buf[i]) {
            same = false;
            break;
          }
        }
        if (same) return this.values[slot];
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** Stores `value` for the shape the last {@link get} looked up (and missed); returns false (storing nothing) when it had no shape. */
  set(value: V): boolean {
    const len = this.len;
    if (len < 0) return false;
    if (this.size >= this.capacity) this.clear();
    let slot = this.hash & this.mask;
    while (this.keys[slot] !== undefined) slot = (slot + 1) & this.mask;
    this.keys[slot] = this.buf.slice(0, len);
    this.hashes[slot] = this.hash;
    this.values[slot] = value;
    this.size++;
    this.len = -1;
    return true;
  }

  /** Forgets every entry. */
  clear(): void {
    this.keys.fill(undefined);
    this.values.fill(undefined);
    this.size = 0;
  }
}

// Oracle TTC column describes and rows: read from call and answer bodies with the field readers of ttc.ts.
import { decodeUtf8 } from '@dbtap/core';
import { TtcType } from './messages.js';
import { readClr, texty } from './ttc.js';

// ---- describe and rows -------------------------------------------------------------

/** A column of a describe. */
export interface ColumnInfo {
  readonly name: string;
  readonly type: number;
  readonly form: number;
}

function rawInt(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + b[at + i]!;
  return v;
}

/**
 * The columns of a describe message (0x10) in the native little-endian
 * layout of the 11g OCI clients (the only one the corpus shows, frames 26
 * and 32 of Oracle-good):
 *
 *   0x10 | ub4 n + n bytes | ub4 max row size | ub4 columns | u8
 *   per column: u8 type | u8 flags | u8 precision | u8 scale | ub4 buffer size | ub4 max array
 *     | ub4 continuation | ub4 OID length [+ bytes] | ub2 version | ub2 charset | u8 form | ub4 size
 *     | u8 nullable | u8 v7 name length | ub4 + CLR name | ub4 [+ CLR] schema | ub4 [+ CLR] type name | ub2 position
 *
 * Returns the columns and the offset after them, or undefined when the
 * bytes do not fit this layout (other client families: no columns).
 */
export function describeLe(b: Uint8Array, at: number): { columns: ColumnInfo[]; next: number } | undefined {
  const end = b.length;
  if (b[at] !== TtcType.Describe || at + 13 > end) return undefined;
  let p = at + 1;
  const skip = rawInt(b, p, 4);
  p += 4 + skip;
  if (skip > 1024 || p + 9 > end) return undefined;
  p += 4; // max row size
  const n = rawInt(b, p, 4);
  p += 5;
  if (n < 1 || n > 1000) return undefined;
  const columns: ColumnInfo[] = [];
  const str = (): string | undefined => {
    if (p + 4 > end) return undefined;
    const len = rawInt(b, p, 4);
    p += 4;
    if (len === 0) return '';
    const c = readClr(b, p, end);
    if (c === undefined || c.bytes === undefined) return undefined;
    p = c.next;
    return decodeUtf8(c.bytes);
  };
  for (let i = 0; i < n; i++) {
    if (p + 36 > end) return undefined;
    const type = b[p]!;
    p += 4 + 4 + 4 + 4;
    const oid = rawInt(b, p, 4);
    p += 4;
    if (oid > 0) {
      const c = readClr(b, p, end);
      if (c === undefined) return undefined;
      p = c.next;
    }
    p += 2 + 2;
    const form = b[p]!;
    p += 1 + 4 + 1 + 1;
    const name = str();
    if (name === undefined || str() === undefined || str() === undefined || p + 2 > end) return undefined;
    p += 2;
    if (type === 0 || (form !== 0 && form !== 1 && form !== 2)) return undefined;
    columns.push({ name, type, form });
  }
  return { columns, next: p };
}

/**
 * The columns of the describe an OCI 8 client gets in the answer to its
 * bundled parse (0x3e): a return-parameter message (0x08) in native
 * little-endian integers (trex_cap2_Oracle, frames 25, 33, 39, 69 and 77,
 * read by hand):
 *
 *   0x08 | ub2 (1) | ub2 columns
 *   per column: u8 type | u8 flags | u8 precision | u8 scale | ub4 buffer size | ub4 max array
 *     | ub4 continuation | ub4 OID length (0) | ub2 version | ub2 charset | u8 form | ub4 size
 *     | u8 nullable | u8 name length | 3 x ub4 (0) | ub2 n | u8 n | n bytes: the name with its
 *     single quotes doubled, then `"` (`SID"`, `''X''"` for the column `'X'` of `select 'x'`)
 *
 * The status message (0x04) follows. Returns undefined when the bytes do
 * not fit this layout exactly.
 */
export function describeV7(b: Uint8Array, at: number): { columns: ColumnInfo[]; next: number } | undefined {
  const end = b.length;
  if (b[at] !== TtcType.Parameter || at + 5 > end) return undefined;
  const n = rawInt(b, at + 3, 2);
  if (n < 1 || n > 1000) return undefined;
  let p = at + 5;
  const columns: ColumnInfo[] = [];
  for (let i = 0; i < n; i++) {
    if (p + 46 > end) return undefined;
    const type = b[p]!;
    const form = b[p + 24]!;
    const nameLen = b[p + 30]!;
    const oid = rawInt(b, p + 16, 4);
    const zeros = rawInt(b, p + 31, 4) + rawInt(b, p + 35, 4) + rawInt(b, p + 39, 4);
    const k = rawInt(b, p + 43, 2);
    p += 45;
    if (type === 0 || form > 2 || oid !== 0 || zeros !== 0 || b[p] !== k || k <= nameLen || p + 1 + k > end || b[p + k] !== 0x22) return undefined;
    const quoted = b.subarray(p + 1, p + k);
    if (!texty(quoted)) return undefined;
    const name = decodeUtf8(quoted).replace(/''/g, "'");
    if (name.length !== nameLen) return undefined;
    columns.push({ name, type, form });
    p += 1 + k;
  }
  return afterRow.has(b[p] ?? -1) ? { columns, next: p } : undefined;
}

/** Message types that may follow a row. */
const afterRow = new Set([0x04, 0x06, 0x07, 0x08, 0x09, 0x15]);

/** True when a column value has the shape of its type (character data is text, NUMBER and DATE well-formed). */
function fits(type: number, v: Uint8Array | undefined): boolean {
  if (v === undefined || v.length === 0) return true;
  switch (type) {
    case 1:
    case 96:
      return texty(v);
    case 2: {
      const e = v[0]!;
      return v.length <= 22 && (v.length === 1 ? e === 0x80 : true) && v.subarray(1).every((d) => d >= 1 && d <= 102);
    }
    case 12:
      return v.length === 7 && v[2]! >= 1 && v[2]! <= 12 && v[3]! >= 1 && v[3]! <= 31;
    default:
      return true;
  }
}

/**
 * Up to `max` rows: row-data messages (0x07) with one CLR per column, each
 * value of its column's shape, followed by a message that may follow a row,
 * from `from` on. The rows OCI 8 clients get (trex_cap2_Oracle, frames 27,
 * 41, 45, 54, 71-75) end with a zero ub2 after the values:
 *
 *   0x07 | CLR value ... | 00 00
 *
 * (`trailer`); every query of that capture has one column, so whether the
 * ub2 is per row or per column is not settled: it is read as one per row.
 */
export function rowsAfter(b: Uint8Array, from: number, types: readonly number[], max: number, trailer = false): (Uint8Array | undefined)[][] {
  const out: (Uint8Array | undefined)[][] = [];
  const n = types.length;
  // A candidate whose value is chunked (0xFE) may read far before it fails;
  // bytes shaped as overlapping chunk chains would make the scan quadratic,
  // so after `maxChunkedMisses` such candidates the scan stops.
  let chunkedMisses = 0;
  for (let i = from; i < b.length && out.length < max; i++) {
    if (b[i] !== TtcType.RowData) continue;
    let p = i + 1;
    let chunked = false;
    const row: (Uint8Array | undefined)[] = [];
    for (let c = 0; c < n; c++) {
      if (b[p] === 0xfe) chunked = true;
      const v = readClr(b, p, b.length);
      if (v === undefined || !fits(types[c]!, v.bytes)) break;
      row.push(v.bytes);
      p = v.next;
    }
    let ok = row.length === n;
    if (ok && trailer) {
      ok = b[p] === 0 && b[p + 1] === 0;
      p += 2;
    }
    if (!ok || !afterRow.has(b[p] ?? -1)) {
      if (chunked && ++chunkedMisses > maxChunkedMisses) break;
      continue;
    }
    out.push(row);
    i = p - 1;
  }
  return out;
}

/** Failed row candidates with a chunked value before `rowsAfter` gives up. */
const maxChunkedMisses = 64;

// MySQL values: the charsets of collation ids, text in a session charset,
// binary-protocol values (ProtocolBinary::*) with their date and time forms,
// and text / binary result rows.
import { ByteReader, type ParamValue, decodeText, decodeUtf8, toHex } from '@dbtap/core';
import { FieldType } from './messages.js';

// ---- charsets ---------------------------------------------------------------

const collationCharsets: Record<number, string> = {};
function mapIds(charset: string, ids: number[]): void {
  for (const id of ids) collationCharsets[id] = charset;
}
// Collation ids from `SELECT id, character_set_name FROM information_schema.collations`
// (MySQL 8.0 and MariaDB 10.11); ids not listed decode as UTF-8.
mapIds('latin1', [5, 8, 15, 31, 47, 48, 49, 94]);
mapIds('gbk', [28, 87]);
mapIds('gb2312', [24, 86]);
mapIds('gb18030', [248, 249, 250]);
mapIds('big5', [1, 84]);
mapIds('sjis', [13, 88]);
mapIds('cp932', [95, 96]);
mapIds('ujis', [12, 91]);
mapIds('eucjpms', [97, 98]);
mapIds('euckr', [19, 85]);
mapIds('cp1251', [14, 23, 50, 51, 52]);
mapIds('windows-1250', [26, 34, 44, 66, 99]);
mapIds('koi8r', [7, 74]);

/** The decoder label for a MySQL collation id (as sent in the handshake); UTF-8 when unknown. */
export function charsetOfCollation(id: number): string {
  return collationCharsets[id] ?? 'utf-8';
}

/** Decodes text in a session charset (ASCII / UTF-8 fast path). */
export function text(bytes: Uint8Array, charset: string): string {
  return charset === 'utf-8' ? decodeUtf8(bytes) : decodeText(bytes, charset);
}

/**
 * Sets `key` on a map of client- or server-chosen names as an own property
 * ("__proto__" must not reach the object's prototype).
 */
export function setName(out: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---- binary protocol values -----------------------------------------------------

function pad(n: number, w: number): string {
  return String(n).padStart(w, '0');
}

/** Text form of a binary DATE / DATETIME / TIMESTAMP value (length byte then 0, 4, 7 or 11 bytes). */
function binaryDateTime(r: ByteReader, type: number): string {
  const n = r.u8();
  let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, us = 0;
  if (n >= 4) {
    y = r.u16le();
    mo = r.u8();
    d = r.u8();
  }
  if (n >= 7) {
    h = r.u8();
    mi = r.u8();
    s = r.u8();
  }
  if (n >= 11) us = r.u32le();
  if (n !== 0 && n !== 4 && n !== 7 && n !== 11) r.skip(n - Math.min(n, 11));
  const date = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}`;
  if (type === FieldType.Date || type === FieldType.NewDate) return date;
  return `${date} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${us ? '.' + pad(us, 6) : ''}`;
}

/** Text form of a binary TIME value (length byte then 0, 8 or 12 bytes). */
function binaryTime(r: ByteReader): string {
  const n = r.u8();
  if (n === 0) return '00:00:00';
  const neg = r.u8();
  const days = r.u32le();
  const h = r.u8();
  const mi = r.u8();
  const s = r.u8();
  const us = n >= 12 ? r.u32le() : 0;
  if (n !== 8 && n !== 12) r.skip(Math.max(0, n - 12));
  return `${neg ? '-' : ''}${pad(days * 24 + h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${us ? '.' + pad(us, 6) : ''}`;
}

const typeNames: Record<number, string> = {
  0x00: 'decimal', 0x01: 'tiny', 0x02: 'short', 0x03: 'long', 0x04: 'float', 0x05: 'double', 0x06: 'null',
  0x07: 'timestamp', 0x08: 'longlong', 0x09: 'int24', 0x0a: 'date', 0x0b: 'time', 0x0c: 'datetime', 0x0d: 'year',
  0x0f: 'varchar', 0x10: 'bit', 0xf5: 'json', 0xf6: 'newdecimal', 0xf7: 'enum', 0xf8: 'set', 0xf9: 'tiny_blob',
  0xfa: 'medium_blob', 0xfb: 'long_blob', 0xfc: 'blob', 0xfd: 'var_string', 0xfe: 'string', 0xff: 'geometry',
};

/** Name of a column / parameter type, e.g. `longlong`. */
export function typeName(type: number): string {
  return typeNames[type] ?? `type_${type}`;
}

/**
 * True when `buf[p, end)` holds no control characters other than white
 * space (UTF-8 and the legacy multi-byte charsets pass).
 */
export function looksLikeText(buf: Uint8Array, p = 0, end = buf.length): boolean {
  for (let i = p; i < end; i++) {
    const c = buf[i]!;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return false;
  }
  return true;
}

/** Signed or unsigned 64-bit integer: a number when exact, else its decimal text (no BigInt below 2^53). */
function int64(r: ByteReader, unsigned: boolean): number | string {
  if (r.remaining >= 8) {
    const p = r.pos;
    const b = r.buf;
    const hi = (b[p + 4]! | (b[p + 5]! << 8) | (b[p + 6]! << 16) | (b[p + 7]! << 24)) >>> 0;
    // Below 2^53 in magnitude the two halves give the exact value without a BigInt.
    if (hi < 0x200000 || (!unsigned && hi >= 0xffe00001)) {
      const lo = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
      r.skip(8);
      return hi < 0x200000 ? hi * 0x100000000 + lo : (hi - 0x100000000) * 0x100000000 + lo;
    }
  }
  const big = unsigned ? r.u64le() : r.i64le();
  const num = Number(big);
  return Number.isSafeInteger(num) ? num : big.toString();
}

/**
 * One value of the binary protocol (ProtocolBinary::*), as used by
 * COM_STMT_EXECUTE parameters and binary result rows. Returns `undefined`
 * (and leaves the reader overrun) when the value does not fit. (Not a
 * `Result`: a value may itself be a negative number.)
 */
export function decodeBinaryValue(r: ByteReader, type: number, unsigned: boolean, charset: string): ParamValue | undefined {
  let v: ParamValue;
  switch (type) {
    case FieldType.Null:
      return null;
    case FieldType.Tiny:
      v = unsigned ? r.u8() : r.i8();
      break;
    case FieldType.Short:
    case FieldType.Year:
      v = unsigned || type === FieldType.Year ? r.u16le() : r.i16le();
      break;
    case FieldType.Long:
    case FieldType.Int24:
      v = unsigned ? r.u32le() : r.i32le();
      break;
    case FieldType.LongLong:
      v = int64(r, unsigned);
      break;
    case FieldType.Float:
      v = r.f32le();
      break;
    case FieldType.Double:
      v = r.f64le();
      break;
    case FieldType.Date:
    case FieldType.NewDate:
    case FieldType.DateTime:
    case FieldType.Timestamp:
    case FieldType.DateTime2:
    case FieldType.Timestamp2:
      v = binaryDateTime(r, type);
      break;
    case FieldType.Time:
    case FieldType.Time2:
      v = binaryTime(r);
      break;
    case FieldType.Decimal:
    case FieldType.NewDecimal:
    case FieldType.VarChar:
    case FieldType.VarString:
    case FieldType.String:
    case FieldType.Enum:
    case FieldType.Set:
    case FieldType.Json: {
      const b = r.lenencBytes();
      v = b === null ? null : text(b, charset);
      break;
    }
    case FieldType.TinyBlob:
    case FieldType.MediumBlob:
    case FieldType.LongBlob:
    case FieldType.Blob:
    case FieldType.Bit:
    case FieldType.Geometry:
    case FieldType.Vector: {
      const b = r.lenencBytes();
      if (b === null) v = null;
      else if (type !== FieldType.Bit && type !== FieldType.Geometry && looksLikeText(b, 0, Math.min(b.length, 256))) v = text(b, charset);
      else v = { type: typeName(type), hex: toHex(b) };
      break;
    }
    default:
      // An unknown type has an unknown length: nothing after it can be read.
      r.skip(r.remaining + 1);
      return undefined;
  }
  return r.ok ? v : undefined;
}

/** A {@link ParamValue} as result-row text. */
export function valueText(v: ParamValue): string | null {
  if (v === null) return null;
  if (typeof v === 'object') return 'hex' in v ? v.hex : v.text;
  return String(v);
}

// ---- result rows ----------------------------------------------------------------

/** Text result row (ProtocolText::ResultsetRow): one lenenc string per column, 0xfb for NULL. */
export function decodeTextRow(r: ByteReader, columns: number, charset: string): (string | null)[] {
  const row: (string | null)[] = [];
  for (let i = 0; i < columns && r.remaining > 0; i++) {
    const b = r.lenencBytes();
    row.push(b === null ? null : text(b, charset));
  }
  return row;
}

/** What a binary row needs of a column definition. */
export interface BinaryColumn {
  readonly type: number;
  readonly flags: number;
}

/**
 * Binary result row (ProtocolBinary::ResultsetRow):
 * ```
 * u8 0x00 | null_bitmap[(n + 9) / 8] (bit offset 2) | values of the non-NULL columns
 * ```
 */
export function decodeBinaryRow(r: ByteReader, cols: readonly BinaryColumn[], charset: string): (string | null)[] {
  r.skip(1);
  const n = cols.length;
  const bitmap = r.bytes((n + 9) >> 3);
  const row: (string | null)[] = [];
  for (let i = 0; i < n && r.ok; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) {
      row.push(null);
      continue;
    }
    const c = cols[i]!;
    const v = decodeBinaryValue(r, c.type, (c.flags & 0x20) !== 0, charset);
    if (v === undefined) break;
    row.push(valueText(v));
  }
  return row;
}

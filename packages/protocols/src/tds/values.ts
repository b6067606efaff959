// TDS 7.x TYPE_INFO and typed values ([MS-TDS] 2.2.5.4-2.2.5.6): what RPC
// parameters, COLMETADATA, ROW/NBCROW and RETURNVALUE are made of. Every
// reader works on a bounded ByteReader: a value that runs past the end sets
// `overrun` (the caller then waits for more bytes or gives up).
import { decodeText, toHex, type ByteReader, type ParamValue } from '@dbtap/core';

/** How a type's values are length-prefixed on the wire. */
export const enum LenKind {
  Fixed, // no prefix, `size` bytes
  Byte, // u8 length, 0 = NULL (INTN, GUID, FLTN, legacy char/binary...)
  UShort, // u16 length, 0xFFFF = NULL (BIG* and N* types)
  Long, // u32 length with text pointer in rows (TEXT, NTEXT, IMAGE); in RPC u32 length, 0xFFFFFFFF = NULL
  Plp, // partially length-prefixed: u64 total, chunks (the MAX types, XML, UDT)
  Variant, // SQL_VARIANT: u32 length, base type inside
  Tvp, // table-valued parameter
}

/** A decoded TYPE_INFO. */
export interface TypeInfo {
  readonly id: number;
  readonly name: string;
  readonly len: LenKind;
  /** Fixed size, or the declared maximum. */
  readonly size: number;
  readonly precision: number;
  readonly scale: number;
  /** Text of (var)char / text values: the collation's code page; unicode types: utf-16le. */
  readonly charset?: string;
}

const fixedTypes: Record<number, [string, number]> = {
  0x1f: ['null', 0],
  0x30: ['tinyint', 1],
  0x32: ['bit', 1],
  0x34: ['smallint', 2],
  0x38: ['int', 4],
  0x3a: ['smalldatetime', 4],
  0x3b: ['real', 4],
  0x3c: ['money', 8],
  0x3d: ['datetime', 8],
  0x3e: ['float', 8],
  0x7a: ['smallmoney', 4],
  0x7f: ['bigint', 8],
};

const byteLenTypes: Record<number, string> = {
  0x24: 'uniqueidentifier',
  0x26: 'intn',
  0x37: 'decimal',
  0x3f: 'numeric',
  0x68: 'bitn',
  0x6a: 'decimal',
  0x6c: 'numeric',
  0x6d: 'floatn',
  0x6e: 'moneyn',
  0x6f: 'datetimen',
  0x2f: 'char',
  0x27: 'varchar',
  0x2d: 'binary',
  0x25: 'varbinary',
};

const ushortTypes: Record<number, string> = {
  0xa5: 'varbinary',
  0xa7: 'varchar',
  0xad: 'binary',
  0xaf: 'char',
  0xe7: 'nvarchar',
  0xef: 'nchar',
};

/** Code page of a collation's LCID (primary language), for non-Unicode text; [MS-LCID]. */
function collationCharset(lcid: number, sortId: number, flags: number): string {
  if (flags & 0x04) return 'utf-8'; // fUTF8 (SQL Server 2019 _UTF8 collations)
  if (sortId !== 0) {
    // SQL collations (SQL_Latin1_General_CP1_...): most are code page 1252.
    if (sortId >= 0x1e && sortId <= 0x22) return 'cp437';
    if (sortId === 0xd1 || sortId === 0xd2) return 'windows-1250';
    return 'windows-1252';
  }
  switch (lcid & 0x3ff) {
    case 0x04: // Chinese
      return (lcid & 0xffff) === 0x0404 || (lcid & 0xffff) === 0x0c04 || (lcid & 0xffff) === 0x1404 ? 'big5' : 'gbk';
    case 0x11:
      return 'shift_jis';
    case 0x12:
      return 'euc-kr';
    case 0x19:
    case 0x22:
    case 0x23:
    case 0x02:
      return 'windows-1251';
    case 0x05:
    case 0x0e:
    case 0x15:
    case 0x18:
    case 0x1a:
    case 0x1b:
    case 0x24:
      return 'windows-1250';
    case 0x08:
      return 'windows-1253';
    case 0x1f:
      return 'windows-1254';
    case 0x0d:
      return 'windows-1255';
    case 0x01:
      return 'windows-1256';
    case 0x1e:
      return 'windows-874';
    default:
      return 'windows-1252';
  }
}

/** Reads a 5-byte collation; returns the code page of its non-Unicode text. */
export function readCollation(r: ByteReader): string {
  const info = r.u32le();
  const sortId = r.u8();
  return collationCharset(info & 0xfffff, sortId, (info >>> 20) & 0xff);
}

/** B_VARCHAR: u8 character count, UTF-16LE. */
export function bVarchar(r: ByteReader): string {
  const n = r.u8();
  return utf16(r.bytes(n * 2));
}

/** US_VARCHAR: u16 character count, UTF-16LE. */
export function usVarchar(r: ByteReader): string {
  const n = r.u16le();
  return utf16(r.bytes(n * 2));
}

const utf16Decoder = new TextDecoder('utf-16le');

/** UTF-16LE text, with an ASCII fast path (most SQL is ASCII). */
export function utf16(b: Uint8Array): string {
  const n = b.length >> 1;
  if (n <= 64) {
    let s = '';
    for (let i = 0; i < n; i++) {
      const lo = b[2 * i]!;
      const hi = b[2 * i + 1]!;
      if (hi !== 0 || lo >= 0x80) return utf16Decoder.decode(b.subarray(0, n * 2));
      s += String.fromCharCode(lo);
    }
    return s;
  }
  return utf16Decoder.decode(b.subarray(0, n * 2));
}

/**
 * Reads a TYPE_INFO ([MS-TDS] 2.2.5.6). `charset` overrides the collation's
 * code page (the audit object's charset). Returns undefined for an unknown
 * type (the caller cannot know the value's length and must give up).
 */
export function readTypeInfo(r: ByteReader, charset?: string): TypeInfo | undefined {
  const id = r.u8();
  const fixed = fixedTypes[id];
  if (fixed !== undefined) return { id, name: fixed[0], len: LenKind.Fixed, size: fixed[1], precision: 0, scale: 0 };
  const bl = byteLenTypes[id];
  if (bl !== undefined) {
    const size = r.u8();
    let precision = 0;
    let scale = 0;
    if (id === 0x6a || id === 0x6c || id === 0x37 || id === 0x3f) {
      precision = r.u8();
      scale = r.u8();
    }
    const text = id === 0x2f || id === 0x27;
    return { id, name: bl, len: LenKind.Byte, size, precision, scale, ...(text ? { charset: charset ?? 'windows-1252' } : {}) };
  }
  const us = ushortTypes[id];
  if (us !== undefined) {
    const size = r.u16le();
    let cs: string | undefined;
    if (id === 0xa7 || id === 0xaf || id === 0xe7 || id === 0xef) {
      const c = readCollation(r);
      cs = id === 0xe7 || id === 0xef ? 'utf-16le' : (charset ?? c);
    }
    const name = size === 0xffff ? `${us}(max)` : us;
    return { id, name, len: size === 0xffff ? LenKind.Plp : LenKind.UShort, size, precision: 0, scale: 0, ...(cs !== undefined ? { charset: cs } : {}) };
  }
  switch (id) {
    case 0x28: // DATEN
      return { id, name: 'date', len: LenKind.Byte, size: 3, precision: 0, scale: 0 };
    case 0x29: // TIMEN
    case 0x2a: // DATETIME2N
    case 0x2b: {
      // DATETIMEOFFSETN
      const scale = r.u8();
      const name = id === 0x29 ? 'time' : id === 0x2a ? 'datetime2' : 'datetimeoffset';
      return { id, name, len: LenKind.Byte, size: 0, precision: 0, scale };
    }
    case 0x22: // IMAGE
    case 0x23: // TEXT
    case 0x63: {
      // NTEXT
      const size = r.u32le();
      let cs: string | undefined;
      if (id !== 0x22) {
        const c = readCollation(r);
        cs = id === 0x63 ? 'utf-16le' : (charset ?? c);
      }
      const name = id === 0x22 ? 'image' : id === 0x23 ? 'text' : 'ntext';
      return { id, name, len: LenKind.Long, size, precision: 0, scale: 0, ...(cs !== undefined ? { charset: cs } : {}) };
    }
    case 0x62: // SSVARIANT
      return { id, name: 'sql_variant', len: LenKind.Variant, size: r.u32le(), precision: 0, scale: 0 };
    case 0xf1: {
      // XML: schema present, then db, owner, collection
      if (r.u8() === 1) {
        bVarchar(r);
        bVarchar(r);
        usVarchar(r);
      }
      return { id, name: 'xml', len: LenKind.Plp, size: 0xffff, precision: 0, scale: 0, charset: 'utf-16le' };
    }
    case 0xf0: {
      // UDT: max length, db, schema, type, assembly
      r.u16le();
      bVarchar(r);
      bVarchar(r);
      const type = bVarchar(r);
      usVarchar(r);
      return { id, name: type || 'udt', len: LenKind.Plp, size: 0xffff, precision: 0, scale: 0 };
    }
    case 0xf3: // TVP: the type name follows in the value
      return { id, name: 'tvp', len: LenKind.Tvp, size: 0, precision: 0, scale: 0 };
    default:
      return undefined;
  }
}

/** True when `t` is a text type whose values read as text. */
function isText(t: TypeInfo): boolean {
  return t.charset !== undefined;
}

/**
 * Reads one value of type `t`. `inRow`: TEXT/NTEXT/IMAGE values carry a
 * text pointer and timestamp (ROW), not in RPC parameters. `maxBytes` bounds
 * the bytes kept of a long value (the rest is skipped).
 */
export function readValue(r: ByteReader, t: TypeInfo, inRow: boolean, maxBytes = 1 << 16): ParamValue {
  switch (t.len) {
    case LenKind.Fixed:
      return t.size === 0 ? null : scalar(r, t.id, t.size, t);
    case LenKind.Byte: {
      const n = r.u8();
      if (n === 0) return t.id === 0x2f || t.id === 0x27 || t.id === 0x2d || t.id === 0x25 ? (isText(t) ? '' : null) : null;
      return scalar(r, t.id, n, t);
    }
    case LenKind.UShort: {
      const n = r.u16le();
      if (n === 0xffff) return null;
      return bytesValue(r.bytes(n), t);
    }
    case LenKind.Long: {
      if (inRow) {
        const ptr = r.u8();
        if (ptr === 0) return null;
        r.skip(ptr + 8);
      }
      const n = r.u32le();
      if (!inRow && n === 0xffffffff) return null;
      return bytesValue(r.bytes(n), t);
    }
    case LenKind.Plp:
      return plp(r, t, maxBytes);
    case LenKind.Variant: {
      const n = r.u32le();
      if (n === 0) return null;
      const end = r.pos + n;
      if (end > r.end) {
        r.skip(n);
        return null;
      }
      const base = r.u8();
      const props = r.u8();
      const fixed = fixedTypes[base];
      let v: ParamValue;
      if (fixed !== undefined) v = scalar(r, base, fixed[1], { id: base, name: fixed[0], len: LenKind.Fixed, size: fixed[1], precision: 0, scale: 0 });
      else {
        const propStart = r.pos;
        let cs: string | undefined;
        let precision = 0;
        let scale = 0;
        if (base === 0xa7 || base === 0xaf) cs = readCollation(r);
        else if (base === 0xe7 || base === 0xef) cs = 'utf-16le';
        else if (base === 0x6a || base === 0x6c) {
          precision = r.u8();
          scale = r.u8();
        } else if (base === 0x29 || base === 0x2a || base === 0x2b) scale = r.u8();
        r.pos = propStart + props;
        const t2: TypeInfo = { id: base, name: 'sql_variant', len: LenKind.Byte, size: 0, precision, scale, ...(cs !== undefined ? { charset: cs } : {}) };
        const rest = end - r.pos;
        v = cs !== undefined || base === 0xa5 || base === 0xad ? bytesValue(r.bytes(rest), t2) : scalar(r, base, rest, t2);
      }
      r.pos = end;
      return v;
    }
    case LenKind.Tvp:
      return tvp(r);
  }
}

function bytesValue(b: Uint8Array, t: TypeInfo): ParamValue {
  if (t.charset !== undefined) return t.charset === 'utf-16le' ? utf16(b) : decodeText(b, t.charset);
  return { type: t.name, hex: toHex(b.subarray(0, Math.min(b.length, 1 << 16))) };
}

/** PLP: u64 total (all ones = NULL), then u32-length chunks up to a zero chunk. */
function plp(r: ByteReader, t: TypeInfo, maxBytes: number): ParamValue {
  const lo = r.u32le();
  const hi = r.u32le();
  if (lo === 0xffffffff && hi === 0xffffffff) return null;
  const parts: Uint8Array[] = [];
  let kept = 0;
  for (;;) {
    const n = r.u32le();
    if (n === 0 || r.overrun) break;
    const b = r.bytes(n);
    if (kept < maxBytes) {
      const k = Math.min(b.length, maxBytes - kept);
      parts.push(b.subarray(0, k));
      kept += k;
    }
  }
  const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, kept);
  return bytesValue(t.charset === 'utf-16le' && (all.length & 1) === 1 ? all.subarray(0, all.length - 1) : all, t);
}

/** TVP ([MS-TDS] 2.2.6.6 TVP_TYPE_INFO): type name, column metadata, rows; summarised by name and row count. */
function tvp(r: ByteReader): ParamValue {
  bVarchar(r); // db
  const schema = bVarchar(r);
  const name = bVarchar(r);
  const n = r.u16le();
  const cols: TypeInfo[] = [];
  if (n !== 0xffff) {
    for (let i = 0; i < n && r.ok; i++) {
      r.u32le(); // user type
      r.u16le(); // flags
      const t = readTypeInfo(r);
      if (t === undefined) {
        r.skip(r.remaining + 1);
        break;
      }
      bVarchar(r);
      cols.push(t);
    }
  }
  // Optional metadata: TVP_ORDER_UNIQUE (0x10), TVP_COLUMN_ORDERING (0x11), then TVP_END.
  for (;;) {
    const tok = r.u8();
    if (tok === 0x10) r.skip(r.u16le() * 3);
    else if (tok === 0x11) r.skip(r.u16le() * 2);
    else break;
  }
  let rows = 0;
  while (r.ok && r.peek() === 0x01) {
    r.u8();
    for (const c of cols) readValue(r, c, false);
    rows++;
  }
  r.u8(); // TVP_END
  const full = schema !== '' ? `${schema}.${name}` : name;
  return { type: 'tvp', text: `${full} (${rows} row${rows === 1 ? '' : 's'})` };
}

function scalar(r: ByteReader, id: number, n: number, t: TypeInfo): ParamValue {
  switch (id) {
    case 0x30:
    case 0x34:
    case 0x38:
    case 0x7f:
    case 0x26: // INTN
      return intOf(r, n);
    case 0x32:
    case 0x68:
      return r.u8() !== 0;
    case 0x3b:
      return r.f32le();
    case 0x3e:
      return r.f64le();
    case 0x6d:
      return n === 4 ? r.f32le() : r.f64le();
    case 0x3c:
    case 0x7a:
    case 0x6e:
      return money(r, n);
    case 0x3a:
    case 0x3d:
    case 0x6f:
      return n === 4 ? smallDateTime(r) : dateTime(r);
    case 0x24:
      return guid(r.bytes(n));
    case 0x6a:
    case 0x6c:
    case 0x37:
    case 0x3f:
      return decimal(r.bytes(n), t.scale);
    case 0x28:
      return ymd(r.u24le());
    case 0x29:
      return timeOf(r, t.scale, n);
    case 0x2a: {
      const tm = timeOf(r, t.scale, n - 3);
      return `${ymd(r.u24le())} ${tm}`;
    }
    case 0x2b: {
      const tm = timeOfUnits(r, t.scale, n - 5);
      const days = r.u24le();
      const off = r.i16le();
      // Stored in UTC; shown in the offset's local time.
      const ms = dayMs(days) + tm.ms + off * 60000;
      const d = new Date(ms);
      const sign = off < 0 ? '-' : '+';
      const a = Math.abs(off);
      return `${iso(d)}${tm.frac} ${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
    }
    default:
      return isText(t) ? bytesValue(r.bytes(n), t) : { type: t.name, hex: toHex(r.bytes(n)) };
  }
}

function intOf(r: ByteReader, n: number): number | bigint {
  switch (n) {
    case 1:
      return r.u8();
    case 2:
      return r.i16le();
    case 4:
      return r.i32le();
    default: {
      const v = r.i64le();
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
  }
}

function money(r: ByteReader, n: number): string {
  let v: bigint;
  if (n === 4) v = BigInt(r.i32le());
  else {
    const hi = r.i32le();
    const lo = r.u32le();
    v = (BigInt(hi) << 32n) | BigInt(lo);
  }
  return fixedPoint(v, 4);
}

function fixedPoint(v: bigint, scale: number): string {
  const neg = v < 0n;
  const s = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const body = scale > 0 ? `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}` : s;
  return neg ? `-${body}` : body;
}

/** DECIMAL/NUMERIC: sign byte (1 = positive), little-endian magnitude. */
function decimal(b: Uint8Array, scale: number): string {
  if (b.length < 1) return '';
  let v = 0n;
  for (let i = b.length - 1; i >= 1; i--) v = (v << 8n) | BigInt(b[i]!);
  return fixedPoint(b[0] === 0 ? -v : v, scale);
}

function guid(b: Uint8Array): string {
  if (b.length !== 16) return toHex(b);
  const h = (i: number): string => b[i]!.toString(16).padStart(2, '0');
  const part = (idx: number[]): string => idx.map(h).join('');
  return `${part([3, 2, 1, 0])}-${part([5, 4])}-${part([7, 6])}-${part([8, 9])}-${part([10, 11, 12, 13, 14, 15])}`.toUpperCase();
}

const pad = (n: number, w = 2): string => n.toString().padStart(w, '0');
const DAY = 86400000;
// 0001-01-01 in ms since the Unix epoch (proleptic Gregorian).
const YEAR1 = Date.UTC(2000, 0, 1) - 730119 * DAY;
const Y1900 = Date.UTC(1900, 0, 1);

function dayMs(days: number): number {
  return YEAR1 + days * DAY;
}

function iso(d: Date): string {
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

function ymd(days: number): string {
  const d = new Date(dayMs(days));
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** DATETIME: days since 1900-01-01, 1/300 s ticks. */
function dateTime(r: ByteReader): string {
  const days = r.i32le();
  const ticks = r.u32le();
  const ms = Math.round((ticks * 10) / 3);
  const d = new Date(Y1900 + days * DAY + ms);
  return `${iso(d)}.${pad(d.getUTCMilliseconds(), 3)}`;
}

function smallDateTime(r: ByteReader): string {
  const days = r.u16le();
  const mins = r.u16le();
  return iso(new Date(Y1900 + days * DAY + mins * 60000));
}

function timeOfUnits(r: ByteReader, scale: number, n: number): { ms: number; frac: string } {
  let v = 0;
  for (let i = 0; i < n; i++) v += r.u8() * 2 ** (8 * i);
  const unit = 10 ** scale;
  const secs = Math.floor(v / unit);
  const frac = scale > 0 ? `.${pad(v % unit, scale)}` : '';
  return { ms: secs * 1000, frac };
}

function timeOf(r: ByteReader, scale: number, n: number): string {
  const t = timeOfUnits(r, scale, n);
  const s = t.ms / 1000;
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}${t.frac}`;
}

/** A value as the text of a result row. */
export function valueText(v: ParamValue): string | null {
  if (v === null) return null;
  if (typeof v === 'object') return 'hex' in v ? `0x${v.hex}` : v.text;
  return String(v);
}

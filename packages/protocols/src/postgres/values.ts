// Parameter and column values: text format as text in the session encoding,
// binary format decoded for the common built-in types (type OIDs from
// src/include/catalog/pg_type.dat), anything else kept as hex.
import { ByteReader, decodeText, toHex, type ParamValue } from '@dbtap/core';
import type { FieldDescription, RawValue } from './messages.js';

/** Built-in type OIDs with a binary decoder. */
export const TypeOid = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

const typeNames = new Map<number, string>(Object.entries(TypeOid).map(([k, v]) => [v, k]));

const scratch = new ByteReader();
// 2000-01-01T00:00:00Z, the PostgreSQL epoch, in milliseconds since the Unix epoch.
const PG_EPOCH_MS = 946_684_800_000;

/** A bound parameter as the audit record carries it. */
export function paramValue(raw: RawValue, format: number, typeOid: number, charset: string): ParamValue {
  if (raw === null) return null;
  if (format === 0) return decodeText(raw, charset);
  const v = binaryValue(raw, typeOid, charset);
  return v ?? { type: typeNames.get(typeOid) ?? (typeOid === 0 ? 'binary' : `oid:${typeOid}`), hex: toHex(raw) };
}

/** A column value as text, for the first rows of a result. */
export function columnText(raw: RawValue, format: number, typeOid: number, charset: string): string | null {
  if (raw === null) return null;
  if (format === 0) return decodeText(raw, charset);
  const v = binaryValue(raw, typeOid, charset);
  if (v === undefined || typeof v === 'object') return typeOid === TypeOid.bytea || v === undefined ? `\\x${toHex(raw)}` : (v as { text: string }).text;
  return String(v);
}

/**
 * A DataRow as text, for the first rows of a result. The format of each
 * column is the Bind's result format (one code for all, or one per column);
 * without one, the RowDescription's (Describe-statement fields carry 0).
 */
export function rowText(values: readonly RawValue[], fields: readonly FieldDescription[] | undefined, formats: readonly number[] | undefined, charset: string): (string | null)[] {
  const out = new Array<string | null>(values.length);
  for (let i = 0; i < values.length; i++) {
    const f = fields?.[i];
    const fmt = formats !== undefined && formats.length > 0 ? (formats.length === 1 ? formats[0]! : (formats[i] ?? 0)) : (f?.format ?? 0);
    out[i] = columnText(values[i]!, fmt, f?.typeOid ?? 0, charset);
  }
  return out;
}

/** Decodes a binary value of a known type, or `undefined` when the type is not handled or the size is wrong. */
export function binaryValue(raw: Uint8Array, typeOid: number, charset: string): ParamValue | undefined {
  const r = scratch.reset(raw);
  const n = raw.length;
  switch (typeOid) {
    case TypeOid.bool:
      return n === 1 ? raw[0] !== 0 : undefined;
    case TypeOid.int2:
      return n === 2 ? r.i16be() : undefined;
    case TypeOid.int4:
      return n === 4 ? r.i32be() : undefined;
    case TypeOid.oid:
      return n === 4 ? r.u32be() : undefined;
    case TypeOid.int8: {
      if (n !== 8) return undefined;
      // A BigInt only beyond 2^53 (an id or a count is a plain number, made without one).
      return safeI64(raw) ?? r.i64be();
    }
    case TypeOid.float4:
    case TypeOid.float8: {
      if (n !== (typeOid === TypeOid.float4 ? 4 : 8)) return undefined;
      const f = n === 4 ? r.f32be() : r.f64be();
      // JSON has no NaN or Infinity: keep those as text.
      return Number.isFinite(f) ? f : { type: n === 4 ? 'float4' : 'float8', text: String(f) };
    }
    case TypeOid.text:
    case TypeOid.varchar:
    case TypeOid.bpchar:
    case TypeOid.name:
    case TypeOid.json:
    case TypeOid.xml:
    case TypeOid.unknown:
      return decodeText(raw, charset);
    case TypeOid.jsonb:
      // Version byte 1, then the JSON text.
      return n >= 1 && raw[0] === 1 ? decodeText(raw.subarray(1), 'utf-8') : undefined;
    case TypeOid.bytea:
      return { type: 'bytea', hex: toHex(raw) };
    case TypeOid.uuid:
      if (n !== 16) return undefined;
      {
        const h = toHex(raw);
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      }
    case TypeOid.date:
      if (n !== 4) return undefined;
      return formatDate(r.i32be());
    case TypeOid.time:
      if (n !== 8) return undefined;
      return formatTime(safeI64(raw) ?? Number(r.i64be()));
    case TypeOid.timestamp:
    case TypeOid.timestamptz: {
      if (n !== 8) return undefined;
      const us = r.i64be();
      const tz = typeOid === TypeOid.timestamptz ? '+00' : '';
      if (us === 0x7fffffffffffffffn) return 'infinity';
      if (us === -0x8000000000000000n) return '-infinity';
      return formatTimestampUs(us) + tz;
    }
    case TypeOid.numeric:
      return numericText(r);
  }
  return undefined;
}

/**
 * The big-endian Int64 of `raw[0, 8)` as a number when it is a safe integer,
 * else undefined. Two's complement: the value is hi * 2^32 + lo with hi
 * signed, safe while |hi| < 2^21 (and at hi = -2^21 from lo = 1 on).
 */
function safeI64(raw: Uint8Array): number | undefined {
  const hi = (raw[0]! << 24) | (raw[1]! << 16) | (raw[2]! << 8) | raw[3]!;
  if (hi < -0x200000 || hi > 0x1fffff) return undefined;
  const v = hi * 0x100000000 + (raw[4]! * 0x1000000 + ((raw[5]! << 16) | (raw[6]! << 8) | raw[7]!));
  return v >= Number.MIN_SAFE_INTEGER ? v : undefined;
}

function pad(v: number, width: number): string {
  return String(v).padStart(width, '0');
}

function formatDate(days: number): string {
  if (days === 0x7fffffff) return 'infinity';
  if (days === -0x80000000) return '-infinity';
  const d = new Date(PG_EPOCH_MS + days * 86_400_000);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

function fraction(us: number): string {
  if (us === 0) return '';
  return `.${pad(us, 6)}`.replace(/0+$/, '');
}

function formatTime(total: number): string {
  const secs = Math.floor(total / 1e6);
  return `${pad(Math.floor(secs / 3600), 2)}:${pad(Math.floor(secs / 60) % 60, 2)}:${pad(secs % 60, 2)}${fraction(total % 1e6)}`;
}

/** Microseconds since 2000-01-01 as PostgreSQL's ISO output, `YYYY-MM-DD HH:MM:SS[.ffffff]`. */
export function formatTimestampUs(us: bigint): string {
  const ms = us / 1000n;
  let rem = Number(us - ms * 1000n);
  let msn = Number(ms);
  if (rem < 0) {
    rem += 1000;
    msn -= 1;
  }
  const d = new Date(PG_EPOCH_MS + msn);
  const micro = d.getUTCMilliseconds() * 1000 + rem;
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}${fraction(micro)}`;
}

/**
 * Binary numeric: Int16 ndigits | Int16 weight | UInt16 sign | Int16 dscale |
 * Int16 digit * ndigits, base-10000 digits, `weight` = exponent of the first.
 */
function numericText(r: ByteReader): string | undefined {
  const ndigits = r.u16be();
  const weight = r.i16be();
  const sign = r.u16be();
  const dscale = r.u16be();
  if (!r.ok || r.remaining !== ndigits * 2) return undefined;
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  if (sign !== 0 && sign !== 0x4000) return undefined;
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(r.u16be());
  let int = '';
  for (let i = 0; i <= weight; i++) {
    const d = digits[i] ?? 0;
    int += i === 0 ? String(d) : pad(d, 4);
  }
  if (int === '') int = '0';
  let out = (sign === 0x4000 ? '-' : '') + int;
  if (dscale > 0) {
    let frac = '';
    for (let i = weight + 1; frac.length < dscale; i++) frac += i < 0 ? '0000' : pad(digits[i] ?? 0, 4);
    out += `.${frac.slice(0, dscale)}`;
  }
  return out;
}

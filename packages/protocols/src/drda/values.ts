// Typed values of DRDA: the EBCDIC code pages IBM servers speak, CCSIDs,
// packed decimals, and the FD:OCA descriptors (QRYDSC, FDODSC) that say how
// the rows of QRYDTA and the parameters of FDODTA are laid out.
import { decodeText, isKnownCharset, toHex, type ParamValue } from '@dbtap/core';

// EBCDIC code page 037 (US/Canada), byte -> character. Node's TextDecoder has
// no EBCDIC, so the table is here; CCSID 500 (International) differs from 037
// in seven positions (patched below). Generated from the published code page
// (checked against Python's cp037/cp500 codecs).
const CP037 =
  '\u0000\u0001\u0002\u0003\u009c\u0009\u0086\u007f\u0097\u008d\u008e\u000b\u000c\u000d\u000e\u000f' +
  '\u0010\u0011\u0012\u0013\u009d\u0085\u0008\u0087\u0018\u0019\u0092\u008f\u001c\u001d\u001e\u001f' +
  '\u0080\u0081\u0082\u0083\u0084\u000a\u0017\u001b\u0088\u0089\u008a\u008b\u008c\u0005\u0006\u0007' +
  '\u0090\u0091\u0016\u0093\u0094\u0095\u0096\u0004\u0098\u0099\u009a\u009b\u0014\u0015\u009e\u001a' +
  ' \u00a0\u00e2\u00e4\u00e0\u00e1\u00e3\u00e5\u00e7\u00f1\u00a2.<(+|' +
  '&\u00e9\u00ea\u00eb\u00e8\u00ed\u00ee\u00ef\u00ec\u00df!$*);\u00ac' +
  '-/\u00c2\u00c4\u00c0\u00c1\u00c3\u00c5\u00c7\u00d1\u00a6,%_>?' +
  '\u00f8\u00c9\u00ca\u00cb\u00c8\u00cd\u00ce\u00cf\u00cc`:#@\u0027="' +
  '\u00d8abcdefghi\u00ab\u00bb\u00f0\u00fd\u00fe\u00b1' +
  '\u00b0jklmnopqr\u00aa\u00ba\u00e6\u00b8\u00c6\u00a4' +
  '\u00b5~stuvwxyz\u00a1\u00bf\u00d0\u00dd\u00de\u00ae' +
  '^\u00a3\u00a5\u00b7\u00a9\u00a7\u00b6\u00bc\u00bd\u00be[]\u00af\u00a8\u00b4\u00d7' +
  '{ABCDEFGHI\u00ad\u00f4\u00f6\u00f2\u00f3\u00f5' +
  '}JKLMNOPQR\u00b9\u00fb\u00fc\u00f9\u00fa\u00ff' +
  '\u005c\u00f7STUVWXYZ\u00b2\u00d4\u00d6\u00d2\u00d3\u00d5' +
  '0123456789\u00b3\u00db\u00dc\u00d9\u00da\u009f';
const CP500 = patch(CP037, { 0x4a: '[', 0x4f: '!', 0x5a: ']', 0x5f: '^', 0xb0: '\u00a2', 0xba: '\u00ac', 0xbb: '|' });

function patch(table: string, diffs: Record<number, string>): string {
  const chars = [...table];
  for (const [k, v] of Object.entries(diffs)) chars[Number(k)] = v;
  return chars.join('');
}

/** Decodes EBCDIC bytes with code page 037 (or 500 when `cp500`). */
export function decodeEbcdic(b: Uint8Array, cp500 = false): string {
  const t = cp500 ? CP500 : CP037;
  let s = '';
  for (let i = 0; i < b.length; i++) s += t[b[i]!]!;
  return s;
}

/**
 * True when `b` reads as EBCDIC rather than ASCII/UTF-8. DDM character
 * parameters are EBCDIC on every DB2 and in Derby's EXCSAT, but Derby sends
 * RDBNAM, PRDID and TYPDEFNAM in ASCII: the bytes tell. EBCDIC letters and
 * digits live at 0x81-0xF9 and its space is 0x40; ASCII text stays below 0x80.
 */
export function looksEbcdic(b: Uint8Array): boolean {
  let high = 0;
  let ascii = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x81 && c <= 0xf9) high++;
    else if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a)) ascii++;
  }
  return high > ascii;
}

/** A DDM character parameter (names, levels, tokens), EBCDIC or ASCII as the bytes say, trailing blanks cut. */
export function ddmText(b: Uint8Array): string {
  const s = looksEbcdic(b) ? decodeEbcdic(b) : decodeText(b, 'latin1');
  return s.replace(/[\s\u0000]+$/, '');
}

/** The decoder label of a CCSID (undefined: unknown, decoded by looks). */
export function ccsidCharset(ccsid: number): string | undefined {
  switch (ccsid) {
    case 1208:
      return 'utf-8';
    case 37:
      return 'ibm037';
    case 500:
      return 'ibm500';
    case 819:
    case 367:
      return 'latin1';
    case 1252:
    case 5348:
      return 'windows-1252';
    case 1200:
    case 13488:
    case 17584:
      return 'utf-16be';
    case 1386:
    case 1381:
      return 'gbk';
    case 5488:
      return 'gb18030';
    case 943:
    case 932:
      return 'shift_jis';
    case 954:
      return 'euc-jp';
    case 970:
      return 'euc-kr';
    case 1251:
      return 'windows-1251';
    default:
      return undefined;
  }
}

/** Decodes text in a charset label from {@link ccsidCharset} (EBCDIC included); undefined: by looks. */
export function decodeCcsid(b: Uint8Array, charset: string | undefined): string {
  if (charset === 'ibm037') return decodeEbcdic(b);
  if (charset === 'ibm500') return decodeEbcdic(b, true);
  if (charset === undefined || !isKnownCharset(charset)) return looksEbcdic(b) ? decodeEbcdic(b) : decodeText(b, 'utf-8');
  return decodeText(b, charset);
}

/** How one side encodes values: byte order (TYPDEFNAM) and the CCSIDs (TYPDEFOVR), with an audit-object override. */
export interface Codec {
  /** Integers little-endian (TYPDEFNAM QTDSQLX86); every other representation is big-endian. */
  le: boolean;
  /** Single-byte, mixed and double-byte character sets. */
  sbc: string | undefined;
  mbc: string | undefined;
  dbc: string | undefined;
}

/** A codec before TYPDEFNAM/TYPDEFOVR are seen: big-endian, text by looks. */
export function newCodec(): Codec {
  return { le: false, sbc: undefined, mbc: undefined, dbc: undefined };
}

/**
 * Packed decimal (DRDA type DECIMAL): two digits a byte, the last nibble the
 * sign (0xD or 0xB negative); `scale` digits after the point.
 *
 * ```
 *   12.34 as DECIMAL(10,2): 00 00 00 01 23 4C
 * ```
 */
export function packedDecimal(b: Uint8Array, scale: number): string {
  let digits = '';
  for (let i = 0; i < b.length; i++) {
    const hi = b[i]! >> 4;
    const lo = b[i]! & 15;
    digits += String(hi);
    if (i < b.length - 1) digits += String(lo);
  }
  const sign = b.length > 0 ? b[b.length - 1]! & 15 : 0xc;
  const neg = sign === 0xd || sign === 0xb;
  let int = scale > 0 ? digits.slice(0, digits.length - scale) : digits;
  const frac = scale > 0 ? digits.slice(digits.length - scale) : '';
  int = int.replace(/^0+(?=\d)/, '');
  if (int === '') int = '0';
  return (neg ? '-' : '') + int + (frac !== '' ? '.' + frac : '');
}

/** One column (or parameter) of an FD:OCA descriptor: DRDA type (odd = nullable) and its length field. */
export interface Column {
  readonly type: number;
  readonly len: number;
}

/**
 * The columns of an FD:OCA descriptor (QRYDSC, FDODSC, SQLDTARD's FDODSC):
 * a sequence of triplets `len type id ...`; the group data array of the data
 * group (type 0x76, id 0xD0) lists `drda-type u8, length u16be` per column.
 * Other triplets (row layouts 0x71, overrides 0x70/0x78) are skipped.
 *
 * ```
 *   1b 76 d0 | 02 0004 | 33 0028 | ...     GDA: INTEGER, NVARCHAR(40), ...
 *   06 71 e4 d0 00 01                      RLO: one SQLDTAGRP
 * ```
 */
export function parseDescriptor(b: Uint8Array): Column[] | undefined {
  const cols: Column[] = [];
  let i = 0;
  while (i + 3 <= b.length) {
    const len = b[i]!;
    if (len < 3 || i + len > b.length) return undefined;
    if (b[i + 1] === 0x76 && b[i + 2] === 0xd0) {
      for (let j = i + 3; j + 3 <= i + len; j += 3) cols.push({ type: b[j]!, len: (b[j + 1]! << 8) | b[j + 2]! });
    }
    i += len;
  }
  return cols;
}

/** A bounded view being decoded; `pos` advances, `ok` turns false on an overrun. */
export class Cursor {
  pos: number;
  ok = true;
  constructor(
    readonly b: Uint8Array,
    start = 0,
    readonly end = b.length,
  ) {
    this.pos = start;
  }
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) {
      this.ok = false;
      this.pos = this.end;
      return this.b.subarray(0, 0);
    }
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  u8(): number {
    const v = this.take(1);
    return v.length === 1 ? v[0]! : 0;
  }
  u16(): number {
    const v = this.take(2);
    return v.length === 2 ? (v[0]! << 8) | v[1]! : 0;
  }
  int(n: number, le: boolean): number | bigint {
    const v = this.take(n);
    if (v.length !== n) return 0;
    let x = 0n;
    for (let k = 0; k < n; k++) x = (x << 8n) | BigInt(v[le ? n - 1 - k : k]!);
    const s = BigInt.asIntN(n * 8, x);
    return s >= -9007199254740991n && s <= 9007199254740991n ? Number(s) : s;
  }
  float(n: number, le: boolean): number {
    const v = this.take(n);
    if (v.length !== n) return 0;
    const dv = new DataView(v.buffer, v.byteOffset, n);
    return n === 4 ? dv.getFloat32(0, le) : dv.getFloat64(0, le);
  }
}

/** DB2's `yyyy-mm-dd-hh.mm.ss.ffffff` and `hh.mm.ss` in SQL form (`yyyy-mm-dd hh:mm:ss.ffffff`). */
function sqlTime(s: string): string {
  const ts = /^(\d{4}-\d{2}-\d{2})[- ](\d{2})[.:](\d{2})[.:](\d{2})(\.\d+)?$/.exec(s);
  if (ts !== null) return `${ts[1]} ${ts[2]}:${ts[3]}:${ts[4]}${ts[5] ?? ''}`;
  const t = /^(\d{2})[.:](\d{2})[.:](\d{2})$/.exec(s);
  return t !== null ? `${t[1]}:${t[2]}:${t[3]}` : s;
}

const LOB_NAMES: Record<number, string> = { 0xc8: 'blob', 0xca: 'clob', 0xcc: 'dbclob', 0xce: 'clob' };

/**
 * Decodes one value of `col` at the cursor (the null indicator of a nullable
 * type included). Undefined when the type is one dbtap cannot size (the rest
 * of the row is then unknown); the cursor's `ok` turns false on an overrun.
 * `lobs` collects the lengths of LOB values sent later as EXTDTA objects.
 */
export function decodeValue(c: Cursor, col: Column, codec: Codec, lobs?: number[]): ParamValue | undefined {
  const t = col.type & 0xfe;
  if ((col.type & 1) === 1) {
    const ind = c.u8();
    if (ind >= 0x80) return null; // 0xFF: the value is null (FD:OCA "not present")
  }
  const le = codec.le;
  switch (t) {
    case 0x02: // INTEGER
    case 0x04: // SMALL
    case 0x06: // 1BYTE_INT
    case 0x16: // INTEGER8
      return c.int(col.len, le);
    case 0x0a: // FLOAT8
    case 0x0c: // FLOAT4
      return c.float(col.len === 4 ? 4 : 8, le);
    case 0x0e: {
      // DECIMAL: length = precision << 8 | scale, (precision / 2 + 1) bytes
      const p = col.len >> 8;
      return { type: 'decimal', text: packedDecimal(c.take((p >> 1) + 1), col.len & 0xff) };
    }
    case 0x10: // ZDECIMAL: one zoned digit a byte
    case 0x12: // NUMERIC_CHAR
      return { type: 'decimal', text: decodeCcsid(c.take(col.len >> 8), codec.sbc) };
    case 0x14: // RSET_LOC
    case 0x18: // LOBLOC
    case 0x1a: // CLOBLOC
    case 0x1c: // DBCSCLOBLOC
      return { type: t === 0x18 ? 'blob-locator' : t === 0x14 ? 'result-set-locator' : 'clob-locator', text: String(c.int(4, le)) };
    case 0x20: // DATE
    case 0x22: // TIME
    case 0x24: // TIMESTAMP
      return sqlTime(decodeCcsid(c.take(col.len), codec.sbc));
    case 0x26: // FIXBYTE
      return { type: 'binary', hex: toHex(c.take(col.len)) };
    case 0x28: // VARBYTE
    case 0x2a: // LONGVARBYTE
    case 0x1e: // ROWID
      return { type: 'binary', hex: toHex(c.take(c.u16())) };
    case 0x30: // CHAR
      return decodeCcsid(c.take(col.len), codec.sbc);
    case 0x32: // VARCHAR
    case 0x34: // LONG
      return decodeCcsid(c.take(c.u16()), codec.sbc);
    case 0x3c: // MIX
      return decodeCcsid(c.take(col.len), codec.mbc ?? codec.sbc);
    case 0x3e: // VARMIX
    case 0x40: // LONGMIX
      return decodeCcsid(c.take(c.u16()), codec.mbc ?? codec.sbc);
    case 0x36: // GRAPHIC (length in characters)
      return decodeCcsid(c.take(col.len * 2), codec.dbc ?? 'utf-16be');
    case 0x38: // VARGRAPH
    case 0x3a: // LONGRAPH
      return decodeCcsid(c.take(c.u16() * 2), codec.dbc ?? 'utf-16be');
    case 0xbe: // BOOLEAN
      return c.u8() !== 0;
    case 0xc8: // LOBBYTES
    case 0xca: // LOBCSBCS
    case 0xcc: // LOBCDBCS
    case 0xce: {
      // LOBCMIXED: the length field is 0x8000 | n, the value an n-byte length; the data follows as EXTDTA.
      const n = col.len & 0x7fff;
      const size = n > 0 && n <= 8 ? c.int(n, false) : 0;
      lobs?.push(Number(size));
      return { type: LOB_NAMES[t]!, text: `${size} bytes` };
    }
    default:
      return undefined;
  }
}

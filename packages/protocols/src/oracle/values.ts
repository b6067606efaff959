// Oracle value formats: NUMBER (base 100), DATE (7 bytes), TIMESTAMP (11),
// version numbers, and the listener's error texts.

/** Oracle's packed version number (AUTH_VERSION_NO) as text, e.g. 0x0B100700 -> 11.1.0.7.0. */
export function versionText(v: number): string | undefined {
  if (!(v > 0 && v <= 0xffffffff)) return undefined;
  const major = v >>> 24;
  // 18c and later pack major.minor differently (a 8-bit release update field).
  if (major >= 18) return `${major}.${(v >>> 16) & 0xff}.${(v >>> 12) & 0x0f}.${(v >>> 4) & 0xff}.${v & 0x0f}`;
  return `${major}.${(v >>> 20) & 0x0f}.${(v >>> 12) & 0xff}.${(v >>> 8) & 0x0f}.${v & 0xff}`;
}

/**
 * A NUMBER in Oracle's format: an exponent byte (bit 7 set for positive
 * numbers; negatives are the one's complement), then base-100 digits plus
 * one (positive) or 101 minus the digit (negative, with a 102 terminator).
 * `80` is zero.
 */
export function decodeNumber(b: Uint8Array): string | undefined {
  if (b.length === 0) return undefined;
  const e0 = b[0]!;
  if (b.length === 1) return e0 === 0x80 ? '0' : e0 === 0x00 ? '-~' : e0 === 0xff ? '~' : undefined;
  const positive = (e0 & 0x80) !== 0;
  const exp = positive ? e0 - 0xc1 : 0x3e - e0; // base-100 exponent of the first digit
  let n = b.length;
  if (!positive && b[n - 1] === 102) n--;
  const digits: number[] = [];
  for (let i = 1; i < n; i++) {
    const d = positive ? b[i]! - 1 : 101 - b[i]!;
    if (d < 0 || d > 99) return undefined;
    digits.push(d);
  }
  // Base-100 digits to decimal text around the point at position exp+1.
  let int = '';
  let frac = '';
  for (let i = 0; i < digits.length; i++) {
    const two = String(digits[i]).padStart(2, '0');
    if (i <= exp) int += two;
    else frac += two;
  }
  if (exp >= digits.length) int += '00'.repeat(exp - digits.length + 1);
  if (exp < 0) frac = '00'.repeat(-exp - 1) + frac;
  int = int.replace(/^0+/, '') || '0';
  frac = frac.replace(/0+$/, '');
  return `${positive ? '' : '-'}${int}${frac !== '' ? `.${frac}` : ''}`;
}

/** DATE (7 bytes: century+100, year+100, month, day, hour+1, minute+1, second+1) and TIMESTAMP (+ u32be nanoseconds) as ISO text. */
export function decodeDate(b: Uint8Array): string | undefined {
  if (b.length < 7) return undefined;
  const year = (b[0]! - 100) * 100 + (b[1]! - 100);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  let s = `${String(year).padStart(4, '0')}-${p2(b[2]!)}-${p2(b[3]!)} ${p2(b[4]! - 1)}:${p2(b[5]! - 1)}:${p2(b[6]! - 1)}`;
  if (b.length >= 11) {
    const ns = ((b[7]! << 24) | (b[8]! << 16) | (b[9]! << 8) | b[10]!) >>> 0;
    if (ns !== 0) s += `.${String(ns).padStart(9, '0').replace(/0+$/, '')}`;
  }
  return s;
}

/** The listener's text for the usual REFUSE error numbers. */
export function listenerMessage(err: number | undefined): string | undefined {
  switch (err) {
    case 12505:
      return 'TNS:listener does not currently know of SID given in connect descriptor';
    case 12514:
      return 'TNS:listener does not currently know of service requested in connect descriptor';
    case 12516:
      return 'TNS:listener could not find available handler with matching protocol stack';
    case 12519:
      return 'TNS:no appropriate service handler found';
    case 12520:
      return 'TNS:listener could not find available handler for requested type of server';
    case 12528:
      return 'TNS:listener: all appropriate instances are blocking new connections';
    case 12526:
      return 'TNS:listener: all appropriate instances are in restricted mode';
    default:
      return undefined;
  }
}

/** Oracle data type codes of bind and column metadata. */
export const enum OraType {
  Varchar = 1, // VARCHAR2 / NVARCHAR2
  Number = 2,
  Long = 8,
  Rowid = 11,
  Date = 12,
  Raw = 23,
  LongRaw = 24,
  Char = 96, // CHAR / NCHAR
  BinaryFloat = 100,
  BinaryDouble = 101,
  Cursor = 102,
  Clob = 112,
  Blob = 113,
  Bfile = 114,
  Json = 119,
  Timestamp = 180,
  TimestampTz = 181,
  IntervalYm = 182,
  IntervalDs = 183,
  Urowid = 208,
  TimestampLtz = 231,
  Boolean = 252,
}

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * A bind value as the record shows it: NUMBER as decimal text, DATE and
 * TIMESTAMP as ISO text, character data decoded with `text` (the session's
 * or the national charset), RAW and anything else as typed hex, and an
 * empty value as NULL (Oracle has no empty strings).
 */
export function bindValue(type: number, b: Uint8Array | undefined, text: (b: Uint8Array) => string): string | null | { readonly type: string; readonly hex: string } {
  if (b === undefined || b.length === 0) return null;
  switch (type) {
    case OraType.Varchar:
    case OraType.Char:
    case OraType.Long:
      return text(b);
    case OraType.Number:
      return decodeNumber(b) ?? { type: 'number', hex: hex(b) };
    case OraType.Date:
    case OraType.Timestamp:
    case OraType.TimestampLtz:
      return decodeDate(b) ?? { type: 'date', hex: hex(b) };
    case OraType.Raw:
    case OraType.LongRaw:
      return { type: 'raw', hex: hex(b) };
    case OraType.Clob:
    case OraType.Blob:
    case OraType.Bfile:
      return { type: 'lob-locator', hex: hex(b) };
    default:
      return { type: `oracle-${type}`, hex: hex(b) };
  }
}

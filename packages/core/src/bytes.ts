import { DbtapError, ErrorCodes } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });
const latin1 = new TextDecoder('latin1');

/**
 * A bounded cursor over a byte buffer, re-pointed per message.
 *
 * It never reads past `end`. A read that would is not thrown: it returns 0
 * (or an empty view), and sets the sticky {@link ByteReader.overrun} flag so
 * a decoder can read a whole message and check once at the end. This keeps
 * the hot path free of exceptions and makes "the message is shorter than
 * its fields" a value, not a crash.
 *
 * Methods are named after wire types. `bytes(n)` and `cstring()` return views
 * into the underlying buffer (no copies); decode text with {@link ByteReader.utf8}
 * or the charset helpers when it is needed.
 */
export class ByteReader {
  /** The buffer being read. */
  buf: Uint8Array;
  /** Index of the next byte to read. */
  pos: number;
  /** Index one past the last readable byte. */
  end: number;
  /** Set once any read asked for more bytes than remained; never cleared except by {@link ByteReader.reset}. */
  overrun: boolean;

  constructor(buf: Uint8Array = new Uint8Array(0), start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.overrun = false;
    checkRange(buf, start, end);
  }

  /** Re-points the reader at `buf[start, end)` and clears {@link ByteReader.overrun}. */
  reset(buf: Uint8Array, start = 0, end = buf.length): this {
    checkRange(buf, start, end);
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.overrun = false;
    return this;
  }

  /** Bytes left between the cursor and the end. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** True while no read has overrun the end. */
  get ok(): boolean {
    return !this.overrun;
  }

  /** True when at least `n` bytes remain. Does not set {@link ByteReader.overrun}. */
  has(n: number): boolean {
    return this.end - this.pos >= n;
  }

  /** Reserves `n` bytes; returns their start index, or -1 (and sets overrun) if they are not all there. */
  private take(n: number): number {
    const p = this.pos;
    if (n < 0 || this.end - p < n) {
      this.overrun = true;
      this.pos = this.end;
      return -1;
    }
    this.pos = p + n;
    return p;
  }

  /** Advances `n` bytes. */
  skip(n: number): this {
    this.take(n);
    return this;
  }

  /** The next byte without consuming it, or -1 at the end. */
  peek(offset = 0): number {
    const p = this.pos + offset;
    return p < this.end && p >= 0 ? this.buf[p]! : -1;
  }

  /** Unsigned 8-bit integer. */
  u8(): number {
    const p = this.take(1);
    return p < 0 ? 0 : this.buf[p]!;
  }

  /** Unsigned 16-bit little-endian integer. */
  u16le(): number {
    const p = this.take(2);
    if (p < 0) return 0;
    const b = this.buf;
    return b[p]! | (b[p + 1]! << 8);
  }

  /** Unsigned 16-bit big-endian integer. */
  u16be(): number {
    const p = this.take(2);
    if (p < 0) return 0;
    const b = this.buf;
    return (b[p]! << 8) | b[p + 1]!;
  }

  /** Unsigned 24-bit little-endian integer (MySQL packet length). */
  u24le(): number {
    const p = this.take(3);
    if (p < 0) return 0;
    const b = this.buf;
    return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
  }

  /** Unsigned 24-bit big-endian integer. */
  u24be(): number {
    const p = this.take(3);
    if (p < 0) return 0;
    const b = this.buf;
    return (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
  }

  /** Unsigned 32-bit little-endian integer. */
  u32le(): number {
    const p = this.take(4);
    if (p < 0) return 0;
    const b = this.buf;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000;
  }

  /** Unsigned 32-bit big-endian integer. */
  u32be(): number {
    const p = this.take(4);
    if (p < 0) return 0;
    const b = this.buf;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** Signed 8-bit integer. */
  i8(): number {
    return (this.u8() << 24) >> 24;
  }

  /** Signed 16-bit little-endian integer. */
  i16le(): number {
    return (this.u16le() << 16) >> 16;
  }

  /** Signed 16-bit big-endian integer. */
  i16be(): number {
    return (this.u16be() << 16) >> 16;
  }

  /** Signed 32-bit little-endian integer. */
  i32le(): number {
    return this.u32le() | 0;
  }

  /** Signed 32-bit big-endian integer. */
  i32be(): number {
    return this.u32be() | 0;
  }

  /** Unsigned 64-bit little-endian integer. */
  u64le(): bigint {
    const lo = this.u32le();
    const hi = this.u32le();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Unsigned 64-bit big-endian integer. */
  u64be(): bigint {
    const hi = this.u32be();
    const lo = this.u32be();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Signed 64-bit little-endian integer. */
  i64le(): bigint {
    return BigInt.asIntN(64, this.u64le());
  }

  /** Signed 64-bit big-endian integer. */
  i64be(): bigint {
    return BigInt.asIntN(64, this.u64be());
  }

  /**
   * Unsigned 64-bit little-endian integer as a number: exact up to 2^53,
   * approximate beyond (row counts and ids never get there in practice).
   */
  u64leNumber(): number {
    const lo = this.u32le();
    const hi = this.u32le();
    return hi * 0x100000000 + lo;
  }

  /** Unsigned 64-bit big-endian integer as a number (see {@link ByteReader.u64leNumber}). */
  u64beNumber(): number {
    const hi = this.u32be();
    const lo = this.u32be();
    return hi * 0x100000000 + lo;
  }

  /** IEEE-754 single, little-endian. */
  f32le(): number {
    const p = this.take(4);
    if (p < 0) return 0;
    return new DataView(this.buf.buffer, this.buf.byteOffset + p, 4).getFloat32(0, true);
  }

  /** IEEE-754 double, little-endian. */
  f64le(): number {
    const p = this.take(8);
    if (p < 0) return 0;
    return new DataView(this.buf.buffer, this.buf.byteOffset + p, 8).getFloat64(0, true);
  }

  /** IEEE-754 single, big-endian. */
  f32be(): number {
    const p = this.take(4);
    if (p < 0) return 0;
    return new DataView(this.buf.buffer, this.buf.byteOffset + p, 4).getFloat32(0, false);
  }

  /** IEEE-754 double, big-endian. */
  f64be(): number {
    const p = this.take(8);
    if (p < 0) return 0;
    return new DataView(this.buf.buffer, this.buf.byteOffset + p, 8).getFloat64(0, false);
  }

  /**
   * MySQL length-encoded integer (protocol::LengthEncodedInteger):
   * `< 0xfb` itself, `0xfc` + u16, `0xfd` + u24, `0xfe` + u64.
   * Returns `null` for `0xfb` (NULL in a text row) and sets overrun for `0xff`,
   * which never starts a length-encoded integer.
   */
  lenencInt(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    switch (first) {
      case 0xfb:
        return null;
      case 0xfc:
        return this.u16le();
      case 0xfd:
        return this.u24le();
      case 0xfe:
        return this.u64leNumber();
      default:
        this.overrun = true;
        return 0;
    }
  }

  /** MySQL length-encoded string: a {@link ByteReader.lenencInt} length then that many bytes (null for NULL). */
  lenencBytes(): Uint8Array | null {
    const n = this.lenencInt();
    if (n === null) return null;
    return this.bytes(n);
  }

  /** A view of the next `n` bytes (empty, with overrun set, if fewer remain). */
  bytes(n: number): Uint8Array {
    const p = this.take(n);
    if (p < 0) return this.buf.subarray(0, 0);
    return this.buf.subarray(p, p + n);
  }

  /** A view of everything left; the cursor moves to the end. */
  rest(): Uint8Array {
    const p = this.pos;
    this.pos = this.end;
    return this.buf.subarray(p, this.end);
  }

  /**
   * A NUL-terminated string as a view without the NUL; the cursor moves past the NUL.
   * A missing terminator sets overrun and returns the bytes up to the end.
   */
  cstring(): Uint8Array {
    const b = this.buf;
    const start = this.pos;
    const idx = b.indexOf(0, start);
    if (idx < 0 || idx >= this.end) {
      this.overrun = true;
      this.pos = this.end;
      return b.subarray(start, this.end);
    }
    this.pos = idx + 1;
    return b.subarray(start, idx);
  }

  /** Reads `n` bytes and decodes them as UTF-8 (invalid sequences become U+FFFD). */
  utf8(n: number): string {
    return decodeUtf8(this.bytes(n));
  }

  /** Reads a NUL-terminated string and decodes it as UTF-8. */
  cstringUtf8(): string {
    return decodeUtf8(this.cstring());
  }

  /** Reads `n` bytes and decodes them as Latin-1 (every byte is a character). */
  latin1(n: number): string {
    return latin1.decode(this.bytes(n));
  }
}

function checkRange(buf: Uint8Array, start: number, end: number): void {
  if (start < 0 || end < start || end > buf.length) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `ByteReader range [${start}, ${end}) is outside its buffer of ${buf.length}`);
  }
}

/**
 * Decodes UTF-8 with an ASCII fast path: short ASCII strings (SQL keywords,
 * user names, parameter names) skip TextDecoder's call overhead.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n < 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (bytes[i]! > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return utf8.decode(bytes);
}

/** Lower-case hex of a byte view, e.g. for salts, hashes and unknown payloads. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

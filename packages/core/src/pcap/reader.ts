import { closeSync, openSync } from 'node:fs';
import { DbtapError, ErrorCodes } from '../errors.js';
import type { Frame } from '../packet/types.js';
import type { Timestamp } from '../time.js';
import { ByteSource, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_BLOCK_SIZE } from './source.js';
import type { CaptureInterface, CaptureOpenOptions, CaptureReader, CaptureStats } from './types.js';

// Magic numbers as read little endian from the first four bytes of a file.
const PCAP_US = 0xa1b2c3d4; // classic pcap, microsecond fractions
const PCAP_NS = 0xa1b23c4d; // nanosecond fractions
const PCAP_KUZNETZOV = 0xa1b2cd34; // "modified" pcap (Alexey Kuznetzov's patches): 24-byte record headers
const PCAPNG_SHB = 0x0a0d0d0a; // Section Header Block type, a palindrome: same in both byte orders
const PCAPNG_BOM = 0x1a2b3c4d; // byte-order magic inside the SHB

// pcapng block types (draft-ietf-opsawg-pcapng, section 10.1).
const enum Block {
  ObsoletePacket = 0x00000002, // OPB
  InterfaceDescription = 0x00000001, // IDB
  SimplePacket = 0x00000003, // SPB
  EnhancedPacket = 0x00000006, // EPB
}

// pcapng IDB option codes (draft-ietf-opsawg-pcapng, section 4.2).
const enum IfOpt {
  EndOfOpt = 0,
  Name = 2, // if_name, UTF-8
  TsResol = 9, // if_tsresol, 1 byte
  TsOffset = 14, // if_tsoffset, signed 64-bit seconds
}

/** `LT_LINKTYPE()` of libpcap: the upper bits of the pcap link type field carry FCS information. */
const LINKTYPE_MASK = 0x03ffffff;
const TWO32 = 0x100000000;
const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Identifies a capture file by its first four bytes.
 *
 * @param head - the start of the file (at least 4 bytes to recognise anything)
 * @returns `'pcap'` for any pcap magic (microsecond, nanosecond or the
 *   "modified" variant, either byte order), `'pcapng'` for a Section Header
 *   Block, otherwise `undefined`
 */
export function detectCaptureFormat(head: Uint8Array): 'pcap' | 'pcapng' | undefined {
  if (head.length < 4) return undefined;
  const le = (head[0]! | (head[1]! << 8) | (head[2]! << 16)) + head[3]! * 0x1000000;
  const be = head[0]! * 0x1000000 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
  if (le === PCAPNG_SHB) return 'pcapng';
  for (const m of [PCAP_US, PCAP_NS, PCAP_KUZNETZOV]) if (le === m || be === m) return 'pcap';
  return undefined;
}

/**
 * Opens a pcap or pcapng file for streaming (see {@link CaptureReader}).
 *
 * The file is recognised by its magic; the pcap global header, or the
 * first pcapng Section Header Block and the blocks up to the first frame,
 * are read at once, so {@link CaptureReader.interfaces} is filled as far as
 * the file describes its interfaces before its first frame.
 *
 * @param path - the capture file
 * @param options - buffer size and block bound
 * @throws DbtapError `DBTAP_E_IO` when the file cannot be opened or read,
 *   `DBTAP_E_BAD_CAPTURE_FORMAT` when it is empty or not a pcap/pcapng file,
 *   `DBTAP_E_INVALID_ARGUMENT` for bad options. A file cut short inside its
 *   header does not throw: the reader's {@link CaptureReader.error} is
 *   `DBTAP_E_TRUNCATED`.
 */
export function openCapture(path: string, options: CaptureOpenOptions = {}): CaptureReader {
  const bufferSize = checkSize('bufferSize', options.bufferSize, DEFAULT_BUFFER_SIZE);
  const maxBlockSize = checkSize('maxBlockSize', options.maxBlockSize, DEFAULT_MAX_BLOCK_SIZE);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DbtapError(ErrorCodes.IO, `cannot open capture file ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
  try {
    const src = new ByteSource(new Uint8Array(Math.max(bufferSize, 64)), fd, path);
    src.ensure(4);
    return createReader(src, maxBlockSize, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // the error that matters is the one being thrown
    }
    if (err instanceof DbtapError) throw err;
    throw new DbtapError(ErrorCodes.IO, `cannot read capture file ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
}

/**
 * Reads a pcap or pcapng capture held in memory, with the same parser as
 * {@link openCapture}. Frames' data are views into `bytes` (no copies).
 *
 * @param bytes - the whole capture
 * @param options - `maxBlockSize` bounds a single record or block
 * @throws DbtapError `DBTAP_E_BAD_CAPTURE_FORMAT` when `bytes` is empty or
 *   not a pcap/pcapng capture
 */
export function readCaptureBytes(bytes: Uint8Array, options: Pick<CaptureOpenOptions, 'maxBlockSize'> = {}): CaptureReader {
  const maxBlockSize = checkSize('maxBlockSize', options.maxBlockSize, DEFAULT_MAX_BLOCK_SIZE);
  return createReader(new ByteSource(bytes, -1, undefined), maxBlockSize, undefined);
}

function checkSize(name: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value < 1) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `${name} must be a positive integer, got ${String(value)}`, { [name]: value });
  }
  return value;
}

function createReader(src: ByteSource, maxBlockSize: number, path: string | undefined): CaptureReader {
  const name = path ?? 'capture bytes';
  const avail = src.available;
  if (avail === 0) {
    throw new DbtapError(ErrorCodes.BAD_CAPTURE_FORMAT, `${name} is empty: not a pcap or pcapng file`, { path });
  }
  const b = src.buf;
  const p = src.pos;
  const format = avail >= 4 ? detectCaptureFormat(b.subarray(p, p + 4)) : prefixFormat(b.subarray(p, p + avail));
  if (format === undefined) {
    const hex = Array.from(b.subarray(p, p + Math.min(avail, 4)), (x) => x.toString(16).padStart(2, '0')).join('');
    throw new DbtapError(
      ErrorCodes.BAD_CAPTURE_FORMAT,
      `${name} is not a pcap or pcapng file: its first bytes 0x${hex} are no known magic (pcap a1b2c3d4/a1b23c4d, pcapng 0a0d0d0a)`,
      { path, magic: hex },
    );
  }
  const reader = format === 'pcap' ? new PcapReader(src, maxBlockSize, path) : new PcapngReader(src, maxBlockSize, path);
  reader.start();
  return reader;
}

/** For a file of 1-3 bytes: the format whose magic it begins, so that it reads as a cut file rather than garbage. */
function prefixFormat(head: Uint8Array): 'pcap' | 'pcapng' | undefined {
  const starts = (magicLe: number, le: boolean): boolean => {
    for (let i = 0; i < head.length; i++) {
      const shift = le ? 8 * i : 24 - 8 * i;
      if (head[i] !== ((magicLe >>> shift) & 0xff)) return false;
    }
    return true;
  };
  if (starts(PCAPNG_SHB, true)) return 'pcapng';
  for (const m of [PCAP_US, PCAP_NS, PCAP_KUZNETZOV]) if (starts(m, true) || starts(m, false)) return 'pcap';
  return undefined;
}

/** What the pcap and pcapng readers share: the source, the error, counters and iteration. */
abstract class BaseReader implements CaptureReader {
  abstract readonly format: 'pcap' | 'pcapng';
  readonly interfaces: CaptureInterface[] = [];
  readonly stats: CaptureStats = { frames: 0, bytesRead: 0, skippedBlocks: 0 };
  error: DbtapError | undefined = undefined;
  protected readonly src: ByteSource;
  protected readonly maxBlockSize: number;
  protected readonly path: string | undefined;
  protected done = false;

  constructor(src: ByteSource, maxBlockSize: number, path: string | undefined) {
    this.src = src;
    this.maxBlockSize = maxBlockSize;
    this.path = path;
  }

  /** Reads the file header (and, for pcapng, the blocks before the first frame). */
  abstract start(): void;
  /** Parses the next frame; may throw only `DbtapError`s, which {@link BaseReader.next} turns into {@link BaseReader.error}. */
  protected abstract read(): Frame | undefined;

  next(): Frame | undefined {
    if (this.done) return undefined;
    try {
      const f = this.read();
      if (f === undefined) this.finish();
      return f;
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  [Symbol.iterator](): Iterator<Frame> {
    return {
      next: (): IteratorResult<Frame> => {
        const f = this.next();
        return f === undefined ? { done: true, value: undefined } : { done: false, value: f };
      },
      return: (): IteratorResult<Frame> => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }

  close(): void {
    this.done = true;
    this.src.close();
  }

  protected finish(): void {
    this.done = true;
    this.src.close();
  }

  protected fail(err: unknown): void {
    this.error =
      err instanceof DbtapError
        ? err
        : new DbtapError(ErrorCodes.MALFORMED, `cannot read ${this.path ?? 'capture bytes'}: ${String(err)}`, { path: this.path, offset: this.src.offset }, { cause: err });
    this.finish();
  }

  /** The file ended `available` bytes into a header or record of `needed` bytes. */
  protected truncated(what: string, needed: number): DbtapError {
    const available = this.src.available;
    const missing = needed - available;
    return new DbtapError(
      ErrorCodes.TRUNCATED,
      `${this.path ?? 'capture bytes'} is cut short: the ${what} at offset ${this.src.offset} needs ${needed} bytes, ${available} remain (${missing} missing)`,
      { path: this.path, offset: this.src.offset, needed, available, missing },
    );
  }

  protected bad(message: string, details: Record<string, unknown> = {}): DbtapError {
    return new DbtapError(ErrorCodes.BAD_CAPTURE_FORMAT, `${this.path ?? 'capture bytes'}: ${message}`, { path: this.path, offset: this.src.offset, ...details });
  }

  protected tooBig(what: string, size: number): DbtapError {
    return new DbtapError(
      ErrorCodes.LIMIT_EXCEEDED,
      `${this.path ?? 'capture bytes'}: the ${what} at offset ${this.src.offset} is ${size} bytes, more than the bound of ${this.maxBlockSize} (maxBlockSize)`,
      { path: this.path, offset: this.src.offset, size, limit: this.maxBlockSize },
    );
  }

  /**
   * Runs the header parsing of open(). A file header that cannot be what its
   * magic claims is garbage and throws; anything later (a cut file, a bad
   * block after the header) becomes {@link BaseReader.error} like it would
   * in next().
   */
  protected startOrThrow(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof DbtapError && err.code === ErrorCodes.BAD_CAPTURE_FORMAT && this.stats.bytesRead === 0) {
        this.src.close();
        throw err;
      }
      this.fail(err);
    }
  }
}

/*
 * pcap (https://www.tcpdump.org/manpages/pcap-savefile.5.html,
 * draft-ietf-opsawg-pcap):
 *
 *   global header, 24 bytes        record header, 16 bytes (24 for the "modified" magic)
 *   0  magic          u32          0  ts seconds        u32
 *   4  version major  u16 (2)      4  ts fraction       u32  (us or ns by magic)
 *   6  version minor  u16 (4)      8  captured length   u32
 *   8  thiszone       i32          12 original length   u32
 *   12 sigfigs        u32          [16 ifindex u32, protocol u16, pkt_type u8, pad u8]
 *   16 snaplen        u32          then captured-length bytes of frame
 *   20 link type      u32 (low 26 bits; FCS flags above)
 */
class PcapReader extends BaseReader {
  readonly format = 'pcap' as const;
  private le = true;
  private nano = false;
  private recordHeader = 16;
  private linkType = 0;

  start(): void {
    this.startOrThrow(() => {
      const src = this.src;
      if (!src.ensure(24)) throw this.truncated('pcap global header', 24);
      const v = src.view;
      const p = src.pos;
      const magicLe = v.getUint32(p, true);
      const magicBe = v.getUint32(p, false);
      const magic = magicLe === PCAP_US || magicLe === PCAP_NS || magicLe === PCAP_KUZNETZOV ? magicLe : magicBe;
      this.le = magic === magicLe;
      this.nano = magic === PCAP_NS;
      this.recordHeader = magic === PCAP_KUZNETZOV ? 24 : 16;
      const major = v.getUint16(p + 4, this.le);
      if (major !== 2) throw this.bad(`unsupported pcap version ${major}.${v.getUint16(p + 6, this.le)} (only 2.x exists)`, { major });
      const snapLen = v.getUint32(p + 16, this.le);
      this.linkType = v.getUint32(p + 20, this.le) & LINKTYPE_MASK;
      this.interfaces.push({ linkType: this.linkType, snapLen, tsResolution: this.nano ? 1e9 : 1e6, tsOffsetSec: 0 });
      src.pos += 24;
      this.stats.bytesRead = 24;
    });
  }

  protected read(): Frame | undefined {
    const src = this.src;
    const hl = this.recordHeader;
    if (!src.ensure(hl)) {
      if (src.available === 0) return undefined; // clean end between records
      throw this.truncated('pcap record header', hl);
    }
    const v = src.view;
    const p = src.pos;
    const le = this.le;
    const caplen = v.getUint32(p + 8, le);
    if (caplen > this.maxBlockSize) throw this.tooBig('pcap record', caplen);
    const total = hl + caplen;
    if (!src.ensure(total)) throw this.truncated('pcap record', total);
    // ensure() may have moved the bytes: re-read position and view.
    const q = src.pos;
    const w = src.view;
    const sec = w.getUint32(q, le);
    const frac = w.getUint32(q + 4, le);
    const origLen = w.getUint32(q + 12, le);
    const data = src.buf.subarray(q + hl, q + total);
    src.pos = q + total;
    this.stats.frames++;
    this.stats.bytesRead += total;
    return {
      ts: sec * 1e6 + (this.nano ? Math.floor(frac / 1000) : frac),
      linkType: this.linkType,
      data,
      origLen,
      interfaceId: 0,
    };
  }
}

/** Per-interface facts the hot path needs, beside the public {@link CaptureInterface}. */
interface IfState {
  linkType: number;
  snapLen: number;
  /** Timestamp units per second. */
  res: number;
  /** if_tsoffset in seconds. */
  offset: number;
}

/*
 * pcapng (draft-ietf-opsawg-pcapng). Every block:
 *
 *   0  block type         u32
 *   4  block total length u32   (multiple of 4, >= 12, whole block)
 *   8  body ...
 *   L-4 block total length u32  (repeated)
 *
 * Byte order is per section, set by the Section Header Block's byte-order
 * magic; interface ids are per section too (each SHB starts a new list),
 * and are mapped here to indexes into `interfaces` across all sections.
 */
class PcapngReader extends BaseReader {
  readonly format = 'pcapng' as const;
  private le = true;
  /** Index in `interfaces` of the current section's interface 0. */
  private sectionBase = 0;
  private readonly ifs: IfState[] = [];

  start(): void {
    this.startOrThrow(() => {
      this.readBlocks(true);
    });
  }

  protected read(): Frame | undefined {
    return this.readBlocks(false);
  }

  /**
   * Reads blocks until one carries a frame. With `untilFrame`, stops in front
   * of that block instead of consuming it (used at open, to learn the
   * interfaces); a first block that is not a valid SHB throws
   * BAD_CAPTURE_FORMAT there.
   */
  private readBlocks(untilFrame: boolean): Frame | undefined {
    const src = this.src;
    for (;;) {
      if (!src.ensure(12)) {
        if (src.available === 0 && this.stats.bytesRead > 0) return undefined; // clean end between blocks
        throw this.truncated('pcapng block header', 12);
      }
      let p = src.pos;
      const type = src.view.getUint32(p, this.le);
      if (type === PCAPNG_SHB) {
        // The byte-order magic decides how to read everything else, the length included.
        const bomLe = src.view.getUint32(p + 8, true);
        if (bomLe === PCAPNG_BOM) this.le = true;
        else if (src.view.getUint32(p + 8, false) === PCAPNG_BOM) this.le = false;
        else throw this.bad(`section header block has no valid byte-order magic (0x${bomLe.toString(16)})`);
      } else if (this.stats.bytesRead === 0) {
        throw this.bad(`the first block is type 0x${type.toString(16)}, not a section header block`);
      }
      const len = src.view.getUint32(p + 4, this.le);
      if (len < 12 || len % 4 !== 0) throw this.bad(`block of type 0x${type.toString(16)} has an invalid total length ${len} (must be a multiple of 4, at least 12)`, { type, length: len });
      if (len > this.maxBlockSize) throw this.tooBig(`pcapng block of type 0x${type.toString(16)}`, len);
      const isFrame = type === Block.EnhancedPacket || type === Block.SimplePacket || type === Block.ObsoletePacket;
      if (untilFrame && isFrame) return undefined;
      if (!src.ensure(len)) throw this.truncated(`pcapng block of type 0x${type.toString(16)}`, len);
      p = src.pos; // ensure() may have moved the bytes
      const v = src.view;
      const trailer = v.getUint32(p + len - 4, this.le);
      if (trailer !== len) throw this.bad(`block of type 0x${type.toString(16)} has total length ${len} at its start but ${trailer} at its end`, { type, length: len, trailer });
      let frame: Frame | undefined;
      switch (type) {
        case Block.EnhancedPacket:
          frame = this.packet(p, len, 28, v.getUint32(p + 8, this.le), p + 12, p + 20, p + 24);
          break;
        case Block.ObsoletePacket:
          frame = this.packet(p, len, 28, v.getUint16(p + 8, this.le), p + 12, p + 20, p + 24);
          break;
        case Block.SimplePacket:
          frame = this.simplePacket(p, len);
          break;
        case PCAPNG_SHB:
          this.section(p, len);
          break;
        case Block.InterfaceDescription:
          this.interfaceBlock(p, len);
          break;
        default:
          // NRB, ISB, DSB, custom and unknown blocks: nothing a frame needs.
          this.stats.skippedBlocks++;
      }
      src.pos = p + len;
      this.stats.bytesRead += len;
      if (frame !== undefined) {
        this.stats.frames++;
        return frame;
      }
    }
  }

  /*
   * SHB body: byte-order magic u32, major u16, minor u16, section length i64, options.
   */
  private section(p: number, len: number): void {
    if (len < 28) throw this.bad(`section header block of ${len} bytes is shorter than its 28-byte minimum`, { length: len });
    const major = this.src.view.getUint16(p + 12, this.le);
    if (major !== 1) throw this.bad(`unsupported pcapng version ${major}.${this.src.view.getUint16(p + 14, this.le)} (only 1.x exists)`, { major });
    this.sectionBase = this.ifs.length;
  }

  /*
   * IDB body: link type u16, reserved u16, snaplen u32, options
   * (code u16, length u16, value padded to 32 bits; ends at opt_endofopt).
   */
  private interfaceBlock(p: number, len: number): void {
    if (len < 20) throw this.bad(`interface description block of ${len} bytes is shorter than its 20-byte minimum`, { length: len });
    const v = this.src.view;
    const le = this.le;
    const linkType = v.getUint16(p + 8, le);
    const snapLen = v.getUint32(p + 12, le);
    let res = 1e6;
    let offset = 0;
    let name: string | undefined;
    const end = p + len - 4;
    let o = p + 16;
    // A malformed option list ends the options, not the file: the interface stays usable.
    while (o + 4 <= end) {
      const code = v.getUint16(o, le);
      const olen = v.getUint16(o + 2, le);
      if (code === IfOpt.EndOfOpt || o + 4 + olen > end) break;
      const val = o + 4;
      if (code === IfOpt.TsResol && olen >= 1) {
        // Most significant bit clear: 10^-n seconds; set: 2^-n (section 4.2, if_tsresol).
        const r = v.getUint8(val);
        res = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
      } else if (code === IfOpt.TsOffset && olen >= 8) {
        offset = Number(le ? v.getBigInt64(val, true) : v.getBigInt64(val, false));
      } else if (code === IfOpt.Name && olen > 0) {
        name = utf8.decode(this.src.buf.subarray(val, val + olen));
      }
      o = val + ((olen + 3) & ~3);
    }
    this.ifs.push({ linkType, snapLen, res, offset });
    const iface: CaptureInterface = { linkType, snapLen, tsResolution: res, tsOffsetSec: offset };
    if (name !== undefined) iface.name = name;
    this.interfaces.push(iface);
  }

  /*
   * EPB body: interface id u32, ts high u32, ts low u32, captured len u32, original len u32, data (padded), options.
   * OPB body: interface id u16, drops u16, then the same from ts high on.
   */
  private packet(p: number, len: number, dataOff: number, localId: number, tsAt: number, capAt: number, origAt: number): Frame {
    if (len < dataOff + 4) throw this.bad(`packet block of ${len} bytes is shorter than its ${dataOff + 4}-byte minimum`, { length: len });
    const v = this.src.view;
    const le = this.le;
    const id = this.sectionBase + localId;
    if (id >= this.ifs.length) throw this.bad(`packet block names interface ${localId}, but its section describes only ${this.ifs.length - this.sectionBase}`, { interfaceId: localId });
    const caplen = v.getUint32(capAt, le);
    if (caplen > len - dataOff - 4) throw this.bad(`packet block of ${len} bytes claims ${caplen} captured bytes`, { length: len, caplen });
    const ifs = this.ifs[id]!;
    const start = p + dataOff;
    return {
      ts: unitsToMicros(v.getUint32(tsAt, le), v.getUint32(tsAt + 4, le), ifs.res, ifs.offset),
      linkType: ifs.linkType,
      data: this.src.buf.subarray(start, start + caplen),
      origLen: v.getUint32(origAt, le),
      interfaceId: id,
    };
  }

  /*
   * SPB body: original len u32, data (padded). No interface id (always 0 of
   * the section), no timestamp, and the captured length is the smaller of the
   * original length and interface 0's snaplen (section 4.4).
   */
  private simplePacket(p: number, len: number): Frame {
    if (len < 16) throw this.bad(`simple packet block of ${len} bytes is shorter than its 16-byte minimum`, { length: len });
    const id = this.sectionBase;
    if (id >= this.ifs.length) throw this.bad('simple packet block before any interface description block in its section');
    const ifs = this.ifs[id]!;
    const origLen = this.src.view.getUint32(p + 8, this.le);
    let caplen = Math.min(origLen, len - 16);
    if (ifs.snapLen > 0) caplen = Math.min(caplen, ifs.snapLen);
    return { ts: 0, linkType: ifs.linkType, data: this.src.buf.subarray(p + 12, p + 12 + caplen), origLen, interfaceId: id };
  }
}

/**
 * Converts a pcapng 64-bit timestamp (`hi`:`lo` in units of 1/`res` second,
 * plus `offset` seconds) to whole microseconds, exactly: the units are split
 * into seconds and a fraction by long division in 16-bit steps, so that no
 * intermediate exceeds 2^53 for any resolution up to 2^37 units per second
 * (nanoseconds are 2^30); finer resolutions go through BigInt.
 */
function unitsToMicros(hi: number, lo: number, res: number, offset: number): Timestamp {
  let sec: number;
  let frac: number;
  if (hi < 0x200000) {
    // The value fits a double exactly (< 2^53): the common microsecond case.
    const units = hi * TWO32 + lo;
    sec = Math.floor(units / res);
    frac = units - sec * res;
  } else if (res < 2 ** 37) {
    const q1 = Math.floor(hi / res);
    const r1 = hi - q1 * res;
    const x = r1 * 65536 + (lo >>> 16);
    const q2 = Math.floor(x / res);
    const r2 = x - q2 * res;
    const y = r2 * 65536 + (lo & 0xffff);
    const q3 = Math.floor(y / res);
    frac = y - q3 * res;
    sec = q1 * TWO32 + q2 * 65536 + q3;
  } else {
    const units = (BigInt(hi) << 32n) | BigInt(lo);
    const r = BigInt(res);
    return (Number(units / r) + offset) * 1e6 + Number(((units % r) * 1_000_000n) / r);
  }
  return (sec + offset) * 1e6 + Math.floor((frac * 1e6) / res);
}

import { closeSync, openSync, writeSync } from 'node:fs';
import { DbtapError, ErrorCodes } from '../errors.js';
import type { Frame } from '../packet/types.js';
import type { PcapWriterOptions } from './types.js';

const PCAP_US = 0xa1b2c3d4;
const PCAP_NS = 0xa1b23c4d;
/** Snap length written when none is given: libpcap's and tcpdump's default. */
const DEFAULT_SNAPLEN = 262144;
/** Size of the writer's buffer; records are flushed to the file when it is full. */
const WRITE_BUFFER_SIZE = 64 * 1024;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;

function checkOptions(opts: PcapWriterOptions): { linkType: number; snapLen: number; nanosecond: boolean } {
  const { linkType } = opts;
  const snapLen = opts.snapLen ?? DEFAULT_SNAPLEN;
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0x03ffffff) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `pcap linkType must be an integer in [0, 0x3ffffff], got ${String(linkType)}`, { linkType });
  }
  if (!Number.isInteger(snapLen) || snapLen < 1 || snapLen > 0xffffffff) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `pcap snapLen must be a positive 32-bit integer, got ${String(snapLen)}`, { snapLen });
  }
  return { linkType, snapLen, nanosecond: opts.nanosecond === true };
}

/**
 * Encodes a pcap global header (24 bytes, little endian, version 2.4).
 *
 * @param opts - link type, snap length (default 262144) and timestamp resolution
 * @returns the header bytes
 * @throws DbtapError `DBTAP_E_INVALID_ARGUMENT` for a link type or snap length out of range
 */
export function encodePcapHeader(opts: PcapWriterOptions): Uint8Array {
  const o = checkOptions(opts);
  const out = new Uint8Array(GLOBAL_HEADER);
  const v = new DataView(out.buffer);
  v.setUint32(0, o.nanosecond ? PCAP_NS : PCAP_US, true);
  v.setUint16(4, 2, true); // version 2.4
  v.setUint16(6, 4, true);
  // thiszone and sigfigs stay 0, as every writer since libpcap 0.x leaves them.
  v.setUint32(16, o.snapLen, true);
  v.setUint32(20, o.linkType, true);
  return out;
}

/** Writes one record header and the first `caplen` bytes of `frame.data` at `at`. */
function putRecord(out: Uint8Array, v: DataView, at: number, frame: Frame, caplen: number, nanosecond: boolean): void {
  const ts = frame.ts;
  const sec = Math.floor(ts / 1e6);
  const us = ts - sec * 1e6; // may carry a fraction
  let frac = nanosecond ? Math.round(us * 1000) : Math.floor(us);
  let s = sec;
  if (nanosecond && frac >= 1e9) {
    s++;
    frac -= 1e9;
  }
  v.setUint32(at, s >>> 0, true);
  v.setUint32(at + 4, frac, true);
  v.setUint32(at + 8, caplen, true);
  v.setUint32(at + 12, Math.max(frame.origLen, caplen) >>> 0, true);
  out.set(caplen === frame.data.length ? frame.data : frame.data.subarray(0, caplen), at + RECORD_HEADER);
}

/**
 * Encodes one pcap record: the 16-byte record header (little endian) and the
 * frame's bytes.
 *
 * The timestamp is written in whole microseconds (or nanoseconds with
 * `nanosecond`); the original length written is at least the data length.
 *
 * @param frame - the frame to encode
 * @param nanosecond - write the fraction in nanoseconds (for a file whose header says so)
 * @returns the record bytes
 */
export function encodePcapRecord(frame: Frame, nanosecond = false): Uint8Array {
  const caplen = frame.data.length;
  const out = new Uint8Array(RECORD_HEADER + caplen);
  putRecord(out, new DataView(out.buffer), 0, frame, caplen, nanosecond);
  return out;
}

/**
 * Writes a pcap file (little endian, microsecond timestamps unless
 * `nanosecond` is set), buffering records in 64 KiB and writing them when
 * the buffer fills and on {@link PcapWriter.close}.
 *
 * @example
 * ```ts
 * const w = PcapWriter.open('/tmp/out.pcap', { linkType: LinkType.ETHERNET });
 * for (const frame of openCapture('in.pcapng')) w.write(frame);
 * w.close();
 * ```
 */
export class PcapWriter {
  private fd: number;
  private readonly path: string;
  private readonly linkType: number;
  private readonly snapLen: number;
  private readonly nanosecond: boolean;
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private used: number;
  private count: number;

  private constructor(fd: number, path: string, o: { linkType: number; snapLen: number; nanosecond: boolean }) {
    this.fd = fd;
    this.path = path;
    this.linkType = o.linkType;
    this.snapLen = o.snapLen;
    this.nanosecond = o.nanosecond;
    this.buf = new Uint8Array(WRITE_BUFFER_SIZE);
    this.view = new DataView(this.buf.buffer);
    this.used = 0;
    this.count = 0;
  }

  /**
   * Creates (or truncates) `path` and writes the global header.
   *
   * @param path - the file to write
   * @param opts - link type, snap length and timestamp resolution
   * @throws DbtapError `DBTAP_E_IO` when the file cannot be created, `DBTAP_E_INVALID_ARGUMENT` for bad options
   */
  static open(path: string, opts: PcapWriterOptions): PcapWriter {
    const header = encodePcapHeader(opts);
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (err) {
      throw new DbtapError(ErrorCodes.IO, `cannot create pcap file ${path}: ${(err as Error).message}`, { path }, { cause: err });
    }
    const w = new PcapWriter(fd, path, checkOptions(opts));
    w.buf.set(header);
    w.used = header.length;
    return w;
  }

  /** Frames written so far. */
  get frames(): number {
    return this.count;
  }

  /**
   * Appends one frame. Bytes past the snap length are not written (the
   * original length still records the full size).
   *
   * @throws DbtapError `DBTAP_E_INVALID_ARGUMENT` when the frame's link type
   *   differs from the file's or the writer is closed; `DBTAP_E_IO` when the
   *   file cannot be written
   */
  write(frame: Frame): void {
    if (this.fd < 0) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `pcap writer for ${this.path} is closed`, { path: this.path });
    if (frame.linkType !== this.linkType) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `frame of link type ${frame.linkType} cannot go into ${this.path}, a pcap file of link type ${this.linkType}`, {
        path: this.path,
        linkType: frame.linkType,
      });
    }
    const caplen = Math.min(frame.data.length, this.snapLen);
    const size = RECORD_HEADER + caplen;
    if (this.used + size > this.buf.length) this.flush();
    if (size > this.buf.length) {
      this.writeOut(encodePcapRecord({ ...frame, data: frame.data.subarray(0, caplen) }, this.nanosecond));
    } else {
      putRecord(this.buf, this.view, this.used, frame, caplen, this.nanosecond);
      this.used += size;
    }
    this.count++;
  }

  /** Writes buffered records and closes the file. Safe to call more than once. */
  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      const fd = this.fd;
      this.fd = -1;
      closeSync(fd);
    }
  }

  private flush(): void {
    if (this.used === 0) return;
    this.writeOut(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  private writeOut(bytes: Uint8Array): void {
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    } catch (err) {
      throw new DbtapError(ErrorCodes.IO, `cannot write pcap file ${this.path}: ${(err as Error).message}`, { path: this.path }, { cause: err });
    }
  }
}

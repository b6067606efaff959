import type { DbtapError } from '../errors.js';
import type { Frame } from '../packet/types.js';

/** One capture interface: the pcap file itself, or one pcapng Interface Description Block. */
export interface CaptureInterface {
  /** LINKTYPE_* of the interface's frames (see `LinkType`). */
  linkType: number;
  /** Maximum bytes captured per frame; 0 means "no limit" (pcapng). */
  snapLen: number;
  /** Interface name (pcapng `if_name` option), when the file gives one. */
  name?: string;
  /** Timestamp units per second: 1e6 (microseconds), 1e9 (nanoseconds), 1024 for `if_tsresol` 2^-10... */
  tsResolution: number;
  /** Seconds added to every timestamp of this interface (pcapng `if_tsoffset`); 0 when absent. */
  tsOffsetSec: number;
}

/** Counters of a {@link CaptureReader}. */
export interface CaptureStats {
  /** Frames returned so far. */
  frames: number;
  /** Bytes of the file consumed so far: headers, records and blocks that were parsed completely. */
  bytesRead: number;
  /** pcapng blocks skipped because they carry no frame and no interface (NRB, ISB, DSB, custom...). */
  skippedBlocks: number;
}

/**
 * A streaming reader of a pcap or pcapng capture.
 *
 * Memory use is constant: the file is read through one reusable buffer that
 * grows only to hold a single block bigger than it, and never beyond the
 * `maxBlockSize` bound.
 *
 * Bad content never throws out of {@link CaptureReader.next}: reading stops,
 * `next()` returns `undefined`, and {@link CaptureReader.error} says why
 * (`DBTAP_E_TRUNCATED` for a file cut short, with `details.missing` bytes;
 * `DBTAP_E_BAD_CAPTURE_FORMAT` for contradictory content;
 * `DBTAP_E_LIMIT_EXCEEDED` for a block bigger than the bound; `DBTAP_E_IO`
 * for a read error).
 *
 * Iterating with `for...of` calls `next()`; leaving the loop early (`break`)
 * closes the reader. The file is also closed at the end of the file and
 * after an error.
 */
export interface CaptureReader extends Iterable<Frame> {
  /** The container format of the file. */
  readonly format: 'pcap' | 'pcapng';
  /**
   * The capture interfaces seen so far. A pcap file has exactly one; a pcapng
   * file gains one per Interface Description Block, across all its sections,
   * and `Frame.interfaceId` indexes this list.
   */
  readonly interfaces: readonly CaptureInterface[];
  /**
   * The next frame, or `undefined` at the end of the file, after an error, or
   * after {@link CaptureReader.close}.
   *
   * `Frame.data` is a VIEW into the reader's buffer, valid only until the
   * next call to `next()`: copy it (`data.slice()`) to keep it.
   * `Frame.ts` is in whole microseconds: the sub-microsecond part of a
   * nanosecond (or finer) timestamp is dropped, rounding toward the past.
   * A pcapng Simple Packet Block carries no timestamp; its frames have `ts` 0.
   */
  next(): Frame | undefined;
  /** Why reading stopped before the end of the file; `undefined` while reading goes well and after a clean end. */
  readonly error: DbtapError | undefined;
  /** Counters, updated as frames are read. */
  readonly stats: CaptureStats;
  /** Releases the file; further `next()` calls return `undefined`. Safe to call more than once. */
  close(): void;
}

/** Options of {@link openCapture}. */
export interface CaptureOpenOptions {
  /** Size of the reusable read buffer in bytes (default 1 MiB). */
  bufferSize?: number;
  /**
   * The largest pcap record or pcapng block accepted, in bytes (default
   * 64 MiB). A bigger one stops reading with `DBTAP_E_LIMIT_EXCEEDED`
   * instead of being allocated.
   */
  maxBlockSize?: number;
}

/** Options of {@link PcapWriter} and {@link encodePcapHeader}. */
export interface PcapWriterOptions {
  /** LINKTYPE_* written in the global header; every frame written must have it. */
  linkType: number;
  /** Snap length written in the header; longer frames are cut to it (default 262144). */
  snapLen?: number;
  /** Write nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds. */
  nanosecond?: boolean;
}


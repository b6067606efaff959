import type { EventEmitter } from 'eventemitter3';
import type { DbtapError, Frame } from '@dbtap/core';

/** Counters of a capture source. */
export interface CaptureSourceStats {
  /** Frames handed to listeners. */
  frames: number;
  /** Captured bytes handed to listeners. */
  bytes: number;
  /** Frames cut by the snap length. */
  truncated: number;
  /**
   * Frames that passed the filter in the kernel (`ps_recv` of pcap_stats:
   * on Linux the delivered, the dropped and those still in the ring), or
   * `undefined` when the libpcap binding in use cannot report them.
   */
  kernelReceived: number | undefined;
  /**
   * Frames the kernel dropped because the capture ring was full (`ps_drop`),
   * or `undefined` when the libpcap binding in use cannot report them.
   */
  kernelDrops: number | undefined;
  /** Frames the interface dropped (`ps_ifdrop`), or `undefined` when unknown. */
  interfaceDrops: number | undefined;
  /** Frames the source dropped because its consumer did not keep up. */
  sourceDrops: number;
}

/** Events of a capture source. */
export interface CaptureSourceEvents {
  /**
   * One frame. Its `data` may be a view into a buffer the source reuses:
   * copy it to keep it past the listener call.
   */
  frame: (frame: Frame) => void;
  /**
   * The same frames as the `frame` events that follow, packed as transport
   * batch records (`count` of them), for {@link TransportClient.sendRecords}.
   * Only sources that receive frames in that form emit it (the live
   * capture); a view valid during the call.
   */
  records: (records: Uint8Array, count: number) => void;
  /**
   * A drop counter went up: `delta` holds the increase of each since the
   * previous `drops` event, `stats` the totals.
   */
  drops: (delta: { kernelDrops: number; interfaceDrops: number; sourceDrops: number }, stats: CaptureSourceStats) => void;
  /** A fatal error (device gone, capture process died, read error); the source has stopped. */
  error: (err: DbtapError) => void;
  /** The source ended (end of file, or stopped). */
  end: () => void;
}

/** Anything that produces frames: a live interface or a capture file. */
export interface CaptureSource extends EventEmitter<CaptureSourceEvents> {
  /** Human-readable origin, e.g. `lo` or a file name. */
  readonly name: string;
  /** Starts producing frames; rejects with a coded error when the source cannot start. */
  start(): Promise<void>;
  /** Stops producing frames. */
  stop(): Promise<void>;
  /** A snapshot of the counters. */
  stats(): CaptureSourceStats;
}

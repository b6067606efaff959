// Replay of a pcap/pcapng file as a capture source.
import { EventEmitter } from 'eventemitter3';
import { DbtapError, ErrorCodes, openCapture, type CaptureReader, type Frame } from '@dbtap/core';
import type { CaptureSource, CaptureSourceEvents, CaptureSourceStats } from './source.js';

/** Options of {@link PcapReplaySource}. */
export interface PcapReplayOptions {
  /** The pcap or pcapng file. */
  path: string;
  /** `fast` (default): as fast as the consumer takes them; `recorded`: at the pace of the capture timestamps. */
  pace?: 'fast' | 'recorded';
  /** With `recorded` pace, a speed factor (2 = twice as fast). Default 1. */
  speed?: number;
  /**
   * Asked before each frame; while it returns false the replay waits (the
   * consumer's queue is full). Default: never wait.
   */
  ready?: () => boolean;
  /** Frames emitted between yields to the event loop in `fast` pace. Default 256. */
  chunk?: number;
}

/**
 * Emits the frames of a capture file, then `end`. A file that is cut short
 * or corrupt emits its good frames, then an `error` with the reader's code.
 */
export class PcapReplaySource extends EventEmitter<CaptureSourceEvents> implements CaptureSource {
  /** The file. */
  readonly name: string;
  private readonly o: Required<Omit<PcapReplayOptions, 'ready'>> & Pick<PcapReplayOptions, 'ready'>;
  private reader: CaptureReader | undefined;
  private stopped = false;
  private cancel: (() => void) | undefined;
  private readonly counters = { frames: 0, bytes: 0, truncated: 0 };
  private done: Promise<void> | undefined;

  constructor(options: PcapReplayOptions) {
    super();
    if (!options || typeof options.path !== 'string' || options.path.length === 0) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'a capture file path is required');
    const speed = options.speed ?? 1;
    if (!(speed > 0) || !Number.isFinite(speed)) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `replay speed must be a positive number, got ${options.speed}`);
    if (options.pace !== undefined && options.pace !== 'fast' && options.pace !== 'recorded') {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `replay pace must be "fast" or "recorded", got ${JSON.stringify(options.pace)}`);
    }
    this.name = options.path;
    this.o = { path: options.path, pace: options.pace ?? 'fast', speed, ready: options.ready, chunk: options.chunk ?? 256 };
  }

  /** Opens the file (rejecting with `DBTAP_E_IO` or `DBTAP_E_BAD_CAPTURE_FORMAT`) and starts emitting. */
  async start(): Promise<void> {
    if (this.reader) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'replay already started');
    this.reader = openCapture(this.o.path);
    this.done = new Promise<void>((resolve) => this.once('end', () => resolve()));
    setImmediate(() => this.run());
  }

  /** Resolves when the whole file was emitted (or the replay stopped). */
  finished(): Promise<void> {
    return this.done ?? Promise.resolve();
  }

  private run(): void {
    const r = this.reader!;
    const o = this.o;
    const t0 = Date.now();
    let ts0: number | undefined;
    const later = (fn: () => void, ms: number) => {
      if (ms <= 0) {
        const h = setImmediate(fn);
        this.cancel = () => clearImmediate(h);
      } else {
        const h = setTimeout(fn, ms);
        this.cancel = () => clearTimeout(h);
      }
    };
    const step = () => {
      this.cancel = undefined;
      let n = 0;
      while (!this.stopped) {
        if (o.ready && !o.ready()) {
          later(step, 5);
          return;
        }
        const f = r.next();
        if (f === undefined) break;
        if (o.pace === 'recorded') {
          if (ts0 === undefined) ts0 = f.ts;
          const due = t0 + (f.ts - ts0) / 1000 / o.speed;
          const wait = due - Date.now();
          if (wait > 1) {
            // Hold a copy: the reader's view is only valid until the next read.
            const held = { ...f, data: f.data.slice() };
            // libuv measures timers from its cached loop time, which can lag
            // the clock: a timer may fire early, so check and wait again.
            const fire = () => {
              const left = due - Date.now();
              if (left > 1) return later(fire, left);
              this.deliver(held);
              step();
            };
            later(fire, wait);
            return;
          }
        }
        this.deliver(f);
        if (++n >= o.chunk && o.pace === 'fast') {
          later(step, 0);
          return;
        }
      }
      const err = r.error;
      r.close();
      if (err && !this.stopped) this.emit('error', err);
      this.emit('end');
    };
    step();
  }

  private deliver(f: Frame): void {
    const c = this.counters;
    c.frames++;
    c.bytes += f.data.length;
    if (f.origLen > f.data.length) c.truncated++;
    this.emit('frame', f);
  }

  /** Stops emitting. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.cancel) {
      this.cancel();
      this.cancel = undefined;
      this.reader?.close();
      this.emit('end');
    }
  }

  /** A snapshot of the counters. */
  stats(): CaptureSourceStats {
    return { ...this.counters, kernelReceived: this.counters.frames, kernelDrops: 0, interfaceDrops: 0, sourceDrops: 0 };
  }
}

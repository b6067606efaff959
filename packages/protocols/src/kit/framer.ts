// One direction's framer for length-prefixed protocols: it cuts in-order
// stream bytes into messages. The protocol says, through a FrameFormat, how
// many header bytes it needs and how long the message is; the framer does
// the rest, once for every protocol:
//
//   chunk:  | msg | msg | msg | ms|    next chunk:  |g | msg ...
//            view  view  view  copy ------------------>  (only a message
//                                                       straddling chunks
//                                                       is copied)
//
// - whole messages inside a chunk are handed out as views (no copy);
// - a message bigger than maxMessageBytes is handed out as a prefix marked
//   Truncated | Oversized and the rest is skipped and counted;
// - a gap inside a message of known length keeps the stream in sync (the hole
//   is zero-filled, or cut out, and the message marked Truncated); any other
//   gap, and any impossible length, switches to scanning: every offset is
//   offered to the protocol's ResyncCheck until one is accepted. Scanning
//   copies (it is the rare path) and looks at each byte about once however
//   the data is chunked.

/** How a protocol's messages announce their length. */
export interface FrameFormat {
  /** Bytes of header needed before the message length is known (at least 1). */
  readonly headerBytes: number;
  /**
   * Total wire length, header included, of the message whose header starts
   * at `buf[at]` (at least `headerBytes`), or a negative number
   * (`Outcome.Malformed`) when the header cannot be right. `buf` holds at
   * least `headerBytes` bytes from `at`.
   */
  frameLength(buf: Uint8Array, at: number): number;
}

/** Flags of a delivered message. */
export const FrameFlag = {
  /** Bytes of the message were not captured (a gap) or were dropped (size limit). */
  Truncated: 1,
  /** The message was bigger than `maxMessageBytes`: only its prefix is delivered. */
  Oversized: 2,
} as const;

/**
 * Receives each message, header included, as a view valid only during the
 * call. `wireBytes` is its length on the wire (more than `message.length`
 * for an oversized message or one whose hole was cut out).
 */
export type FrameSink = (message: Uint8Array, wireBytes: number, flags: number) => void;

/**
 * While out of sync, asked whether a message starts at `buf[at]` (`end`
 * bounds the bytes available): a positive number accepts the boundary and
 * framing resumes there; `Outcome.More` (-1) means it may, once more bytes
 * arrive (the offset is kept and asked again); any other negative number
 * rejects the offset for good. The check may set {@link Framer.format}
 * before accepting (e.g. a startup packet at the start of a stream).
 */
export type ResyncCheck = (buf: Uint8Array, at: number, end: number) => number;

/** Options of a {@link Framer}. */
export interface FramerOptions {
  /** Largest message delivered whole; bigger ones are delivered as a prefix and the rest skipped. */
  readonly maxMessageBytes: number;
  /** Bytes of an oversized message handed on (so a huge statement still shows its start). Default 64 KiB. */
  readonly oversizePrefix?: number;
  /** How to find the next message boundary after sync was lost. */
  readonly resync: ResyncCheck;
  /** A gap inside a message of known length: zero-filled (length kept, the default) or cut out. */
  readonly holes?: 'zero-fill' | 'cut';
  /**
   * Hand the sink each message without its header (`frameLength` has seen
   * the header already). Saves one view per message for a protocol that
   * reads nothing of the header but the length.
   */
  readonly bodyOnly?: boolean;
  /** False to start scanning at the first byte (a capture that starts mid-stream). Default true. */
  readonly startSynced?: boolean;
  /** Most bytes held while scanning; older candidates are dropped. Default 1 MiB. */
  readonly maxScanBytes?: number;
}

/** Counters a framer keeps; the session folds them into its stats. */
export interface FramerCounters {
  /** Bytes dropped while scanning or skipping the rest of oversized messages. */
  skippedBytes: number;
  /** Headers whose length could not be right. */
  malformed: number;
  /** Messages bigger than the limit (delivered as a prefix). */
  oversized: number;
  /** Times sync was lost (a gap between messages, a malformed header, {@link Framer.loseSync}). */
  resyncs: number;
}

const enum Mode {
  Synced,
  Scanning,
  Off,
}

const EMPTY = new Uint8Array(0);
/** Largest straddling message whose buffer is kept for the next one. */
const SPARE_MAX = 256 << 10;
const MORE = -1;

/** Cuts one direction of a stream into messages; see the module comment. */
export class Framer {
  /** The format of the next message; may be switched from inside the sink. */
  format: FrameFormat;
  /** What the framer skipped, refused and resynchronised. */
  readonly counters: FramerCounters = { skippedBytes: 0, malformed: 0, oversized: 0, resyncs: 0 };

  private readonly sink: FrameSink;
  private readonly resync: ResyncCheck;
  private readonly maxMessage: number;
  private readonly prefix: number;
  private readonly cutHoles: boolean;
  private readonly bodyOnly: boolean;
  private readonly maxScan: number;
  private mode: Mode;
  private stopped = false;
  private lost = false;
  // A header split across chunks.
  private head = new Uint8Array(16);
  private headLen = 0;
  // A message split across chunks, once its length is known.
  private part: Uint8Array = EMPTY;
  private partLen = 0;
  private partEnd = 0; // bytes of `part` that will be delivered (less than its length when holes were cut)
  private partWire = 0;
  private partFlags = 0;
  private partSkip = 0; // bytes of an oversized message to skip once its prefix is delivered
  private partBody = 0; // where the delivered view of the part starts (its header length with bodyOnly)
  private spare: Uint8Array = EMPTY; // the buffer of straddling messages up to SPARE_MAX
  // Bytes still to drop of an oversized message.
  private skip = 0;
  // Scanning state: copied bytes, offsets rejected for good, candidates waiting for more bytes.
  private scanBuf: Uint8Array = EMPTY;
  private scanLen = 0;
  private scannedTo = 0;
  private waiting: number[] = [];
  // The format that refused the header at offset 0 of the scan buffer: offset 0 is not accepted again in it.
  private refused: FrameFormat | undefined;

  /**
   * @param format the format of the first message
   * @param sink receives every message
   * @param options limits and the resync check
   */
  constructor(format: FrameFormat, sink: FrameSink, options: FramerOptions) {
    this.format = format;
    this.sink = sink;
    this.resync = options.resync;
    this.maxMessage = Math.max(1, options.maxMessageBytes);
    this.prefix = Math.max(1, options.oversizePrefix ?? 64 << 10);
    this.cutHoles = options.holes === 'cut';
    this.bodyOnly = options.bodyOnly === true;
    this.maxScan = Math.max(1 << 10, options.maxScanBytes ?? 1 << 20);
    this.mode = options.startSynced === false ? Mode.Scanning : Mode.Synced;
  }

  /** False while scanning for a boundary (and after {@link Framer.off}). */
  get synced(): boolean {
    return this.mode === Mode.Synced;
  }

  /** True when no partial message is buffered or being skipped. */
  get idle(): boolean {
    return this.partLen === 0 && this.headLen === 0 && this.skip === 0;
  }

  /** True once after sync was lost; the session marks the next record `gapBefore`. */
  takeLostSync(): boolean {
    const l = this.lost;
    this.lost = false;
    return l;
  }

  /**
   * Feeds in-order bytes, calling the sink once per message. Returns how many
   * bytes of `bytes` were consumed: all of them unless the sink called
   * {@link Framer.stop} (the rest then belongs to the caller, e.g. a
   * compression layer that takes over the stream).
   */
  push(bytes: Uint8Array): number {
    this.stopped = false;
    let chunk = bytes;
    let off = 0;
    let n = chunk.length;
    while (off < n && !this.stopped) {
      const mode = this.mode;
      if (mode === Mode.Off) return bytes.length;
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - off);
        this.skip -= k;
        this.counters.skippedBytes += k;
        off += k;
        continue;
      }
      if (mode === Mode.Scanning) {
        const rest = this.scan(chunk.subarray(off));
        if (rest === undefined) return bytes.length;
        chunk = rest;
        off = 0;
        n = rest.length;
        continue;
      }
      if (this.partLen > 0) {
        off = this.fillPart(chunk, off, n);
        continue;
      }
      if (this.headLen > 0) {
        off = this.fillHead(chunk, off, n);
        continue;
      }
      off = this.frameAt(chunk, off, n);
    }
    this.stopped = false;
    // After a stop inside bytes handed back by a scan, only the caller's own bytes can be returned.
    return Math.max(0, bytes.length - (n - off));
  }

  /** From inside the sink: {@link Framer.push} returns after the current message. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * `nbytes` of the stream are missing. Inside a message of known length the
   * stream stays in sync (the message is delivered Truncated) and this returns
   * true; otherwise a partial message is delivered Truncated, the framer
   * starts scanning, and this returns false.
   */
  gap(nbytes: number): boolean {
    if (this.mode === Mode.Off || nbytes <= 0) return this.mode !== Mode.Off;
    if (this.mode === Mode.Scanning) {
      // Bytes before the hole can no longer start a message that spans it.
      this.resetScan();
      return false;
    }
    if (this.skip > 0) {
      if (nbytes <= this.skip) {
        this.skip -= nbytes;
        return true;
      }
      this.skip = 0;
      this.loseSync();
      return false;
    }
    if (this.partLen > 0) {
      const left = this.part.length - this.partLen;
      this.partFlags |= 1; // FrameFlag.Truncated
      if (nbytes <= left) {
        this.hole(nbytes);
        if (this.partLen === this.part.length) this.finishPart();
        return true;
      }
      if (nbytes <= left + this.partSkip) {
        // The hole reaches into the part of an oversized message that is skipped anyway.
        this.hole(left);
        this.partSkip -= nbytes - left;
        this.finishPart();
        return true;
      }
      // The message is cut short and what follows it is unknown: hand on what there is.
      this.hole(left);
      this.finishPart();
    }
    this.loseSync();
    return false;
  }

  /** Drops any partial message and scans for the next boundary. */
  loseSync(): void {
    if (this.mode === Mode.Off) return;
    this.mode = Mode.Scanning;
    this.lost = true;
    this.counters.resyncs++;
    this.headLen = 0;
    this.dropPart();
    this.skip = 0;
    this.resetScan();
  }

  /** Ignores everything from now on (the stream turned encrypted or was abandoned). */
  off(): void {
    this.mode = Mode.Off;
    this.headLen = 0;
    this.dropPart();
    this.skip = 0;
    this.scanBuf = EMPTY;
    this.scanLen = 0;
    this.waiting = [];
  }

  // ---- framing -------------------------------------------------------------

  /** Cuts messages directly from the chunk (the fast path); returns the new offset. */
  private frameAt(chunk: Uint8Array, off: number, n: number): number {
    const format = this.format;
    const hb = format.headerBytes;
    const body = this.bodyOnly ? hb : 0;
    // Whole messages one after the other, for as long as the sink leaves the framer as it was.
    while (n - off >= hb) {
      const total = format.frameLength(chunk, off);
      if (total < hb || total > this.maxMessage || n - off < total) break;
      this.sink(chunk.subarray(off + body, off + total), total, 0);
      off += total;
      if (this.stopped || this.mode !== Mode.Synced || this.format !== format || this.partLen > 0 || this.skip > 0 || off === n) return off;
    }
    if (n - off < hb) {
      if (this.head.length < hb) this.head = new Uint8Array(hb);
      this.head.set(chunk.subarray(off, n), 0);
      this.headLen = n - off;
      return n;
    }
    const total = this.format.frameLength(chunk, off);
    if (total < hb) {
      this.counters.malformed++;
      this.loseSync();
      // The scan starts at this very byte, but accepting it again in the same
      // format (a check that accepts what frameLength refuses) would loop forever.
      this.refused = this.format;
      return off;
    }
    if (total > this.maxMessage) {
      this.counters.oversized++;
      const want = Math.max(hb, Math.min(total, this.prefix));
      if (n - off < want) {
        // The prefix straddles chunks: it is collected like any partial message, then the rest is skipped.
        this.startOversized(total, want);
        this.part.set(chunk.subarray(off, n), 0);
        this.partLen = n - off;
        return n;
      }
      const consumed = Math.min(n - off, total);
      this.skip = total - consumed;
      this.counters.skippedBytes += consumed - want;
      this.sink(chunk.subarray(this.bodyOnly ? off + hb : off, off + want), total, 3); // Truncated | Oversized
      return off + consumed;
    }
    // Straddles the end of the chunk: the one copy.
    this.startPart(total);
    this.part.set(chunk.subarray(off, n), 0);
    this.partLen = n - off;
    return n;
  }

  /** Completes a header split across chunks, then continues as a partial message. */
  private fillHead(chunk: Uint8Array, off: number, n: number): number {
    const hb = this.format.headerBytes;
    if (this.head.length < hb) {
      const grown = new Uint8Array(hb);
      grown.set(this.head.subarray(0, this.headLen));
      this.head = grown;
    }
    const k = Math.min(hb - this.headLen, n - off);
    this.head.set(chunk.subarray(off, off + k), this.headLen);
    this.headLen += k;
    off += k;
    if (this.headLen < hb) return off;
    const h = this.head;
    this.headLen = 0;
    const total = this.format.frameLength(h, 0);
    if (total < hb) {
      this.counters.malformed++;
      const held = h.slice(0, hb);
      this.loseSync();
      // Scan again from the header bytes held (not in the format that just refused them).
      this.scanBuf = held;
      this.scanLen = held.length;
      this.refused = this.format;
      return off;
    }
    if (total > this.maxMessage) {
      this.counters.oversized++;
      this.startOversized(total, Math.max(hb, Math.min(total, this.prefix)));
      this.part.set(h.subarray(0, hb), 0);
      this.partLen = hb;
      if (this.partLen === this.part.length) this.finishPart();
      return off;
    }
    this.startPart(total);
    this.part.set(h.subarray(0, hb), 0);
    this.partLen = hb;
    if (total === hb) this.finishPart();
    return off;
  }

  private fillPart(chunk: Uint8Array, off: number, n: number): number {
    const k = Math.min(this.part.length - this.partLen, n - off);
    this.part.set(chunk.subarray(off, off + k), this.partLen);
    this.partLen += k;
    if (this.partLen === this.part.length) this.finishPart();
    return off + k;
  }

  private startPart(total: number): void {
    // Straddling messages reuse one buffer (the sink's view is valid only during its call).
    if (total > this.spare.length && total <= SPARE_MAX) this.spare = new Uint8Array(Math.min(SPARE_MAX, Math.max(total, 2 * this.spare.length, 4096)));
    this.part = total <= this.spare.length ? this.spare.subarray(0, total) : new Uint8Array(total);
    this.partLen = 0;
    this.partEnd = total;
    this.partWire = total;
    this.partFlags = 0;
    this.partBody = this.bodyOnly ? this.format.headerBytes : 0;
  }

  /** Collects the first `prefix` bytes of an oversized message of `total` bytes; the rest is skipped after it is delivered. */
  private startOversized(total: number, prefix: number): void {
    this.startPart(prefix);
    this.partWire = total;
    this.partFlags = 3; // Truncated | Oversized
    this.partSkip = total - prefix;
  }

  /** `k` missing bytes inside the partial message: zeros, or cut out of what is delivered. */
  private hole(k: number): void {
    if (this.cutHoles) {
      // Shift the expected end: the bytes after the hole land where the hole began.
      const kept = this.part.subarray(0, this.partLen);
      const shorter = new Uint8Array(this.part.length - k);
      shorter.set(kept, 0);
      this.part = shorter;
      this.partEnd = shorter.length;
    } else {
      this.part.fill(0, this.partLen, this.partLen + k);
      this.partLen += k;
    }
  }

  private finishPart(): void {
    const part = this.part;
    const end = Math.min(this.partEnd, this.partLen);
    const wire = this.partWire;
    const flags = this.partFlags;
    const skip = this.partSkip;
    const body = Math.min(this.partBody, end);
    this.dropPart();
    this.skip = skip;
    this.sink(part.subarray(body, end), wire, flags);
  }

  private dropPart(): void {
    this.part = EMPTY;
    this.partLen = 0;
    this.partEnd = 0;
    this.partWire = 0;
    this.partFlags = 0;
    this.partSkip = 0;
    this.partBody = 0;
  }

  // ---- scanning ------------------------------------------------------------

  private resetScan(): void {
    this.scanBuf = EMPTY;
    this.scanLen = 0;
    this.scannedTo = 0;
    this.waiting = [];
  }

  /** Scans for a boundary; returns the bytes from it on (now synced), or undefined to wait. */
  private scan(chunk: Uint8Array): Uint8Array | undefined {
    const need = this.scanLen + chunk.length;
    if (this.scanBuf.length < need) {
      const grown = new Uint8Array(Math.max(need, Math.min(this.scanBuf.length * 2, need + (64 << 10))));
      grown.set(this.scanBuf.subarray(0, this.scanLen), 0);
      this.scanBuf = grown;
    }
    this.scanBuf.set(chunk, this.scanLen);
    this.scanLen = need;
    const buf = this.scanBuf;
    const end = need;
    // Candidates that wanted more bytes are asked again; every other offset
    // below scannedTo was rejected for good.
    const waiting = this.waiting;
    this.waiting = [];
    let firstMore = -1;
    for (const i of waiting) {
      const r = this.resync(buf, i, end);
      if (r > 0 && !this.refusedAgain(i)) return this.resume(i);
      if (r === MORE) {
        this.waiting.push(i);
        if (firstMore < 0) firstMore = i;
      }
    }
    for (let i = this.scannedTo; i < end; i++) {
      const r = this.resync(buf, i, end);
      if (r > 0 && !this.refusedAgain(i)) return this.resume(i);
      if (r === MORE && this.waiting.length < 16) {
        this.waiting.push(i);
        if (firstMore < 0) firstMore = i;
      }
    }
    this.refused = undefined;
    let keep = firstMore >= 0 ? firstMore : end;
    if (end - keep > this.maxScan) {
      // Bounded: candidates too far back are given up.
      keep = end - this.maxScan;
      this.waiting = this.waiting.filter((w) => w >= keep);
    }
    this.counters.skippedBytes += keep;
    buf.copyWithin(0, keep, end);
    this.scanLen = end - keep;
    this.scannedTo = end - keep;
    for (let k = 0; k < this.waiting.length; k++) this.waiting[k]! -= keep;
    if (this.scanLen === 0 && this.scanBuf.length > 256 << 10) this.scanBuf = EMPTY;
    return undefined;
  }

  /** Offset 0 accepted by the check in the very format whose frameLength refused it. */
  private refusedAgain(i: number): boolean {
    return i === 0 && this.refused !== undefined && this.refused === this.format;
  }

  private resume(at: number): Uint8Array {
    this.refused = undefined;
    // The scan buffer is detached: the bytes handed back stay valid while they are framed.
    const rest = this.scanBuf.subarray(at, this.scanLen);
    this.counters.skippedBytes += at;
    this.scanBuf = EMPTY;
    this.scanLen = 0;
    this.scannedTo = 0;
    this.waiting = [];
    this.mode = Mode.Synced;
    return rest;
  }
}

// Cuts one direction of a PostgreSQL byte stream into messages.
//
// Wire layout (protocol 3.0):
//
//   typed message          startup-phase packet       SSL/GSS answer
//   +------+-----------+   +-----------+----------+   +------+
//   | type | Int32 len |   | Int32 len | body ... |   | 'S'  |  one byte, no length
//   +------+-----------+   +-----------+----------+   +------+
//   len counts itself and the body, never the type byte.
//
// Messages are handed out as views into the caller's chunk whenever they lie
// wholly inside it; only a message straddling two chunks is copied. A gap
// inside a message whose length is known keeps the stream in sync (the hole
// is zero-filled and the message marked truncated); any other gap, and any
// malformed length, switches to scanning for the next plausible message.
import { checkAt, checkStartupAt, Plausible } from './decoder.js';

/** Pseudo type of an untyped startup-phase packet. */
export const STARTUP = -1;
/** Pseudo type of the one-byte answer to SSLRequest / GSSENCRequest. */
export const ANSWER = -2;

/** Frame flags. */
export const FrameFlag = {
  /** Bytes of the message were not captured (gap) or it exceeded the size limit. */
  Truncated: 1,
} as const;

/** Receives each message: `type` is the type byte, {@link STARTUP} or {@link ANSWER}. */
export type FrameSink = (type: number, body: Uint8Array, wireLen: number, flags: number) => void;

/** What the framer expects next. */
export const FramerMode = {
  /** Type byte + Int32 length. */
  Typed: 0,
  /** Untyped Int32 length + body (client, before StartupMessage). */
  Startup: 1,
  /** One answer byte to SSLRequest / GSSENCRequest (server). */
  Answer: 2,
  /** Lost sync: scanning for a plausible message boundary. */
  Scan: 3,
  /** Ignoring everything (encrypted or abandoned stream). */
  Off: 4,
} as const;
/** A {@link FramerMode} value. */
export type FramerMode = (typeof FramerMode)[keyof typeof FramerMode];

/** Largest prefix of an oversized message handed on (so a huge Query still shows its start). */
const OVERSIZE_PREFIX = 64 << 10;
const EMPTY = new Uint8Array(0);

/** Counters a framer keeps; the session folds them into its stats. */
export interface FramerCounters {
  /** Bytes dropped while scanning or skipping oversized messages. */
  skippedBytes: number;
  /** Lengths that could not be right (shorter than 4, bigger than allowed in startup). */
  malformed: number;
  /** Messages bigger than the configured limit (delivered truncated). */
  oversized: number;
}

/** One direction's framer. */
export class PgFramer {
  mode: FramerMode;
  /** True for the client-to-server direction (selects which message set is plausible). */
  readonly toServer: boolean;
  readonly maxMessage: number;
  readonly counters: FramerCounters = { skippedBytes: 0, malformed: 0, oversized: 0 };
  /** Set when sync was lost; cleared by the session when it has noted it. */
  lostSync = false;

  // Partial header (up to 5 bytes) while the length is not known yet.
  private readonly head = new Uint8Array(5);
  private headLen = 0;
  // Partial message once its length is known.
  private part: Uint8Array = EMPTY;
  private partLen = 0;
  private partType = 0;
  private partTruncated = false;
  // Bytes still to drop of an oversized message.
  private skip = 0;
  // Scan buffer (copied bytes) while resynchronising.
  private scanBuf: Uint8Array = EMPTY;
  private scanLen = 0;
  /** Offsets below this in the scan buffer were rejected for good. */
  private scannedTo = 0;
  /** Offsets of candidates that needed more bytes. */
  private waiting: number[] = [];
  /** In scan mode at stream start, a startup packet is acceptable too. */
  private scanStartup = false;

  constructor(toServer: boolean, maxMessage: number, mode: FramerMode) {
    this.toServer = toServer;
    this.maxMessage = maxMessage;
    this.mode = mode;
    this.scanStartup = mode === FramerMode.Scan && toServer;
  }

  /** Feeds in-order bytes; calls `sink` once per complete message. */
  push(input: Uint8Array, sink: FrameSink): void {
    let chunk = input;
    let off = 0;
    let n = chunk.length;
    while (off < n) {
      const mode = this.mode;
      if (mode === FramerMode.Off) return;
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - off);
        this.skip -= k;
        this.counters.skippedBytes += k;
        off += k;
        continue;
      }
      if (mode === FramerMode.Scan) {
        // On success the scan hands back the buffered bytes from the boundary on.
        const rest = this.scan(chunk.subarray(off));
        if (rest === undefined) return;
        chunk = rest;
        off = 0;
        n = rest.length;
        continue;
      }
      if (this.partLen > 0) {
        off = this.fillPart(chunk, off, sink);
        continue;
      }
      if (this.headLen > 0) {
        off = this.fillHead(chunk, off, sink);
        continue;
      }
      if (mode === FramerMode.Answer) {
        const b = chunk[off]!;
        if (b === 0x53 || b === 0x4e || b === 0x47) {
          // 'S' / 'N' / 'G': the answer byte; what follows is typed (or TLS).
          this.mode = FramerMode.Typed;
          sink(ANSWER, chunk.subarray(off, off + 1), 1, 0);
          off += 1;
          continue;
        }
        // Anything else (e.g. an ErrorResponse from a server that does not know the request) is typed.
        this.mode = FramerMode.Typed;
        continue;
      }
      off = this.frameAt(chunk, off, n, sink);
    }
  }

  /** Cuts messages from `chunk[off..n)` directly (the fast path); returns the new offset. */
  private frameAt(chunk: Uint8Array, off: number, n: number, sink: FrameSink): number {
    const typed = this.mode === FramerMode.Typed;
    const hdr = typed ? 5 : 4;
    if (n - off < hdr) {
      this.head.set(chunk.subarray(off, n), 0);
      this.headLen = n - off;
      return n;
    }
    const type = typed ? chunk[off]! : STARTUP;
    const p = typed ? off + 1 : off;
    const len = (chunk[p]! * 0x1000000 + ((chunk[p + 1]! << 16) | (chunk[p + 2]! << 8) | chunk[p + 3]!)) as number;
    const total = typed ? len + 1 : len;
    if (!this.lengthOk(len, typed)) {
      this.loseSync();
      this.counters.malformed++;
      return off; // the scan starts at this very byte
    }
    if (total > this.maxMessage) {
      this.counters.oversized++;
      const have = Math.min(n - off, total, OVERSIZE_PREFIX);
      sink(type, chunk.subarray(off + hdr, off + Math.max(hdr, have)), total, FrameFlag.Truncated);
      const consumed = Math.min(n - off, total);
      this.skip = total - consumed;
      this.counters.skippedBytes += consumed - have;
      return off + consumed;
    }
    if (n - off >= total) {
      sink(type, chunk.subarray(off + hdr, off + total), total, 0);
      return off + total;
    }
    // Straddles the chunk end: copy what we have.
    this.part = new Uint8Array(total);
    this.part.set(chunk.subarray(off, n), 0);
    this.partLen = n - off;
    this.partType = type;
    this.partTruncated = false;
    return n;
  }

  private lengthOk(len: number, typed: boolean): boolean {
    if (len < 4) return false;
    // Startup packets are small by definition (MAX_STARTUP_PACKET_LENGTH); larger means not startup.
    if (!typed && (len < 8 || len > 10000)) return false;
    return true;
  }

  /** Completes a partial header from `chunk`; then hands over to the whole-message path. */
  private fillHead(chunk: Uint8Array, off: number, sink: FrameSink): number {
    const typed = this.mode === FramerMode.Typed;
    const hdr = typed ? 5 : 4;
    const need = hdr - this.headLen;
    const k = Math.min(need, chunk.length - off);
    this.head.set(chunk.subarray(off, off + k), this.headLen);
    this.headLen += k;
    off += k;
    if (this.headLen < hdr) return off;
    // Header complete: rebuild a small buffer of header + as much body as the chunk has.
    const h = this.head;
    const p = typed ? 1 : 0;
    const len = h[p]! * 0x1000000 + ((h[p + 1]! << 16) | (h[p + 2]! << 8) | h[p + 3]!);
    const total = typed ? len + 1 : len;
    this.headLen = 0;
    if (!this.lengthOk(len, typed)) {
      this.counters.malformed++;
      this.loseSync();
      // Re-scan from the header bytes we held.
      this.scanBuf = new Uint8Array(hdr);
      this.scanBuf.set(h.subarray(0, hdr));
      this.scanLen = hdr;
      return off;
    }
    const type = typed ? h[0]! : STARTUP;
    if (total > this.maxMessage) {
      this.counters.oversized++;
      sink(type, EMPTY, total, FrameFlag.Truncated);
      this.skip = total - hdr;
      return off;
    }
    this.part = new Uint8Array(total);
    this.part.set(h.subarray(0, hdr), 0);
    this.partLen = hdr;
    this.partType = type;
    this.partTruncated = false;
    if (total === hdr) this.finishPart(sink);
    return off;
  }

  private fillPart(chunk: Uint8Array, off: number, sink: FrameSink): number {
    const k = Math.min(this.part.length - this.partLen, chunk.length - off);
    this.part.set(chunk.subarray(off, off + k), this.partLen);
    this.partLen += k;
    if (this.partLen === this.part.length) this.finishPart(sink);
    return off + k;
  }

  private finishPart(sink: FrameSink): void {
    const part = this.part;
    const hdr = this.partType === STARTUP ? 4 : 5;
    const flags = this.partTruncated ? FrameFlag.Truncated : 0;
    this.part = EMPTY;
    this.partLen = 0;
    this.partTruncated = false;
    sink(this.partType, part.subarray(hdr), part.length, flags);
  }

  /**
   * `nbytes` of the stream are missing. Inside a message of known length the
   * hole is zero-filled and the stream stays in sync; otherwise scan.
   */
  gap(nbytes: number, sink: FrameSink): void {
    if (this.mode === FramerMode.Off) return;
    if (this.skip > 0) {
      if (nbytes <= this.skip) {
        this.skip -= nbytes;
        return;
      }
      this.skip = 0;
      this.loseSync();
      return;
    }
    if (this.partLen > 0) {
      const left = this.part.length - this.partLen;
      if (nbytes <= left) {
        // The hole is inside this message: its end is still known.
        this.part.fill(0, this.partLen, this.partLen + nbytes);
        this.partLen += nbytes;
        this.partTruncated = true;
        if (this.partLen === this.part.length) this.finishPart(sink);
        return;
      }
      // The message is cut short and what follows it is unknown: hand on what we have.
      this.part.fill(0, this.partLen);
      this.partLen = this.part.length;
      this.partTruncated = true;
      this.finishPart(sink);
    }
    this.headLen = 0;
    this.loseSync();
  }

  /** Drops partial state and starts scanning for a boundary. */
  loseSync(): void {
    this.mode = FramerMode.Scan;
    this.lostSync = true;
    this.scanStartup = false;
    this.headLen = 0;
    this.part = EMPTY;
    this.partLen = 0;
    this.scanLen = 0;
    this.scannedTo = 0;
    this.waiting = [];
  }

  /** Stops framing for good (encrypted or abandoned stream). */
  off(): void {
    this.mode = FramerMode.Off;
    this.part = EMPTY;
    this.partLen = 0;
    this.headLen = 0;
    this.scanBuf = EMPTY;
    this.scanLen = 0;
  }

  /** True while a message is partly buffered (used to flag truncation at close). */
  get pending(): boolean {
    return this.partLen > 0 || this.headLen > 0 || this.skip > 0;
  }

  /** Scans for a boundary; returns the bytes from it on (mode switched), or undefined to wait. */
  private scan(chunk: Uint8Array): Uint8Array | undefined {
    // Append to the scan buffer (copying: resynchronisation is the rare path).
    const need = this.scanLen + chunk.length;
    if (this.scanBuf.length < need) {
      const grown = new Uint8Array(Math.max(need, Math.min(this.scanBuf.length * 2, need + (64 << 10))));
      grown.set(this.scanBuf.subarray(0, this.scanLen), 0);
      this.scanBuf = grown;
    }
    this.scanBuf.set(chunk, this.scanLen);
    this.scanLen = need;
    const buf = this.scanBuf;
    const end = this.scanLen;
    const toServer = this.toServer;
    if (this.scanStartup) {
      const s = checkStartupAt(buf, 0, end);
      if (s === Plausible.More) return undefined; // bounded: a startup packet is at most 10000 bytes
      this.scanStartup = false;
      if (s > 0) return this.resume(FramerMode.Startup, 0);
    }
    // Candidates that were incomplete last time are re-checked; every other
    // offset below `scannedTo` was rejected for good, so each byte is looked at
    // about once however the data is chunked.
    const waiting = this.waiting;
    this.waiting = [];
    let firstMore = -1;
    const consider = (i: number): boolean => {
      const t = checkAt(buf, i, end, toServer);
      if (t === Plausible.No) return false;
      if (t === Plausible.More) {
        if (this.waiting.length < 16) this.waiting.push(i);
        if (firstMore < 0) firstMore = i;
        return false;
      }
      // A whole message: accept when it ends the data or the next one is plausible too.
      const next = i + t;
      return next === end || checkAt(buf, next, end, toServer) !== Plausible.No;
    };
    for (const i of waiting) {
      if (consider(i)) return this.resume(FramerMode.Typed, i);
    }
    for (let i = this.scannedTo; i < end; i++) {
      if (consider(i)) return this.resume(FramerMode.Typed, i);
    }
    const keep = firstMore >= 0 ? firstMore : end;
    this.counters.skippedBytes += keep;
    buf.copyWithin(0, keep, end);
    this.scanLen = end - keep;
    this.scannedTo = end - keep;
    for (let k = 0; k < this.waiting.length; k++) this.waiting[k]! -= keep;
    if (this.scanLen === 0 && this.scanBuf.length > 256 << 10) this.scanBuf = EMPTY;
    return undefined;
  }

  private resume(mode: FramerMode, at: number): Uint8Array {
    // The scan buffer is detached: the bytes handed back stay valid while framed.
    const rest = this.scanBuf.subarray(at, this.scanLen);
    this.counters.skippedBytes += at;
    this.scanBuf = EMPTY;
    this.scanLen = 0;
    this.scannedTo = 0;
    this.waiting = [];
    this.mode = mode;
    return rest;
  }
}

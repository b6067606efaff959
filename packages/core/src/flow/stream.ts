import type { Timestamp } from '../time.js';

/**
 * Where one direction of a TCP connection delivers its bytes. Calls arrive
 * in stream order; `data` views are valid only during the call.
 */
export interface StreamSink {
  /** In-order payload bytes. */
  data(bytes: Uint8Array, ts: Timestamp): void;
  /** `nbytes` of the stream will never be seen (lost, not captured, or beyond a bound). */
  gap(nbytes: number, ts: Timestamp): void;
}

/** Counters of one direction of a TCP stream. */
export interface StreamCounters {
  /** Payload bytes delivered in order. */
  delivered: number;
  /** Bytes reported missing. */
  gapBytes: number;
  /** Number of gaps reported. */
  gaps: number;
  /** Bytes received again after delivery (retransmissions, overlaps). */
  duplicateBytes: number;
  /** Segments that arrived ahead of a hole and waited. */
  outOfOrder: number;
}

interface Pending {
  seq: number;
  data: Uint8Array;
  /** Bytes the capture did not hold after `data` (snap length). */
  missing: number;
}

/** Relative position of sequence number `a` after `b`, modulo 2^32 (RFC 9293 section 3.4). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/**
 * Reassembles one direction of a TCP connection: delivers payload in
 * sequence order, drops retransmitted and overlapping bytes, holds
 * out-of-order segments up to a byte bound, handles sequence wrap-around,
 * and reports every byte it cannot deliver as a gap, so that delivered bytes
 * plus gap bytes always equal the stream's length.
 */
export class TcpStream {
  /** Counters for this direction. */
  readonly counters: StreamCounters = { delivered: 0, gapBytes: 0, gaps: 0, duplicateBytes: 0, outOfOrder: 0 };
  /** True once the stream's starting sequence number is known. */
  started = false;
  /** Next expected sequence number. */
  nextSeq = 0;
  /** Sequence number just after the FIN, once a FIN was seen. */
  finSeq: number | undefined = undefined;
  private pending: Pending[] = [];
  private pendingBytesHeld = 0;

  /**
   * @param sink Receives the ordered bytes and gaps.
   * @param maxPendingBytes Out-of-order bytes this direction may hold before it gives up waiting for the hole.
   * @param account Called with the change in held bytes (for a table-wide memory cap).
   */
  constructor(
    private readonly sink: StreamSink,
    private readonly maxPendingBytes: number,
    private readonly account: (delta: number) => void = () => {},
  ) {}

  /** Out-of-order bytes held now. */
  get pendingBytes(): number {
    return this.pendingBytesHeld;
  }

  /** True when a FIN was seen and every byte before it was delivered or reported missing. */
  get finished(): boolean {
    return this.finSeq !== undefined && this.started && this.nextSeq === this.finSeq;
  }

  /** A SYN from this side: the stream starts at `seq + 1`. */
  syn(seq: number): void {
    if (this.started && this.counters.delivered + this.counters.gapBytes > 0) return; // a retransmitted SYN
    this.started = true;
    this.nextSeq = (seq + 1) >>> 0;
  }

  /** A FIN after `len` payload bytes at `seq`. */
  fin(seq: number, len: number): void {
    if (!this.started) {
      this.started = true;
      this.nextSeq = seq >>> 0;
    }
    this.finSeq = (seq + len) >>> 0;
  }

  /**
   * One segment: `payload` captured bytes at `seq`, followed by `missing`
   * bytes the capture did not keep (snap length).
   */
  segment(seq: number, payload: Uint8Array, missing: number, ts: Timestamp): void {
    const len = payload.length + missing;
    if (len === 0) return;
    if (!this.started) {
      // Picked up mid-stream: the first segment seen defines the start.
      this.started = true;
      this.nextSeq = seq >>> 0;
    }
    const rel = seqDiff(seq, this.nextSeq);
    if (rel < 0) {
      const overlap = -rel;
      if (overlap >= len) {
        this.counters.duplicateBytes += len;
        return;
      }
      this.counters.duplicateBytes += overlap;
      if (overlap >= payload.length) {
        missing -= overlap - payload.length;
        payload = payload.subarray(payload.length);
      } else {
        payload = payload.subarray(overlap);
      }
    } else if (rel > 0) {
      this.hold(seq >>> 0, payload, missing, ts);
      return;
    }
    this.deliver(payload, missing, ts);
    this.drain(ts);
  }

  /**
   * The peer acknowledged up to `ack`: a hole before that point will never
   * be filled by this capture, so report it as a gap once later data waits.
   */
  acked(ack: number, ts: Timestamp): void {
    if (!this.started || this.pending.length === 0) return;
    const ahead = seqDiff(ack, this.nextSeq);
    if (ahead <= 0) return;
    const toFirst = seqDiff(this.pending[0]!.seq, this.nextSeq);
    this.skip(Math.min(ahead, toFirst), ts);
    this.drain(ts);
  }

  /** Delivers everything held, reporting the holes before it as gaps (connection end). */
  flush(ts: Timestamp): void {
    while (this.pending.length > 0) {
      const toFirst = seqDiff(this.pending[0]!.seq, this.nextSeq);
      if (toFirst > 0) this.skip(toFirst, ts);
      this.drain(ts);
    }
    if (this.finSeq !== undefined) {
      // Bytes before the FIN that never arrived.
      const rest = seqDiff(this.finSeq, this.nextSeq);
      if (rest > 0) this.skip(rest, ts);
    }
  }

  /** Drops held data without delivering it (eviction); returns the bytes freed. */
  discard(): number {
    const n = this.pendingBytesHeld;
    this.pending = [];
    this.pendingBytesHeld = 0;
    if (n) this.account(-n);
    return n;
  }

  private deliver(payload: Uint8Array, missing: number, ts: Timestamp): void {
    if (payload.length > 0) {
      this.nextSeq = (this.nextSeq + payload.length) >>> 0;
      this.counters.delivered += payload.length;
      this.sink.data(payload, ts);
    }
    if (missing > 0) this.skip(missing, ts);
  }

  private skip(n: number, ts: Timestamp): void {
    this.nextSeq = (this.nextSeq + n) >>> 0;
    this.counters.gapBytes += n;
    this.counters.gaps++;
    this.sink.gap(n, ts);
  }

  private hold(seq: number, payload: Uint8Array, missing: number, ts: Timestamp): void {
    const rel = seqDiff(seq, this.nextSeq);
    // Sorted insert by distance from nextSeq; an identical or covering segment already held wins.
    let i = this.pending.length;
    while (i > 0 && seqDiff(this.pending[i - 1]!.seq, this.nextSeq) > rel) i--;
    const prev = this.pending[i - 1];
    if (prev && prev.seq === seq && prev.data.length + prev.missing >= payload.length + missing) {
      this.counters.duplicateBytes += payload.length + missing;
      return;
    }
    this.counters.outOfOrder++;
    // Copy: the frame's buffer is reused after this call.
    this.pending.splice(i, 0, { seq, data: payload.slice(), missing });
    this.pendingBytesHeld += payload.length;
    this.account(payload.length);
    // Over the bound: stop waiting for the hole, report it and move on.
    while (this.pendingBytesHeld > this.maxPendingBytes && this.pending.length > 0) {
      const toFirst = seqDiff(this.pending[0]!.seq, this.nextSeq);
      if (toFirst > 0) this.skip(toFirst, ts);
      this.drain(ts);
    }
  }

  private drain(ts: Timestamp): void {
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      const rel = seqDiff(p.seq, this.nextSeq);
      if (rel > 0) return;
      this.pending.shift();
      this.pendingBytesHeld -= p.data.length;
      this.account(-p.data.length);
      const overlap = -rel;
      const len = p.data.length + p.missing;
      if (overlap >= len) {
        this.counters.duplicateBytes += len;
        continue;
      }
      this.counters.duplicateBytes += overlap;
      if (overlap >= p.data.length) this.deliver(p.data.subarray(p.data.length), p.missing - (overlap - p.data.length), ts);
      else this.deliver(p.data.subarray(overlap), p.missing, ts);
    }
  }
}

// Cuts one direction of a MySQL byte stream into protocol packets, on the
// kit Framer.
//
//   packet:  u24le payload_length | u8 sequence_id | payload
//
// A payload of 0xffffff bytes is continued by the next packet (protocol
// "Sending More Than 16Mb"); the framer joins them into one logical packet.
// With CLIENT_COMPRESS the packets travel inside compressed packets:
//
//   compressed: u24le compressed_length | u8 compressed_seq | u24le uncompressed_length | body
//
// where uncompressed_length 0 means the body is stored as is, else it is one
// zlib stream. The kit Framer hands out whole packets inside a chunk as
// views and copies only a packet that straddles chunks; only the join of
// 16 MiB continuations copies here, never beyond maxMessageBytes.
import { inflateSync } from 'node:zlib';
import { FrameFlag, Framer, Outcome, type FrameFormat, type ResyncCheck } from '../kit/index.js';
import { compressedBoundary, u24 } from './decoder.js';

/** One logical MySQL packet. Valid only during the sink callback. */
export interface MysqlPacket {
  /** Sequence id of the (first) physical packet. */
  seq: number;
  /** Payload (continuations joined); a view valid during the callback only. */
  payload: Uint8Array;
  /** Bytes the packet took on the wire, headers included. */
  wireBytes: number;
  /** The payload is incomplete: a gap fell inside it, or it exceeded maxMessageBytes. */
  truncated: boolean;
}

/** Receives packets from a framer. */
export type PacketSink = (p: MysqlPacket) => void;

const MAX_PHYSICAL = 0xffffff;

/** The compressed packet header: 7 bytes, the u24le compressed length first. */
const compressedFormat: FrameFormat = Object.freeze({
  headerBytes: 7,
  frameLength: (buf: Uint8Array, at: number): number => 7 + u24(buf, at),
});

const neverResync: ResyncCheck = () => Outcome.Malformed;

/** Splits a stream of uncompressed MySQL packets and joins continuations; see the module comment. */
export class PacketFramer {
  /** The kit framer underneath (its counters fold into the session's stats). */
  readonly framer: Framer;
  private readonly sink: PacketSink;
  private readonly maxBytes: number;
  private readonly out: MysqlPacket = { seq: 0, payload: new Uint8Array(0), wireBytes: 0, truncated: false };
  // A logical packet made of continuations, being joined.
  private joining = false;
  private acc: Uint8Array = new Uint8Array(0);
  private accLen = 0;
  private seq = 0;
  private wire = 0;
  private truncated = false;
  /** Sequence id of the packet whose header the kit framer read last (it delivers the payload only). */
  private headerSeq = 0;

  /**
   * @param sink receives each logical packet
   * @param maxMessageBytes largest payload kept; the rest of a bigger one is skipped (the packet is marked truncated)
   * @param resync where a packet may start while out of sync (none is accepted without one)
   * @param startSynced false to scan from the first byte (a capture that starts mid-stream)
   */
  constructor(sink: PacketSink, maxMessageBytes: number, resync: ResyncCheck = neverResync, startSynced = true) {
    this.sink = sink;
    this.maxBytes = Math.max(64, maxMessageBytes);
    const maxPacket = this.maxBytes + 4;
    // An oversized packet hands on its first 64 KiB (a statement's start; the record cuts SQL shorter still).
    const oversizePrefix = Math.min(maxPacket, 64 << 10);
    // The header is read here, so the kit hands on the payload alone: one view per packet
    // instead of two (a header-included view and its payload), a quarter of framing time.
    const format: FrameFormat = {
      headerBytes: 4,
      frameLength: (buf, at) => {
        this.headerSeq = buf[at + 3]!;
        return 4 + u24(buf, at);
      },
    };
    this.framer = new Framer(format, (m, wire, flags) => this.onPacket(m, wire, flags), { maxMessageBytes: maxPacket, oversizePrefix, resync, holes: 'cut', startSynced, bodyOnly: true });
  }

  /** False while scanning for a packet start. */
  get synced(): boolean {
    return this.framer.synced;
  }

  /** True when no partial packet is buffered. */
  get idle(): boolean {
    return !this.joining && this.framer.idle;
  }

  /** Consumes `bytes`; returns how many were consumed (all unless {@link PacketFramer.stop} was called from the sink). */
  push(bytes: Uint8Array): number {
    return this.framer.push(bytes);
  }

  /** From inside the sink: {@link PacketFramer.push} returns after the current packet (the stream changes format). */
  stop(): void {
    this.framer.stop();
  }

  /** Drops any partial packet and scans for the next one. */
  desync(): void {
    this.joining = false;
    this.accLen = 0;
    this.framer.loseSync();
  }

  /** Ignores everything from now on. */
  off(): void {
    this.joining = false;
    this.framer.off();
  }

  /**
   * `n` stream bytes are missing. When they fall inside the body of the
   * current packet the framer stays in sync (the packet is delivered marked
   * truncated); otherwise a partial packet is delivered truncated and the
   * framer scans. Returns true when it stayed in sync.
   */
  gap(n: number): boolean {
    if (this.framer.gap(n)) return true;
    if (this.joining) {
      this.truncated = true;
      this.deliverJoined();
    }
    return false;
  }

  private onPacket(m: Uint8Array, wire: number, flags: number): void {
    const last = wire - 4 !== MAX_PHYSICAL;
    if (!this.joining && last) {
      const o = this.out;
      o.seq = this.headerSeq;
      o.payload = m;
      o.wireBytes = wire;
      o.truncated = flags !== 0;
      this.sink(o);
      return;
    }
    if (!this.joining) {
      this.joining = true;
      this.seq = this.headerSeq;
      this.wire = 0;
      this.accLen = 0;
      this.truncated = false;
    }
    this.wire += wire;
    if (flags & FrameFlag.Truncated) this.truncated = true;
    this.append(m);
    if (last) this.deliverJoined();
  }

  private append(m: Uint8Array): void {
    let n = m.length;
    const room = this.maxBytes - this.accLen;
    if (n > room) {
      this.truncated = true;
      n = room;
    }
    if (n <= 0) return;
    if (this.accLen + n > this.acc.length) {
      const want = Math.min(this.maxBytes, Math.max(this.accLen + n, this.acc.length * 2, 256));
      const next = new Uint8Array(want);
      next.set(this.acc.subarray(0, this.accLen));
      this.acc = next;
    }
    this.acc.set(n === m.length ? m : m.subarray(0, n), this.accLen);
    this.accLen += n;
  }

  private deliverJoined(): void {
    const o = this.out;
    o.seq = this.seq;
    o.payload = this.acc.subarray(0, this.accLen);
    o.wireBytes = this.wire;
    o.truncated = this.truncated;
    this.joining = false;
    // Do not keep a huge buffer alive for the rest of the stream.
    const big = this.acc.length > 1 << 20;
    this.sink(o);
    if (big) this.acc = new Uint8Array(0);
    this.accLen = 0;
  }
}

/** Counters the compressed layer keeps. */
export interface CompressionStats {
  /** Compressed packets whose body did not inflate. */
  badFrames: number;
}

/** While out of sync: a compressed packet starts here, and so does the next one. */
const compressedResync: ResyncCheck = (buf, at, end) => (compressedBoundary(buf, at, end) ? 1 : Outcome.Malformed);

/**
 * Unwraps the compressed protocol and feeds the packets inside to an inner
 * {@link PacketFramer}. A compressed packet is one zlib stream, so a gap
 * inside one loses exactly its uncompressed length, which the inner framer
 * can often skip without losing sync.
 */
export class CompressedFramer {
  /** The kit framer of the compressed packets. */
  readonly framer: Framer;
  /** Counters. */
  readonly stats: CompressionStats = { badFrames: 0 };
  private readonly inner: PacketFramer;
  private readonly maxBytes: number;
  // Inside gap(): a cut compressed packet's loss, handed on once the outer framer says whether it kept sync.
  private inGap = false;
  private lost = 0;

  constructor(inner: PacketFramer, maxMessageBytes: number) {
    this.inner = inner;
    this.maxBytes = Math.max(64, maxMessageBytes);
    this.framer = new Framer(compressedFormat, (m, wire, flags) => this.onPacket(m, wire, flags), { maxMessageBytes: this.maxBytes + 7, oversizePrefix: 7, resync: compressedResync, holes: 'cut' });
  }

  /** False while scanning for a compressed header. */
  get synced(): boolean {
    return this.framer.synced;
  }

  /** Consumes compressed-protocol bytes. */
  push(bytes: Uint8Array): void {
    this.framer.push(bytes);
  }

  /** `n` compressed-stream bytes are missing. Returns true when the compressed framing stayed in sync. */
  gap(n: number): boolean {
    this.inGap = true;
    this.lost = 0;
    let stayed: boolean;
    try {
      stayed = this.framer.gap(n);
    } finally {
      this.inGap = false;
    }
    if (stayed) {
      if (this.lost > 0) this.inner.gap(this.lost);
      return true;
    }
    this.inner.gap(Number.MAX_SAFE_INTEGER);
    return false;
  }

  private onPacket(m: Uint8Array, wire: number, flags: number): void {
    const compLen = wire - 7;
    const rawLen = u24(m, 4);
    if (flags !== 0) {
      // Cut by a gap or too big to hold: the packets inside lose its uncompressed length.
      const lost = rawLen === 0 ? compLen : rawLen;
      if (this.inGap) this.lost = lost;
      else this.inner.gap(lost);
      return;
    }
    const body = m.subarray(7);
    if (rawLen === 0) {
      this.inner.push(body);
      return;
    }
    let out: Uint8Array;
    try {
      out = inflateSync(body, { maxOutputLength: Math.min(this.maxBytes, Math.max(rawLen, 1)) });
    } catch {
      this.stats.badFrames++;
      this.inner.gap(rawLen);
      return;
    }
    this.inner.push(out);
  }
}

/** One direction's framing: plain packets, optionally inside the compressed protocol. */
export class Channel {
  /** The plain packet framer (fed by the compressed layer once compression is on). */
  readonly plain: PacketFramer;
  /** The compressed layer, once CLIENT_COMPRESS is in force. */
  compressed: CompressedFramer | null = null;
  private readonly max: number;

  constructor(plain: PacketFramer, max: number) {
    this.plain = plain;
    this.max = max;
  }

  /** In-order stream bytes. */
  push(bytes: Uint8Array): void {
    if (this.compressed) {
      this.compressed.push(bytes);
      return;
    }
    const n = this.plain.push(bytes);
    if (n < bytes.length && this.compressed) (this.compressed as CompressedFramer).push(bytes.subarray(n));
  }

  /** Missing stream bytes; true when both layers stayed in sync. */
  gap(n: number): boolean {
    return this.compressed ? this.compressed.gap(n) && this.plain.synced : this.plain.gap(n);
  }

  /** Switches to the compressed protocol after the current packet; returns the new layer's framer. */
  enableCompression(): Framer | undefined {
    if (this.compressed) return undefined;
    this.compressed = new CompressedFramer(this.plain, this.max);
    this.plain.stop();
    return this.compressed.framer;
  }

  /** False while either layer scans. */
  get synced(): boolean {
    return this.plain.synced && (this.compressed === null || this.compressed.synced);
  }

  /** Ignores everything from now on. */
  off(): void {
    this.plain.off();
    this.compressed?.framer.off();
  }
}

// Cuts one direction of a MySQL byte stream into protocol packets.
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
// zlib stream. Complete packets inside one chunk are handed out as views; only
// a packet that straddles chunks is copied, and never beyond maxMessageBytes.
import { inflateSync } from 'node:zlib';

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

/**
 * Finds where a plausible packet starts in `buf[pos, end)` while the framer
 * is out of sync; returns its index or -1.
 */
export type PacketFinder = (buf: Uint8Array, pos: number, end: number) => number;

const MAX_PHYSICAL = 0xffffff;

/**
 * How many packet headers chain from `p` to exactly `end` (the last packet
 * may be cut by `end`), or -1 when a header points past a sequence break.
 * Sequence ids must increase by one, or restart at 0 / 1 (a new command or
 * response).
 */
export function chainLength(buf: Uint8Array, p: number, end: number, limit = 64): number {
  let n = 0;
  let prevSeq = -1;
  while (p < end && n < limit) {
    if (end - p < 4) return n > 0 ? n : -1;
    const len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
    const seq = buf[p + 3]!;
    if (prevSeq >= 0 && seq !== ((prevSeq + 1) & 0xff) && seq > 1) return -1;
    n++;
    prevSeq = seq;
    p += 4 + len;
  }
  return n;
}

/**
 * How many whole packets chain from `p` before `end` (a packet cut by `end`
 * is not counted), with the sequence rule of {@link chainLength}.
 */
export function wholePackets(buf: Uint8Array, p: number, end: number, limit = 8): number {
  let n = 0;
  let prevSeq = -1;
  while (n < limit && end - p >= 4) {
    const len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
    const seq = buf[p + 3]!;
    if (prevSeq >= 0 && seq !== ((prevSeq + 1) & 0xff) && seq > 1) break;
    if (end - p - 4 < len) break;
    n++;
    prevSeq = seq;
    p += 4 + len;
  }
  return n;
}

/** Splits a stream of uncompressed MySQL packets; see the module comment. */
export class PacketFramer {
  /** False after a gap or a failed resync: bytes are skipped until `finder` accepts a start. */
  synced = true;
  /** Bytes skipped while out of sync. */
  skipped = 0;
  private readonly sink: PacketSink;
  private readonly maxBytes: number;
  private finder: PacketFinder | undefined;
  private readonly out: MysqlPacket = { seq: 0, payload: new Uint8Array(0), wireBytes: 0, truncated: false };
  // partial packet state
  private readonly hdr = new Uint8Array(4);
  private hdrLen = 0;
  private bodyNeed = 0; // bytes of the current physical body still to come
  private physLen = 0;
  private inPacket = false; // a logical packet has started (header seen)
  private acc: Uint8Array = new Uint8Array(0);
  private accLen = 0;
  private seq = 0;
  private wire = 0;
  private truncated = false;
  private paused = false;

  constructor(sink: PacketSink, maxMessageBytes: number, finder?: PacketFinder) {
    this.sink = sink;
    this.maxBytes = Math.max(64, maxMessageBytes);
    this.finder = finder;
  }

  /** Sets the resync finder (used when out of sync). */
  setFinder(finder: PacketFinder | undefined): void {
    this.finder = finder;
  }

  /** Stops {@link PacketFramer.push} after the current packet (the stream changes format). */
  pause(): void {
    this.paused = true;
  }

  /** Drops any partial packet and marks the framer out of sync. */
  desync(): void {
    this.resetPartial();
    this.synced = false;
  }

  /** True when no partial packet is buffered. */
  get idle(): boolean {
    return !this.inPacket && this.hdrLen === 0;
  }

  /**
   * Consumes `bytes`, calling the sink per complete packet. Returns how many
   * bytes were consumed: all of them unless {@link PacketFramer.pause} was
   * called from the sink.
   */
  push(bytes: Uint8Array): number {
    const end = bytes.length;
    let pos = 0;
    this.paused = false;
    while (pos < end && !this.paused) {
      if (!this.synced) {
        const at = this.finder ? this.finder(bytes, pos, end) : -1;
        if (at < 0) {
          this.skipped += end - pos;
          return end;
        }
        this.skipped += at - pos;
        pos = at;
        this.synced = true;
      }
      if (!this.inPacket && this.hdrLen === 0) {
        // Fast path: whole packets inside this chunk are emitted as views.
        if (end - pos >= 4) {
          const len = bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16);
          if (len < MAX_PHYSICAL && end - pos - 4 >= len && len <= this.maxBytes) {
            const o = this.out;
            o.seq = bytes[pos + 3]!;
            o.payload = bytes.subarray(pos + 4, pos + 4 + len);
            o.wireBytes = len + 4;
            o.truncated = false;
            pos += 4 + len;
            this.sink(o);
            continue;
          }
        }
      }
      pos = this.slow(bytes, pos, end);
    }
    this.paused = false;
    return pos;
  }

  /** Header/body accumulation across chunks. Returns the new position. */
  private slow(bytes: Uint8Array, pos: number, end: number): number {
    if (this.bodyNeed === 0) {
      // reading a header
      while (this.hdrLen < 4 && pos < end) this.hdr[this.hdrLen++] = bytes[pos++]!;
      if (this.hdrLen < 4) return pos;
      const h = this.hdr;
      const len = h[0]! | (h[1]! << 8) | (h[2]! << 16);
      this.hdrLen = 0;
      if (!this.inPacket) {
        this.inPacket = true;
        this.seq = h[3]!;
        this.wire = 0;
        this.accLen = 0;
        this.truncated = false;
      }
      this.physLen = len;
      this.bodyNeed = len;
      this.wire += 4 + len;
      if (len === 0) {
        this.finishPhysical();
        return pos;
      }
    }
    const take = Math.min(this.bodyNeed, end - pos);
    this.append(bytes, pos, take);
    this.bodyNeed -= take;
    pos += take;
    if (this.bodyNeed === 0) this.finishPhysical();
    return pos;
  }

  private append(bytes: Uint8Array, pos: number, n: number): void {
    const room = this.maxBytes - this.accLen;
    if (n > room) {
      this.truncated = true;
      n = room;
    }
    if (n <= 0) return;
    if (this.accLen + n > this.acc.length) {
      // Size the buffer for the whole physical packet when it is the first.
      const want = Math.min(this.maxBytes, Math.max(this.accLen + n, this.accLen + this.bodyNeed, this.acc.length * 2, 256));
      const next = new Uint8Array(want);
      next.set(this.acc.subarray(0, this.accLen));
      this.acc = next;
    }
    this.acc.set(bytes.subarray(pos, pos + n), this.accLen);
    this.accLen += n;
  }

  private finishPhysical(): void {
    if (this.physLen === MAX_PHYSICAL) return; // a continuation packet follows
    this.emitPartial();
  }

  private emitPartial(): void {
    const o = this.out;
    o.seq = this.seq;
    o.payload = this.acc.subarray(0, this.accLen);
    o.wireBytes = this.wire;
    o.truncated = this.truncated;
    this.inPacket = false;
    this.bodyNeed = 0;
    // Do not keep a huge buffer alive for the rest of the stream.
    const big = this.acc.length > 1 << 20;
    this.sink(o);
    if (big) this.acc = new Uint8Array(0);
    this.accLen = 0;
  }

  private resetPartial(): void {
    this.hdrLen = 0;
    this.bodyNeed = 0;
    this.inPacket = false;
    this.accLen = 0;
    this.truncated = false;
  }

  /**
   * `n` stream bytes are missing. When they fall inside the body of the
   * current packet the framer stays in sync (the packet is delivered marked
   * truncated); otherwise a partial packet is delivered truncated and the
   * framer goes out of sync. Returns true when it stayed in sync.
   */
  gap(n: number): boolean {
    if (n <= 0) return true;
    if (this.synced && this.bodyNeed > 0 && n <= this.bodyNeed && this.hdrLen === 0) {
      this.bodyNeed -= n;
      this.truncated = true;
      if (this.bodyNeed === 0) this.finishPhysical();
      return true;
    }
    if (this.inPacket) {
      this.truncated = true;
      this.emitPartial();
    }
    this.resetPartial();
    this.synced = false;
    return false;
  }
}

/** Stats the compressed layer keeps. */
export interface CompressionStats {
  /** Compressed packets whose body did not inflate. */
  badFrames: number;
}

/**
 * Unwraps the compressed protocol and feeds the packets inside to an inner
 * {@link PacketFramer}. A compressed packet is one zlib stream, so a gap
 * inside one loses exactly its uncompressed length, which the inner framer
 * can often skip without losing sync.
 */
export class CompressedFramer {
  /** False after a gap that could not be bridged; compressed headers are searched for. */
  synced = true;
  /** Bytes skipped while out of sync. */
  skipped = 0;
  /** Counters. */
  readonly stats: CompressionStats = { badFrames: 0 };
  private readonly inner: PacketFramer;
  private readonly maxBytes: number;
  private readonly hdr = new Uint8Array(7);
  private hdrLen = 0;
  private inBody = false;
  private bodyNeed = 0;
  private compLen = 0;
  private rawLen = 0;
  private acc: Uint8Array = new Uint8Array(0);
  private accLen = 0;
  private broken = false;

  constructor(inner: PacketFramer, maxMessageBytes: number) {
    this.inner = inner;
    this.maxBytes = Math.max(64, maxMessageBytes);
  }

  /** Consumes compressed-protocol bytes. */
  push(bytes: Uint8Array): void {
    const end = bytes.length;
    let pos = 0;
    while (pos < end) {
      if (!this.synced) {
        const at = findCompressed(bytes, pos, end);
        if (at < 0) {
          this.skipped += end - pos;
          return;
        }
        this.skipped += at - pos;
        pos = at;
        this.synced = true;
      }
      if (!this.inBody) {
        if (this.hdrLen === 0 && end - pos >= 7) {
          const compLen = bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16);
          if (end - pos - 7 >= compLen) {
            const rawLen = bytes[pos + 4]! | (bytes[pos + 5]! << 8) | (bytes[pos + 6]! << 16);
            this.deliver(bytes.subarray(pos + 7, pos + 7 + compLen), rawLen, false);
            pos += 7 + compLen;
            continue;
          }
        }
        while (this.hdrLen < 7 && pos < end) this.hdr[this.hdrLen++] = bytes[pos++]!;
        if (this.hdrLen < 7) return;
        const h = this.hdr;
        this.compLen = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        this.rawLen = h[4]! | (h[5]! << 8) | (h[6]! << 16);
        this.hdrLen = 0;
        this.inBody = true;
        this.bodyNeed = this.compLen;
        this.accLen = 0;
        this.broken = false;
        if (this.acc.length < this.compLen) this.acc = new Uint8Array(Math.min(this.compLen, this.maxBytes));
      }
      const take = Math.min(this.bodyNeed, end - pos);
      if (!this.broken && this.accLen + take <= this.acc.length) {
        this.acc.set(bytes.subarray(pos, pos + take), this.accLen);
        this.accLen += take;
      } else {
        this.broken = true;
      }
      this.bodyNeed -= take;
      pos += take;
      if (this.bodyNeed === 0) this.finishBody();
    }
  }

  private finishBody(): void {
    this.inBody = false;
    this.deliver(this.acc.subarray(0, this.accLen), this.rawLen, this.broken);
    if (this.acc.length > 1 << 20) this.acc = new Uint8Array(0);
  }

  private deliver(body: Uint8Array, rawLen: number, broken: boolean): void {
    if (broken) {
      this.inner.gap(rawLen === 0 ? this.compLen : rawLen);
      return;
    }
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

  /** `n` compressed-stream bytes are missing. Returns true when the compressed framing stayed in sync. */
  gap(n: number): boolean {
    if (n <= 0) return true;
    if (this.synced && this.inBody && n <= this.bodyNeed) {
      this.broken = true;
      this.bodyNeed -= n;
      if (this.bodyNeed === 0) this.finishBody();
      return true;
    }
    this.inBody = false;
    this.hdrLen = 0;
    this.synced = false;
    this.inner.gap(Number.MAX_SAFE_INTEGER);
    return false;
  }
}

/** True when `buf[p]` starts a plausible compressed packet header. */
export function looksCompressed(buf: Uint8Array, p: number, end: number): boolean {
  if (end - p < 8) return false;
  const compLen = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
  const rawLen = buf[p + 4]! | (buf[p + 5]! << 8) | (buf[p + 6]! << 16);
  if (compLen === 0) return false;
  if (rawLen === 0) {
    // Stored: the body is itself one or more packets.
    if (compLen < 4) return false;
    const inner = buf[p + 7]! | (buf[p + 8]! << 8) | (buf[p + 9]! << 16);
    return end - p >= 10 && inner + 4 <= compLen;
  }
  // zlib header: CMF 0x78 (deflate, 32K window) and (CMF*256 + FLG) % 31 == 0 (RFC 1950 §2.2).
  const cmf = buf[p + 7]!;
  if (cmf !== 0x78 || end - p < 9) return false;
  if (((cmf << 8) | buf[p + 8]!) % 31 !== 0) return false;
  return rawLen >= compLen - 20;
}

function findCompressed(buf: Uint8Array, pos: number, end: number): number {
  for (let p = pos; p + 8 <= end; p++) {
    if (!looksCompressed(buf, p, end)) continue;
    const compLen = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
    const next = p + 7 + compLen;
    if (next >= end || looksCompressed(buf, next, end)) return p;
  }
  return -1;
}

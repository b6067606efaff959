// TDS framing. Three kinds of frames share a TCP stream:
//
//   TDS packet ([MS-TDS] 2.2.3.1)       SMP packet, MARS ([MC-SMP] 2.2.1)
//   +------+--------+--------+------+   +------+-------+-----+--------+--------+--------+
//   | type | status | len be | spid |   | 0x53 | flags | sid | len le | seqnum | window |
//   |  u8  |  u8    |  u16   | u16  |   |  u8  |  u8   | u16 |  u32   |  u32   |  u32   |
//   +------+--------+--------+------+   +------+-------+-----+--------+--------+--------+
//   | packet id u8 | window u8 |           16 bytes; DATA payload = TDS packets of one session
//
//   TLS record (the TLS handshake of an ENCRYPT_OFF login ends with the
//   LOGIN7 sent as raw records): | 0x14-0x17 | 0x03 | minor | len be u16 |
//
// A message is the payload of its packets up to the one with status EOM.
// The kit Framer cuts frames; a PacketJoiner per session and direction joins
// packets into messages (bounded by maxMessageBytes).
import { Outcome, type FrameFormat } from '../kit/index.js';
import { PacketStatus, PacketType } from './messages.js';

/** Size of the TDS packet header. */
export const HEADER = 8;
/** Size of the SMP header. */
export const SMP_HEADER = 16;

/** Packet types a client sends. */
function clientType(t: number): boolean {
  return t === 0x01 || t === 0x02 || t === 0x03 || t === 0x06 || t === 0x07 || t === 0x08 || t === 0x0e || t === 0x0f || t === 0x10 || t === 0x11 || t === 0x12;
}

/** True when `t` is a TDS packet type (either direction). */
export function knownType(t: number): boolean {
  return t === PacketType.Tabular || clientType(t);
}

/** TLS record content types 20-23 with major version 3. */
export function isTlsRecord(b: Uint8Array, at: number): boolean {
  const c = b[at]!;
  return c >= 0x14 && c <= 0x17 && b[at + 1] === 0x03 && b[at + 2]! <= 0x04;
}

/** Frames of a top-level stream: TDS packets, SMP packets, TLS records. */
export const streamFormat: FrameFormat = {
  headerBytes: HEADER,
  frameLength(b, at) {
    const t = b[at]!;
    if (t === PacketType.Smp) {
      const len = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0;
      return len >= SMP_HEADER ? len : Outcome.Malformed;
    }
    if (isTlsRecord(b, at)) return 5 + ((b[at + 3]! << 8) | b[at + 4]!);
    const len = (b[at + 2]! << 8) | b[at + 3]!;
    return knownType(t) && len >= HEADER ? len : Outcome.Malformed;
  },
};

/** Frames inside one SMP session: TDS packets only. */
export const packetFormat: FrameFormat = {
  headerBytes: HEADER,
  frameLength(b, at) {
    const len = (b[at + 2]! << 8) | b[at + 3]!;
    return knownType(b[at]!) && len >= HEADER ? len : Outcome.Malformed;
  },
};

/** A plausible TDS packet header at `b[at]` (at least 8 bytes there). */
export function plausibleHeader(b: Uint8Array, at: number): boolean {
  const t = b[at]!;
  const status = b[at + 1]!;
  const len = (b[at + 2]! << 8) | b[at + 3]!;
  if (!knownType(t) || (status & 0xe0) !== 0 || len < HEADER) return false;
  if (t === PacketType.Attention) return len === HEADER;
  return len > HEADER && b[at + 7] === 0;
}

function plausibleSmp(b: Uint8Array, at: number): boolean {
  const f = b[at + 1]!;
  const len = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0;
  if (f === 0x08) return len > SMP_HEADER + HEADER && len < 1 << 24;
  return (f === 0x01 || f === 0x02 || f === 0x04) && len === SMP_HEADER;
}

/** The first payload byte fits the packet type (a token stream, ALL_HEADERS, UTF-16 text...). */
function plausiblePayload(b: Uint8Array, at: number, end: number): boolean {
  const t = b[at]!;
  const p = at + HEADER;
  if (p >= end) return true;
  const first = b[p]!;
  switch (t) {
    case PacketType.Tabular:
      return [0x81, 0xa5, 0xa4, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xd1, 0xd2, 0x79, 0xe3, 0xe4, 0xe5, 0xed, 0xee, 0xfd, 0xfe, 0xff, 0x61, 0xe2, 0x20, 0xd7, 0xec, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06].includes(first);
    case PacketType.SqlBatch:
    case PacketType.Rpc:
      // ALL_HEADERS (u32 length, small) or UTF-16 text / a name length
      return p + 2 > end || b[p + 1] === 0 || b[p + 3] === 0;
    default:
      return true;
  }
}

/**
 * The resync check of a TDS stream: a plausible header whose packet is
 * followed by another plausible header (or ends the bytes with EOM).
 */
export function resyncAt(b: Uint8Array, at: number, end: number): number {
  if (end - at < HEADER) return Outcome.More;
  const smp = b[at] === PacketType.Smp;
  if (smp ? !plausibleSmp(b, at) : !plausibleHeader(b, at) || !plausiblePayload(b, at, end)) return Outcome.Malformed;
  const len = smp ? ((b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0) : (b[at + 2]! << 8) | b[at + 3]!;
  const next = at + len;
  if (next === end) return smp || (b[at + 1]! & PacketStatus.Eom) !== 0 ? 1 : Outcome.More;
  if (next + HEADER > end) return Outcome.More;
  if (b[next] === PacketType.Smp ? plausibleSmp(b, next) : plausibleHeader(b, next)) return 1;
  return Outcome.Malformed;
}

/** Flags of a joined message. */
export const enum MsgFlag {
  Truncated = 1, // bytes missing (gap or size limit)
  Oversized = 2, // bigger than maxMessageBytes: only a prefix is kept
}

/**
 * Joins the packets of one direction into messages: payloads are copied
 * into one buffer only when a message spans packets (a single-packet
 * message is handed on as a view).
 */
export class PacketJoiner {
  /** Type of the message being joined (-1: none). */
  type = -1;
  /** Status byte of its first packet. */
  status = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private len = 0;
  private flags = 0;
  private wire = 0;

  /** @param max most payload bytes kept per message */
  constructor(private readonly max: number) {}

  /** True while a message is incomplete. */
  get open(): boolean {
    return this.type >= 0;
  }

  /**
   * Adds a packet (header included); returns the whole message payload at
   * EOM (a view valid until the next call), else undefined.
   */
  add(packet: Uint8Array, truncated: boolean, sink: (type: number, status: number, payload: Uint8Array, flags: number, wire: number) => void): void {
    const t = packet[0]!;
    const eom = (packet[1]! & PacketStatus.Eom) !== 0;
    const payload = packet.subarray(HEADER);
    // A TDS 5.0 login continues in a 0x0F packet (its CAPABILITY token).
    if (this.type >= 0 && t !== this.type && !(this.type === PacketType.Login5 && t === PacketType.Normal5)) {
      // A new message before the old one ended (attention, or a lost EOM): hand on what there is.
      this.flush(sink, MsgFlag.Truncated);
    }
    if (this.type < 0) {
      if (eom) {
        sink(t, packet[1]!, payload, truncated ? MsgFlag.Truncated : 0, packet.length);
        return;
      }
      this.type = t;
      this.status = packet[1]!;
      this.len = 0;
      this.flags = 0;
      this.wire = 0;
    }
    this.wire += packet.length;
    if (truncated) this.flags |= MsgFlag.Truncated;
    const room = this.max - this.len;
    const k = Math.min(room, payload.length);
    if (k < payload.length) this.flags |= MsgFlag.Truncated | MsgFlag.Oversized;
    if (k > 0) {
      if (this.buf.length < this.len + k) {
        const grown = new Uint8Array(Math.min(this.max, Math.max(this.len + k, this.buf.length * 2, 4096)));
        grown.set(this.buf.subarray(0, this.len));
        this.buf = grown;
      }
      this.buf.set(payload.subarray(0, k), this.len);
      this.len += k;
    }
    if (eom) this.flush(sink, 0);
  }

  /** Hands on a message cut short (a gap lost its end), if one is open. */
  flush(sink: (type: number, status: number, payload: Uint8Array, flags: number, wire: number) => void, extra: number): void {
    if (this.type < 0) return;
    const t = this.type;
    const s = this.status;
    const out = this.buf.subarray(0, this.len);
    const flags = this.flags | extra;
    const wire = this.wire;
    this.type = -1;
    this.len = 0;
    if (this.buf.length > 1 << 20) this.buf = new Uint8Array(0);
    sink(t, s, out, flags, wire);
  }

  /** Drops an incomplete message. */
  reset(): void {
    this.type = -1;
    this.len = 0;
  }
}

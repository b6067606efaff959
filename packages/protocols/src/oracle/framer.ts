// TNS framing on the kit Framer. Before (and including) ACCEPT every packet
// announces its length in a u16be; when the ACCEPT negotiates version 315 or
// later, the packets after it use a u32be in bytes 0-3 (the old packet
// checksum is gone), so both directions switch formats then.
import { Outcome, type FrameFormat } from '../kit/index.js';
import { maxPacketType, PacketType } from './messages.js';

/** TNS header size. */
export const headerBytes = 8;
/** The first TNS version with 32-bit packet lengths (Oracle 12c). */
export const largeSduVersion = 315;
/** Largest packet a resync accepts as plausible (the SDU is at most 2 MiB). */
const maxPlausible = 2 << 20;

/** Packets with a 16-bit length (every packet up to ACCEPT, and all of them before version 315). */
export const shortFormat: FrameFormat = {
  headerBytes,
  frameLength(buf, at) {
    const len = (buf[at]! << 8) | buf[at + 1]!;
    const type = buf[at + 4]!;
    return len >= headerBytes && type >= 1 && type <= maxPacketType ? len : Outcome.Malformed;
  },
};

/** Packets with a 32-bit length (after an ACCEPT of version 315 or later). */
export const longFormat: FrameFormat = {
  headerBytes,
  frameLength(buf, at) {
    const len = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
    const type = buf[at + 4]!;
    return len >= headerBytes && type >= 1 && type <= maxPacketType ? len : Outcome.Malformed;
  },
};

/**
 * Whether a TNS packet plausibly starts at `buf[at]` (for resynchronising):
 * a known type, a sane length, a zero header checksum (nobody sets it), and
 * for DATA a TTC message type or the ANO magic after the data flags.
 * Returns the packet length, `Outcome.More`, or `Outcome.Malformed`.
 */
export function plausiblePacket(buf: Uint8Array, at: number, end: number, long: boolean): number {
  if (end - at < headerBytes + 2) return Outcome.More;
  const len = long ? (((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0) : (buf[at]! << 8) | buf[at + 1]!;
  const type = buf[at + 4]!;
  if (len < headerBytes || len > maxPlausible || type < 1 || type > maxPacketType) return Outcome.Malformed;
  if (!long && (buf[at + 2] !== 0 || buf[at + 3] !== 0)) return Outcome.Malformed;
  if (buf[at + 6] !== 0 || buf[at + 7] !== 0) return Outcome.Malformed;
  switch (type) {
    case PacketType.Data: {
      if (len < headerBytes + 3) return Outcome.Malformed;
      const flags = (buf[at + 8]! << 8) | buf[at + 9]!;
      if ((flags & 0xf000) !== 0) return Outcome.Malformed;
      if (end - at < headerBytes + 3) return Outcome.More;
      const t = buf[at + 10]!;
      return (t >= 0x01 && t <= 0x1f) || t === 0xde ? len : Outcome.Malformed;
    }
    case PacketType.Marker:
      return len === 11 && buf[at + 8]! <= 2 ? len : Outcome.Malformed;
    case PacketType.Connect:
    case PacketType.Accept:
    case PacketType.Refuse:
    case PacketType.Redirect:
    case PacketType.Resend:
    case PacketType.Control:
      return len;
    default:
      return Outcome.Malformed;
  }
}

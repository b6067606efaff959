// TNS framing on the kit Framer. Before (and including) ACCEPT every packet
// announces its length in a u16be; when the ACCEPT negotiates version 315 or
// later, the packets after it use a u32be in bytes 0-3 (the old packet
// checksum is gone), so both directions switch formats then.
import { Outcome, type FrameFormat } from '../kit/index.js';
import { maxPacketType, PacketType } from './messages.js';
import { isKnownFunc } from './ttc.js';

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

/** TTC message types that open a server answer. */
const answerTypes = new Set([0x01, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0f, 0x10, 0x15, 0x17, 0x1b, 0x1c, 0xde]);

/**
 * Whether one TNS packet plausibly starts at `buf[at]`: a known type, a
 * length within `maxLen`, a zero header checksum (nobody sets it), and for
 * DATA a message that opens a request (`client`) or an answer. Returns the
 * packet length, `Outcome.More`, or `Outcome.Malformed`.
 */
function plausibleOne(buf: Uint8Array, at: number, end: number, long: boolean, client: boolean, maxLen: number): number {
  if (end - at < headerBytes) return Outcome.More;
  const len = long ? (((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0) : (buf[at]! << 8) | buf[at + 1]!;
  const type = buf[at + 4]!;
  if (len < headerBytes || len > maxLen || type < 1 || type > maxPacketType) return Outcome.Malformed;
  if (!long && (buf[at + 2] !== 0 || buf[at + 3] !== 0)) return Outcome.Malformed;
  if (buf[at + 6] !== 0 || buf[at + 7] !== 0) return Outcome.Malformed;
  switch (type) {
    case PacketType.Data: {
      if (len < headerBytes + 3) return Outcome.Malformed;
      if (end - at < headerBytes + 5) return Outcome.More;
      if (buf[at + 8]! > 0x0f) return Outcome.Malformed; // data flags use the low 12 bits
      const t = buf[at + 10]!;
      if (client) {
        if (t === 0x03 || t === 0x11) return len >= headerBytes + 5 && isKnownFunc(buf[at + 11]!) ? len : Outcome.Malformed;
        return t === 0x01 || t === 0x02 || t === 0xde ? len : Outcome.Malformed;
      }
      return answerTypes.has(t) ? len : Outcome.Malformed;
    }
    case PacketType.Marker:
      return len === 11 && buf[at + 8]! <= 2 ? len : Outcome.Malformed;
    case PacketType.Connect:
      return client ? len : Outcome.Malformed;
    case PacketType.Accept:
    case PacketType.Refuse:
    case PacketType.Redirect:
    case PacketType.Resend:
      return client ? Outcome.Malformed : len;
    case PacketType.Control:
      return len;
    default:
      return Outcome.Malformed;
  }
}

/**
 * Whether a TNS packet plausibly starts at `buf[at]` (for resynchronising
 * after a gap): the packet itself must be plausible, and so must the packet
 * after it when the bytes reach that far (a single header-shaped run of
 * bytes inside data is common; two in a row that chain are not). A packet
 * whose end has not arrived yet is `Outcome.More`.
 */
export function plausiblePacket(buf: Uint8Array, at: number, end: number, long: boolean, client = true, maxLen = maxPlausible): number {
  const len = plausibleOne(buf, at, end, long, client, maxLen);
  if (len < 0) return len;
  const next = at + len;
  if (next > end) return Outcome.More;
  if (next === end) return len;
  const after = plausibleOne(buf, next, end, long, client, maxLen);
  return after > 0 || after === Outcome.More ? len : Outcome.Malformed;
}

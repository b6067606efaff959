// Cuts one direction of a Dameng stream into messages on the kit framer:
//
//   +----------------------- 64-byte header -----------------------+-------+
//   | handle u32le | cmd u16le | body len u32le | ... | xor @19 | ... | body  |
//   +---------------------------------------------------------------+-------+
//
// The framer needs only the first 20 bytes to judge a header (the XOR byte at
// 19 covers bytes 0..18), so a broken header is refused before 64 bytes are
// buffered, and the same check finds the next boundary after a gap.
import { Framer, type FrameFormat, type FrameSink } from '../kit/framer.js';
import { Outcome } from '../kit/outcome.js';
import { CHECK_BYTES, checkHeader } from './decoder.js';
import { HEADER_BYTES } from './messages.js';

/** The message format: total length = 64 + body length, or Malformed for a header that fails the check. */
export const damengFormat: FrameFormat = Object.freeze({
  headerBytes: CHECK_BYTES,
  frameLength(buf: Uint8Array, at: number): number {
    const len = checkHeader(buf, at, at + CHECK_BYTES);
    return len < 0 ? Outcome.Malformed : HEADER_BYTES + len;
  },
});

/** Accepts a boundary where {@link checkHeader} passes; asks for more bytes when fewer than 20 are there. */
function resync(buf: Uint8Array, at: number, end: number): number {
  const len = checkHeader(buf, at, end);
  if (len === Outcome.More) return Outcome.More;
  return len < 0 ? Outcome.Malformed : 1;
}

/**
 * One direction's framer.
 *
 * @param sink receives each message (header included)
 * @param maxMessageBytes largest message delivered whole
 * @param synced false to scan for the first boundary (a capture picked up mid-stream)
 */
export function damengFramer(sink: FrameSink, maxMessageBytes: number, synced: boolean): Framer {
  return new Framer(damengFormat, sink, { maxMessageBytes, resync, startSynced: synced });
}

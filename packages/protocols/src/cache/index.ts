// InterSystems Caché / IRIS superserver (port 1972): detection only.
//
// What is publicly known of the opening, from open-source IRIS clients'
// source (not verified against a server here): every message has a 14-byte
// header, and the client speaks first with a handshake of type "HS":
//
//   offset 0   u32le  body length (header excluded)
//          4   u32le  message count
//          8   u32le  statement id
//         12   2      message type: 'H' 'S' for the handshake
//         14   body   the handshake carries a u16le protocol version
//
// A first client message of exactly that shape is Medium; anything else is
// None, and a flow on port 1972 is then labelled by port (Low) by flow
// detection. Statements are not decoded: the protocol is not documented and
// no client or server was available to record it.
import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { CacheSession } from './session.js';

const HEADER = 14;

/** True when `b` opens with a handshake header ("HS", a short body that is all there). */
function handshake(b: Uint8Array): boolean {
  if (b.length < HEADER + 2) return false;
  const len = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  if (b[12] !== 0x48 || b[13] !== 0x53 || len < 2 || len > 64 || b.length < HEADER + len) return false;
  const version = b[HEADER]! | (b[HEADER + 1]! << 8);
  return version >= 1 && version <= 1000;
}

function detectCache(client: Uint8Array): Confidence {
  return handshake(client) ? Confidence.Medium : Confidence.None;
}

/**
 * InterSystems Caché / IRIS (default port 1972), detection only: the flow is
 * recognised (by a client handshake of the shape open-source clients send,
 * else by port) so it is labelled, and its session counts bytes and emits
 * no records. See `docs/cache.md`.
 *
 * Register it explicitly: `new ProtocolRegistry().register(cache)`.
 */
export const cache: ProtocolDecoder = Object.freeze({
  name: 'cache',
  defaultPorts: Object.freeze([1972]) as readonly number[],
  detect: detectCache,
  createSession(ctx: SessionContext): ProtocolSession {
    return new CacheSession(ctx);
  },
});

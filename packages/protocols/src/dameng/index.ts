import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { checkHeader } from './decoder.js';
import { Command, HEADER_BYTES } from './messages.js';
import { DamengSession } from './session.js';

/** The STARTUP body opens with `u32le len` (1..32) and a version of digits and dots; the head suffices. */
function startupVersion(b: Uint8Array): boolean {
  if (b.length < HEADER_BYTES + 5) return false;
  const n = b[HEADER_BYTES]! | (b[HEADER_BYTES + 1]! << 8) | (b[HEADER_BYTES + 2]! << 16) | (b[HEADER_BYTES + 3]! << 24);
  if (n < 1 || n > 32) return false;
  const end = Math.min(b.length, HEADER_BYTES + 4 + n);
  for (let i = HEADER_BYTES + 4; i < end; i++) {
    const c = b[i]!;
    if (c !== 0x2e && (c < 0x30 || c > 0x39)) return false;
  }
  return true;
}

/**
 * Content detection. High: the client's first message is a STARTUP (0xc8)
 * whose header check passes and whose body holds a printable version
 * string. Medium: either side opens with a header whose XOR byte matches
 * and whose command is known (a capture picked up mid-session). The XOR byte
 * alone passes one random header in 256; together with the command's high
 * byte 0 and a known low byte, about one in two million.
 */
function detectDameng(client: Uint8Array, server?: Uint8Array): Confidence {
  if (client.length > 0) {
    const len = checkHeader(client, 0, client.length);
    if (len >= 0) {
      if (client[4] === Command.Startup && startupVersion(client)) return Confidence.High;
      return Confidence.Medium;
    }
  }
  if (server !== undefined && server.length > 0 && checkHeader(server, 0, server.length) >= 0) return Confidence.Medium;
  return Confidence.None;
}

/**
 * The Dameng (DM8) protocol decoder (default port 5236; rules dialect
 * `oracle`).
 *
 * Sessions decode the startup (client version, login encryption request),
 * the login (user, application and OS name when the login is not
 * encrypted; an encrypted login is recorded as such with what stays
 * readable, never the password), SQL text (GB18030 or UTF-8, or the audit
 * object's charset), commit and rollback, and each reply's return code,
 * error text and rows affected. The client side was verified against the
 * bytes of the `dmdb` client; the server's replies are decoded from
 * inference only (see `docs/dameng.md`).
 *
 * Register it explicitly: `new ProtocolRegistry().register(dameng)`.
 */
export const dameng: ProtocolDecoder = Object.freeze({
  name: 'dameng',
  defaultPorts: Object.freeze([5236]) as readonly number[],
  dialect: 'oracle',
  detect: detectDameng,
  createSession(ctx: SessionContext): ProtocolSession {
    return new DamengSession(ctx);
  },
});

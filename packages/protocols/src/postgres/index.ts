// The PostgreSQL decoder plugin: detection and the session factory.
import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { Outcome } from '../kit/index.js';
import { checkStartup, checkTyped } from './decoder.js';
import { AuthCode } from './messages.js';
import { PostgresSession } from './session.js';

function detect(firstClientBytes: Uint8Array, firstServerBytes?: Uint8Array): Confidence {
  let best: Confidence = Confidence.None;
  const c = firstClientBytes;
  if (c.length >= 8) {
    // StartupMessage 3.x / SSLRequest / GSSENCRequest / CancelRequest: a length and a magic code.
    const s = checkStartup(c, 0, c.length);
    if (s > 0 || (s === Outcome.More && c[4] === 0 && c[5] === 3)) return Confidence.High;
  }
  if (firstServerBytes !== undefined && firstServerBytes.length >= 9) {
    const b = firstServerBytes;
    // 'R' Int32 len Int32 code: an Authentication request opens every server stream.
    if (b[0] === 0x52 && b[1] === 0 && b[2] === 0) {
      const len = (b[3]! << 8) | b[4]!;
      const code = ((b[5]! << 24) | (b[6]! << 16) | (b[7]! << 8) | b[8]!) >>> 0;
      if (len >= 8 && len < 4096 && code <= AuthCode.GaussIam) return Confidence.High;
    }
  }
  if (c.length >= 5) {
    // A mid-stream pickup: a plausible frontend message (Query, Parse, Bind, ...).
    const t = checkTyped(c, 0, c.length, true);
    if (t > 0 || (t === Outcome.More && (c[0] === 0x51 || c[0] === 0x50 || c[0] === 0x42))) best = Confidence.Medium;
  }
  if (best === Confidence.None && firstServerBytes !== undefined && firstServerBytes.length >= 5) {
    if (checkTyped(firstServerBytes, 0, firstServerBytes.length, false) > 0) best = Confidence.Medium;
  }
  return best;
}

/**
 * Decoder for the PostgreSQL frontend/backend protocol 3.x, also spoken by
 * KingbaseES and openGauss / GaussDB (product recorded as `dbProduct` when the
 * server or the handshake reveals it).
 *
 * Records: one `login` per connection attempt (user, database,
 * application_name, authentication method, SSL/GSS negotiation; an accepted
 * SSLRequest is recorded with `tls: true` and decoding stops), one
 * `statement` per simple Query, per extended-protocol Execute (with its SQL,
 * statement name and bound parameters), per FunctionCall and per
 * CancelRequest, and one `logout` per Terminate (or FIN/RST after login).
 *
 * ```ts
 * const registry = new ProtocolRegistry().register(postgres);
 * ```
 */
export const postgres: ProtocolDecoder = {
  name: 'postgres',
  // 5432 PostgreSQL and openGauss, 54321 KingbaseES, 26000 openGauss cluster installs.
  defaultPorts: [5432, 54321, 26000],
  dialect: 'postgres',
  aliases: ['postgresql', 'kingbase', 'opengauss', 'gaussdb'],
  detect,
  createSession(ctx: SessionContext): ProtocolSession {
    return new PostgresSession(ctx);
  },
};

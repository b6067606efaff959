// The Oracle decoder plugin: detection and session factory.
import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { ascii } from './decoder.js';
import { plausiblePacket } from './framer.js';
import { PacketType } from './messages.js';
import { OracleSession } from './session.js';

function detect(firstClientBytes: Uint8Array, firstServerBytes?: Uint8Array): Confidence {
  const c = firstClientBytes;
  if (c.length >= 10 && c[4] === PacketType.Connect && c[2] === 0 && c[3] === 0) {
    // A CONNECT: its connect data is a descriptor "(DESCRIPTION=..." (or a bare "(CONNECT_DATA=").
    const len = (c[0]! << 8) | c[1]!;
    if (len >= 34) {
      const text = ascii(c, 0, Math.min(c.length, len)).toUpperCase();
      if (text.includes('(DESCRIPTION=') || text.includes('(CONNECT_DATA=') || text.includes('(ADDRESS=')) return Confidence.High;
      if (c.length < len) return Confidence.Medium;
    }
  }
  // A mid-stream pickup: a plausible TNS DATA/MARKER packet either way.
  const mid = (b: Uint8Array | undefined): boolean =>
    b !== undefined && b.length >= 11 && (b[4] === PacketType.Data || b[4] === PacketType.Marker) && (plausiblePacket(b, 0, b.length, false, b === c) > 0 || plausiblePacket(b, 0, b.length, true, b === c) > 0);
  if (mid(c) || mid(firstServerBytes)) return Confidence.Medium;
  const s = firstServerBytes;
  if (s !== undefined && s.length >= 10 && (s[4] === PacketType.Accept || s[4] === PacketType.Refuse || s[4] === PacketType.Resend || s[4] === PacketType.Redirect) && s[2] === 0 && s[3] === 0 && s[6] === 0 && s[7] === 0) {
    return Confidence.Medium;
  }
  return Confidence.None;
}

/**
 * Decoder for Oracle Net (TNS) and the TTC protocol inside it (Oracle 10g to
 * 23ai clients and servers; see docs/oracle.md for what was verified).
 *
 * Records: one `login` per authentication attempt (O5LOGON / O3LOGON AUTH
 * phases 1 and 2: database user, program, machine, OS user, pid, the
 * server's session id and version; failures with their ORA- code), per
 * listener REFUSE (ORA-125xx), per CONNECT that never authenticated and per
 * connection that turned encrypted (native ANO encryption or TCPS);
 * one `statement` per SQL call (OALL8, OALL7, bundled parse/execute) with its
 * text, cursor id (re-executions carry the cursor's SQL), rows and ORA-
 * error, per OFETCH of an unknown cursor, per commit and rollback; one
 * `logout` per OLOGOFF (or FIN/RST after login). Passwords, session keys and
 * verifiers are never read into records.
 *
 * ```ts
 * const registry = new ProtocolRegistry().register(oracle);
 * ```
 */
export const oracle: ProtocolDecoder = {
  name: 'oracle',
  // 1521 the listener, 1522 and 1526 the usual second listeners.
  defaultPorts: [1521, 1522, 1526],
  dialect: 'oracle',
  detect,
  createSession(ctx: SessionContext): ProtocolSession {
    return new OracleSession(ctx);
  },
};

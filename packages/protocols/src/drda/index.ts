// The DRDA decoder plugin: detection and session factory.
import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { checkDss } from './decoder.js';
import { Cp } from './messages.js';
import { DrdaSession } from './session.js';

function detect(firstClientBytes: Uint8Array, firstServerBytes?: Uint8Array): Confidence {
  const c = firstClientBytes;
  if (c.length >= 10 && checkDss(c, 0, c.length) > 0) {
    // A connection opens with EXCSAT; any other command is a mid-session pickup.
    const cp = (c[8]! << 8) | c[9]!;
    return cp === Cp.EXCSAT ? Confidence.High : Confidence.Medium;
  }
  const s = firstServerBytes;
  if (s !== undefined && s.length >= 10 && checkDss(s, 0, s.length) > 0) return Confidence.Medium;
  return Confidence.None;
}

/**
 * Decoder for DRDA (Distributed Relational Database Architecture, DDM over
 * TCP): IBM DB2 (LUW, z/OS, i) and Apache Derby's Network Server.
 *
 * Records: one `login` per connection attempt (EXCSAT/ACCSEC/SECCHK/ACCRDB:
 * user, database, client program and product, server version and product,
 * result with SECCHKCD or the reply message and SQLSTATE; a TLS session is
 * one login record with `tls: true`), one `statement` per EXCSQLIMM,
 * EXCSQLSET, EXCSQLSTT and OPNQRY (with the SQL of its prepared section,
 * the parameters of SQLDTA, SQLCARD results and the rows of QRYDTA across
 * CNTQRY fetches), per commit and rollback, and one `logout` at FIN/RST
 * after a login.
 *
 * ```ts
 * const registry = new ProtocolRegistry().register(drda);
 * ```
 */
export const drda: ProtocolDecoder = {
  name: 'drda',
  // 50000 DB2 LUW, 1527 Derby, 446 DRDA's registered port (DB2 for z/OS and i).
  defaultPorts: [50000, 1527, 446],
  dialect: 'db2',
  detect,
  createSession(ctx: SessionContext): ProtocolSession {
    return new DrdaSession(ctx);
  },
};

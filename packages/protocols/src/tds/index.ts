// The TDS decoder: Microsoft SQL Server (TDS 7.0-7.4, TDS 8.0 detected) and
// Sybase ASE (TDS 5.0), one decoder; records say which with `dbProduct`.
import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { decodeLogin5, decodeLogin7, decodePreLogin } from './decoder.js';
import { HEADER, plausibleHeader } from './framer.js';
import { PacketStatus, PacketType } from './messages.js';
import { TdsSession } from './session.js';

function payload(b: Uint8Array): Uint8Array | undefined {
  if (b.length < HEADER || !plausibleHeader(b, 0)) return undefined;
  const len = (b[2]! << 8) | b[3]!;
  return b.subarray(HEADER, Math.min(len, b.length));
}

/** Detection by content: PRELOGIN, LOGIN7 and TDS 5.0 login are certain; SQL batch, RPC and 5.0 requests likely. */
function detectTds(client: Uint8Array, server?: Uint8Array): Confidence {
  const p = payload(client);
  if (p !== undefined) {
    const type = client[0]!;
    const eom = (client[1]! & PacketStatus.Eom) !== 0;
    switch (type) {
      case PacketType.PreLogin:
        if (eom && decodePreLogin(p)?.version !== undefined) return Confidence.High;
        break;
      case PacketType.Login7:
        if (p.length >= 94 && decodeLogin7(p) !== undefined && (p[7]! & 0xf0) === 0x70) return Confidence.High;
        break;
      case PacketType.Login5:
        if (p.length >= 300 && p[30]! <= 30 && p[61]! <= 30 && p[92]! <= 30 && (p.length < 564 || decodeLogin5(p) !== undefined)) return Confidence.High;
        break;
      case PacketType.SqlBatch:
      case PacketType.Rpc:
      case PacketType.TransactionManager:
        // ALL_HEADERS (u32 length 22 or 18 with a transaction descriptor) or UTF-16 text.
        if (p.length >= 4 && ((p[0]! >= 0x12 && p[0]! <= 0x40 && p[1] === 0 && p[2] === 0 && p[3] === 0) || (type === PacketType.SqlBatch && p[1] === 0 && p[3] === 0 && p[0]! >= 0x20 && p[0]! < 0x7f)))
          return Confidence.Medium;
        break;
      case PacketType.Normal5:
        if (p.length >= 5 && (p[0] === 0x21 || p[0] === 0xe6 || p[0] === 0xe7 || p[0] === 0x62 || p[0] === 0x71)) return Confidence.Medium;
        break;
      default:
        break;
    }
  }
  if (server !== undefined) {
    const s = payload(server);
    if (s !== undefined && server[0] === PacketType.Tabular && s.length > 0 && [0xad, 0xe3, 0xaa, 0xab, 0xfd, 0x81, 0xe5].includes(s[0]!)) return Confidence.Medium;
  }
  return Confidence.None;
}

/**
 * The TDS decoder (`dbType` `tds`, rules dialect `tsql`; default ports 1433,
 * 5000 and 4100). SQL Server sessions (TDS 7.0-7.4) decode PRELOGIN, LOGIN7
 * (never its password), LOGINACK, ENVCHANGE and login errors; SQL batches,
 * RPCs with their parameters (sp_executesql's statement as the SQL,
 * prepared handles remembered for sp_execute), transaction manager
 * requests, bulk loads and attentions; responses (DONE counts, ERROR/INFO,
 * result columns and first rows, return status and output values). MARS
 * (SMP) sessions are demultiplexed and paired per session id. Encrypted
 * sessions (ENCRYPT_ON/REQ, TDS 8.0) yield a login record marked `tls`. Sybase
 * ASE (TDS 5.0) sessions decode the login, LANGUAGE, DBRPC and DYNAMIC
 * requests and their responses. See `docs/tds.md`.
 *
 * Register it explicitly: `new ProtocolRegistry().register(tds)`.
 */
export const tds: ProtocolDecoder = Object.freeze({
  name: 'tds',
  defaultPorts: Object.freeze([1433, 5000, 4100]),
  dialect: 'tsql',
  detect: detectTds,
  createSession(ctx: SessionContext): ProtocolSession {
    return new TdsSession(ctx);
  },
});

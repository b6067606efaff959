import { Confidence, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '../plugin.js';
import { plausibleCommand, plausibleGreeting, plausibleResponse, u24 } from './decoder.js';
import { Cap, Command } from './messages.js';
import { MysqlSession } from './session.js';

function detectMysql(client: Uint8Array, server?: Uint8Array): Confidence {
  if (server !== undefined && server.length > 0) {
    if (plausibleGreeting(server, 0, server.length)) return Confidence.High;
    // ERR before the handshake (too many connections, host not allowed): u24 len | seq 0 | 0xff | u16 code
    if (server.length >= 8 && server[3] === 0 && server[4] === 0xff) {
      const len = u24(server, 0);
      const code = server[5]! | (server[6]! << 8);
      if (len + 4 === server.length && code >= 1000 && code < 5000) return Confidence.Medium;
    }
  }
  if (client.length >= 5) {
    const len = u24(client, 0);
    if (plausibleCommand(client, 0, client.length)) {
      // Any SQL command among the packets that chain through the head makes it Medium,
      // as does a plausible response from the server.
      for (let p = 0; p + 6 <= client.length; p += 4 + u24(client, p)) {
        const cmd = client[p + 4]!;
        const c = client[p + 5]!;
        const sqlStart = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x28 || c === 0x2f;
        if (client[p + 3] === 0 && (cmd === Command.Query || cmd === Command.StmtPrepare) && sqlStart) return Confidence.Medium;
      }
      return server !== undefined && plausibleResponse(server) ? Confidence.Medium : Confidence.Low;
    }
    // HandshakeResponse41 / SSLRequest: seq 1, CLIENT_PROTOCOL_41, >= 32 bytes
    if (client[3] === 1 && len >= 32 && len + 4 <= client.length && client.length >= 8) {
      const caps = client[4]! | (client[5]! << 8);
      if (caps & Cap.Protocol41) return Confidence.Medium;
    }
  }
  return Confidence.None;
}

/**
 * The MySQL / MariaDB client/server protocol decoder (default port 3306).
 *
 * Sessions decode the handshake and login (user, database, connection
 * attributes, auth plugin, auth switch), every command with its response
 * (COM_QUERY with multi-statements and multiple result sets, prepared
 * statements with bound parameter values, COM_CHANGE_USER, LOAD DATA LOCAL
 * INFILE, query attributes...), the zlib-compressed protocol and payloads of
 * 16 MiB and more. Captures that start mid-session resynchronise at the next
 * command, and gaps resynchronise instead of ending the session. An SSL
 * request yields a `login` record marked `tls` and ends decoding. See
 * `docs/mysql.md` for the fields each record carries.
 *
 * Register it explicitly: `new ProtocolRegistry().register(mysql)`.
 */
export const mysql: ProtocolDecoder = Object.freeze({
  name: 'mysql',
  defaultPorts: Object.freeze([3306]) as readonly number[],
  dialect: 'mysql',
  detect: detectMysql,
  createSession(ctx: SessionContext): ProtocolSession {
    return new MysqlSession(ctx);
  },
});

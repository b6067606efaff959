// Messages the dmdb client (1.0.48286, a real DM client) sent to the test
// listener (test-support/dameng-listener.ts) on 127.0.0.1, recorded by
// test-support/dameng-client.mjs scenarios `clear` and `encrypted`. The
// server side of a conversation is the listener's replies (replyTo), which
// are inferred, not recorded from a DM server.
import { Direction, type AuditEvent } from '@dbtap/core';
import { dameng, defaultSessionOptions, type ProtocolDecoder, type ProtocolSession, type SessionOptions } from '@dbtap/protocols';
import { replyTo, type SqlAnswer } from '../../../../test-support/dameng-listener.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** The listener's answers in the recorded scenarios. */
export const answers: ReadonlyMap<string, SqlAnswer> = new Map([
  // [-2106] 表T_X不存在 in GB18030
  ['SELECT * FROM no_such', { code: -2106, message: hex('b1ed545f58b2bbb4e6d4da') }],
  ['UPDATE ', { rows: 3 }],
]);

/**
 * Scenario `clear` (loginEncrypt=false, appName=dbtap-test, schema=SHOP,
 * autoCommit=false), client messages in order:
 *
 * ```text
 * STARTUP 00000000 c800 12000000 000000000000000000 da | ... 34: 01 15 ...
 *         body 07000000 "7.6.0.0" 00 | 02 00 01 00 00 00
 * LOGIN   00000000 0100 3d000000 ... da->3c | 20: 02000000 ffffffff ...
 *         body 07000000 "AUDITOR" 10000000 <16-byte password> 0a000000 "dbtap-test"
 *              05000000 "Linux" 00000000 000000
 * 0x03    (allocate a statement handle, no body)
 * SQL     20: 00 01 ... body `set schema "SHOP"` 00
 * SQL     body "SELECT name FROM t_" d3c3bba7 (用户 in GB18030) " WHERE id = 1" 00
 * SQL     body "SELECT * FROM no_such_table" 00        (listener: [-2106])
 * 0x03
 * SQL     body "UPDATE t_" d3c3bba7 " SET name = 'x' WHERE id < 4" 00   (listener: 3 rows)
 * SQL     body "SELECT id FROM t_orders" 00
 * COMMIT  0x08, ROLLBACK 0x09 (dmdb's close), then FIN
 * ```
 */
export const clearMessages: readonly Uint8Array[] = [
  hex('00000000c80012000000000000000000000000da000000000000000000000000000001150000000000000000000000000000000000000000000000000000000007000000372e362e302e3000020001000000'),
  hex('0000000001003d0000000000000000000000003c02000000ffffffff0000000000000000000000000001000101000000000000000000000000000000000000000700000041554449544f521000000050775f6e657665725f6c6f67676564390a00000064627461702d74657374050000004c696e757800000000000000'),
  hex('00000000030000000000000000000000000000030100000000000000000000000000000000000000000000000000000000000000000000000000000000000000'),
  hex('000000000500120000000000000000000000001700010001010000ffffffffffffff7f000000000000000000000100000000000000000000000000000000000073657420736368656d61202253484f502200'),
  hex('000000000500250000000000000000000000002000010001010000ffffffffffffff7f000000000000000000000000000000000000000000000000000000000053454c454354206e616d652046524f4d20745fd3c3bba7205748455245206964203d203100'),
  hex('0000000005001c0000000000000000000000001900010001010000ffffffffffffff7f000000000000000000000000000000000000000000000000000000000053454c454354202a2046524f4d206e6f5f737563685f7461626c6500'),
  hex('00000000030000000000000000000000000000030100000000000000000000000000000000000000000000000000000000000000000000000000000000000000'),
  hex('0000000005002a0000000000000000000000002f00010001010000ffffffffffffff7f000000000000000000000000000000000000000000000000000000000055504441544520745fd3c3bba720534554206e616d65203d20277827205748455245206964203c203400'),
  hex('000000000500180000000000000000000000001d00010001010000ffffffffffffff7f000000000000000000000000000000000000000000000000000000000053454c4543542069642046524f4d20745f6f726465727300'),
  hex('00000000080000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'),
  hex('00000000090000000000000000000000000000090000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'),
];

/** The password of the recorded scenarios (it must appear in no record). */
export const fixturePassword = 'Pw_never_logged9';

/**
 * Scenario `encrypted` (the default loginEncrypt=true, appName=dbtap-enc):
 * the STARTUP carries header bytes 28/29 = 01 02 and `40000000` + a 64-byte
 * client key (random per connection) after the version. The listener's
 * all-zero reply offers no key, so the client then logged in in clear:
 *
 * ```text
 * STARTUP 00000000 c800 56000000 ... 9e | 28: 01 02 ... 34: 01 15
 *         body 07000000 "7.6.0.0" 00 40000000 <64-byte key> 02 00 01 00 00 00
 * LOGIN   body 06000000 "SYSDBA" 10000000 <password> 09000000 "dbtap-enc" 05000000 "Linux" ...
 * 0x03, SQL "SELECT 1 FROM dual" (20: 01 01 = auto-commit, direct), ROLLBACK 0x09
 * ```
 */
export const encryptedMessages: readonly Uint8Array[] = [
  hex('00000000c800560000000000000000000000009e000000000000000001020000000001150000000000000000000000000000000000000000000000000000000007000000372e362e302e300040000000b7ab8f2d5c25330245c709840e8dbbe700742b99bd7f9bcd5d122c46a43e8289b209de6c455be601b9dcd2e2337d35f38f36f33f21a2fc14e954cd1dc3aa987e020001000000'),
  hex('0000000001003b0000000000000000000000003a02000000ffffffff000000000000000000000000000100010100000000000000000000000000000000000000060000005359534442411000000050775f6e657665725f6c6f67676564390900000064627461702d656e63050000004c696e757800000000000000'),
  hex('00000000030000000000000000000000000000030100000000000000000000000000000000000000000000000000000000000000000000000000000000000000'),
  hex('000000000500130000000000000000000000001601010001010000ffffffffffffff7f000000000000000000000000000000000000000000000000000000000053454c45435420312046524f4d206475616c00'),
  hex('00000000090000000000000000000000000000090000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'),
];

/** A conversation: each client message followed by the listener's reply to it. */
export function conversation(messages: readonly Uint8Array[]): Array<readonly [Direction, Uint8Array]> {
  const out: Array<readonly [Direction, Uint8Array]> = [];
  for (const m of messages) {
    out.push([Direction.ToServer, m]);
    out.push([Direction.ToClient, replyTo(m, answers)]);
  }
  return out;
}

/** A session of `decoder` on a loopback flow to its default port whose records go to `sink`. */
export function openSession(decoder: ProtocolDecoder, sink: AuditEvent[] | ((e: AuditEvent) => void), opts: Partial<SessionOptions> = {}, midStream = false): ProtocolSession {
  return decoder.createSession({
    flowId: 'd1',
    client: { ip: '127.0.0.1', port: 41000 },
    server: { ip: '127.0.0.1', port: decoder.defaultPorts[0] ?? 1 },
    midStream,
    options: { ...defaultSessionOptions, ...opts },
    emit: Array.isArray(sink) ? (e) => sink.push(e) : sink,
  });
}

/** A Dameng session on a loopback flow whose records go to `events`. */
export function damengSession(events: AuditEvent[], opts: Partial<SessionOptions> = {}, midStream = false): ProtocolSession {
  return openSession(dameng, events, opts, midStream);
}

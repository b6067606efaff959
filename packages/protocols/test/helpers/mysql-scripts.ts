// Conversations for the split, truncation and fuzz tests, built after the
// protocol documentation: one with every message kind, the same over the
// compressed protocol, and what MariaDB cannot produce (caching_sha2_password,
// query attributes), plus a 16 MiB+ statement and row.
import {
  BASE_CAPS, C, CAP, S, bigPkt, colDef, compressed, concat, cstr, eof, err, greeting, lenenc, loginReq, lstr, ok, pkt, query, resultSet, str, textRow, u16, u32,
} from './mysql.js';

/** (direction, bytes) chunks in stream order. */
export type Script = [0 | 1, Uint8Array][];

/** COM_STMT_PREPARE_OK payload. */
export const prepareOk = (id: number, cols: number, params: number) => concat([0], u32(id), u16(cols), u16(params), [0], u16(0));

/** One conversation that holds every message kind the decoder handles. */
export function plainScript(): Script {
  return [
    [S, pkt(0, greeting({ caps: BASE_CAPS | CAP.SESSION_TRACK }))],
    [C, pkt(1, loginReq({ db: 'test', caps: BASE_CAPS }))],
    [S, pkt(2, concat([0xfe], cstr('mysql_native_password'), str('01234567890123456789'), [0]))],
    [C, pkt(3, new Uint8Array(20).fill(9))],
    [S, pkt(4, ok())],
    [C, pkt(0, query("SELECT id, name FROM users WHERE name = 'ünï'"))],
    [S, resultSet(['id', 'name'], [['1', 'ünï'], ['2', null]])],
    [C, pkt(0, query('INSERT INTO t VALUES (1)'))],
    [S, pkt(1, ok({ affected: 1, insertId: 5, info: 'done' }))],
    [C, pkt(0, query('SELECT * FROM missing'))],
    [S, pkt(1, err(1146, '42S02', "Table 'test.missing' doesn't exist"))],
    [C, pkt(0, concat([0x02], str('other')))],
    [S, pkt(1, ok())],
    [C, pkt(0, concat([0x16], str('SELECT a FROM t WHERE b = ? AND c = ?')))],
    [S, concat(pkt(1, prepareOk(3, 1, 2)), pkt(2, colDef('?')), pkt(3, colDef('?')), pkt(4, eof()), pkt(5, colDef('a', 0x03)), pkt(6, eof()))],
    [C, pkt(0, concat([0x17], u32(3), [0], u32(1), [0b10], [1], u16(0x03), u16(0xfd), u32(12345)))],
    [S, concat(pkt(1, [1]), pkt(2, colDef('a', 0x03)), pkt(3, eof()), pkt(4, concat([0, 0], u32(9))), pkt(5, eof()))],
    [C, pkt(0, concat([0x19], u32(3)))],
    [C, pkt(0, [0x0e])],
    [S, pkt(1, ok())],
    [C, pkt(0, query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"))],
    [S, pkt(1, concat([0xfb], str('x')))],
    [C, concat(pkt(2, str('1\n2\n')), pkt(3, []))],
    [S, pkt(4, ok({ affected: 2 }))],
    [C, pkt(0, concat([0x11], cstr('bob'), [0], cstr('test'), u16(45), cstr('mysql_native_password')))],
    [S, pkt(1, ok())],
    [C, pkt(0, query("SELECT 'last'"))],
    [S, pkt(1, ok())],
    [C, pkt(0, [0x01])],
  ];
}

/** The same kinds of messages over the compressed protocol. */
export function compressedScript(): Script {
  const caps = BASE_CAPS | CAP.COMPRESS;
  return [
    [S, pkt(0, greeting({ caps: caps | CAP.SESSION_TRACK }))],
    [C, pkt(1, loginReq({ db: 'test', caps }))],
    [S, pkt(2, ok())],
    [C, compressed(0, pkt(0, query('SELECT n FROM numbers')), false)],
    [S, compressed(0, resultSet(['n'], [['1'], ['2'], ['3']]))],
    [C, compressed(0, pkt(0, query('SELECT ' + "'x', ".repeat(40) + '1')))],
    [S, compressed(0, pkt(1, err(1064, '42000', 'syntax')))],
    [C, compressed(0, pkt(0, query("SELECT 'last'")))],
    [S, compressed(0, pkt(1, ok()))],
  ];
}

/** MySQL 8 greeting capabilities: everything a modern client may use, incl. query attributes and CLIENT_DEPRECATE_EOF. */
export const MYSQL8 = BASE_CAPS | CAP.SSL | CAP.COMPRESS | CAP.SESSION_TRACK | CAP.DEPRECATE_EOF | CAP.QUERY_ATTRIBUTES;

/** caching_sha2_password: fast authentication (cached), then full authentication with an RSA key request. */
export function cachingSha2Script(): Script {
  const pem = '-----BEGIN PUBLIC KEY-----\n' + 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'.repeat(8) + '\n-----END PUBLIC KEY-----\n';
  return [
    [S, pkt(0, greeting({ caps: MYSQL8, plugin: 'caching_sha2_password' }))],
    [C, pkt(1, loginReq({ db: 'test', caps: BASE_CAPS | CAP.DEPRECATE_EOF, plugin: 'caching_sha2_password' }))],
    [S, pkt(2, [0x01, 0x04])], // perform_full_authentication
    [C, pkt(3, [0x02])], // request the server's public key
    [S, pkt(4, concat([0x01], str(pem)))],
    [C, pkt(5, new Uint8Array(256).fill(0x5a))], // the password, RSA-encrypted
    [S, pkt(6, ok())],
    [C, pkt(0, query('SELECT 1'))],
    [S, concat(pkt(1, [1]), pkt(2, colDef('1', 0x08)), pkt(3, textRow('1')), pkt(4, ok({ header: 0xfe })))],
    // COM_CHANGE_USER answered by fast authentication.
    [C, pkt(0, concat([0x11], cstr('bob'), [32], new Uint8Array(32).fill(3), cstr('test'), u16(255), cstr('caching_sha2_password')))],
    [S, pkt(1, [0x01, 0x03])], // fast_auth_success
    [S, pkt(2, ok())],
    [C, pkt(0, query("SELECT 'last'"))],
    [S, pkt(1, ok())],
  ];
}

/** Query attributes (CLIENT_QUERY_ATTRIBUTES, MySQL 8.0.23+) on COM_QUERY and COM_STMT_EXECUTE. */
export function queryAttributesScript(): Script {
  const caps = BASE_CAPS | CAP.DEPRECATE_EOF | CAP.QUERY_ATTRIBUTES;
  const prepareOk = concat([0], u32(7), u16(0), u16(1), [0], u16(0));
  return [
    [S, pkt(0, greeting({ caps: MYSQL8 }))],
    [C, pkt(1, loginReq({ db: 'test', caps }))],
    [S, pkt(2, ok())],
    // two attributes, one NULL: parameter_count 2, parameter_set_count 1, bitmap, new_params_bound, {type, name}, values
    [C, pkt(0, concat([0x03], lenenc(2), lenenc(1), [0b10], [1], u16(0xfe), lstr('trace_id'), u16(0xfe), lstr('unset'), lstr('abc-123'), str('SELECT 1')))],
    [S, pkt(1, ok())],
    [C, pkt(0, concat([0x16], str('SELECT ?')))],
    [S, concat(pkt(1, prepareOk), pkt(2, colDef('?')))],
    // flags PARAMETER_COUNT_AVAILABLE, count 2: the statement's parameter, then an attribute
    [C, pkt(0, concat([0x17], u32(7), [0x08], u32(1), lenenc(2), [0], [1], u16(0x08), lstr(''), u16(0xfe), lstr('span'), [42, 0, 0, 0, 0, 0, 0, 0], lstr('s-1')))],
    [S, concat(pkt(1, [1]), pkt(2, colDef('?', 0x08)), pkt(3, concat([0, 0], [42, 0, 0, 0, 0, 0, 0, 0])), pkt(4, ok({ header: 0xfe })))],
    [C, pkt(0, concat([0x03], lenenc(0), lenenc(1), str("SELECT 'last'")))],
    [S, pkt(1, ok())],
  ];
}

/** A statement of 16 MiB + 100 bytes in two physical packets, then a result row of the same size. */
export function bigPlainScript(): Script {
  const n = 0xffffff + 100;
  const sql = concat([0x03], str('SELECT '), new Uint8Array(n - 8).fill(0x61));
  const row = concat([0xfd, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff], new Uint8Array(n).fill(0x62));
  return [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq({ db: 'test' }))],
    [S, pkt(2, ok())],
    [C, bigPkt(0, sql)],
    [S, pkt(1, err(1064, '42000', 'syntax'))],
    [C, pkt(0, query('SELECT big'))],
    [S, concat(pkt(1, [1]), pkt(2, colDef('big')), pkt(3, eof()), bigPkt(4, row), pkt(6, eof()))],
    [C, pkt(0, query("SELECT 'last'"))],
    [S, pkt(1, ok())],
  ];
}

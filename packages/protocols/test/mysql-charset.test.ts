// Which charset a MySQL session decodes text in: the audit object's charset
// first, then what the connection negotiated (the login's collation, SET
// NAMES, COM_CHANGE_USER, character_set_client from session tracking), then
// UTF-8. The frames are those of the real protocol.
import test from 'ava';
import { C, S, concat, feed, greeting, loginReq, newSession, ok, pkt, str } from './helpers/mysql.js';

/** GBK bytes of 张三. */
const ZHANG_SAN_GBK = Uint8Array.of(0xd5, 0xc5, 0xc8, 0xfd);
/** `SELECT '张三'` with the name in GBK. */
const selectGbk = (): Uint8Array => pkt(0, concat([0x03], str("SELECT '"), ZHANG_SAN_GBK, str("'")));
/** Collation latin1_swedish_ci. */
const LATIN1 = 8;

test("regression: an audit object's charset gbk is not lost after the first SET NAMES", (t) => {
  // A latin1 connection whose client sends GBK bytes; the audit object says gbk.
  const h = newSession({ charset: 'gbk' });
  feed(h, [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq({ db: 'test', charset: LATIN1 }))],
    [S, pkt(2, ok())],
    [C, selectGbk()],
    [S, pkt(1, ok())],
    [C, pkt(0, concat([0x03], str('SET NAMES latin1')))],
    [S, pkt(1, ok())],
    [C, selectGbk()],
    [S, pkt(1, ok())],
  ]);
  const sql = h.events.filter((e) => e.kind === 'statement').map((e) => e.sql);
  t.deepEqual(sql, ["SELECT '张三'", 'SET NAMES latin1', "SELECT '张三'"]);
  t.is(h.events[0]!.attributes?.clientCharset, 'gbk');
});

test('without an audit object charset, SET NAMES and the login collation decide', (t) => {
  const h = newSession();
  feed(h, [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq({ db: 'test', charset: LATIN1 }))],
    [S, pkt(2, ok())],
    [C, selectGbk()],
    [S, pkt(1, ok())],
    [C, pkt(0, concat([0x03], str('SET NAMES gbk')))],
    [S, pkt(1, ok())],
    [C, selectGbk()],
    [S, pkt(1, ok())],
  ]);
  const sql = h.events.filter((e) => e.kind === 'statement').map((e) => e.sql);
  // latin1 (cp1252) reads the GBK bytes as four Latin letters; after SET NAMES gbk they read as 张三.
  t.deepEqual(sql, ["SELECT 'ÕÅÈý'", 'SET NAMES gbk', "SELECT '张三'"]);
});

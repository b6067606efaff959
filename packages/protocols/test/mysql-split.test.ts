// Every message kind split at every offset gives the same records as when
// it arrives whole; truncated at every offset (the rest lost in a gap) the
// session never throws and decodes the commands that follow.
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import {
  BASE_CAPS, C, CAP, S, colDef, compressed, concat, cstr, eof, err, feed, greeting, loginReq, lstr, newSession, ok, pkt, query, resultSet, str, textRow, u16, u32,
} from './helpers/mysql.js';

type Script = [0 | 1, Uint8Array][];

const prepareOk = (id: number, cols: number, params: number) => concat([0], u32(id), u16(cols), u16(params), [0], u16(0));

/** One conversation that holds every message kind the decoder handles. */
function plainScript(): Script {
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
function compressedScript(): Script {
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

function run(script: Script, opts: { splitAt?: [number, number]; truncateAt?: [number, number]; midStream?: boolean } = {}): AuditEvent[] {
  const h = newSession({ maxRows: 10, midStream: opts.midStream });
  let ts = 1_000_000;
  script.forEach(([dir, bytes], i) => {
    ts += 100;
    if (opts.splitAt && opts.splitAt[0] === i) {
      h.session.data(dir, bytes.subarray(0, opts.splitAt[1]), ts);
      h.session.data(dir, bytes.subarray(opts.splitAt[1]), ts);
    } else if (opts.truncateAt && opts.truncateAt[0] === i) {
      h.session.data(dir, bytes.subarray(0, opts.truncateAt[1]), ts);
      h.session.gap(dir, bytes.length - opts.truncateAt[1], ts);
    } else {
      h.session.data(dir, bytes, ts);
    }
  });
  h.session.close('fin', ts + 100);
  return h.events;
}

for (const [name, make] of [['plain', plainScript], ['compressed', compressedScript]] as const) {
  test(`${name}: every message split at every offset decodes to the same records`, (t) => {
    const script = make();
    const whole = run(script);
    t.true(whole.length >= (name === 'plain' ? 13 : 4));
    t.true(whole.some((e) => e.sql === "SELECT 'last'" && e.status === 'ok'));
    let cases = 0;
    script.forEach(([, bytes], i) => {
      for (let k = 1; k < bytes.length; k++) {
        const got = run(script, { splitAt: [i, k] });
        cases++;
        if (JSON.stringify(got) !== JSON.stringify(whole)) {
          t.deepEqual(got, whole, `message ${i} split at ${k}`);
          return;
        }
      }
    });
    t.log(`${cases} splits`);
    t.pass();
  });

  test(`${name}: every message truncated at every offset (rest lost) never throws and later commands still decode`, (t) => {
    const script = make();
    let cases = 0;
    const failures: string[] = [];
    script.forEach(([, bytes], i) => {
      // the final query/response pair must survive any earlier damage
      if (i >= script.length - 3) return;
      for (let k = 0; k < bytes.length; k++) {
        const got = run(script, { truncateAt: [i, k] });
        cases++;
        const last = got.find((e) => e.sql === "SELECT 'last'");
        if (!last || last.status !== 'ok') failures.push(`message ${i} cut at ${k}`);
        for (const e of got) if (!['ok', 'error', 'unknown'].includes(e.status)) failures.push(`bad status at ${i}/${k}`);
      }
    });
    t.deepEqual(failures.slice(0, 40), [], `${failures.length} of ${cases} truncations lost the following command`);
  });

  test(`${name}: a capture that ends at any offset of any message flushes cleanly`, (t) => {
    const script = make();
    script.forEach(([, bytes], i) => {
      for (let k = 0; k <= bytes.length; k++) {
        const h = newSession();
        feed(h, [...script.slice(0, i), [script[i]![0], bytes.subarray(0, k)]]);
        t.notThrows(() => h.session.close('end-of-capture', 9e9));
        for (const e of h.events) t.truthy(e.id);
      }
    });
  });
}

test('text row and column definition: split at every offset inside a long result', (t) => {
  const rows = Array.from({ length: 20 }, (_, i) => [String(i), 'v'.repeat(i * 13)]);
  const script: Script = [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq({ db: 'test' }))],
    [S, pkt(2, ok())],
    [C, pkt(0, query('SELECT k, v FROM kv'))],
    [S, resultSet(['k', 'v'], rows)],
  ];
  const whole = run(script);
  t.is(whole[1]!.rowsReturned, 20);
  const resp = script[4]![1];
  for (let k = 1; k < resp.length; k++) t.deepEqual(run(script, { splitAt: [4, k] }), whole);
});

test('rows are decoded from the first N rows only, NULLs kept', (t) => {
  const script: Script = [
    [S, pkt(0, greeting())],
    [C, pkt(1, loginReq())],
    [S, pkt(2, ok())],
    [C, pkt(0, query('SELECT 1'))],
    [S, concat(pkt(1, [2]), pkt(2, colDef('a')), pkt(3, colDef('b')), pkt(4, eof()), pkt(5, textRow(null, 'x')), pkt(6, textRow('y', lstr('z').length ? 'z' : '')), pkt(7, eof()))],
  ];
  const [, e] = run(script);
  t.deepEqual(e!.rows, [[null, 'x'], ['y', 'z']]);
});

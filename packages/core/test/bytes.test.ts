import test from 'ava';
import { ByteReader, decodeText, normalizeCharset, isDbtapError, DbtapError, ErrorCodes } from '@dbtap/core';

test('reads every wire type in both byte orders', (t) => {
  const buf = Uint8Array.from([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff]);
  const r = new ByteReader(buf);
  t.is(r.u8(), 0x01);
  t.is(r.u16le(), 0x0302);
  r.reset(buf);
  t.is(r.u16be(), 0x0102);
  t.is(r.u24le(), 0x050403);
  r.reset(buf);
  t.is(r.u32le(), 0x04030201);
  t.is(r.u32be(), 0x05060708);
  t.is(r.i8(), -1);
  t.true(r.ok);
  r.reset(buf);
  t.is(r.u64le(), 0x0807060504030201n);
  r.reset(buf);
  t.is(r.u64be(), 0x0102030405060708n);
  r.reset(Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
  t.is(r.u32le(), 0xffffffff, 'u32 stays unsigned');
  r.reset(Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
  t.is(r.i32be(), -1);
});

test('never reads past its end and reports the overrun as a value', (t) => {
  const buf = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const r = new ByteReader(buf, 1, 3); // [2, 3]
  t.is(r.remaining, 2);
  t.is(r.u32le(), 0);
  t.true(r.overrun);
  t.is(r.remaining, 0);
  t.is(r.u8(), 0, 'reads after an overrun return 0');
  r.reset(buf, 1, 3);
  t.deepEqual([...r.bytes(5)], []);
  t.false(r.ok);
  r.reset(buf, 1, 3);
  t.deepEqual([...r.bytes(2)], [2, 3]);
  t.true(r.ok);
});

test('bytes() and cstring() return views, not copies', (t) => {
  const buf = Uint8Array.from([0x61, 0x62, 0x00, 0x63]);
  const r = new ByteReader(buf);
  const s = r.cstring();
  t.is(s.buffer, buf.buffer);
  t.is(s.byteOffset, 0);
  t.is(s.length, 2);
  t.is(r.pos, 3);
  const rest = r.bytes(1);
  buf[3] = 0x64;
  t.is(rest[0], 0x64);
});

test('cstring without terminator is an overrun', (t) => {
  const r = new ByteReader(Uint8Array.from([0x61, 0x62]));
  t.is(r.cstringUtf8(), 'ab');
  t.true(r.overrun);
});

test('cstring does not see a NUL beyond the end', (t) => {
  const r = new ByteReader(Uint8Array.from([0x61, 0x62, 0x00]), 0, 2);
  r.cstring();
  t.true(r.overrun);
});

test('MySQL length-encoded integers', (t) => {
  const r = new ByteReader(Uint8Array.from([0xfa, 0xfb, 0xfc, 0x34, 0x12, 0xfd, 0x01, 0x02, 0x03, 0xfe, 1, 0, 0, 0, 1, 0, 0, 0]));
  t.is(r.lenencInt(), 250);
  t.is(r.lenencInt(), null);
  t.is(r.lenencInt(), 0x1234);
  t.is(r.lenencInt(), 0x030201);
  t.is(r.lenencInt(), 0x100000001);
  t.true(r.ok);
  r.reset(Uint8Array.from([0xff]));
  r.lenencInt();
  t.true(r.overrun, '0xff never starts a length-encoded integer');
  r.reset(Uint8Array.from([0xfc, 0x01]));
  r.lenencInt();
  t.true(r.overrun);
});

test('every read of every prefix of a buffer stays in bounds', (t) => {
  const full = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
  const ops: ((r: ByteReader) => unknown)[] = [
    (r) => r.u8(), (r) => r.u16le(), (r) => r.u16be(), (r) => r.u24le(), (r) => r.u32le(), (r) => r.u32be(),
    (r) => r.u64le(), (r) => r.u64be(), (r) => r.f32le(), (r) => r.f64be(), (r) => r.lenencInt(), (r) => r.cstring(), (r) => r.bytes(7),
  ];
  for (let end = 0; end <= full.length; end++) {
    for (const op of ops) {
      const r = new ByteReader(full, 0, end);
      while (r.ok && r.remaining > 0) op(r);
      t.true(r.pos <= end);
    }
  }
});

test('invalid reader ranges throw a coded error', (t) => {
  const err = t.throws(() => new ByteReader(new Uint8Array(2), 0, 3));
  t.true(isDbtapError(err, ErrorCodes.INVALID_ARGUMENT));
  t.true(err instanceof DbtapError);
});

test('charset decoding', (t) => {
  t.is(decodeText(Uint8Array.from([0xc4, 0xe3, 0xba, 0xc3]), 'gbk'), '你好');
  t.is(decodeText(Uint8Array.from([0xc4, 0xe3, 0xba, 0xc3]), 'gb2312'), '你好');
  t.is(decodeText(Uint8Array.from([0x81, 0x30, 0x81, 0x30]), 'gb18030'), '\u0080');
  t.is(decodeText(Uint8Array.from([0xa7, 0x41]), 'big5'), '你');
  t.is(decodeText(Uint8Array.from([0x41, 0x00, 0x42, 0x00]), 'utf-16le'), 'AB');
  t.is(decodeText(Uint8Array.from([0xe9]), 'latin1'), 'é');
  t.is(decodeText(Buffer.from('Grüße', 'utf8'), 'utf8mb4'), 'Grüße');
  t.is(decodeText(Buffer.from('plain ascii', 'utf8')), 'plain ascii');
  t.is(normalizeCharset('UTF8'), 'utf-8');
  t.is(normalizeCharset('no-such-charset'), undefined);
  const err = t.throws(() => decodeText(new Uint8Array(1), 'no-such-charset'));
  t.true(isDbtapError(err, ErrorCodes.UNKNOWN_CHARSET));
});

import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePcapHeader, encodePcapRecord, ErrorCodes, isDbtapError, LinkType, openCapture, PcapWriter, readCaptureBytes, type Frame } from '@dbtap/core';
import { tshark, tsharkTest } from '../../../test-support/corpus.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbtap-pcap-writer-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

function frame(i: number, linkType: number = LinkType.ETHERNET): Frame {
  // Sizes 0..~9000 so that some records are bigger than the writer's 64 KiB buffer would
  // hold several of, and the buffer flushes mid-way.
  const size = i === 3 ? 100_000 : (i * 1009) % 9000;
  const data = new Uint8Array(size);
  for (let j = 0; j < size; j++) data[j] = (i + j * 13) & 0xff;
  return { ts: 1_732_530_000_000_000 + i * 1_234_567, linkType, data, origLen: size + (i % 4), interfaceId: 0 };
}

test('encodePcapHeader writes a little-endian 2.4 header', (t) => {
  t.deepEqual(
    Buffer.from(encodePcapHeader({ linkType: LinkType.RAW })).toString('hex'),
    'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + '00000400' + '65000000',
  );
  t.deepEqual(Buffer.from(encodePcapHeader({ linkType: 1, snapLen: 1500, nanosecond: true })).toString('hex').slice(0, 8), '4d3cb2a1');
  t.is(readCaptureBytes(encodePcapHeader({ linkType: 1, snapLen: 1500, nanosecond: true })).interfaces[0]?.snapLen, 1500);
  for (const bad of [{ linkType: -1 }, { linkType: 1.5 }, { linkType: 1, snapLen: 0 }]) {
    t.true(isDbtapError(t.throws(() => encodePcapHeader(bad)), ErrorCodes.INVALID_ARGUMENT), JSON.stringify(bad));
  }
});

test('encodePcapRecord writes the record header and data', (t) => {
  const f: Frame = { ts: 1_000_002_500_000.75, linkType: 1, data: Uint8Array.of(0xde, 0xad), origLen: 60 };
  t.is(Buffer.from(encodePcapRecord(f)).toString('hex'), '42420f00' + '20a10700' + '02000000' + '3c000000' + 'dead');
  // Nanoseconds keep the fraction of a microsecond that the timestamp carries.
  t.is(Buffer.from(encodePcapRecord(f, true)).toString('hex').slice(8, 16), Buffer.from(Uint32Array.of(500_000_750).buffer).toString('hex'));
  // origLen is never below the captured length.
  t.is(new DataView(encodePcapRecord({ ...f, origLen: 0 }).buffer).getUint32(12, true), 2);
});

for (const nanosecond of [false, true]) {
  test(`writer round trip (${nanosecond ? 'nanosecond' : 'microsecond'})`, (t) => {
    const path = join(tmp, `rt-${nanosecond}.pcap`);
    const frames = Array.from({ length: 200 }, (_, i) => frame(i));
    const w = PcapWriter.open(path, { linkType: LinkType.ETHERNET, nanosecond });
    for (const f of frames) w.write(f);
    t.is(w.frames, 200);
    w.close();
    w.close();
    const r = openCapture(path, { bufferSize: 4096 });
    t.is(r.interfaces[0]?.tsResolution, nanosecond ? 1e9 : 1e6);
    const back: Frame[] = [];
    for (let f = r.next(); f; f = r.next()) back.push({ ...f, data: f.data.slice() });
    t.is(r.error, undefined);
    t.deepEqual(back, frames);
    t.is(statSync(path).size, 24 + frames.reduce((n, f) => n + 16 + f.data.length, 0));
  });
}

test('writer cuts frames to the snap length and keeps the original length', (t) => {
  const path = join(tmp, 'snap.pcap');
  const w = PcapWriter.open(path, { linkType: LinkType.RAW, snapLen: 64 });
  w.write(frame(5, LinkType.RAW));
  w.close();
  const f = readCaptureBytes(new Uint8Array(readFileSync(path))).next();
  t.is(f?.data.length, 64);
  t.is(f?.origLen, frame(5).origLen);
  t.deepEqual(f?.data, frame(5).data.subarray(0, 64));
});

test('writer refuses frames of another link type and writes after close', (t) => {
  const path = join(tmp, 'refuse.pcap');
  const w = PcapWriter.open(path, { linkType: LinkType.ETHERNET });
  const e1 = t.throws(() => w.write(frame(1, LinkType.RAW)));
  t.true(isDbtapError(e1, ErrorCodes.INVALID_ARGUMENT));
  t.regex(e1?.message ?? '', /link type 101/);
  w.write(frame(1));
  w.close();
  t.true(isDbtapError(t.throws(() => w.write(frame(2))), ErrorCodes.INVALID_ARGUMENT));
  t.is(readCaptureBytes(readFileSync(path)).next()?.origLen, frame(1).origLen);
  t.true(isDbtapError(t.throws(() => PcapWriter.open(join(tmp, 'no/such/dir.pcap'), { linkType: 1 })), ErrorCodes.IO));
});

tsharkTest('tshark reads the written file: same frame count and lengths', (t) => {
  for (const nanosecond of [false, true]) {
    const path = join(tmp, `tshark-${nanosecond}.pcap`);
    const frames = Array.from({ length: 50 }, (_, i) => frame(i));
    const w = PcapWriter.open(path, { linkType: LinkType.ETHERNET, nanosecond });
    for (const f of frames) w.write(f);
    w.close();
    const rows = tshark(['-r', path, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.time_epoch']).trim().split('\n');
    t.is(rows.length, frames.length);
    rows.forEach((row, i) => {
      const [len, capLen, epoch] = row.split('\t');
      const f = frames[i]!;
      t.is(Number(len), f.origLen);
      t.is(Number(capLen), f.data.length);
      const [sec, frac] = epoch!.split('.');
      t.is(Number(sec) * 1e6 + Math.floor(Number(frac!.padEnd(9, '0')) / 1000), f.ts);
    });
  }
});

import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCapture, type Frame } from '@dbtap/core';
import { PcapReplaySource, TransportClient, TransportServer } from '@dbtap/agent';
import { corpusFiles, corpusTest } from '../../../test-support/corpus.js';

function hashFrames(frames: Iterable<Frame>): { count: number; sha256: string; ts: number[] } {
  const h = createHash('sha256');
  let count = 0;
  const ts: number[] = [];
  for (const f of frames) {
    count++;
    h.update(f.data);
    h.update(`|${f.origLen}|${f.linkType}|`);
    ts.push(f.ts);
  }
  return { count, sha256: h.digest('hex'), ts };
}

corpusTest('a corpus capture replayed through the transport arrives identical (frames, lengths, timestamps)', async (t) => {
  const files = [...corpusFiles('mysql'), ...corpusFiles('postgresql')].slice(0, 6);
  t.true(files.length > 0);
  const got: Frame[] = [];
  const server = new TransportServer({ onBatch: (_a, frames) => void got.push(...frames) });
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new TransportClient({ host: '127.0.0.1', port: addr!.port, batchMaxDelayMs: 5, queueMaxPackets: 500 }).start();
  for (const file of files) {
    got.length = 0;
    const src = new PcapReplaySource({ path: file, ready: () => client.hasRoom() });
    src.on('frame', (f) => t.true(client.send(f), 'never dropped: the replay waits for room'));
    await src.start();
    await src.finished();
    t.true(await client.drain(20_000));
    const want = hashFrames(openCapture(file));
    const have = hashFrames(got);
    t.is(have.count, want.count, file);
    t.is(have.sha256, want.sha256, file);
    t.deepEqual(have.ts, want.ts, file);
    t.is(src.stats().frames, want.count);
  }
  await client.stop();
  await server.close();
});

corpusTest('recorded pace spaces frames by their timestamps (scaled by speed)', async (t) => {
  // The capture whose first and last frames are furthest apart, below 60 s.
  const file = corpusFiles('mysql').find((f) => {
    const ts = hashFrames(openCapture(f)).ts;
    const span = ts[ts.length - 1]! - ts[0]!;
    return ts.length > 5 && span > 200_000 && span < 60_000_000;
  });
  if (!file) {
    t.pass('no suitable capture');
    return;
  }
  const ts = hashFrames(openCapture(file)).ts;
  const span = (ts[ts.length - 1]! - ts[0]!) / 1000;
  const speed = span / 200; // the whole file in about 200 ms
  const arrivals: number[] = [];
  const src = new PcapReplaySource({ path: file, pace: 'recorded', speed });
  src.on('frame', () => arrivals.push(performance.now()));
  await src.start();
  await src.finished();
  t.is(arrivals.length, ts.length);
  // A pacing contract, not a speed measurement: the last frame may never come
  // before its recorded offset (a slow machine only makes the gap longer).
  t.true(arrivals[arrivals.length - 1]! - arrivals[0]! >= (span / speed) * 0.9);
});

test('a file that is not a capture is a coded error; a cut file emits its frames then an error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-replay-'));
  try {
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, 'this is not a capture file at all');
    const err = await t.throwsAsync(new PcapReplaySource({ path: junk }).start());
    t.is((err as { code?: string }).code, 'DBTAP_E_BAD_CAPTURE_FORMAT');
    const missing = await t.throwsAsync(new PcapReplaySource({ path: join(dir, 'nope.pcap') }).start());
    t.is((missing as { code?: string }).code, 'DBTAP_E_IO');
    // pcap header + one 60-byte record + a record header promising more than the file holds.
    const hdr = Buffer.alloc(24);
    hdr.writeUInt32LE(0xa1b2c3d4, 0);
    hdr.writeUInt16LE(2, 4);
    hdr.writeUInt16LE(4, 6);
    hdr.writeUInt32LE(65535, 16);
    hdr.writeUInt32LE(1, 20);
    const rec = (len: number, have: number) => {
      const r = Buffer.alloc(16 + have);
      r.writeUInt32LE(1, 0);
      r.writeUInt32LE(len, 8);
      r.writeUInt32LE(len, 12);
      return r;
    };
    const cut = join(dir, 'cut.pcap');
    writeFileSync(cut, Buffer.concat([hdr, rec(60, 60), rec(100, 10)]));
    const src = new PcapReplaySource({ path: cut });
    const frames: Frame[] = [];
    const errors: string[] = [];
    src.on('frame', (f) => frames.push(f));
    src.on('error', (e) => errors.push(e.code));
    await src.start();
    await src.finished();
    t.is(frames.length, 1);
    t.deepEqual(errors, ['DBTAP_E_TRUNCATED']);
    t.throws(() => new PcapReplaySource({ path: cut, speed: 0 }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

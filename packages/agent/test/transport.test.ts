import test from 'ava';
import { connect, type Socket } from 'node:net';
import type { Frame } from '@dbtap/core';
import {
  AgentErrorCodes,
  BatchBuilder,
  MessageReader,
  TransportClient,
  TransportServer,
  decodeBatchFrames,
  decodeMessage,
  encodeBatchHead,
  encodeMessage,
  type AgentInfo,
  type TransportClientOptions,
} from '@dbtap/agent';
import { frameId, numberedFrame, sleep, waitFor } from './helpers.js';

const fast: Partial<TransportClientOptions> = { reconnectMinMs: 20, reconnectMaxMs: 150, batchMaxDelayMs: 5 };

interface Sink {
  server: TransportServer;
  port: number;
  frames: Frame[];
  batches: number;
}

async function startServer(opts: Partial<ConstructorParameters<typeof TransportServer>[0]> = {}, port = 0, host = '127.0.0.1'): Promise<Sink> {
  const sink = { frames: [] as Frame[], batches: 0 } as Sink;
  sink.server = new TransportServer({
    onBatch: (_a, frames) => {
      sink.batches++;
      for (const f of frames) sink.frames.push(f);
    },
    ...opts,
  });
  const [addr] = await sink.server.listen({ host, port });
  sink.port = addr!.port;
  return sink;
}

// A raw socket that collects everything the server says until it closes.
function rawClient(port: number, host = '127.0.0.1'): Promise<{ socket: Socket; closed: Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      const closed = new Promise<Buffer>((r) => socket.on('close', () => r(Buffer.concat(chunks))));
      resolve({ socket, closed });
    });
    socket.on('error', reject);
  });
}

function firstMessage(bytes: Buffer): ReturnType<typeof decodeMessage> | undefined {
  let out: ReturnType<typeof decodeMessage> | undefined;
  new MessageReader(1 << 20).push(bytes, (body) => (out ??= decodeMessage(body)));
  return out;
}

function hello(token?: string): Buffer {
  return encodeMessage({ t: 'hello', v: 1, token, agent: { id: 'raw', hostname: 'raw', instance: 'raw-1', version: 'x' } });
}

test('batch records round-trip through the message reader split at every offset', (t) => {
  const b = new BatchBuilder(4096);
  const input = [numberedFrame(1, 4), numberedFrame(2, 100), numberedFrame(3, 0), numberedFrame(4, 1500)];
  for (const f of input) t.true(b.add(f));
  t.false(b.add(numberedFrame(5, 4000)), 'a frame that does not fit is refused');
  const records = b.seal();
  const wire = Buffer.concat([encodeBatchHead(7, b.count, records.length), records, encodeMessage({ t: 'ack', seq: 9 })]);
  for (let cut = 0; cut <= wire.length; cut++) {
    const got: Buffer[] = [];
    const r = new MessageReader(1 << 20);
    t.is(r.push(wire.subarray(0, cut), (m) => got.push(m)), undefined);
    t.is(r.push(wire.subarray(cut), (m) => got.push(m)), undefined);
    t.is(got.length, 2);
    if (cut === 0 || cut === wire.length) {
      const m = decodeMessage(got[0]!);
      if (!('t' in m) || m.t !== 'batch') return t.fail('not a batch');
      t.is(m.seq, 7);
      const frames = decodeBatchFrames(m.frames, m.n);
      if (!Array.isArray(frames)) return t.fail(frames.message);
      t.deepEqual(
        frames.map((f) => [frameId(f), f.ts, f.origLen, f.linkType, Buffer.from(f.data).toString('hex')]),
        input.map((f) => [frameId(f), f.ts, f.origLen, f.linkType, Buffer.from(f.data).toString('hex')]),
      );
      t.deepEqual(decodeMessage(got[1]!), { t: 'ack', seq: 9 });
    }
  }
});

test('corrupt batch records are a protocol error value, not an exception', (t) => {
  const b = new BatchBuilder(256);
  b.add(numberedFrame(1, 50));
  const records = Buffer.from(b.seal());
  const short = decodeBatchFrames(records.subarray(0, records.length - 1), 1);
  t.true(short instanceof Error && short.code === AgentErrorCodes.PROTOCOL);
  const extra = decodeBatchFrames(Buffer.concat([records, Buffer.from([0])]), 1);
  t.true(extra instanceof Error && extra.code === AgentErrorCodes.PROTOCOL);
  const tooMany = decodeBatchFrames(records, 2);
  t.true(tooMany instanceof Error && tooMany.code === AgentErrorCodes.PROTOCOL);
  const notMsgpack = decodeMessage(Buffer.from([0xc1, 0xc1]));
  t.true(notMsgpack instanceof Error && notMsgpack.code === AgentErrorCodes.PROTOCOL);
  const unknownType = decodeMessage(encodeMessage({ t: 'xx', ts: 1 } as never).subarray(4));
  t.true(unknownType instanceof Error && /unknown message type "xx"/.test(unknownType.message));
});

test('every frame arrives once, in order and byte-identical; acks empty the queue', async (t) => {
  const sink = await startServer({ token: 's3cret' });
  const agents: AgentInfo[] = [];
  sink.server.on('connect', (a) => agents.push(a));
  const client = new TransportClient({ host: '127.0.0.1', port: sink.port, token: 's3cret', agentId: 'db1', ...fast, batchMaxPackets: 97 }).start();
  const sent: Frame[] = [];
  for (let i = 0; i < 5000; i++) {
    const f = numberedFrame(i, 20 + (i % 700));
    sent.push(f);
    t.true(client.send(f));
  }
  t.true(await client.drain(20_000));
  const s = client.stats();
  t.is(s.ackedPackets, 5000);
  t.is(s.queuedPackets, 0);
  t.is(s.droppedPackets, 0);
  t.is(sink.frames.length, 5000);
  t.deepEqual(sink.frames.map(frameId), sent.map(frameId));
  for (let i = 0; i < sent.length; i += 499) t.deepEqual(Buffer.from(sink.frames[i]!.data), Buffer.from(sent[i]!.data));
  t.is(agents.length, 1);
  t.is(agents[0]!.id, 'db1');
  t.is(sink.server.stats().frames, 5000);
  await client.stop();
  await sink.server.close();
});

test('a slow consumer delays acknowledgements but loses nothing', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const got: number[] = [];
  const server = new TransportServer({
    maxPendingBytes: 64 << 10,
    onBatch: async (_a, frames) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(15);
      for (const f of frames) got.push(frameId(f));
      inFlight--;
    },
  });
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new TransportClient({ host: '127.0.0.1', port: addr!.port, ...fast, batchMaxPackets: 50 }).start();
  for (let i = 0; i < 2000; i++) client.send(numberedFrame(i, 200));
  client.flush();
  await sleep(50);
  t.true(client.stats().queuedPackets > 0, 'acks lag behind the consumer');
  t.true(await client.drain(30_000));
  t.is(maxInFlight, 1, 'batches of one agent are processed one at a time');
  t.deepEqual(got, Array.from({ length: 2000 }, (_, i) => i));
  await client.stop();
  await server.close();
});

test('batchesInFlight 2: the next batch starts before the last has finished, acknowledgements stay in order', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const started: number[] = [];
  const finished: number[] = [];
  const server = new TransportServer({
    batchesInFlight: 2,
    onBatch: async (_a, frames, seq) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      for (const f of frames) started.push(frameId(f));
      // odd batches finish before the even one started just before them
      await sleep(seq % 2 === 1 ? 12 : 2);
      finished.push(seq);
      inFlight--;
    },
  });
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new TransportClient({ host: '127.0.0.1', port: addr!.port, ...fast, batchMaxPackets: 20 }).start();
  for (let i = 0; i < 400; i++) client.send(numberedFrame(i, 100));
  client.flush();
  t.true(await client.drain(30_000), 'every batch acknowledged');
  t.is(maxInFlight, 2);
  t.deepEqual(started, Array.from({ length: 400 }, (_, i) => i), 'handed over once each, in order');
  t.notDeepEqual(finished, [...finished].sort((a, b) => a - b), 'some finished out of order, yet all were acknowledged');
  t.is(server.stats().batches, finished.length);
  await client.stop();
  await server.close();
});

test('batchesInFlight 2: after a failed batch the one started behind it is delivered again, nothing is lost', async (t) => {
  const seen: number[] = [];
  let failed = false;
  const server = new TransportServer({
    batchesInFlight: 2,
    onBatch: async (_a, frames, seq) => {
      for (const f of frames) seen.push(frameId(f));
      if (seq === 3 && !failed) {
        failed = true;
        await sleep(10);
        throw new Error('store unavailable');
      }
    },
  });
  const errors: unknown[] = [];
  server.on('batchError', (e) => errors.push(e));
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = new TransportClient({ host: '127.0.0.1', port: addr!.port, ...fast, batchMaxPackets: 10 }).start();
  for (let i = 0; i < 100; i++) client.send(numberedFrame(i, 100));
  client.flush();
  t.true(await client.drain(30_000));
  t.is(errors.length, 1);
  const count = (id: number): number => seen.filter((x) => x === id).length;
  t.deepEqual([...new Set(seen)].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i), 'every frame delivered');
  t.is(count(25), 2, 'batch 3 (frames 20-29) again after its failure');
  t.is(count(35), 2, 'batch 4, started behind it, was neither acknowledged nor recorded: delivered again');
  t.is(count(5), 1, 'batches before the failure only once');
  await client.stop();
  await server.close();
});

test('batchesInFlight outside 1..64 is refused', (t) => {
  for (const n of [0, 65, 1.5]) {
    const err = t.throws(() => new TransportServer({ onBatch: () => {}, batchesInFlight: n }));
    t.is((err as { code?: string }).code, 'DBTAP_E_INVALID_ARGUMENT');
  }
});

test('receiver killed and restarted during a burst: zero frames lost', async (t) => {
  let sink = await startServer();
  const port = sink.port;
  const received = new Set<number>();
  let delivered = 0;
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast, batchMaxPackets: 200 }).start();
  const disconnects: string[] = [];
  client.on('disconnect', (e) => disconnects.push(e.code));
  const total = 30_000;
  const firstSink = sink;
  for (let i = 0; i < total; i++) {
    client.send(numberedFrame(i, 100));
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    if (i === 10_000) {
      await firstSink.server.close({ abort: true }); // what a crash looks like from the agent
      for (const f of firstSink.frames) received.add(frameId(f));
      delivered += firstSink.frames.length;
    }
    if (i === 20_000) sink = await startServer({}, port);
  }
  t.true(await client.drain(30_000), 'queue drains after the restart');
  for (const f of sink.frames) received.add(frameId(f));
  delivered += sink.frames.length;
  t.is(received.size, total, 'every frame was delivered');
  t.is(client.stats().droppedPackets, 0);
  t.true(disconnects.length >= 1);
  // Batches processed by the dead receiver whose ack never left are re-sent: at-least-once.
  t.true(delivered >= total);
  t.log(`delivered ${delivered} for ${total} frames, ${client.stats().resentBatches} batches re-sent`);
  await client.stop();
  await sink.server.close();
});

test('restart of the same receiver object de-duplicates batches whose ack was lost', async (t) => {
  let calls = 0;
  const seen: number[] = [];
  let server!: TransportServer;
  const port = await (async () => {
    server = new TransportServer({
      onBatch: async (_a, frames) => {
        calls++;
        for (const f of frames) seen.push(frameId(f));
        // The first batch is processed, then the connection breaks before its ack.
        if (calls === 1) await server.close({ abort: true });
      },
    });
    const [a] = await server.listen({ host: '127.0.0.1', port: 0 });
    return a!.port;
  })();
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast, batchMaxPackets: 10 }).start();
  for (let i = 0; i < 30; i++) client.send(numberedFrame(i));
  await waitFor(() => calls >= 1, 'first batch');
  await sleep(50);
  await server.listen({ host: '127.0.0.1', port });
  t.true(await client.drain(15_000));
  t.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i), 'each frame delivered exactly once');
  t.is(client.stats().ackedPackets, 30);
  await client.stop();
  await server.close();
});

test('receiver down longer than the queue holds: losses equal the overflow count exactly (drop-newest)', async (t) => {
  const probe = await startServer();
  const port = probe.port;
  await probe.server.close();
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast, batchMaxPackets: 100, queueMaxPackets: 1000, queueMaxBytes: 1 << 20 }).start();
  let overflowEvents = 0;
  client.on('overflow', () => overflowEvents++);
  const total = 2500;
  let refused = 0;
  for (let i = 0; i < total; i++) if (!client.send(numberedFrame(i, 100))) refused++;
  const s0 = client.stats();
  t.is(s0.queuedPackets, 1000);
  t.is(s0.droppedPackets, 1500);
  t.is(refused, 1500);
  t.is(overflowEvents, 1);
  const sink = await startServer({}, port);
  t.true(await client.drain(15_000));
  const s = client.stats();
  t.is(sink.frames.length + s.droppedPackets, total);
  t.is(total - sink.frames.length, s.droppedPackets);
  t.deepEqual(sink.frames.map(frameId), Array.from({ length: 1000 }, (_, i) => i), 'the oldest frames survive, in order');
  t.is(s.droppedBytes, 1500 * (20 + 100));
  await client.stop();
  await sink.server.close();
});

test('drop-oldest keeps the newest frames and counts what it discarded', async (t) => {
  const probe = await startServer();
  const port = probe.port;
  await probe.server.close();
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast, batchMaxPackets: 100, queueMaxPackets: 1000, overflow: 'drop-oldest' }).start();
  const total = 2550;
  for (let i = 0; i < total; i++) t.true(client.send(numberedFrame(i, 40)));
  const sink = await startServer({}, port);
  t.true(await client.drain(15_000));
  const s = client.stats();
  t.is(sink.frames.length + s.droppedPackets, total);
  t.true(s.droppedPackets > 0);
  const ids = sink.frames.map(frameId);
  t.is(ids[ids.length - 1], total - 1, 'the newest frame arrived');
  t.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => total - ids.length + i), 'a contiguous newest range arrived in order');
  await client.stop();
  await sink.server.close();
});

test('a wrong or missing token is refused with DBTAP_E_AUTH and nothing is delivered', async (t) => {
  const sink = await startServer({ token: ['right', 'also-right'] });
  const refused: string[] = [];
  sink.server.on('clientError', (e) => refused.push(e.code));
  const client = new TransportClient({ host: '127.0.0.1', port: sink.port, token: 'wrong', ...fast });
  const errs: string[] = [];
  client.on('disconnect', (e) => errs.push(`${e.code} ${e.message}`));
  client.start();
  client.send(numberedFrame(1));
  await waitFor(() => errs.length >= 1, 'refusal');
  t.regex(errs[0]!, /^DBTAP_E_AUTH .*wrong token/);
  t.false(client.connected);
  await client.stop(0);
  const raw = await rawClient(sink.port);
  raw.socket.write(hello(undefined));
  const reply = firstMessage(await raw.closed);
  t.like(reply, { t: 'error', code: AgentErrorCodes.AUTH });
  t.deepEqual(refused.slice(0, 2), [AgentErrorCodes.AUTH, AgentErrorCodes.AUTH]);
  t.is(sink.frames.length, 0);
  const ok = new TransportClient({ host: '127.0.0.1', port: sink.port, token: 'also-right', ...fast }).start();
  ok.send(numberedFrame(2));
  t.true(await ok.drain(5000), 'the receiver still works for a good agent');
  await ok.stop();
  await sink.server.close();
});

test('garbage, oversized frames and bad messages are refused without harming the receiver', async (t) => {
  const sink = await startServer({ maxMessageBytes: 1 << 20, helloTimeoutMs: 300 });
  const codes: string[] = [];
  sink.server.on('clientError', (e) => codes.push(e.code));
  const cases: Array<[string, Buffer, string]> = [
    ['http request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), AgentErrorCodes.FRAME_TOO_LARGE],
    ['oversized length', Buffer.from([0x00, 0x20, 0x00, 0x00, 1, 2, 3]), AgentErrorCodes.FRAME_TOO_LARGE],
    ['not msgpack', Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]), AgentErrorCodes.PROTOCOL],
    ['batch before hello', Buffer.concat([encodeBatchHead(1, 0, 0)]), AgentErrorCodes.PROTOCOL],
    ['wrong version', encodeMessage({ t: 'hello', v: 99, agent: { id: 'a', hostname: 'h', instance: 'i', version: '1' } }), AgentErrorCodes.VERSION],
    ['silence', Buffer.alloc(0), AgentErrorCodes.HELLO_TIMEOUT],
    ['corrupt batch', Buffer.concat([hello(), encodeBatchHead(1, 5, 3), Buffer.from([1, 2, 3])]), AgentErrorCodes.PROTOCOL],
  ];
  for (const [name, bytes, code] of cases) {
    const raw = await rawClient(sink.port);
    raw.socket.write(bytes);
    const reply = await raw.closed;
    const errMsg = [] as unknown[];
    new MessageReader(1 << 20).push(reply, (b) => {
      const m = decodeMessage(b);
      if (!(m instanceof Error) && m.t === 'error') errMsg.push(m);
    });
    t.like(errMsg[0], { t: 'error', code }, name);
  }
  t.is(sink.server.stats().refused, cases.length);
  t.is(codes.length, cases.length);
  const ok = new TransportClient({ host: '127.0.0.1', port: sink.port, ...fast }).start();
  ok.send(numberedFrame(5));
  t.true(await ok.drain(5000));
  t.is(sink.frames.length, 1);
  await ok.stop();
  await sink.server.close();
});

test('IPv6: ::1 works and defaults to port 9998 (IPv4 to 9999)', async (t) => {
  t.is(new TransportClient({ host: '::1' }).target, '[::1]:9998');
  t.is(new TransportClient({ host: '127.0.0.1' }).target, '127.0.0.1:9999');
  // Port 9998 itself when free, otherwise any port (a running server may hold 9998).
  let sink: Sink;
  try {
    sink = await startServer({}, 9998, '::1');
  } catch {
    sink = await startServer({}, 0, '::1');
  }
  const client = new TransportClient({ host: '::1', port: sink.port, ...fast }).start();
  for (let i = 0; i < 100; i++) client.send(numberedFrame(i));
  t.true(await client.drain(5000));
  t.is(sink.frames.length, 100);
  t.is(sink.server.agents()[0]?.remoteAddress, '::1');
  await client.stop();
  await sink.server.close();
});

test('a silent server is detected by heartbeats and the agent reconnects', async (t) => {
  // A fake server that answers the hello and then never says anything again.
  const { createServer } = await import('node:net');
  let accepted = 0;
  const fake = createServer((s) => {
    accepted++;
    s.once('data', () => s.write(encodeMessage({ t: 'hello', v: 1, lastSeq: 0 })));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
  const port = (fake.address() as { port: number }).port;
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast, heartbeatMs: 50, deadAfterMs: 200 }).start();
  const errs: string[] = [];
  client.on('disconnect', (e) => errs.push(e.code));
  await waitFor(() => errs.includes(AgentErrorCodes.HEARTBEAT_TIMEOUT) && accepted >= 2, 'heartbeat timeout and reconnect');
  t.pass();
  await client.stop(0);
  await new Promise((r) => fake.close(r));
});

test('connect failures name the target and the reason', async (t) => {
  const probe = await startServer();
  const port = probe.port;
  await probe.server.close();
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast });
  const errs: Array<[string, number | undefined]> = [];
  client.on('disconnect', (e, retry) => errs.push([e.message, retry]));
  client.start();
  await waitFor(() => errs.length >= 3, 'three attempts');
  t.is(errs[0]![0], `connect 127.0.0.1:${port} failed: ECONNREFUSED`);
  t.true(errs.every(([, r]) => typeof r === 'number' && r >= 0 && r <= 150));
  await client.stop(0);
  t.throws(() => new TransportClient({ host: 'x', overflow: 'drop-all' as never }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  t.throws(() => new TransportClient({ host: '' }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
});

test('the receiver closes a connection whose agent went silent', async (t) => {
  const sink = await startServer({ heartbeatMs: 50, deadAfterMs: 200 });
  const disconnects: string[] = [];
  sink.server.on('disconnect', (_a, reason) => disconnects.push(reason));
  const raw = await rawClient(sink.port);
  raw.socket.write(hello()); // then nothing, not even heartbeats
  const reply = await raw.closed;
  const msgs: unknown[] = [];
  new MessageReader(1 << 20).push(reply, (b) => msgs.push(decodeMessage(b)));
  t.like(msgs[0], { t: 'hello', v: 1, lastSeq: 0 });
  t.like(msgs[msgs.length - 1], { t: 'error', code: AgentErrorCodes.HEARTBEAT_TIMEOUT });
  t.true(msgs.some((m) => (m as { t: string }).t === 'hb'), 'the receiver sent heartbeats meanwhile');
  await waitFor(() => disconnects.length === 1, 'disconnect event');
  t.regex(disconnects[0]!, /^DBTAP_E_HEARTBEAT_TIMEOUT/);
  await sink.server.close();
});

test('packed records are queued whole, and frame by frame near the bound so overflow counts stay exact', async (t) => {
  const probe = await startServer();
  const port = probe.port;
  await probe.server.close();
  const client = new TransportClient({ host: '127.0.0.1', port, ...fast, batchMaxPackets: 100, queueMaxPackets: 250 }).start();
  const pack = (from: number, n: number) => {
    const b = new BatchBuilder(1 << 16);
    for (let i = from; i < from + n; i++) b.add(numberedFrame(i, 30 + (i % 5)));
    return Buffer.from(b.seal());
  };
  t.is(client.sendRecords(pack(0, 100), 100), 100);
  t.is(client.sendRecords(pack(100, 100), 100), 100);
  t.is(client.sendRecords(pack(200, 100), 100), 50, 'only 50 fit');
  t.is(client.sendRecords(pack(300, 10), 10), 0);
  t.like(client.stats(), { queuedPackets: 250, droppedPackets: 60, enqueuedPackets: 250 });
  t.throws(() => client.sendRecords(pack(0, 2).subarray(0, 40), 2), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  const sink = await startServer({}, port);
  t.true(await client.drain(10_000));
  t.deepEqual(sink.frames.map(frameId), Array.from({ length: 250 }, (_, i) => i));
  t.deepEqual(Buffer.from(sink.frames[123]!.data), Buffer.from(numberedFrame(123, 30 + 3).data));
  t.is(sink.frames[123]!.origLen, numberedFrame(123, 33).origLen);
  await client.stop();
  await sink.server.close();
});

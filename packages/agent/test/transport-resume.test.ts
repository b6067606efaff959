// A receiver that restarts remembers, through `resumeSeq`, which batches it
// already processed: an agent re-sending them gets acknowledgements, and the
// consumer never sees them twice.
import test from 'ava';
import type { Frame } from '@dbtap/core';
import { TransportClient, TransportServer } from '../src/index.js';

const frame = (i: number): Frame => ({ ts: 1_700_000_000_000_000 + i, linkType: 1, data: Uint8Array.of(i & 0xff, 1, 2, 3), origLen: 4, interfaceId: 0 });

test('batches at or below the durable position are acknowledged, not delivered', async (t) => {
  const delivered: number[] = [];
  const asked: string[] = [];
  const server = new TransportServer({
    onBatch: (_agent, frames, seq) => {
      delivered.push(seq);
      t.is(frames.length, 1);
    },
    // the consumer's durable record says batches 1..3 of this instance are done
    resumeSeq: async (instance) => {
      asked.push(instance);
      await new Promise((r) => setTimeout(r, 50));
      return 3;
    },
  });
  const [addr] = await server.listen([{ host: '127.0.0.1', port: 0 }]);
  const client = new TransportClient({ host: '127.0.0.1', port: addr!.port, agentId: 'db1', batchMaxPackets: 1 }).start();
  for (let i = 0; i < 6; i++) t.true(client.send(frame(i)));
  t.true(await client.drain(10_000));
  const st = await client.stop();
  t.deepEqual(asked, [client.agent.instance]);
  // the agent counts 1..3 as acknowledged by the hello's lastSeq; 4..6 are delivered once each
  t.deepEqual(delivered, [4, 5, 6]);
  t.is(st.ackedPackets, 6);
  await server.close();
});

test('a failing resumeSeq refuses the agent instead of delivering twice', async (t) => {
  const delivered: number[] = [];
  const server = new TransportServer({
    onBatch: (_a, _f, seq) => void delivered.push(seq),
    resumeSeq: () => {
      throw new Error('store unavailable');
    },
  });
  const errors: string[] = [];
  server.on('disconnect', (_a, reason) => errors.push(String(reason)));
  const [addr] = await server.listen([{ host: '127.0.0.1', port: 0 }]);
  const client = new TransportClient({ host: '127.0.0.1', port: addr!.port, agentId: 'db1', batchMaxPackets: 1, reconnectMinMs: 50, reconnectMaxMs: 100 }).start();
  client.send(frame(1));
  t.false(await client.drain(500));
  await client.stop(0);
  t.deepEqual(delivered, []);
  t.true(errors.length === 0 || errors.every((e) => /resume|store unavailable|closed/i.test(e)), errors.join('; '));
  await server.close();
});

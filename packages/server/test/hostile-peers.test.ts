// Peers that never authenticate cost bounded memory and no availability:
// before the hello only a small message is buffered, the hello has a
// deadline, and connections are bounded per address and in total.
import test from 'ava';
import { connect, type Socket } from 'node:net';
import { TransportClient } from '@dbtap/agent';
import { AuditServer, SqliteStore } from '@dbtap/server';
import { exampleFrames } from '../../../test-support/frames.js';

const MiB = 1 << 20;

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// A peer that announces a `len`-byte message and then trickles bytes, or
// without `len` stays silent; never a hello.
function hostilePeer(port: number, localAddress: string, len?: number): { socket: Socket; closed: Promise<void> } {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  const head = Buffer.alloc(4);
  head.writeUInt32BE(len ?? 0, 0);
  const trickle = setInterval(() => len !== undefined && socket.writable && socket.write(Buffer.alloc(16 << 10, 0x41)), 50);
  if (len !== undefined) socket.on('connect', () => socket.write(head));
  socket.resume();
  const closed = new Promise<void>((r) => socket.on('close', () => { clearInterval(trickle); r(); }));
  return { socket, closed };
}

async function deliver(port: number): Promise<number> {
  const frames = exampleFrames();
  const client = new TransportClient({ host: '127.0.0.1', port, token: 's3cret', agentId: 'db1' }).start();
  for (const f of frames) client.send(f);
  const drained = await client.drain(60_000);
  const st = await client.stop();
  return drained ? st.ackedPackets : -1;
}

test('regression: 80 peers announcing 16 MiB messages before the hello are refused at once; memory stays bounded and an agent still delivers', async (t) => {
  t.timeout(180_000);
  const store = new SqliteStore({ path: ':memory:' });
  const lines: string[] = [];
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], agentToken: 's3cret', log: (l) => lines.push(l) });
  try {
    const port = Number((await server.start()).agents[0]!.split(':').pop());
    global.gc?.();
    const before = process.memoryUsage();
    // 40 addresses of 127/8, two peers each
    const peers = Array.from({ length: 80 }, (_, i) => hostilePeer(port, `127.0.0.${2 + (i % 40)}`, 16 * MiB));
    await Promise.all(peers.map((p) => p.closed));
    const after = process.memoryUsage();
    const grown = after.rss - before.rss;
    t.log(`rss grew ${(grown / MiB).toFixed(1)} MiB, heap ${((after.heapUsed - before.heapUsed) / MiB).toFixed(1)} MiB with 80 hostile peers`);
    // unbounded, 80 peers would reach 80 x 16 MiB = 1280 MiB; the bound is 80 x 64 KiB plus socket buffers
    t.true(grown < 64 * MiB, `rss grew ${grown} bytes`);
    const refusals = server.metrics().find((m) => m.name === 'dbtap_agent_refused_total')!.value as number;
    t.is(refusals, 80);
    t.true(lines.filter((l) => /DBTAP_E_FRAME_TOO_LARGE/.test(l)).length <= 2, 'refusals are logged at a throttled rate');
    t.is(await deliver(port), exampleFrames().length);
    const page = await store.search({ limit: 100 });
    t.true(page.records.some((r) => r.sql === 'DROP TABLE customers'));
  } finally {
    await server.stop();
  }
});

test('a peer that never says hello is closed after its hello deadline; connections beyond the per-address and total limits are refused', async (t) => {
  t.timeout(120_000);
  const store = new SqliteStore({ path: ':memory:' });
  const lines: string[] = [];
  const server = new AuditServer({
    store,
    agentListen: [{ host: '127.0.0.1', port: 0 }],
    agentToken: 's3cret',
    agentLimits: { helloTimeoutMs: 3000, maxConnections: 4, maxConnectionsPerAddress: 2 },
    log: (l) => lines.push(l),
  });
  try {
    const port = Number((await server.start()).agents[0]!.split(':').pop());
    const refused = (): number => server.metrics().find((m) => m.name === 'dbtap_agent_refused_total')!.value as number;
    // silent peers: only the limits and the hello deadline stop them
    const a = [0, 1, 2].map(() => hostilePeer(port, '127.0.0.2'));
    await until(() => refused() >= 1, 'the third peer from one address to be refused');
    const b = [3, 4, 5].map((i) => hostilePeer(port, `127.0.0.${i}`));
    await until(() => refused() >= 2, 'the fifth connection in total to be refused');
    await Promise.all([...a, ...b].map((p) => p.closed));
    t.is(refused(), 6, 'two refused at accept, four after the hello timeout');
    // one line per 10 s: the first refusal, the per-address limit
    t.deepEqual(lines.filter((l) => /^refused/.test(l)).map((l) => /DBTAP_E_\w+/.exec(l)?.[0]), ['DBTAP_E_CONNECTION_LIMIT']);
    t.is(await deliver(port), exampleFrames().length);
  } finally {
    await server.stop();
  }
});

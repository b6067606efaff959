// Frames with absurd timestamps cost those frames, never the batch they came
// in nor the agent's later batches.
import test from 'ava';
import type { Frame } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { AuditServer, SqliteStore } from '@dbtap/server';
import { exampleFrames } from '../../../test-support/frames.js';


async function sendThrough(server: AuditServer, frames: Frame[]): Promise<number> {
  const { agents } = await server.start();
  const port = Number(agents[0]!.split(':').pop());
  // one batch holds every frame: a refused batch would block all of them
  const client = new TransportClient({ host: '127.0.0.1', port, token: 's3cret', agentId: 'db1', batchMaxPackets: frames.length + 1, batchMaxDelayMs: 50 }).start();
  for (const f of frames) client.send(f);
  const drained = await client.drain(30_000);
  const cs = await client.stop();
  return drained ? cs.ackedPackets : -1;
}

function metric(server: AuditServer, name: string): number | undefined {
  return server.metrics().find((m) => m.name === name)?.value as number | undefined;
}

test('regression: a frame with a NaN timestamp is refused alone; the rest of its batch is stored and acknowledged', async (t) => {
  const frames = exampleFrames();
  const bad = { ...frames[0]!, ts: Number.NaN };
  const sent = [...frames.slice(0, 3), bad, ...frames.slice(3)];
  const store = new SqliteStore({ path: ':memory:' });
  const lines: string[] = [];
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], agentToken: 's3cret', log: (l) => lines.push(l) });
  try {
    t.is(await sendThrough(server, sent), sent.length);
    t.is(server.stats().refusedFrames, 1);
    t.is(metric(server, 'dbtap_frames_refused_total'), 1);
    t.is(lines.filter((l) => /refused a frame from agent:db1/.test(l)).length, 1);
    const page = await store.search({ order: 'asc', limit: 100 });
    t.is(page.records.filter((r) => r.kind === 'login').length, 4);
    t.true(page.records.some((r) => r.sql === 'DROP TABLE customers'));
  } finally {
    await server.stop();
  }
});

test('frames stamped before 1970, infinite or beyond the future window are refused and counted; the log line is throttled', async (t) => {
  const frames = exampleFrames();
  const bads = [-1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300, Date.now() * 1000 + 7200e6].map((ts) => ({ ...frames[0]!, ts }));
  const sent = [...bads, ...frames];
  const store = new SqliteStore({ path: ':memory:' });
  const lines: string[] = [];
  const server = new AuditServer({ store, agentListen: [{ host: '127.0.0.1', port: 0 }], agentToken: 's3cret', maxFutureSeconds: 3600, log: (l) => lines.push(l) });
  try {
    t.is(await sendThrough(server, sent), sent.length);
    t.is(server.stats().refusedFrames, bads.length);
    t.is(lines.filter((l) => /refused a frame/.test(l)).length, 1);
    const page = await store.search({ order: 'asc', limit: 100 });
    t.is(page.records.filter((r) => r.kind === 'login').length, 4);
    // a report over what was stored finishes: no 1e300 timestamp reached the store
    t.true(page.records.every((r) => Number.isFinite(r.ts) && r.ts < Date.now() * 1000 + 3600e6));
  } finally {
    await server.stop();
  }
});

// Webhook notifications against a local HTTP server that answers from a
// script: bodies and headers, retries with backoff, 429 with Retry-After,
// final 4xx, giving up, timeouts, and the spool across a restart.
import test from 'ava';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRetryAfter } from '../src/notify/webhook.js';
import { Notifier, NotifyErrorCodes, parseNotificationConfig, type NotificationPayload, type NotifierEvent } from '@dbtap/server';
import { alert, record, waitFor } from './notify-helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbtap-notify-webhook-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

interface Hit {
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** An HTTP server answering each POST with the next scripted answer (the last one repeats). */
async function hook(script: Array<{ status: number; headers?: Record<string, string>; hang?: boolean }>): Promise<{ url: string; hits: Hit[]; server: Server }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      const a = script[Math.min(hits.length - 1, script.length - 1)]!;
      if (a.hang) return; // never answers
      res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers });
      res.end(a.status >= 300 ? `answer ${a.status}` : 'ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts?src=dbtap`, hits, server };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

test('single delivery posts one JSON object with the custom headers; batched delivery posts arrays', async (t) => {
  const h = await hook([{ status: 204 }]);
  const channels = parseNotificationConfig(
    [
      { type: 'webhook', name: 'one', url: h.url, headers: { Authorization: 'Bearer s3cret', 'X-Env': 'test' }, minRisk: 'high' },
      { type: 'webhook', name: 'many', url: h.url, batchSize: 50, minRisk: 'low', records: true },
    ],
    'test',
  );
  const n = new Notifier(channels, { hostname: 'audit-7' });
  const a = alert(1, 'high', { params: [1n, 'x'] });
  n.notify(a);
  for (let i = 0; i < 5; i++) n.notify(record(10 + i, 'low'));
  n.notify(record(20, 'none')); // below every minimum
  t.true(await n.flush());
  const singles = h.hits.filter((x) => !Array.isArray(x.body));
  const arrays = h.hits.filter((x) => Array.isArray(x.body));
  t.is(singles.length, 1);
  const one = singles[0]!;
  t.is(one.headers.authorization, 'Bearer s3cret');
  t.is(one.headers['x-env'], 'test');
  t.is(one.headers['content-type'], 'application/json');
  t.regex(one.headers['user-agent']!, /^dbtap\//);
  const p = one.body as NotificationPayload;
  t.like(p, { type: 'alert', host: 'audit-7', risk: 'high', time: '2024-05-29T16:26:40.001123Z', summary: 'Bulk export: 1 rows read from shop.customers' });
  t.is(p.event!.id, a.id);
  t.deepEqual(p.event!.params, ['1', 'x'] as unknown, 'bigints as decimal strings');
  // The batched channel got the alert and the five records, in order, in one or more arrays.
  const batched = arrays.flatMap((x) => x.body as NotificationPayload[]);
  t.deepEqual(
    batched.map((b) => b.event!.id),
    [a.id, 'f10:1', 'f11:1', 'f12:1', 'f13:1', 'f14:1'],
  );
  t.deepEqual(
    batched.map((b) => b.type),
    ['alert', 'record', 'record', 'record', 'record', 'record'],
  );
  t.like(n.stats()[0], { sent: 1, failed: 0, retries: 0 });
  t.like(n.stats()[1], { sent: 6, failed: 0, retries: 0 });
  await n.close();
  await stop(h.server);
});

test('5xx answers are retried with exponential backoff and jitter until success', async (t) => {
  const h = await hook([{ status: 500 }, { status: 502 }, { status: 503 }, { status: 200 }]);
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'webhook', url: h.url, retries: 5, backoff: { initialMs: 8, maxMs: 20, jitter: 0.5 } }], 'test');
  const rnd = [0, 0.5, 0.999];
  let k = 0;
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e), random: () => rnd[k++ % rnd.length]! });
  n.notify(alert(1, 'high'));
  t.true(await n.flush());
  t.is(h.hits.length, 4);
  const retries = events.filter((e): e is Extract<NotifierEvent, { type: 'retry' }> => e.type === 'retry');
  t.deepEqual(
    retries.map((r) => r.attempt),
    [1, 2, 3],
  );
  // delay = min(maxMs, initialMs * 2^n) * (1 - jitter * random): 8 * 1, 16 * 0.75, 20 * 0.5005.
  t.deepEqual(
    retries.map((r) => r.delayMs),
    [8, 12, 10],
  );
  t.true(retries.every((r) => r.error.code === NotifyErrorCodes.HTTP_STATUS));
  t.regex(retries[0]!.error.message, /HTTP 500: answer 500/);
  t.like(n.stats()[0], { sent: 1, failed: 0, retries: 3 });
  t.deepEqual(h.hits[3]!.body, h.hits[0]!.body, 'the same notification each time');
  await n.close();
  await stop(h.server);
});

test('429 waits as long as Retry-After says; other 4xx answers are final', async (t) => {
  const h = await hook([{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }, { status: 404 }]);
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'webhook', url: h.url, retries: 3, backoff: { initialMs: 5, maxMs: 5 } }], 'test');
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e) });
  n.notify(alert(1, 'high'));
  t.true(await n.flush());
  const retry = events.find((e) => e.type === 'retry') as Extract<NotifierEvent, { type: 'retry' }>;
  t.is(retry.delayMs, 1000);
  t.is(h.hits.length, 2);

  n.notify(alert(2, 'high')); // answered 404: no retry
  t.true(await n.flush());
  t.is(h.hits.length, 3);
  const failed = events.filter((e) => e.type === 'failed') as Array<Extract<NotifierEvent, { type: 'failed' }>>;
  t.is(failed.length, 1);
  t.is(failed[0]!.error.code, NotifyErrorCodes.HTTP_STATUS);
  t.is(failed[0]!.error.details?.status, 404);
  t.like(n.stats()[0], { sent: 1, failed: 1, retries: 1 });
  t.regex(n.stats()[0]!.lastError!, /HTTP 404/);
  await n.close();
  await stop(h.server);
});

test('Retry-After as delay-seconds or HTTP-date; a long one is cut to maxRetryAfterMs', async (t) => {
  const now = Date.parse('2024-05-29T16:00:00Z');
  t.is(parseRetryAfter('120', now), 120_000);
  t.is(parseRetryAfter('Wed, 29 May 2024 16:00:30 GMT', now), 30_000);
  t.is(parseRetryAfter('Wed, 29 May 2024 15:00:00 GMT', now), 0);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);

  const h = await hook([{ status: 503, headers: { 'retry-after': '3600' } }, { status: 200 }]);
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'webhook', url: h.url, maxRetryAfterMs: 30 }], 'test');
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e) });
  n.notify(alert(1, 'high'));
  t.true(await n.flush());
  t.is((events.find((e) => e.type === 'retry') as Extract<NotifierEvent, { type: 'retry' }>).delayMs, 30);
  await n.close();
  await stop(h.server);
});

test('gives up after the configured retries, counts the failure, and goes on with the next', async (t) => {
  const h = await hook([{ status: 503 }, { status: 503 }, { status: 503 }, { status: 201 }]);
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'webhook', url: h.url, retries: 2, backoff: { initialMs: 1, maxMs: 2 } }], 'test');
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e) });
  n.notify(alert(1, 'high'));
  n.notify(alert(2, 'high'));
  t.true(await n.flush());
  t.is(h.hits.length, 4, 'three attempts for the first, one for the second');
  t.deepEqual(
    h.hits.map((x) => (x.body as NotificationPayload).event!.id),
    ['f1:1:alert:bulk-export', 'f1:1:alert:bulk-export', 'f1:1:alert:bulk-export', 'f2:1:alert:bulk-export'],
  );
  t.like(n.stats()[0], { sent: 1, failed: 1, retries: 2 });
  t.deepEqual(
    events.filter((e) => e.type === 'failed').map((e) => (e as { count: number }).count),
    [1],
  );
  await n.close();
  await stop(h.server);
});

test('a request without an answer times out and is retried; a refused connection is retried', async (t) => {
  const h = await hook([{ status: 200, hang: true }, { status: 200 }]);
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'webhook', url: h.url, timeoutMs: 250, retries: 1, backoff: { initialMs: 1, maxMs: 1 } }], 'test');
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e) });
  n.notify(alert(1, 'high'));
  t.true(await n.flush());
  const retry = events.find((e) => e.type === 'retry') as Extract<NotifierEvent, { type: 'retry' }>;
  t.is(retry.error.code, NotifyErrorCodes.TIMEOUT);
  t.like(n.stats()[0], { sent: 1, retries: 1 });
  await n.close();
  await stop(h.server);

  // Nothing listens on the port any more.
  const ev2: NotifierEvent[] = [];
  const [cfg2] = parseNotificationConfig([{ type: 'webhook', url: h.url, retries: 1, backoff: { initialMs: 1, maxMs: 1 } }], 'test');
  const n2 = new Notifier([cfg2!], { onEvent: (e) => ev2.push(e) });
  n2.notify(alert(2, 'high'));
  t.true(await n2.flush());
  t.deepEqual(
    ev2.map((e) => e.type),
    ['retry', 'failed'],
  );
  t.regex((ev2[1] as Extract<NotifierEvent, { type: 'failed' }>).error.message, /ECONNREFUSED/);
  t.is((ev2[1] as Extract<NotifierEvent, { type: 'failed' }>).error.code, NotifyErrorCodes.SEND);
  await n2.close();
});

test('close() spools what is still waiting for a retry; the next notifier delivers it', async (t) => {
  const h = await hook([{ status: 503 }]);
  const spoolDir = join(tmp, 'spool');
  const [cfg] = parseNotificationConfig([{ type: 'webhook', name: 'siem', url: h.url, retries: 100, backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 } }], 'test');
  const n = new Notifier([cfg!], { spoolDir });
  n.notify(alert(1, 'high'));
  n.notify(alert(2, 'high'));
  n.notify(record(3, 'high')); // a record: not for this channel
  await waitFor(() => h.hits.length === 1, 'the first attempt');
  await n.close(20); // the first waits a minute for its retry: abandoned and spooled, with the second
  t.like(n.stats()[0], { sent: 0, failed: 0, dropped: 0, queued: 0 });
  n.notify(alert(4, 'high')); // after close: ignored
  await stop(h.server);

  const h2 = await hook([{ status: 200 }]);
  const restored: NotifierEvent[] = [];
  const [cfg2] = parseNotificationConfig([{ type: 'webhook', name: 'siem', url: h2.url }], 'test');
  const n2 = new Notifier([cfg2!], { spoolDir, onEvent: (e) => restored.push(e) });
  t.true(await n2.flush());
  t.deepEqual(
    h2.hits.map((x) => (x.body as NotificationPayload).event!.id),
    ['f1:1:alert:bulk-export', 'f2:1:alert:bulk-export'],
  );
  t.like(restored[0], { type: 'spooled', direction: 'restored', count: 2 });
  await n2.close();
  // The spool was consumed: a third notifier finds nothing.
  const n3 = new Notifier([cfg2!], { spoolDir });
  t.is(n3.stats()[0]!.queued, 0);
  await n3.close();
  await stop(h2.server);
});

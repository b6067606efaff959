// Notifier behaviour shared by every channel, seen through the file channel:
// NDJSON lines and rotation, minimum risk and the records flag, the token
// bucket and its "suppressed" summaries, the bounded queue, metrics, and
// bad records that must not escape notify().
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { Notifier, parseNotificationConfig, type NotificationPayload, type NotifierEvent } from '@dbtap/server';
import { alert, freePort, record, waitFor } from './notify-helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbtap-notify-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

function lines(path: string): NotificationPayload[] {
  if (!existsSync(path)) return [];
  const all = readFileSync(path, 'utf8').split('\n');
  all.pop(); // empty after the last line feed, or a line still being written
  return all
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as NotificationPayload);
}

function fileChannel(name: string, extra: Record<string, unknown> = {}) {
  const path = join(tmp, `${name}.ndjson`);
  const [cfg] = parseNotificationConfig([{ type: 'file', name, path, minRisk: 'low', ...extra }], 'test');
  return { cfg: cfg!, path };
}

test('file: one NDJSON line per notification; rotation keeps N files, each within maxBytes', async (t) => {
  const { cfg, path } = fileChannel('rot', { maxBytes: 3000, keep: 2 });
  const n = new Notifier([cfg], { hostname: 'audit-f' });
  for (let i = 0; i < 40; i++) n.notify(alert(i, 'high', { sql: `SELECT ${'c,'.repeat(150)} x FROM t${i}` }));
  t.true(await n.flush());
  await n.close();
  t.true(existsSync(`${path}.1`));
  t.true(existsSync(`${path}.2`));
  t.false(existsSync(`${path}.3`), 'only two rotated files are kept');
  for (const f of [path, `${path}.1`, `${path}.2`]) t.true(statSync(f).size <= 3000, f);
  // Oldest to newest, the kept lines are the last alerts in order, ending with the last one.
  const kept = [...lines(`${path}.2`), ...lines(`${path}.1`), ...lines(path)];
  const ids = kept.map((p) => p.event!.id);
  const first = Number(/^f(\d+):/.exec(ids[0]!)![1]);
  t.deepEqual(
    ids,
    Array.from({ length: 40 - first }, (_, k) => `f${first + k}:1:alert:bulk-export`),
  );
  t.true(first > 0, 'older lines were rotated away');
  t.like(kept.at(-1), { type: 'alert', host: 'audit-f', risk: 'high', summary: 'Bulk export: 39 rows read from shop.customers' });
  t.is(n.stats()[0]!.sent, 40);

  // A new notifier appends to the current file and still honours the limit.
  const before = lines(path).length;
  const n2 = new Notifier([cfg]);
  n2.notify(alert(40, 'high'));
  t.true(await n2.flush());
  await n2.close();
  const after = lines(path);
  t.is(after.at(-1)!.event!.id, 'f40:1:alert:bulk-export');
  t.true(after.length === before + 1 || after.length === 1, 'appended to the current file, or rotated first');
  t.true(statSync(path).size <= 3000);
});

test('file: keep 0 starts over without rotated copies; a line longer than maxBytes is still written whole', async (t) => {
  const { cfg, path } = fileChannel('keep0', { maxBytes: 1000, keep: 0 });
  const n = new Notifier([cfg]);
  n.notify(alert(1, 'high'));
  n.notify(alert(2, 'high', { sql: 'x'.repeat(3000) }));
  t.true(await n.flush());
  await n.close();
  t.false(existsSync(`${path}.1`));
  const got = lines(path);
  t.is(got.length, 1);
  t.is(got[0]!.event!.sql, 'x'.repeat(3000));
});

test('minimum risk applies to alerts; ordinary records only reach channels with records: true', async (t) => {
  const a = fileChannel('alerts-medium', { minRisk: 'medium' });
  const b = fileChannel('records-high', { minRisk: 'high', records: true });
  const c = fileChannel('everything', { minRisk: 'none', records: true });
  const n = new Notifier([a.cfg, b.cfg, c.cfg]);
  const events: AuditEvent[] = [
    alert(1, 'low'),
    alert(2, 'medium'),
    alert(3, 'high'),
    record(4, 'high'),
    record(5, 'medium'),
    record(6, undefined),
    { ...record(7, undefined), kind: 'login', sql: undefined },
  ];
  for (const e of events) n.notify(e);
  t.true(await n.flush());
  await n.close();
  const ids = (p: string) => lines(p).map((l) => l.event!.id);
  t.deepEqual(ids(a.path), ['f2:1:alert:bulk-export', 'f3:1:alert:bulk-export']);
  t.deepEqual(ids(b.path), ['f3:1:alert:bulk-export', 'f4:1']);
  t.deepEqual(
    ids(c.path),
    events.map((e) => e.id),
  );
  t.deepEqual(
    lines(c.path).map((l) => l.type),
    ['alert', 'alert', 'alert', 'record', 'record', 'record', 'record'],
  );
});

test('rate limit: a token bucket per channel; what it holds back is reported as "N alerts suppressed"', async (t) => {
  let now = 1_717_000_000_000;
  const { cfg, path } = fileChannel('limited', { rateLimit: { perSecond: 2, burst: 3 } });
  const other = fileChannel('unlimited');
  const n = new Notifier([cfg, other.cfg], { clock: () => now });
  for (let i = 0; i < 10; i++) n.notify(alert(i, i === 7 ? 'high' : 'medium'));
  t.like(n.stats()[0], { rateLimited: 7 });
  now += 500; // one token back
  n.notify(alert(10, 'medium'));
  now += 100;
  n.notify(alert(11, 'medium')); // no token yet
  t.true(await n.flush()); // flush sends the pending summary without waiting for a token
  await n.close();
  const got = lines(path);
  t.deepEqual(
    got.map((l) => (l.type === 'suppressed' ? `suppressed ${l.suppressed!.alerts}` : l.event!.id.split(':')[0])),
    ['f0', 'f1', 'f2', 'suppressed 7', 'f10', 'suppressed 1'],
  );
  const s = got[3]!;
  t.is(s.summary, '7 alerts suppressed by the rate limit of channel limited');
  t.is(s.risk, 'high', 'the highest risk among the suppressed');
  t.is(s.suppressed!.since, '2024-05-29T16:26:40.000000Z');
  t.is(s.time, '2024-05-29T16:26:40.000000Z');
  t.is(got[5]!.summary, '1 alert suppressed by the rate limit of channel limited');
  t.like(n.stats()[0], { sent: 6, rateLimited: 8, dropped: 0 });
  t.is(lines(other.path).length, 12, 'the limit is per channel');
});

test('rate limit: without further alerts the summary goes out once the bucket refills', async (t) => {
  let now = 1_717_000_000_000;
  const { cfg, path } = fileChannel('refill', { rateLimit: { perSecond: 50, burst: 1 }, records: true });
  const n = new Notifier([cfg], { clock: () => now });
  for (let i = 0; i < 5; i++) n.notify(i % 2 ? record(i, 'high') : alert(i, 'high'));
  now += 20; // one token's worth: the summary timer finds the bucket refilled
  await waitFor(() => lines(path).length >= 2, 'the first alert and the summary');
  t.true(await n.flush());
  const got = lines(path);
  t.is(got.length, 2);
  t.is(got[0]!.event!.id, 'f0:1:alert:bulk-export');
  t.like(got[1], { type: 'suppressed', summary: '4 notifications (2 alerts, 2 records) suppressed by the rate limit of channel refill' });
  await n.close();
});

test('bounded queue: beyond queueSize new notifications are dropped and counted; close without a spool drops the rest', async (t) => {
  const port = await freePort('tcp'); // nothing listens: the first batch waits for a connection
  const events: NotifierEvent[] = [];
  const [cfg] = parseNotificationConfig([{ type: 'syslog', name: 'stuck', transport: 'tcp', host: '127.0.0.1', port, queueSize: 5, reconnect: { initialMs: 50, maxMs: 50 } }], 'test');
  const n = new Notifier([cfg!], { onEvent: (e) => events.push(e) });
  for (let i = 0; i < 20; i++) n.notify(alert(i, 'high'));
  t.like(n.stats()[0], { queued: 6, dropped: 14, sent: 0 });
  t.is(events.filter((e) => e.type === 'dropped').length, 1, 'one report per overflow episode');
  const m = n.metrics();
  const v = (name: string) => m.find((s) => s.name === name && s.labels?.channel === 'stuck')?.value;
  t.is(v('dbtap_notify_dropped_total'), 14);
  t.is(v('dbtap_notify_queue'), 6);
  t.is(v('dbtap_notify_connected'), 0);
  t.is(v('dbtap_notify_sent_total'), 0);
  t.deepEqual(m.find((s) => s.name === 'dbtap_notify_queue')!.labels, { channel: 'stuck', type: 'syslog' });
  t.false(await n.flush(30));
  await n.close(0);
  t.like(n.stats()[0], { queued: 0, dropped: 20 });
  t.like(events.at(-1), { type: 'dropped', reason: 'closed', count: 6 });
});

test('notify() never throws: a record the formatters cannot handle fails alone', async (t) => {
  const { cfg, path } = fileChannel('robust', { records: true });
  const n = new Notifier([cfg]);
  const broken = { id: 'x', kind: 'alert', risk: 'high', ts: Number.NaN } as unknown as AuditEvent;
  n.notify(alert(0, 'high')); // delivered alone while the next three queue up as one batch
  t.notThrows(() => n.notify(broken));
  t.notThrows(() => n.notify(null as unknown as AuditEvent));
  n.notify(alert(1, 'high'));
  t.true(await n.flush());
  await n.close();
  t.deepEqual(
    lines(path).map((l) => l.event!.id),
    ['f0:1:alert:bulk-export', 'f1:1:alert:bulk-export'],
  );
  t.like(n.stats()[0], { sent: 2, failed: 1 });
  t.regex(n.stats()[0]!.lastError!, /cannot be formatted/);
});

test('a spool with unreadable lines restores the good ones', async (t) => {
  const spoolDir = join(tmp, 'spool-mixed');
  const { cfg, path } = fileChannel('mixed');
  const good = JSON.stringify({ type: 'event', event: alert(5, 'high') });
  const logs: string[] = [];
  mkdirSync(spoolDir, { recursive: true });
  writeFileSync(join(spoolDir, 'mixed.spool.ndjson'), `${good}\nnot json\n{"type":"event"}\n`);
  const n = new Notifier([cfg], { spoolDir, log: (l) => logs.push(l) });
  t.true(await n.flush());
  await n.close();
  t.deepEqual(
    lines(path).map((l) => l.event!.id),
    ['f5:1:alert:bulk-export'],
  );
  t.true(logs.some((l) => /2 unreadable line\(s\)/.test(l)));
  t.false(existsSync(join(spoolDir, 'mixed.spool.ndjson')));
});

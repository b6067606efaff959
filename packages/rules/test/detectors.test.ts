// Stateful detectors: counts, distinct counts and sums in sliding windows,
// grouped by fields. Windows follow record timestamps; every expectation
// here is an exact count of alerts at exact times, with events just inside
// and just outside the window, and the bound on the groups kept.
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import { RuleEngine, defaultRuleSet, formatDiagnostic, loadRuleObjects, type AlertRecord, type DetectorSpec, type RuleEngineOptions } from '../src/index.js';
import { MONDAY_10AM, login, s, statement } from './helpers/events.js';

const T0 = MONDAY_10AM;

function engineFor(detector: DetectorSpec, condition: string, opts: RuleEngineOptions = {}): RuleEngine {
  const r = loadRuleObjects({ rules: [{ id: 'd', name: 'Detector', risk: 'high', condition, detector }] }, 'detector-test');
  if (!r.ok) throw new Error(r.diagnostics.map(formatDiagnostic).join('\n'));
  return new RuleEngine(r.ruleSet, opts);
}

/** Feeds events in order; returns the alerts with the index of the event that raised each. */
function feed(engine: RuleEngine, events: AuditEvent[]): { at: number; alert: AlertRecord }[] {
  const out: { at: number; alert: AlertRecord }[] = [];
  events.forEach((e, i) => {
    for (const a of engine.process(e).alerts) out.push({ at: i, alert: a });
  });
  return out;
}

const failed = (ip: string, ts: number, user = 'app'): AuditEvent => login({ status: 'error', client: { ip, port: 50000 }, ts, user });

test('count in a sliding window: fires at the threshold, then starts afresh', (t) => {
  const eng = engineFor({ window: '60s', threshold: 3, groupBy: ['client.ip'] }, 'kind = login and status = error');
  const ev = [0, 10, 20, 30, 40, 50, 55].map((x) => failed('10.0.0.1', T0 + s(x)));
  const alerts = feed(eng, ev);
  // the 3rd and 6th failures complete a set of three
  t.deepEqual(
    alerts.map((a) => a.at),
    [2, 5],
  );
  const a = alerts[0]!.alert;
  t.is(a.kind, 'alert');
  t.deepEqual(a.ruleIds, ['d']);
  t.is(a.risk, 'high');
  t.is(a.alert.ruleId, 'd');
  t.is(a.alert.value, 3);
  t.is(a.alert.threshold, 3);
  t.is(a.alert.windowUs, s(60));
  t.is(a.alert.firstTs, T0);
  t.deepEqual(a.alert.group, { 'client.ip': '10.0.0.1' });
  t.deepEqual(a.alert.eventIds, ev.slice(0, 3).map((e) => e.id));
  t.is(a.alert.reason, 'Detector: 3 events in 1m for client.ip=10.0.0.1 (threshold 3)');
  t.is(a.client.ip, '10.0.0.1');
  t.is(a.id, `${ev[2]!.id}:alert:d`);
  // detector rules do not tag the record itself
  const last = failed('10.0.0.1', T0 + s(58));
  t.deepEqual(eng.process(last).ruleIds, []);
});

test('count window boundaries: an event exactly one window old no longer counts, one microsecond younger does', (t) => {
  const win = s(60);
  const inside = engineFor({ window: '60s', threshold: 2, groupBy: ['client.ip'] }, 'kind = login and status = error');
  t.deepEqual(feed(inside, [failed('10.0.0.1', T0), failed('10.0.0.1', T0 + win - 1)]).map((a) => a.at), [1]);
  const outside = engineFor({ window: '60s', threshold: 2, groupBy: ['client.ip'] }, 'kind = login and status = error');
  t.deepEqual(feed(outside, [failed('10.0.0.1', T0), failed('10.0.0.1', T0 + win)]), []);
  // the window slides: events 0, 40, 80, 120 s never have three within 60 s
  const slide = engineFor({ window: 60, threshold: 3, groupBy: ['client.ip'] }, 'kind = login and status = error');
  t.deepEqual(feed(slide, [0, 40, 80, 120].map((x) => failed('10.0.0.1', T0 + s(x)))), []);
  // ... but 0, 40, 59.999999 do
  const tight = engineFor({ window: 60, threshold: 3, groupBy: ['client.ip'] }, 'kind = login and status = error');
  t.deepEqual(feed(tight, [T0, T0 + s(40), T0 + win - 1].map((x) => failed('10.0.0.1', x))).map((a) => a.at), [2]);
});

test('groups are separate: per field value and per combination of fields', (t) => {
  const eng = engineFor({ window: '5m', threshold: 2, groupBy: ['client.ip', 'user'] }, 'kind = login and status = error');
  const alerts = feed(eng, [failed('10.0.0.1', T0, 'a'), failed('10.0.0.2', T0 + 1, 'a'), failed('10.0.0.1', T0 + 2, 'b'), failed('10.0.0.1', T0 + 3, 'a')]);
  t.deepEqual(
    alerts.map((a) => [a.at, a.alert.alert.group]),
    [[3, { 'client.ip': '10.0.0.1', user: 'a' }]],
  );
  // no groupBy: one global group
  const global = engineFor({ window: '5m', threshold: 3 }, 'kind = login and status = error');
  t.deepEqual(feed(global, [failed('1.1.1.1', T0), failed('2.2.2.2', T0 + 1), failed('3.3.3.3', T0 + 2)]).map((a) => [a.at, a.alert.alert.group]), [[2, {}]]);
  // records that do not match the condition are not counted
  const eng2 = engineFor({ window: '5m', threshold: 2, groupBy: ['client.ip'] }, 'kind = login and status = error');
  t.deepEqual(feed(eng2, [failed('10.0.0.1', T0), login({ client: { ip: '10.0.0.1', port: 1 }, ts: T0 + 1 }), statement('SELECT 1', { ts: T0 + 2 })]), []);
});

test('distinct count: one user from many addresses (account sharing)', (t) => {
  const eng = engineFor({ window: '10m', threshold: 3, groupBy: ['user'], distinct: 'client.ip' }, 'kind = login and status = ok');
  const ok = (user: string, ip: string, sec: number): AuditEvent => login({ user, client: { ip, port: 1 }, ts: T0 + s(sec) });
  const alerts = feed(eng, [
    ok('ann', '10.0.0.1', 0),
    ok('ann', '10.0.0.1', 10), // same address again: still one
    ok('bob', '10.0.0.9', 20),
    ok('ann', '10.0.0.2', 30),
    ok('bob', '10.0.0.9', 40),
    ok('ann', '10.0.0.3', 50), // third distinct address for ann
  ]);
  t.deepEqual(
    alerts.map((a) => a.at),
    [5],
  );
  const a = alerts[0]!.alert.alert;
  t.deepEqual(a.group, { user: 'ann' });
  t.is(a.value, 3);
  t.deepEqual([...a.distinctValues!].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  t.is(a.reason, 'Detector: 3 distinct client.ip in 10m for user=ann (threshold 3)');
  // an address seen exactly one window ago has left the window
  const b = engineFor({ window: '10m', threshold: 2, groupBy: ['user'], distinct: 'client.ip' }, 'kind = login');
  t.deepEqual(feed(b, [ok('cy', '10.0.0.1', 0), ok('cy', '10.0.0.2', 600)]), []);
  const c = engineFor({ window: '10m', threshold: 2, groupBy: ['user'], distinct: 'client.ip' }, 'kind = login');
  t.deepEqual(feed(c, [ok('cy', '10.0.0.1', 0), ok('cy', '10.0.0.2', 599.999999)]).map((x) => x.at), [1]);
  // a repeat refreshes an address: seen at 0 and 500 s, it is still in the window at 900 s
  const d = engineFor({ window: '10m', threshold: 2, groupBy: ['user'], distinct: 'client.ip' }, 'kind = login');
  t.deepEqual(feed(d, [ok('cy', '10.0.0.1', 0), ok('cy', '10.0.0.1', 500), ok('cy', '10.0.0.2', 900)]).map((x) => x.at), [2]);
});

test('sum in a window: rows returned per user (bulk export), resolved in 1/60 of the window', (t) => {
  const eng = engineFor({ window: '60s', threshold: 1000, groupBy: ['user'], sum: 'rowsReturned' }, 'kind = statement and rowsReturned > 0');
  const read = (user: string, rows: number, sec: number): AuditEvent => statement('SELECT * FROM customers', { user, rowsReturned: rows, ts: T0 + s(sec) });
  const alerts = feed(eng, [read('u1', 400, 0.5), read('u2', 900, 1), read('u1', 400, 30), read('u1', 199, 40), read('u1', 1, 59.9), read('u1', 500, 61)]);
  // 400 + 400 + 199 + 1 = 1000 at 59.9 s
  t.deepEqual(
    alerts.map((a) => a.at),
    [4],
  );
  const a = alerts[0]!.alert.alert;
  t.is(a.value, 1000);
  t.deepEqual(a.group, { user: 'u1' });
  t.is(a.reason, 'Detector: 1000 rowsReturned in 1m for user=u1 (threshold 1000)');
  // boundaries: with a 60 s window the buckets are 1 s wide; a bucket leaves
  // the sum once 60 buckets have begun after it
  const edge = (secs: number[]): number[] => feed(engineFor({ window: '60s', threshold: 2, sum: 'rowsReturned' }, 'rowsReturned > 0'), secs.map((x) => read('u', 1, x))).map((x) => x.at);
  t.deepEqual(edge([0.5, 59.99]), [1]); // same window
  t.deepEqual(edge([0.5, 60.0]), []); // bucket 0 has left at 60 s
  t.deepEqual(edge([0.0, 59.999999]), [1]);
  // statements without rows do not count
  t.deepEqual(feed(engineFor({ window: '60s', threshold: 1, sum: 'rowsReturned' }, 'kind = statement'), [statement('SELECT 1', { rowsReturned: 0 })]), []);
});

test('repeated slow fingerprints, counted per fingerprint whatever the literals', (t) => {
  const eng = new RuleEngine(defaultRuleSet(['slow-sql']));
  const slow = (id: number, sec: number, us = 1_500_000): AuditEvent => statement(`SELECT * FROM orders WHERE customer_id = ${id}`, { durationUs: us, ts: T0 + s(sec) });
  const events: AuditEvent[] = [];
  for (let i = 0; i < 9; i++) events.push(slow(i, i * 10));
  events.push(slow(99, 95, 900_000)); // not slow enough: not counted
  events.push(statement('SELECT * FROM users WHERE id = 1', { durationUs: 2_000_000, ts: T0 + s(96) })); // another fingerprint
  events.push(slow(100, 100)); // the 10th slow run of the orders query within 10 minutes
  const alerts = feed(eng, events).filter((a) => a.alert.alert.ruleId === 'slow.repeated-fingerprint');
  t.deepEqual(
    alerts.map((a) => a.at),
    [11],
  );
  t.deepEqual(alerts[0]!.alert.alert.group, { fingerprint: 'select * from orders where customer_id = ?' });
  t.is(alerts[0]!.alert.alert.eventIds!.length, 10);
});

test('brute force per client and per user from the built-in policy', (t) => {
  const eng = new RuleEngine(defaultRuleSet(['brute-force']));
  const events: AuditEvent[] = [];
  // 5 failures from one client within 60 s: per-client alert on the 5th
  for (let i = 0; i < 5; i++) events.push(failed('192.0.2.1', T0 + s(i * 12), `u${i}`));
  // 10 failures for one user from 10 clients within 10 minutes: per-user alert on the 10th
  for (let i = 0; i < 10; i++) events.push(failed(`198.51.100.${i}`, T0 + s(100 + i * 50), 'admin'));
  const alerts = feed(eng, events);
  t.deepEqual(
    alerts.map((a) => [a.at, a.alert.alert.ruleId]),
    [
      [4, 'bruteforce.per-client'],
      [14, 'bruteforce.per-user'],
    ],
  );
  // each failure is tagged by the stateless rule
  t.deepEqual(eng.process(failed('203.0.113.5', T0 + s(2000))).ruleIds, ['bruteforce.failed-login']);
});

test('memory stays bounded: least recently used groups are evicted beyond maxGroups', (t) => {
  const eng = engineFor({ window: '1h', threshold: 2, groupBy: ['client.ip'] }, 'kind = login and status = error', { maxGroups: 3 });
  const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];
  feed(
    eng,
    ips.map((ip, i) => failed(ip, T0 + i)),
  );
  let st = eng.stats();
  t.is(st.detectorGroups, 3);
  t.is(st.detectorEvictions, 2);
  // 10.0.0.1 was evicted: its second failure starts a new count (no alert)
  t.deepEqual(feed(eng, [failed('10.0.0.1', T0 + 10)]), []);
  // 10.0.0.5 is still held: its second failure alerts
  t.deepEqual(feed(eng, [failed('10.0.0.5', T0 + 11)]).length, 1);
  st = eng.stats();
  t.true(st.detectorGroups <= 3);
  // a large stream of distinct addresses never holds more than maxGroups
  const big = engineFor({ window: '1h', threshold: 5, groupBy: ['client.ip'] }, 'kind = login and status = error', { maxGroups: 1000 });
  for (let i = 0; i < 20000; i++) big.process(failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, T0 + i));
  t.is(big.stats().detectorGroups, 1000);
  t.is(big.stats().detectorEvictions, 19000);
  t.throws(() => new RuleEngine(defaultRuleSet(), { maxGroups: 0 }), { message: /maxGroups must be at least 1/ });
});

test('windows follow record time, not the clock; reset forgets them', (t) => {
  const eng = engineFor({ window: '60s', threshold: 2, groupBy: ['client.ip'] }, 'kind = login and status = error');
  // two failures a day apart in record time never meet, however fast they are processed
  t.deepEqual(feed(eng, [failed('10.0.0.1', T0), failed('10.0.0.1', T0 + s(86400))]), []);
  eng.reset();
  t.is(eng.stats().detectorGroups, 0);
  t.deepEqual(feed(eng, [failed('10.0.0.1', T0 + s(86400) + 1)]), []);
});

test('detector definitions are validated', (t) => {
  const bad = loadRuleObjects({
    rules: [
      { id: 'a', risk: 'low', condition: 'true', detector: { window: '0s', threshold: 1 } },
      { id: 'b', risk: 'low', condition: 'true', detector: { window: '1m', threshold: 0 } },
      { id: 'c', risk: 'low', condition: 'true', detector: { window: '1m', threshold: 1, distinct: 'user', sum: 'rowsReturned' } },
      { id: 'd', risk: 'low', condition: 'true', detector: { window: '1m', threshold: 1, sum: 'user' } },
      { id: 'e', risk: 'low', condition: 'true', detector: { window: '1m', threshold: 1, groupBy: ['nope'] } },
    ],
  });
  t.deepEqual(
    bad.diagnostics.map((d) => `${d.code}: ${d.message}`),
    [
      "DBTAP_E_RULE_SCHEMA: rule 'a': detector 'window' must be a duration such as 60s, 5m, 1h",
      "DBTAP_E_RULE_SCHEMA: rule 'b': detector 'threshold' must be a positive number",
      "DBTAP_E_RULE_SCHEMA: rule 'c': a detector counts 'distinct' values or a 'sum', not both",
      "DBTAP_E_RULE_TYPE: rule 'd': sum field 'user' is not numeric",
      "DBTAP_E_RULE_UNKNOWN_FIELD: rule 'e': unknown groupBy field 'nope'",
    ],
  );
  // a detector rule alerts by default
  const ok = loadRuleObjects({ rules: [{ id: 'f', risk: 'low', condition: 'true', detector: { window: 60, threshold: 2 } }] });
  t.is(ok.ruleSet.rule('f')!.action, 'alert');
  t.deepEqual(ok.ruleSet.rule('f')!.detector, { windowUs: 60_000_000, threshold: 2, groupBy: [] });
});

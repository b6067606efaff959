import test from 'ava';
import { BoundedMap, FifoPairing, KeyedPairing, pickCharset, type Pending } from '@dbtap/protocols';

interface Req extends Pending {
  id: number;
}
const req = (id: number): Req => ({ id, ts: id, truncated: false, gapBefore: false });

test('FIFO pairing: order kept, bound evicts the oldest and counts it unmatched', (t) => {
  const evicted: number[] = [];
  const q = new FifoPairing<Req>(3, (r) => evicted.push(r.id));
  for (let i = 1; i <= 5; i++) q.push(req(i));
  t.deepEqual(evicted, [1, 2]);
  t.is(q.length, 3);
  t.is(q.head()?.id, 3);
  t.is(q.at(2)?.id, 5);
  t.is(q.at(3), undefined);
  t.deepEqual(q.counters, { unmatchedRequests: 2, unmatchedResponses: 0, evicted: 2 });
  t.is(q.shift()?.id, 3);
  t.true(q.remove(q.at(1)!));
  t.deepEqual(
    [...q].map((r) => r.id),
    [4],
  );
  q.markTruncated();
  t.true(q.head()!.truncated);
  q.noRequest();
  t.deepEqual(
    q.flush().map((r) => r.id),
    [4],
  );
  t.deepEqual(q.counters, { unmatchedRequests: 3, unmatchedResponses: 1, evicted: 2 });
  t.is(q.length, 0);
  t.is(q.shift(), undefined);
});

test('FIFO pairing: a long pipeline shifts in order without losing requests', (t) => {
  const q = new FifoPairing<Req>(100_000, () => t.fail());
  for (let i = 0; i < 70_000; i++) q.push(req(i));
  let expect = 0;
  for (let i = 0; i < 50_000; i++) if (q.shift()!.id !== expect++) t.fail();
  for (let i = 70_000; i < 80_000; i++) q.push(req(i));
  t.is(q.length, 30_000);
  t.is(q.head()!.id, 50_000);
  t.is(q.indexOf(q.at(29_999)!), 29_999);
  while (q.length > 0) if (q.shift()!.id !== expect++) t.fail();
  t.is(expect, 80_000);
});

test('keyed pairing: responses find their request by key; strays and re-used keys are counted', (t) => {
  const evicted: number[] = [];
  const k = new KeyedPairing<number, Req>(2, (r) => evicted.push(r.id));
  k.push(7, req(1));
  k.push(8, req(2));
  k.push(7, req(3)); // same key again: the older is unmatched
  t.deepEqual(evicted, [1]);
  k.push(9, req(4)); // over the bound: the oldest (key 8) goes
  t.deepEqual(evicted, [1, 2]);
  t.is(k.take(7)?.id, 3);
  t.is(k.take(7), undefined);
  t.is(k.get(9)?.id, 4);
  k.markTruncated();
  t.true(k.get(9)!.truncated);
  t.deepEqual(
    k.flush().map((r) => r.id),
    [4],
  );
  t.deepEqual(k.counters, { unmatchedRequests: 3, unmatchedResponses: 1, evicted: 2 });
});

test('bounded map: evicts the oldest insertion and counts it; re-setting keeps the age', (t) => {
  const m = new BoundedMap<string, number>(2);
  m.set('a', 1).set('b', 2).set('a', 10).set('c', 3);
  t.false(m.has('a'));
  t.deepEqual([...m.keys()], ['b', 'c']);
  t.is(m.evictions, 1);
  t.true(m.delete('b'));
  m.clear();
  t.is(m.size, 0);
  t.is(m.evictions, 1);
});

test('bounded map: renew makes a held key the newest, a new one evicts the oldest', (t) => {
  const m = new BoundedMap<string, number>(2);
  m.set('a', 1).set('b', 2).renew('a', 10).renew('c', 3);
  t.deepEqual([...m.keys()], ['a', 'c']);
  t.is(m.get('a'), 10);
  t.is(m.evictions, 1);
  m.renew('c', 4);
  t.deepEqual([...m.keys()], ['a', 'c']);
  t.is(m.evictions, 1);
});

test('bounded map: the newest key renewed in place, then deleted, re-set and evicted, keeps the insertion order', (t) => {
  const m = new BoundedMap<string, number>(3);
  const entries = (): [string, number | undefined][] => [...m.keys()].map((k) => [k, m.get(k)]);
  m.set('a', 1).set('b', 2).renew('b', 3).renew('b', 4);
  t.deepEqual(entries(), [['a', 1], ['b', 4]]);
  // once the newest is deleted, renewing an older key moves it to the end
  m.delete('b');
  m.set('b', 5).renew('a', 6);
  t.deepEqual(entries(), [['b', 5], ['a', 6]]);
  // set() of a held key keeps its age; the newest stays the newest
  m.set('b', 7).renew('a', 8).set('c', 9).set('d', 10);
  t.deepEqual(entries(), [['a', 8], ['c', 9], ['d', 10]]);
  t.is(m.evictions, 1);
  m.clear();
  m.renew('d', 11).renew('e', 12).renew('d', 13);
  t.deepEqual(entries(), [['e', 12], ['d', 13]]);
});

test('charset precedence: audit object, then negotiated, then the default', (t) => {
  t.is(pickCharset('gbk', 'latin1'), 'gbk');
  t.is(pickCharset('gbk', 'utf8mb4'), 'gbk');
  t.is(pickCharset(undefined, 'UTF8'), 'utf-8');
  t.is(pickCharset(undefined, 'latin1'), 'windows-1252');
  t.is(pickCharset(undefined, 'no-such-charset'), 'utf-8');
  t.is(pickCharset(undefined, undefined, 'gb18030'), 'gb18030');
  t.is(pickCharset('', 'GBK'), 'gbk');
});

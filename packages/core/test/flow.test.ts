import test from 'ava';
import { decodePacket, FlowTable, TcpFlags, TcpStream, type CloseReason, type Flow, type FlowHandler, type FlowTableOptions } from '@dbtap/core';
import { tcpFrame, type TcpSpec } from './helpers/frames.js';
import { tupleHash } from '../src/flow/hash.js';

const { SYN, ACK, FIN, RST, PSH } = TcpFlags;

/** Records what a stream delivers: a byte image with gaps as '?' and a log. */
class Collector {
  out = '';
  gaps: number[] = [];
  data(bytes: Uint8Array): void {
    this.out += new TextDecoder().decode(bytes);
  }
  gap(n: number): void {
    this.gaps.push(n);
    this.out += '?'.repeat(n);
  }
}

function stream(max = 1 << 20): [TcpStream, Collector] {
  const c = new Collector();
  return [new TcpStream({ data: (b) => c.data(b), gap: (n) => c.gap(n) }, max), c];
}
const b = (s: string): Uint8Array => new TextEncoder().encode(s);

test('in-order, retransmitted and overlapping segments deliver each byte once', (t) => {
  const [s, c] = stream();
  s.syn(999);
  s.segment(1000, b('hello '), 0, 1);
  s.segment(1000, b('hello '), 0, 2); // retransmission
  s.segment(1003, b('lo wor'), 0, 3); // overlap + new bytes
  s.segment(1009, b('ld'), 0, 4);
  t.is(c.out, 'hello world');
  t.deepEqual(c.gaps, []);
  t.is(s.counters.duplicateBytes, 6 + 3);
  t.is(s.counters.delivered, 11);
});

test('out-of-order segments wait for the hole, then flow in order', (t) => {
  const [s, c] = stream();
  s.syn(0);
  s.segment(7, b('world'), 0, 1);
  s.segment(4, b('lo '), 0, 2);
  t.is(c.out, '');
  s.segment(1, b('hel'), 0, 3);
  t.is(c.out, 'hello world');
  t.is(s.pendingBytes, 0);
  t.is(s.counters.outOfOrder, 2);
});

test('sequence numbers wrap around 2^32', (t) => {
  const [s, c] = stream();
  s.syn(0xfffffffa);
  s.segment(0xfffffffb, b('abcd'), 0, 1);
  s.segment(0x00000001, b('ghij'), 0, 2); // after the wrap, out of order
  s.segment(0xffffffff, b('ef'), 0, 3); // straddles the wrap
  t.is(c.out, 'abcdefghij');
  t.is(s.nextSeq, 5);
});

test('snap-length truncation becomes a gap of the exact size', (t) => {
  const [s, c] = stream();
  s.syn(0);
  s.segment(1, b('abc'), 5, 1);
  s.segment(9, b('xyz'), 0, 2);
  t.is(c.out, 'abc?????xyz');
  t.deepEqual(c.gaps, [5]);
});

test('a hole is reported as a gap when the peer acknowledges past it', (t) => {
  const [s, c] = stream();
  s.syn(0);
  s.segment(1, b('aa'), 0, 1);
  s.segment(6, b('bb'), 0, 2);
  s.acked(3, 3); // not past the hole
  t.is(c.out, 'aa');
  s.acked(8, 4);
  t.is(c.out, 'aa???bb');
  t.deepEqual(c.gaps, [3]);
});

test('the out-of-order bound gives up on a hole instead of growing', (t) => {
  const [s, c] = stream(10);
  s.syn(0);
  s.segment(101, b('x'.repeat(6)), 0, 1);
  s.segment(107, b('y'.repeat(6)), 0, 2); // 12 bytes held > 10
  t.is(c.out, `${'?'.repeat(100)}${'x'.repeat(6)}${'y'.repeat(6)}`);
  t.is(s.pendingBytes, 0);
});

test('flush delivers held data with gaps, including bytes missing before a FIN', (t) => {
  const [s, c] = stream();
  s.syn(0);
  s.segment(5, b('tail'), 0, 1);
  s.fin(20, 0);
  s.flush(2);
  t.is(c.out, `????tail${'?'.repeat(11)}`);
  t.true(s.finished);
});

interface Log {
  events: string[];
  bytes: Map<string, [string, string]>;
  flows: Flow<unknown>[];
}

function table(opts: Partial<FlowTableOptions> = {}): [FlowTable, Log] {
  const log: Log = { events: [], bytes: new Map(), flows: [] };
  const h: FlowHandler<unknown> = {
    open: (f) => {
      log.flows.push(f);
      log.bytes.set(f.id, ['', '']);
      log.events.push(`open ${f.id}${f.midStream ? ' mid' : ''}`);
    },
    data: (f, dir, bytes) => {
      log.bytes.get(f.id)![dir] += new TextDecoder().decode(bytes);
    },
    gap: (f, dir, n) => {
      log.bytes.get(f.id)![dir] += '?'.repeat(n);
    },
    close: (f, reason: CloseReason) => log.events.push(`close ${f.id} ${reason}`),
  };
  return [new FlowTable(h, opts), log];
}

const C = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 3306 };
const S = { src: '10.0.0.2', dst: '10.0.0.1', sport: 3306, dport: 40000 };
const pkt = (spec: TcpSpec, ts = 1): ReturnType<typeof decodePacket> => decodePacket(tcpFrame(spec, ts));

test('a full connection: handshake, both directions, FIN close, late ACK absorbed', (t) => {
  const [ft, log] = table();
  ft.process(pkt({ ...C, seq: 100, flags: SYN }));
  ft.process(pkt({ ...S, seq: 500, ack: 101, flags: SYN | ACK }));
  ft.process(pkt({ ...C, seq: 101, ack: 501, flags: ACK }));
  ft.process(pkt({ ...S, seq: 501, ack: 101, flags: PSH | ACK, payload: 'greeting' }));
  ft.process(pkt({ ...C, seq: 101, ack: 509, flags: PSH | ACK, payload: 'query' }));
  ft.process(pkt({ ...C, seq: 106, ack: 509, flags: FIN | ACK }));
  ft.process(pkt({ ...S, seq: 509, ack: 107, flags: FIN | ACK }));
  ft.process(pkt({ ...C, seq: 107, ack: 510, flags: ACK }));
  const id = '10.0.0.1:40000>10.0.0.2:3306#1';
  t.deepEqual(log.events, [`open ${id}`, `close ${id} fin`]);
  t.deepEqual(log.bytes.get(id), ['query', 'greeting']);
  t.is(ft.size, 0);
  t.is(ft.stats.closedFin, 1);
  t.is(log.flows[0]!.client.port, 40000);
  t.is(log.flows[0]!.server.port, 3306);
});

test('orientation without a SYN: server port, then the lower port', (t) => {
  const [ft, log] = table({ isServerPort: (p: number) => p === 50000 });
  ft.process(pkt({ src: '10.0.0.9', dst: '10.0.0.8', sport: 50000, dport: 60000, payload: 'resp' }));
  ft.process(pkt({ src: '10.0.0.9', dst: '10.0.0.8', sport: 45000, dport: 5432, payload: 'q' }));
  t.is(log.flows[0]!.server.port, 50000);
  t.true(log.flows[0]!.midStream);
  t.is(log.flows[1]!.server.port, 5432);
  t.is(ft.stats.midStream, 2);
});

test('RST closes at once; a new SYN on the same tuple is a new connection', (t) => {
  const [ft, log] = table();
  ft.process(pkt({ ...C, seq: 1, flags: SYN }));
  ft.process(pkt({ ...C, seq: 2, flags: ACK, payload: 'a' }));
  ft.process(pkt({ ...S, seq: 9, flags: RST }));
  ft.process(pkt({ ...C, seq: 3, flags: ACK, payload: 'late' })); // absorbed
  ft.process(pkt({ ...C, seq: 1000, flags: SYN }));
  t.deepEqual(log.events.map((e) => e.replace(/ \S+#/, ' #')), ['open #1', 'close #1 rst', 'open #2']);
  t.is(ft.stats.closedRst, 1);
});

test('idle flows time out by capture time; the oldest flow is evicted at the cap', (t) => {
  const [ft, log] = table({ idleTimeoutUs: 10_000_000, maxFlows: 2 });
  for (let i = 0; i < 3; i++) ft.process(pkt({ ...C, sport: 1000 + i, seq: 1, flags: SYN }, i));
  t.is(ft.stats.evictions, 1);
  t.is(ft.size, 2);
  t.true(log.events.some((e) => e.includes(':1000>') && e.endsWith('evicted')));
  ft.process(pkt({ ...C, sport: 2000, seq: 1, flags: SYN }, 20_000_000));
  t.is(ft.stats.timeouts, 2);
  ft.flush(30_000_000);
  t.is(ft.size, 0);
  t.is(log.events.filter((e) => e.startsWith('open')).length, log.events.filter((e) => e.startsWith('close')).length);
});

test('the table-wide memory cap evicts flows holding out-of-order data', (t) => {
  const [ft, log] = table({ maxBufferedBytes: 100 });
  ft.process(pkt({ ...C, seq: 1, flags: SYN }));
  ft.process(pkt({ ...C, seq: 2, flags: ACK, payload: 'a' }));
  ft.process(pkt({ ...C, seq: 1000, flags: ACK, payload: 'z'.repeat(150) }));
  t.is(ft.stats.evictions, 1);
  t.is(ft.stats.bufferedBytes, 0);
  const id = log.flows[0]!.id;
  t.is(log.bytes.get(id)![0], `a${'?'.repeat(997)}${'z'.repeat(150)}`);
});

test('stray ACKs and FINs of unseen connections do not open flows', (t) => {
  const [ft] = table();
  ft.process(pkt({ ...C, seq: 5, flags: ACK }));
  ft.process(pkt({ ...C, seq: 5, flags: FIN | ACK }));
  t.is(ft.stats.flows, 0);
});

test('the least recently active flow is evicted at the cap, not the first opened', (t) => {
  const [ft, log] = table({ maxFlows: 2 });
  ft.process(pkt({ ...C, sport: 1000, seq: 1, flags: SYN }, 1));
  ft.process(pkt({ ...C, sport: 1001, seq: 1, flags: SYN }, 2));
  ft.process(pkt({ ...C, sport: 1000, seq: 2, flags: ACK, payload: 'x' }, 3));
  ft.process(pkt({ ...C, sport: 1002, seq: 1, flags: SYN }, 4));
  t.deepEqual(log.events.filter((e) => e.endsWith('evicted')).map((e) => e.replace(/^close 10\.0\.0\.1:(\d+)>.*$/, '$1')), ['1001']);
  t.deepEqual([...ft.activeFlows()].map((f) => f.client.port), [1000, 1002]);
});

test('connections whose tuples share a hash bucket are kept apart, through close, linger and reuse', (t) => {
  // Find two clients of the same server whose tuples land in one bucket (hosts 10.x.y.z, port 40000).
  const server = new Uint8Array([10, 0, 0, 2]);
  const ip = new Uint8Array([10, 0, 0, 0]);
  const seen = new Map<number, number>();
  let pair: [number, number] | undefined;
  for (let i = 1; i < 1 << 22 && pair === undefined; i++) {
    ip[1] = i >> 16;
    ip[2] = (i >> 8) & 255;
    ip[3] = i & 255;
    const h = tupleHash(ip, 40000, server, 3306);
    const other = seen.get(h);
    if (other !== undefined) pair = [other, i];
    else seen.set(h, i);
  }
  if (pair === undefined) return t.fail('no two tuples share a bucket');
  const host = (i: number): string => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
  const a = { src: host(pair[0]), dst: '10.0.0.2', sport: 40000, dport: 3306 };
  const aBack = { src: '10.0.0.2', dst: host(pair[0]), sport: 3306, dport: 40000 };
  const b = { src: host(pair[1]), dst: '10.0.0.2', sport: 40000, dport: 3306 };
  const [ft, log] = table();
  ft.process(pkt({ ...a, seq: 100, flags: SYN }));
  ft.process(pkt({ ...b, seq: 200, flags: SYN }));
  ft.process(pkt({ ...a, seq: 101, flags: ACK, payload: 'a1' }));
  ft.process(pkt({ ...b, seq: 201, flags: ACK, payload: 'b1' }));
  ft.process(pkt({ ...aBack, seq: 500, flags: ACK, payload: 'r' }));
  ft.process(pkt({ ...aBack, seq: 501, flags: RST }));
  ft.process(pkt({ ...a, seq: 103, flags: ACK, payload: 'late' })); // absorbed by the lingering flow
  ft.process(pkt({ ...b, seq: 203, flags: ACK, payload: 'b2' }));
  ft.process(pkt({ ...a, seq: 900, flags: SYN })); // the tuple reused
  ft.process(pkt({ ...a, seq: 901, flags: ACK, payload: 'a2' }));
  ft.flush(10);
  const ids = log.flows.map((f) => f.id);
  t.is(ids.length, 3);
  t.deepEqual(log.bytes.get(ids[0]!), ['a1', 'r']);
  t.deepEqual(log.bytes.get(ids[1]!), ['b1b2', '']);
  t.deepEqual(log.bytes.get(ids[2]!), ['a2', '']);
  t.deepEqual(log.events.filter((e) => e.startsWith('close')).map((e) => e.split(' ')[2]), ['rst', 'end-of-capture', 'end-of-capture']);
  t.is(ft.size, 0);
});

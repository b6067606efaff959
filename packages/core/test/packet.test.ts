import test from 'ava';
import { decodePacket, ipToString, LinkType, PacketDecoder, parseIp, parseTcpOptions, TcpFlags, type Frame } from '@dbtap/core';
import { bsdNull, ethernet, frame, ipv4, ipv6, ipv6Ext, ipv6Frag, sll, sll2, tcpSegment, udpDatagram } from './helpers/frames.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const seg = tcpSegment({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 3306, seq: 0xfffffff0, ack: 7, flags: TcpFlags.PSH | TcpFlags.ACK, payload: 'select 1' });

test('Ethernet / IPv4 / TCP decodes to views into the frame', (t) => {
  const f = frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, seg)));
  const p = decodePacket(f);
  t.is(p.status, 'ok');
  t.is(p.ipVersion, 4);
  t.is(ipToString(p.srcIp), '10.0.0.1');
  t.is(ipToString(p.dstIp), '10.0.0.2');
  t.is(p.tcp?.srcPort, 40000);
  t.is(p.tcp?.dstPort, 3306);
  t.is(p.tcp?.seq, 0xfffffff0);
  t.is(p.tcp?.ack, 7);
  t.is(p.tcp?.flags, TcpFlags.PSH | TcpFlags.ACK);
  t.is(text(p.payload), 'select 1');
  t.is(p.payload.buffer, f.data.buffer, 'payload is a view, not a copy');
  t.is(p.missingBytes, 0);
});

test('802.1Q and QinQ tags are recorded outermost first', (t) => {
  const p = decodePacket(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, seg), [100, 200])));
  t.is(p.status, 'ok');
  t.deepEqual(p.vlans, [100, 200]);
  t.is(text(p.payload), 'select 1');
});

test('Ethernet padding after a short IP packet is not payload', (t) => {
  const small = tcpSegment({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, payload: 'ab' });
  const p = decodePacket(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, small), [], 6)));
  t.is(text(p.payload), 'ab');
});

test('Linux SLL, SLL2, BSD null and raw IP link layers', (t) => {
  const pkt4 = ipv4('192.168.1.1', '192.168.1.2', 6, seg);
  const pkt6 = ipv6('::1', '::1', 6, seg);
  const cases: Array<[string, Frame]> = [
    ['sll', frame(sll(pkt4), LinkType.LINUX_SLL)],
    ['sll2 v6', frame(sll2(pkt6), LinkType.LINUX_SLL2)],
    ['null v4', frame(bsdNull(pkt4, 2), LinkType.NULL)],
    ['null v6 (macOS)', frame(bsdNull(pkt6, 30), LinkType.NULL)],
    ['raw v4', frame(pkt4, LinkType.RAW)],
    ['raw v6', frame(pkt6, LinkType.RAW)],
    ['ipv4', frame(pkt4, LinkType.IPV4)],
    ['ipv6', frame(pkt6, LinkType.IPV6)],
  ];
  for (const [name, f] of cases) {
    const p = decodePacket(f);
    t.is(p.status, 'ok', name);
    t.is(p.tcp?.dstPort, 3306, name);
    t.is(text(p.payload), 'select 1', name);
  }
});

test('IPv4 options are skipped by IHL', (t) => {
  const opts = new Uint8Array([0x94, 0x04, 0, 0]); // router alert
  const p = decodePacket(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, seg, { options: opts }))));
  t.is(p.status, 'ok');
  t.is(text(p.payload), 'select 1');
});

test('IPv6 extension headers are walked to the transport header', (t) => {
  const inner = ipv6Ext(60, new Uint8Array(4), ipv6Ext(6, new Uint8Array(12), seg)); // hop-by-hop, dest options
  const p = decodePacket(frame(ethernet(ipv6('2001:db8::1', '2001:db8::2', 0, inner))));
  t.is(p.status, 'ok');
  t.is(p.ipProto, 6);
  t.is(ipToString(p.srcIp), '2001:db8::1');
  t.is(text(p.payload), 'select 1');
});

test('UDP is decoded with its own length', (t) => {
  const p = decodePacket(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 17, udpDatagram(53, 5353, 'dns')))));
  t.is(p.status, 'ok');
  t.is(p.udp?.srcPort, 53);
  t.is(text(p.payload), 'dns');
});

test('ARP and unknown link types are unsupported, not errors', (t) => {
  const arp = new Uint8Array(42);
  arp[12] = 0x08;
  arp[13] = 0x06;
  t.is(decodePacket(frame(arp)).status, 'unsupported');
  t.is(decodePacket(frame(new Uint8Array(60), 147)).status, 'unsupported');
});

test('snap length: headers kept, missing payload bytes counted', (t) => {
  const full = ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, seg));
  const p = decodePacket(frame(full, LinkType.ETHERNET, 1, full.length - 3));
  t.is(p.status, 'truncated');
  t.is(text(p.payload), 'selec');
  t.is(p.missingBytes, 3);
});

test('truncation at every offset never throws and is reported as truncated', (t) => {
  const packets = [
    ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, seg), [7]),
    ethernet(ipv6('2001:db8::1', '2001:db8::2', 0, ipv6Ext(6, new Uint8Array(4), seg))),
  ];
  for (const full of packets) {
    for (let cut = 0; cut < full.length; cut++) {
      const data = full.subarray(0, cut);
      const p = decodePacket({ ts: 0, linkType: LinkType.ETHERNET, data, origLen: full.length });
      t.is(p.status, 'truncated', `cut at ${cut}`);
      if (p.tcp) t.is(p.payload.length + p.missingBytes, 8, `cut at ${cut}: bytes accounted`);
    }
  }
});

test('inconsistent headers are malformed', (t) => {
  const bad = ipv4('10.0.0.1', '10.0.0.2', 6, seg);
  bad[0] = 0x43; // IHL 12 bytes < 20
  t.is(decodePacket(frame(bad, LinkType.IPV4)).status, 'malformed');
  const badTcp = ipv4('10.0.0.1', '10.0.0.2', 6, seg);
  badTcp[20 + 12] = 0x10; // TCP data offset 4 bytes
  t.is(decodePacket(frame(badTcp, LinkType.IPV4)).status, 'malformed');
  const v6as4 = ipv6('::1', '::1', 6, seg);
  t.is(decodePacket(frame(v6as4, LinkType.IPV4)).status, 'malformed');
});

test('TCP options: MSS, window scale, SACK, timestamps', (t) => {
  const opts = new Uint8Array([2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20]);
  const s = tcpSegment({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: TcpFlags.SYN, options: opts });
  const p = decodePacket(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, s))));
  const o = parseTcpOptions(p.tcp!.options);
  t.is(o.mss, 1460);
  t.is(o.windowScale, 7);
  t.true(o.sackPermitted);
  t.deepEqual(o.timestamp, { value: 1, echo: 2 });
  t.deepEqual(o.sack, [[10, 20]]);
  t.falsy(o.malformed);
  t.true(parseTcpOptions(new Uint8Array([2, 9, 0])).malformed);
});

test('IPv4 fragments reassemble in any order; overlaps keep the first-arrived copy', (t) => {
  const payload = new Uint8Array(3000).map((_, i) => i & 0xff);
  const whole = tcpSegment({ src: '10.0.0.1', dst: '10.0.0.2', sport: 5, dport: 6, payload });
  const pieces = [
    [0, 1480],
    [1480, 2960],
    [2960, whole.length],
  ] as const;
  const frames = pieces.map(([a, b]) =>
    frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, whole.subarray(a, b), { id: 77, fragOffset: a, more: b < whole.length }))),
  );
  for (const order of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
    const dec = new PacketDecoder();
    const results = order.map((i) => dec.decode(frames[i]!));
    t.is(results[0]!.status, 'fragment');
    t.is(results[1]!.status, 'fragment');
    const last = results[2]!;
    t.is(last.status, 'ok', `order ${order}`);
    t.deepEqual(last.payload, payload);
    t.is(dec.stats.reassembled, 1);
    t.is(dec.pendingBytes, 0);
  }
  // An overlapping retransmitted fragment with different bytes: the first copy wins, counted.
  const dec = new PacketDecoder();
  dec.decode(frames[0]!);
  dec.decode(frames[1]!);
  const evil = whole.slice(1400, 2960).fill(0xee);
  dec.decode(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, evil, { id: 77, fragOffset: 1400, more: true }))));
  const done = dec.decode(frames[2]!);
  t.is(done.status, 'ok');
  t.deepEqual(done.payload, payload);
  t.true(dec.stats.fragOverlaps > 0);
});

test('IPv6 fragments reassemble', (t) => {
  const whole = tcpSegment({ src: '::1', dst: '::1', sport: 5, dport: 6, payload: 'x'.repeat(100) });
  const dec = new PacketDecoder();
  const a = dec.decode(frame(ethernet(ipv6('::1', '::2', 44, ipv6Frag(6, 9, 0, true, whole.subarray(0, 64))))));
  t.is(a.status, 'fragment');
  const b = dec.decode(frame(ethernet(ipv6('::1', '::2', 44, ipv6Frag(6, 9, 64, false, whole.subarray(64))))));
  t.is(b.status, 'ok');
  t.is(text(b.payload), 'x'.repeat(100));
});

test('fragment reassembly is bounded in memory and time', (t) => {
  const dec = new PacketDecoder({ maxDatagrams: 2, timeoutUs: 1000 });
  const part = (id: number, ts: number): Frame =>
    frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, new Uint8Array(16), { id, more: true })), LinkType.ETHERNET, ts);
  dec.decode(part(1, 0));
  dec.decode(part(2, 1));
  dec.decode(part(3, 2));
  t.is(dec.stats.fragEvictions, 1);
  dec.decode(part(4, 5000));
  t.is(dec.stats.fragTimeouts, 2);
  t.is(dec.pendingBytes, 16);
  const big = new PacketDecoder({ maxBytes: 100 });
  big.decode(frame(ethernet(ipv4('10.0.0.1', '10.0.0.2', 6, new Uint8Array(200), { id: 1, more: true }))));
  t.is(big.pendingBytes, 0);
  t.is(big.stats.fragEvictions, 1);
});

test('address text forms follow RFC 5952 and parse back', (t) => {
  const cases = ['::1', '::', '2001:db8::1', '2001:db8:0:1:1:1:1:1', '2001:0:0:1::1', 'fe80::1:0:0:1', '::ffff:10.1.2.3', '1::'];
  for (const c of cases) t.is(ipToString(parseIp(c)!), c);
  t.is(ipToString(parseIp('2001:DB8:0000:0000:0001:0000:0000:0001')!), '2001:db8::1:0:0:1');
  t.is(parseIp('1.2.3'), undefined);
  t.is(parseIp('1:2:3'), undefined);
  t.is(parseIp('256.1.1.1'), undefined);
});

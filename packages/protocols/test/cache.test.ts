import test from 'ava';
import { Direction, type AuditEvent } from '@dbtap/core';
import { cache, Confidence, createDefaultRegistry, FlowDetector } from '@dbtap/protocols';
import { clearMessages, openSession } from './helpers/dameng-fixtures.js';

/** A handshake of the published shape (constructed: no IRIS client or server was available). */
function handshake(version: number): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(2, 0);
  b.write('HS', 12, 'latin1');
  b.writeUInt16LE(version, 14);
  return b;
}

test('cache: a client handshake of the published shape is Medium; other openings are None', (t) => {
  t.is(cache.detect(handshake(61)), Confidence.Medium);
  t.is(cache.detect(handshake(61).subarray(0, 15)), Confidence.None, 'the body must be all there');
  t.is(cache.detect(handshake(0)), Confidence.None);
  t.is(cache.detect(clearMessages[0]!), Confidence.None, 'a Dameng startup');
  t.is(cache.detect(Buffer.from('GET / HTTP/1.1\r\n\r\n')), Confidence.None);
  t.is(cache.detect(new Uint8Array(0), Buffer.from('anything')), Confidence.None);
});

test('cache: with content unknown, a flow to port 1972 is labelled cache by port (Low); the Dameng startup wins by content on any port', (t) => {
  const registry = createDefaultRegistry();
  const byPort = new FlowDetector(registry, 1972, registry.forPort(1972));
  byPort.data(Direction.ToServer, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), 1);
  const got = byPort.data(Direction.ToClient, Buffer.from([9, 9, 9]), 2);
  t.like(got, { state: 'detected', by: 'port', confidence: Confidence.Low });
  t.is(got.state === 'detected' ? got.decoder.name : '', 'cache');
  const dm = new FlowDetector(registry, 1972, registry.forPort(1972)).data(Direction.ToServer, clearMessages[0]!, 1);
  t.is(dm.state === 'detected' ? `${dm.decoder.name}/${dm.by}` : dm.state, 'dameng/content');
  const hs = new FlowDetector(registry, 40000, undefined).data(Direction.ToServer, handshake(61), 1);
  t.is(hs.state === 'detected' ? `${hs.decoder.name}/${hs.by}` : hs.state, 'cache/content');
});

test('cache: the session decodes nothing and gives the flow one connection record', (t) => {
  const events: AuditEvent[] = [];
  const s = openSession(cache, events);
  s.data(Direction.ToServer, handshake(61), 1);
  s.data(Direction.ToClient, new Uint8Array(40), 2);
  s.gap(Direction.ToClient, 7, 3);
  s.data(Direction.ToServer, new Uint8Array(100), 4);
  s.close('fin', 5);
  t.is(events.length, 1);
  t.like(events[0]!, { kind: 'connection', dbType: 'cache', status: 'ok', ts: 1, endTs: 5, bytesIn: 116, bytesOut: 40, closeReason: 'fin', attributes: { undecoded: 'protocol-not-decoded' } });
  t.is(s.stats.gaps, 1);
  t.is(s.stats.events, 1);
});

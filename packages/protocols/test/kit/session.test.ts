import test from 'ava';
import { Direction, type AuditEvent, type CloseReason } from '@dbtap/core';
import { Framer, FifoPairing, KitSession, Outcome, RecordBuilder, defaultSessionOptions, type Pending, type SessionContext } from '@dbtap/protocols';

function context(events: AuditEvent[], over: Partial<SessionContext> = {}): SessionContext {
  return {
    flowId: 'f9',
    client: { ip: '10.0.0.1', port: 40000 },
    server: { ip: '10.0.0.2', port: 7777 },
    midStream: false,
    options: { ...defaultSessionOptions, maxSqlLength: 8 },
    emit: (e) => events.push(e),
    ...over,
  };
}

/** A toy protocol: one byte length, then SQL; a 0xff body byte makes the decoder throw. */
class ToySession extends KitSession {
  readonly framer: Framer;
  readonly queue = new FifoPairing<Pending & { sql: string }>(4, () => {});
  bugs = 0;
  constructor(ctx: SessionContext) {
    super(ctx, 'toy');
    this.framer = new Framer({ headerBytes: 1, frameLength: (b, at) => 1 + b[at]! }, (m) => this.onMessage(m), {
      maxMessageBytes: 100,
      resync: (b, at) => (b[at]! > 0 ? 1 : Outcome.Malformed),
    });
    this.track(this.framer, this.queue);
  }
  protected onData(_dir: Direction, bytes: Uint8Array): void {
    if (bytes[0] === 0x16) return this.encrypted();
    this.framer.push(bytes);
  }
  protected onGap(): void {
    this.framer.gap(1);
  }
  protected onClose(reason: CloseReason): void {
    for (const r of this.queue.flush()) {
      const ev = this.records.start('statement', r.ts);
      this.records.sql(ev, r.sql);
      this.records.emit(ev);
    }
    const ev = this.logoutOnClose(reason);
    if (ev) this.records.emit(ev);
  }
  protected onBug(): void {
    this.bugs++;
    this.framer.loseSync();
  }
  private onMessage(m: Uint8Array): void {
    if (m.includes(0xff)) throw new Error('decoder bug');
    this.loggedIn = true;
    this.queue.push({ ts: this.now, truncated: false, gapBefore: false, sql: Buffer.from(m.subarray(1)).toString() });
  }
}

const frame = (s: string): Uint8Array => Uint8Array.from([s.length, ...Buffer.from(s)]);

test('a kit session never throws: a decoder exception counts as malformed and resynchronises the direction', (t) => {
  const events: AuditEvent[] = [];
  const s = new ToySession(context(events));
  t.notThrows(() => s.data(Direction.ToServer, Uint8Array.from([2, 0xff, 0xff]), 1));
  t.is(s.stats.malformed, 1);
  t.is(s.bugs, 1);
  s.data(Direction.ToServer, frame('select 1'), 2);
  s.close('fin', 3);
  t.deepEqual(
    events.map((e) => [e.id, e.kind, e.sql, e.dbType, e.flowId]),
    [
      ['f9:1', 'statement', 'select 1', 'toy', 'f9'],
      ['f9:2', 'logout', undefined, 'toy', 'f9'],
    ],
  );
  t.is(s.stats.events, 2);
  t.is(s.stats.unmatchedRequests, 1, 'the pairing counters fold into the stats');
  t.deepEqual(events[1]!.attributes, { closeReason: 'fin' });
});

test('records: identity copied, SQL cut to maxSqlLength and marked truncated, timing and errors', (t) => {
  const events: AuditEvent[] = [];
  const stats = { messages: 0, malformed: 0, unmatchedRequests: 0, unmatchedResponses: 0, gaps: 0, skippedBytes: 0, events: 0 };
  const b = new RecordBuilder(context(events, { midStream: true }), 'toy', stats);
  b.who.user = 'alice';
  b.who.database = 'shop';
  const ev = b.start('statement', 1000);
  b.sql(ev, 'select * from t');
  b.end(ev, 1500.4);
  b.error(ev, { code: 1146, sqlState: '42S02', message: "Table 'shop.t' doesn't exist" });
  b.emit(ev);
  t.like(events[0]!, { id: 'f9:1', user: 'alice', database: 'shop', sql: 'select *', truncated: true, endTs: 1500.4, durationUs: 500, status: 'error', errorCode: 1146, sqlState: '42S02', midSession: true });
  t.is(stats.events, 1);
  t.is(b.emitted, 1);
});

test('after encrypted() bytes are skipped and one connection record sums the stream', (t) => {
  const events: AuditEvent[] = [];
  const s = new ToySession(context(events));
  s.data(Direction.ToServer, frame('abc'), 1);
  s.data(Direction.ToServer, Uint8Array.from([0x16, 3, 1]), 2);
  s.data(Direction.ToServer, frame('select 1'), 3);
  s.data(Direction.ToClient, Uint8Array.from([1, 2, 3, 4, 5]), 4);
  t.is(s.stats.skippedBytes, 9 + 5);
  s.close('rst', 5);
  t.deepEqual(
    events.map((e) => [e.kind, e.status, e.ts, e.endTs, e.bytesIn, e.bytesOut, e.closeReason, e.attributes, e.tls]),
    [
      ['statement', 'unknown', 1, undefined, undefined, undefined, undefined, undefined, true],
      ['logout', 'ok', 5, undefined, undefined, undefined, undefined, { closeReason: 'rst' }, true],
      ['connection', 'ok', 1, 5, 4 + 3 + 9, 5, 'rst', { undecoded: 'tls' }, true],
    ],
  );
  t.deepEqual(s.counters(), { oversized: 0, resyncs: 0, evictions: 0 });
});

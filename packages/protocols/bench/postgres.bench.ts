// PostgreSQL decoder throughput. Prints one JSON line per case:
// { bench, case, chunk, mbPerSec, messagesPerSec, recordsPerSec }.
// The `framer-only` case is the baseline: the cost of cutting the same bytes
// into messages without decoding them or building records.
import { Direction } from '@dbtap/core';
import { defaultSessionOptions, postgres } from '@dbtap/protocols';
import { pgFramer, typedFormat } from '../src/postgres/framer.js';
import {
  bind,
  bindComplete,
  cat,
  complete,
  dataRow,
  execute,
  parse,
  parseComplete,
  query,
  ready,
  rowDesc,
  sync,
} from '../test/helpers/postgres.js';

interface Workload {
  name: string;
  client: Uint8Array;
  server: Uint8Array;
  /** [client bytes, server bytes] per round trip, to interleave directions. */
  turns: [number, number][];
  messages: number;
}

function build(name: string, n: number, turn: (i: number) => [Uint8Array[], Uint8Array[]]): Workload {
  const c: Uint8Array[] = [];
  const s: Uint8Array[] = [];
  const turns: [number, number][] = [];
  let messages = 0;
  for (let i = 0; i < n; i++) {
    const [req, resp] = turn(i);
    messages += req.length + resp.length;
    const rq = cat(...req);
    const rs = cat(...resp);
    c.push(rq);
    s.push(rs);
    turns.push([rq.length, rs.length]);
  }
  return { name, client: cat(...c), server: cat(...s), turns, messages };
}

const rows = Array.from({ length: 10 }, (_, i) => dataRow([String(i), `name-${i}`, '2024-01-02 03:04:05', null]));
const simple = build('simple-select-10-rows', 20000, (i) => [[query(`SELECT id, name, ts, note FROM accounts WHERE id > ${i} LIMIT 10`)], [rowDesc(['id', 'name', 'ts', 'note'], [23, 25, 1114, 25]), ...rows, complete('SELECT 10'), ready()]]);
const extended = build('extended-pipelined-update', 20000, (i) => [
  [parse('', 'UPDATE accounts SET balance = balance + $1 WHERE id = $2'), bind('', '', [String(i), String(i * 7)]), execute(''), sync()],
  [parseComplete(), bindComplete(), complete('UPDATE 1'), ready()],
]);

function runSession(w: Workload, chunk: number, maxRows: number): number {
  let records = 0;
  const session = postgres.createSession({
    flowId: 'bench',
    client: { ip: '127.0.0.1', port: 40000 },
    server: { ip: '127.0.0.1', port: 5432 },
    midStream: true,
    options: { ...defaultSessionOptions, maxRows },
    emit: () => {
      records++;
    },
  });
  let co = 0;
  let so = 0;
  let ts = 0;
  for (const [cn, sn] of w.turns) {
    const ce = co + cn;
    for (let o = co; o < ce; o += chunk) session.data(Direction.ToServer, w.client.subarray(o, Math.min(o + chunk, ce)), ++ts);
    co = ce;
    const se = so + sn;
    for (let o = so; o < se; o += chunk) session.data(Direction.ToClient, w.server.subarray(o, Math.min(o + chunk, se)), ++ts);
    so = se;
  }
  session.close('fin', ++ts);
  return records;
}

function runFramer(w: Workload, chunk: number): number {
  let n = 0;
  const sink = (): void => {
    n++;
  };
  // Both directions typed from the first byte, as the sessions below (picked up mid-stream at a boundary).
  const fc = pgFramer(true, sink, 64 << 20, false);
  fc.format = typedFormat;
  const fs = pgFramer(false, sink, 64 << 20, false);
  fs.format = typedFormat;
  for (let o = 0; o < w.client.length; o += chunk) fc.push(w.client.subarray(o, o + chunk));
  for (let o = 0; o < w.server.length; o += chunk) fs.push(w.server.subarray(o, o + chunk));
  return n;
}

function measure(fn: () => number, bytes: number, messages: number): { mbPerSec: number; messagesPerSec: number; recordsPerSec: number } {
  fn(); // warm up
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) g();
  const runs = 5;
  let best = Infinity;
  let records = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    records = fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, dt);
  }
  return { mbPerSec: +(bytes / best / 1e6).toFixed(1), messagesPerSec: Math.round(messages / best), recordsPerSec: Math.round(records / best) };
}

for (const w of [simple, extended]) {
  const bytes = w.client.length + w.server.length;
  for (const chunk of [65536, 1460]) {
    const base = measure(() => runFramer(w, chunk), bytes, w.messages);
    console.log(JSON.stringify({ bench: 'postgres', case: `${w.name}/framer-only`, chunk, ...base, recordsPerSec: 0 }));
    const full = measure(() => runSession(w, chunk, 0), bytes, w.messages);
    console.log(JSON.stringify({ bench: 'postgres', case: `${w.name}/session`, chunk, ...full, vsFramer: +(full.mbPerSec / base.mbPerSec).toFixed(2) }));
  }
}
const withRows = measure(() => runSession(simple, 65536, 5), simple.client.length + simple.server.length, simple.messages);
console.log(JSON.stringify({ bench: 'postgres', case: 'simple-select-10-rows/session-maxRows-5', chunk: 65536, ...withRows }));

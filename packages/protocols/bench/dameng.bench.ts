// Dameng decoder throughput. Prints one JSON line per case:
// { bench, case, chunk, mbPerSec, messagesPerSec, recordsPerSec }.
// The workload repeats the SQL messages the dmdb client sent (with the test
// listener's replies). The `framer-only` case is the baseline: cutting the
// same bytes into messages without decoding them. There is no tshark
// baseline: tshark has no Dameng dissector.
import { Direction } from '@dbtap/core';
import { dameng } from '@dbtap/protocols';
import { damengFramer } from '../src/dameng/framer.js';
import { answers, clearMessages, openSession } from '../test/helpers/dameng-fixtures.js';
import { replyTo } from '../../../test-support/dameng-listener.js';

const requests = [clearMessages[4]!, clearMessages[5]!, clearMessages[7]!, clearMessages[8]!];
const turns = 20000;
const client: Uint8Array[] = [];
const server: Uint8Array[] = [];
for (let i = 0; i < turns; i++) {
  const m = requests[i % requests.length]!;
  client.push(m);
  server.push(replyTo(m, answers));
}
const bytes = [...client, ...server].reduce((n, b) => n + b.length, 0);
const messages = 2 * turns;

function runSession(chunk: number): number {
  let records = 0;
  const session = openSession(dameng, () => {
    records++;
  });
  let ts = 0;
  for (let i = 0; i < turns; i++) {
    for (const [dir, m] of [[Direction.ToServer, client[i]!], [Direction.ToClient, server[i]!]] as const) {
      for (let o = 0; o < m.length; o += chunk) session.data(dir, m.subarray(o, o + chunk), ++ts);
    }
  }
  session.close('fin', ++ts);
  return records;
}

function runFramer(chunk: number): number {
  let n = 0;
  const sink = (): void => {
    n++;
  };
  const framers = [damengFramer(sink, 64 << 20, true), damengFramer(sink, 64 << 20, true)];
  for (let i = 0; i < turns; i++) {
    for (let o = 0; o < client[i]!.length; o += chunk) framers[0]!.push(client[i]!.subarray(o, o + chunk));
    for (let o = 0; o < server[i]!.length; o += chunk) framers[1]!.push(server[i]!.subarray(o, o + chunk));
  }
  return n;
}

function measure(fn: () => number): { mbPerSec: number; messagesPerSec: number; recordsPerSec: number } {
  fn(); // warm up
  (globalThis as { gc?: () => void }).gc?.();
  let best = Infinity;
  let records = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    records = fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { mbPerSec: +(bytes / best / 1e6).toFixed(1), messagesPerSec: Math.round(messages / best), recordsPerSec: Math.round(records / best) };
}

for (const chunk of [65536, 64]) {
  const base = measure(() => runFramer(chunk));
  console.log(JSON.stringify({ bench: 'dameng', case: 'sql-round-trips/framer-only', chunk, ...base, recordsPerSec: 0 }));
  const full = measure(() => runSession(chunk));
  console.log(JSON.stringify({ bench: 'dameng', case: 'sql-round-trips/session', chunk, ...full, vsFramer: +(full.mbPerSec / base.mbPerSec).toFixed(2) }));
}

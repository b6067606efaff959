// The receiving process (`dbtap-agent receive`) killed with SIGKILL during a
// burst and started again: every frame the agent sent is in one of the two
// capture files, because a batch is acknowledged only after it is written.
// Every wait is for a condition (bounded by the test runner's timeout, not by
// a guess of how fast a loaded machine is).
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { frameId, numberedFrame, waitFor } from './helpers.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli.ts');

function receiver(port: number, file: string): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'receive', '--listen', `127.0.0.1:${port}`, '--write', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return { child, out: () => out };
}

test('receiver process killed with SIGKILL mid-burst and restarted: zero frames lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-kill-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const first = receiver(port, join(dir, 'a.pcap'));
  let second: ReturnType<typeof receiver> | undefined;
  try {
    await waitFor(() => first.out().includes('listening on'), 'receiver', Infinity);
    const client = new TransportClient({ host: '127.0.0.1', port, reconnectMinMs: 50, reconnectMaxMs: 300, batchMaxPackets: 250, batchMaxDelayMs: 5 }).start();
    const total = 40_000;
    let acked = 0;
    client.on('ack', () => (acked = client.stats().ackedPackets));
    for (let i = 0; i < total; i++) {
      client.send(numberedFrame(i, 80));
      if (i % 1000 === 999) await new Promise((r) => setTimeout(r, 2));
      if (i === 15_000) {
        await waitFor(() => acked > 2000, 'some acknowledgements', Infinity);
        first.child.kill('SIGKILL');
        await new Promise((r) => first.child.once('exit', r));
      }
      if (i === 25_000) {
        second = receiver(port, join(dir, 'b.pcap'));
        await waitFor(() => second!.out().includes('listening on'), 'second receiver', Infinity);
      }
    }
    await waitFor(() => client.stats().ackedPackets >= total, 'every frame acknowledged', Infinity, 50);
    second!.child.kill('SIGTERM');
    await new Promise((r) => second!.child.once('exit', r));
    const ids = new Set<number>();
    let inFiles = 0;
    for (const f of ['a.pcap', 'b.pcap']) {
      const r = openCapture(join(dir, f));
      for (const fr of r) {
        ids.add(frameId(fr));
        inFiles++;
      }
      // SIGKILL may land inside the write of a batch (Linux ends a write to a
      // file early when a fatal signal is pending): the first file may end in
      // a cut record of that unacknowledged batch, which the agent re-sends.
      if (f === 'a.pcap' && r.error !== undefined) t.is(r.error.code, 'DBTAP_E_TRUNCATED', r.error.message);
      else t.is(r.error, undefined, `${f} is a complete capture file`);
    }
    t.is(ids.size, total, 'every frame is in one of the files');
    t.is(client.stats().droppedPackets, 0);
    t.true(client.stats().resentBatches > 0 || inFiles === total);
    t.log(`${inFiles} records for ${total} frames (${inFiles - total} re-sent after the kill), ${client.stats().resentBatches} batches re-sent`);
    await client.stop();
  } finally {
    first.child.kill('SIGKILL');
    second?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

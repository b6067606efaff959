// The dmdb client (a real DM client) against the test listener: what the
// client sends must be what the fixtures hold, the listener's inferred
// replies must be understood by the client the way the decoder reads them,
// and the recorded conversation must decode.
import test from 'ava';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapWriter, type AuditEvent } from '@dbtap/core';
import { auditCaptureFile, auditFrames } from '@dbtap/server';
import { Confidence, dameng } from '@dbtap/protocols';
import { DamengListener } from '../../../test-support/dameng-listener.js';
import { startLiveCapture, type LiveCapture } from '../../../test-support/live-capture.js';
import { startProcess } from '../../../test-support/process.js';
import { answers, clearMessages, damengSession, encryptedMessages, fixturePassword } from './helpers/dameng-fixtures.js';

let available = true;
try {
  createRequire(import.meta.url).resolve('dmdb');
} catch {
  available = false;
}
const live = available ? test.serial : test.skip;
if (!available) {
  if (process.env.CI) test('dmdb is installed', (t) => t.fail('dmdb (a root devDependency) is missing'));
  else console.log('dameng-client: skipped, the dmdb package is not installed');
}

interface Step {
  step: string;
  sql?: string;
  error?: string;
  rowsAffected?: number | null;
}

async function runClient(scenario: string, onPort?: (port: number) => void): Promise<{ steps: Step[]; listener: DamengListener }> {
  const listener = new DamengListener(answers);
  const port = await listener.start();
  onPort?.(port);
  const p = startProcess(process.execPath, ['test-support/dameng-client.mjs', String(port), scenario]);
  const timer = setTimeout(() => p.child.kill(), 30_000);
  await p.exited;
  clearTimeout(timer);
  await new Promise((r) => setTimeout(r, 100));
  await listener.close();
  const steps = p
    .out()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Step);
  return { steps, listener };
}

function decode(listener: DamengListener): AuditEvent[] {
  const events: AuditEvent[] = [];
  const s = damengSession(events);
  let ts = 0;
  for (const [dir, b] of listener.chunks) s.data(dir, b, ++ts);
  s.close('fin', ++ts);
  return events;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** The login carries the client's OS name; the fixtures were recorded on Linux. */
const sameOs = process.platform === 'linux';

live('dmdb, login in clear: it sends the recorded messages and reads the replies as the decoder does', async (t) => {
  const { steps, listener } = await runClient('clear');
  t.deepEqual(steps, [
    { step: 'connected' },
    { step: 'execute', sql: 'SELECT name FROM t_用户 WHERE id = 1', rowsAffected: 0 },
    // The client reads the error code at header offset 10 and the text at body offset 12, in GB18030.
    { step: 'execute', sql: 'SELECT * FROM no_such_table', error: '[-2106] 表T_X不存在' },
    // ... and rows affected at header offset 24.
    { step: 'execute', sql: "UPDATE t_用户 SET name = 'x' WHERE id < 4", rowsAffected: 3 },
    { step: 'execute', sql: 'SELECT id FROM t_orders', rowsAffected: 0 },
    { step: 'closed' },
  ]);
  const got = listener.messages.map(hex);
  const want = clearMessages.map(hex);
  if (sameOs) t.deepEqual(got, want);
  else t.deepEqual([got[0], ...got.slice(2)], [want[0], ...want.slice(2)]);
  t.is(dameng.detect(listener.messages[0]!), Confidence.High);
  const events = decode(listener);
  t.like(events[0]!, { kind: 'login', status: 'ok', user: 'AUDITOR', clientProgram: 'dbtap-test', clientLibrary: 'DM 7.6.0.0' });
  t.deepEqual(
    events.filter((e) => e.sql !== undefined).map((e) => [e.sql, e.status, e.database ?? null]),
    [
      ['set schema "SHOP"', 'ok', null],
      ['SELECT name FROM t_用户 WHERE id = 1', 'ok', 'SHOP'],
      ['SELECT * FROM no_such_table', 'error', 'SHOP'],
      ["UPDATE t_用户 SET name = 'x' WHERE id < 4", 'ok', 'SHOP'],
      ['SELECT id FROM t_orders', 'ok', 'SHOP'],
    ],
  );
  t.false(JSON.stringify(events).includes(fixturePassword));
});

live('dmdb, login encryption requested (the default): the startup carries a fresh 64-byte key; with no key offered back it logs in in clear', async (t) => {
  const { steps, listener } = await runClient('encrypted');
  t.deepEqual(steps.map((s) => s.step), ['connected', 'execute', 'closed']);
  const [startup, ...rest] = listener.messages;
  const mask = (m: Uint8Array): string => hex(m.subarray(0, 80)) + hex(m.subarray(144));
  t.is(mask(startup!), mask(encryptedMessages[0]!), 'everything but the key is as recorded');
  t.not(hex(startup!.subarray(80, 144)), hex(encryptedMessages[0]!.subarray(80, 144)), 'the key differs per connection');
  if (sameOs) t.deepEqual(rest.map(hex), encryptedMessages.slice(1).map(hex));
  const events = decode(listener);
  t.like(events[0]!.attributes!, { encryptionRequested: 'true', loginEncrypted: 'false' });
  t.true(events.some((e) => e.sql === 'SELECT 1 FROM dual' && e.status === 'ok'));
});

/** A capture of the `clear` scenario on loopback, recorded by the live test below (`DBTAP_DAMENG_RECORD=1`). */
const pcapFixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'dameng-dmdb-clear.pcap');

/** What the pipeline (reassembly, detection among all shipped decoders, no port configured) makes of a capture of `clear`. */
function checkPipeline(t: import('ava').ExecutionContext, events: readonly AuditEvent[]): void {
  t.true(events.length > 0 && events.every((e) => e.dbType === 'dameng'), 'detected by content on a port that is not 5236');
  t.not(events[0]!.server.port, 5236);
  t.like(events[0]!, { kind: 'login', status: 'ok', user: 'AUDITOR', clientProgram: 'dbtap-test' });
  t.deepEqual(
    events.filter((e) => e.kind === 'statement').map((e) => [e.command, e.sql ?? null, e.status]),
    [
      ['SQL', 'set schema "SHOP"', 'ok'],
      ['SQL', 'SELECT name FROM t_用户 WHERE id = 1', 'ok'],
      ['SQL', 'SELECT * FROM no_such_table', 'error'],
      ['SQL', "UPDATE t_用户 SET name = 'x' WHERE id < 4", 'ok'],
      ['SQL', 'SELECT id FROM t_orders', 'ok'],
      ['COMMIT', null, 'ok'],
      ['ROLLBACK', null, 'ok'],
    ],
  );
  t.is(events.at(-1)!.kind, 'logout');
  t.false(JSON.stringify(events).includes(fixturePassword));
}

// Capture rights are judged by uid (see postgres-live.test.ts); the capture stays referenced.
const keepAlive: LiveCapture[] = [];
const canCapture = available && process.getuid?.() === 0;
(canCapture ? test.serial : test.skip)('dmdb on loopback, captured with libpcap: the pipeline detects Dameng by content on the listener\'s port and decodes the session', async (t) => {
  let cap: LiveCapture | undefined;
  await runClient('clear', (port) => {
    cap = startLiveCapture(`tcp port ${port}`);
    keepAlive.push(cap);
  });
  const frames = await cap!.stop();
  checkPipeline(t, auditFrames(frames).events);
  if (process.env.DBTAP_DAMENG_RECORD === '1') {
    mkdirSync(dirname(pcapFixture), { recursive: true });
    const w = PcapWriter.open(pcapFixture, { linkType: frames[0]!.linkType });
    for (const f of frames) w.write(f);
    w.close();
  }
});
if (!canCapture) console.log('dameng-client: live capture skipped, needs dmdb and capture rights on lo');

test('the recorded loopback capture of dmdb (test/fixtures/dameng-dmdb-clear.pcap) decodes through the pipeline', async (t) => {
  t.true(existsSync(pcapFixture));
  checkPipeline(t, (await auditCaptureFile(pcapFixture)).events);
});

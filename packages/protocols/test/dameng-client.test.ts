// The dmdb client (a real DM client) against the test listener: what the
// client sends must be what the fixtures hold, the listener's inferred
// replies must be understood by the client the way the decoder reads them,
// and the recorded conversation must decode.
import test from 'ava';
import { createRequire } from 'node:module';
import { type AuditEvent } from '@dbtap/core';
import { Confidence, dameng } from '@dbtap/protocols';
import { DamengListener } from '../../../test-support/dameng-listener.js';
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

async function runClient(scenario: string): Promise<{ steps: Step[]; listener: DamengListener }> {
  const listener = new DamengListener(answers);
  const port = await listener.start();
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

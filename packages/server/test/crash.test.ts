// Crash test: the dbtap-server process is killed with SIGKILL while an agent
// streams traffic to it, then restarted on the same data directory. Every
// record committed before the kill (a superset of what was acknowledged) is
// still there, the agent's re-sent batches are not decoded twice, and the
// result equals an offline audit of the same traffic except for the few
// connections that were open at the moment of the kill.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { auditFrames } from '../src/index.js';
import { freePort } from '../../../test-support/net.js';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';

import { startServer, streamAndKill } from './crash-helpers.js';
import { readAll } from './store-records.js';

const COPIES = 300;

// What identifies a record whatever flow numbering a process gave it.
const key = (e: AuditEvent): string => `${e.client.port}|${e.kind}|${e.ts}|${e.sql ?? ''}|${e.status}`;

test('kill -9 under load: nothing committed is lost, nothing is stored twice', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const config = join(dir, 'server.yaml');
  writeFileSync(config, `dataDir: ${dir}\nagents:\n  listen: [{ host: 127.0.0.1, port: ${port} }]\napi: { enabled: false }\nrules: { builtin: false }\n`);
  const frames = repeatMariadbSession(COPIES, 20000, 1_000_000);
  const offline = auditFrames(frames).events;
  t.is(offline.length, 14 * COPIES);

  let server = await startServer(config);
  const { client, ackedAtKill, feeder } = await streamAndKill(frames, port, server, 0.3);
  t.true(ackedAtKill < frames.length, 'the kill came before the end of the stream');
  const before = await readAll(join(dir, 'audit.db'));
  t.true(before.length > 0, 'records were committed before the kill');

  server = await startServer(config);
  await feeder;
  t.true(await client.drain(60_000), 'every batch acknowledged after the restart');
  const cs = await client.stop();
  t.is(cs.ackedPackets, frames.length);
  t.is(cs.droppedPackets, 0);
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  const after = await readAll(join(dir, 'audit.db'));

  // 1. everything committed before the kill is still there, unchanged
  const afterById = new Map(after.map((e) => [e.id, e]));
  for (const e of before) t.deepEqual(afterById.get(e.id), e);
  // 2. no record twice (a re-sent batch decoded again would repeat its statements)
  const keys = after.map(key);
  t.is(new Set(keys).size, keys.length, 'duplicated records');
  // 3. the same records as an offline audit, but for the connections open at the kill
  const offlineKeys = new Set(offline.map(key));
  const extra = keys.filter((k) => !offlineKeys.has(k));
  const afterKeys = new Set(keys);
  const missing = offline.filter((e) => !afterKeys.has(key(e)));
  const openAtKill = new Set([...missing.map((e) => e.client.port), ...after.filter((e) => !offlineKeys.has(key(e))).map((e) => e.client.port)]);
  t.log(`${frames.length} frames, ${offline.length} offline records, ${before.length} committed at the kill, ${after.length} at the end; ${missing.length} missing and ${extra.length} different, on ${openAtKill.size} connection(s)`);
  t.true(openAtKill.size <= 4, `connections affected by the kill: ${[...openAtKill].join(', ')}`);
  t.true(missing.length <= 14 * 2);
});

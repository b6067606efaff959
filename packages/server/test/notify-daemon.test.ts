// Notifications wired into the audit server: alerts raised while auditing
// reach a channel after they are stored, and the server's config file
// declares the channels.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCapture, type AuditEvent, type Frame } from '@dbtap/core';
import { AuditServer, Notifier, SqliteStore, alertText, loadRuleSelection, loadServerConfig, rulesProcessor } from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';

test('alerts of an audit reach a file channel, after they are stored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-notify-daemon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'server.yaml'), 'notifications:\n  - { type: file, name: alerts-file, path: alerts.ndjson, minRisk: high }\n');
  const cfg = loadServerConfig(join(dir, 'server.yaml'), {});
  t.is(cfg.notifications.length, 1);
  const store = new SqliteStore(join(dir, 'audit.db'));
  const notifier = new Notifier(cfg.notifications, { spoolDir: join(dir, 'spool') });
  const rules = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
  const server = new AuditServer({ store, agentListen: [], processRecord: rules.process, notifier });
  const r = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  const frames: Frame[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) frames.push({ ...f, data: f.data.slice() });
  r.close();
  await server.ingest('file', frames);
  await server.endSource('file');
  const stored = (await store.search({ kind: 'alert', limit: 100 })).records.filter((e) => e.risk === 'high');
  t.true(stored.length >= 2, 'the DROP and the unbounded DELETE are high-risk alerts');
  t.true(server.metrics().some((m) => m.name.startsWith('dbtap_notify_')));
  await server.stop(); // closes the notifier: queues delivered
  const lines = readFileSync(join(dir, 'alerts.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; event?: AuditEvent });
  t.true(lines.every((l) => l.type === 'alert'));
  const ids = lines.map((l) => l.event?.id).sort();
  t.deepEqual(ids, stored.map((e) => e.id).sort());
});

test('a bad notification channel in the config file is refused with its path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-notify-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'server.yaml'), 'notifications:\n  - { type: syslog, host: 127.0.0.1, port: 99999 }\n');
  const err = t.throws(() => loadServerConfig(join(dir, 'server.yaml'), {}));
  t.is((err as { code?: string }).code, 'DBTAP_E_CONFIG');
  t.regex(err!.message, /notifications\[0\]\.port/);
});

test('alert text names the rule once, whether or not the reason starts with the name', (t) => {
  t.is(alertText({ name: 'Object dropped', reason: 'Object dropped: A DROP of a table' }), 'Object dropped: A DROP of a table');
  t.is(alertText({ name: 'Object dropped', reason: 'DROP TABLE customers' }), 'Object dropped: DROP TABLE customers');
  t.is(alertText({ name: 'Failed login', reason: 'Failed login' }), 'Failed login');
});

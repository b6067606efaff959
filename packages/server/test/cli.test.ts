// The `dbtap` command line as a user runs it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { repoRoot } from '../../../test-support/corpus.js';
import { SqliteStore } from '../src/store/index.js';

function dbtap(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('audit prints one NDJSON record per line and a summary on stderr', (t) => {
  const r = dbtap('audit', 'examples/captures/mariadb-session.pcap');
  t.is(r.code, 0, r.err);
  const records = r.out.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
  const audit = records.filter((e) => e.kind !== 'alert');
  t.is(audit.length, 14);
  // the default rule set flags the injection probe, the unbounded DELETE and the DROP
  t.deepEqual(records.filter((e) => e.kind === 'alert').map((e) => e.alert?.ruleId).sort(), ['dangerous.drop-or-truncate', 'dangerous.write-without-where', 'sqli.detected']);
  const drop = records.find((e) => e.sql === 'DROP TABLE customers');
  t.truthy(drop);
  t.is(drop!.user, 'root');
  t.is(drop!.database, 'test');
  t.is(drop!.client.ip, '127.0.0.1');
  t.is(drop!.server.port, 3306);
  t.is(records.filter((e) => e.kind === 'login' && e.status === 'error').length, 2);
  t.regex(r.err, /62 frames, 4 flows \(4 decoded: mysql=4/);
  t.regex(r.err, /14 records \(3 errors\), 3 alerts/);
  const bare = dbtap('audit', '--no-rules', 'examples/captures/mariadb-session.pcap');
  t.is(bare.out.trim().split('\n').length, 14);
});

test('audit --format table and --port', (t) => {
  const r = dbtap('audit', '--format', 'table', '--port', '5432', 'examples/captures/postgres-session.pcap');
  t.is(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  t.regex(lines[0]!, /^time\tkind\tclient/);
  t.true(lines.some((l) => l.includes('SELECT * FROM missing_table') && l.includes('error')));
});

test('bad input: clear errors and exit codes', (t) => {
  const missing = dbtap('audit', '/nonexistent/x.pcap');
  t.is(missing.code, 1);
  t.regex(missing.err, /DBTAP_E_IO/);
  const garbage = join(tmpdir(), `dbtap-garbage-${process.pid}.pcap`);
  writeFileSync(garbage, 'this is not a capture file at all');
  const bad = dbtap('audit', garbage);
  t.is(bad.code, 1);
  t.regex(bad.err, /DBTAP_E_BAD_CAPTURE_FORMAT/);
  t.is(dbtap('audit').code, 2);
  t.is(dbtap('audit', '--port', 'abc', 'x.pcap').code, 2);
  t.is(dbtap('frobnicate').code, 2);
});

test('serve refuses to start on a signed store without its key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-signed-'));
  try {
    const store = new SqliteStore({ path: join(dir, 'audit.db'), integrity: { key: 'a-chain-key-of-32-bytes-length!!' } });
    await store.append([{ id: 'x:1', kind: 'statement', flowId: 'x', ts: 1_700_000_000_000_000, client: { ip: '10.0.0.1', port: 1 }, server: { ip: '10.0.0.2', port: 3306 }, dbType: 'mysql', status: 'ok', sql: 'SELECT 1' }]);
    await store.close();
    const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--data-dir', dir], {
      encoding: 'utf8', cwd: repoRoot, timeout: 60_000, env: { ...process.env, DBTAP_API: '127.0.0.1:0' },
    });
    t.is(r.status, 1, r.stderr);
    t.regex(r.stderr, /DBTAP_E_INTEGRITY_KEY/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit --config applies the audit objects, rule groups and masking of a server config', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-audit-cfg-'));
  try {
    const cfg = join(dir, 'server.yaml');
    writeFileSync(
      cfg,
      [
        'objects:',
        '  - { id: shop, dbType: mysql, addresses: [127.0.0.1], ports: [3306], ruleGroup: quiet }',
        'ruleGroups:',
        '  - { id: quiet, enabled: true, ruleIds: [dangerous.drop-or-truncate] }',
        'masking:',
        '  rules:',
        '    - { type: column, columns: [name] }',
        '',
      ].join('\n'),
    );
    const plain = dbtap('audit', 'examples/captures/mariadb-session.pcap');
    const r = dbtap('audit', '--config', cfg, 'examples/captures/mariadb-session.pcap');
    t.is(r.code, 0, r.err);
    const records = r.out.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    t.true(records.filter((e) => e.kind !== 'alert').every((e) => e.auditObjectId === 'shop'));
    // the object's group holds only the DROP rule: no injection or unbounded-DELETE alert
    t.deepEqual(records.filter((e) => e.kind === 'alert').map((e) => e.alert?.ruleId), ['dangerous.drop-or-truncate']);
    // a literal compared with the masked column is not printed
    const plainSql = plain.out.split('\n').map((l) => (l ? (JSON.parse(l) as AuditEvent).sql ?? '' : '')).join('\n');
    const maskedSql = records.map((e) => e.sql ?? '').join('\n');
    t.not(plainSql, maskedSql);
    t.false(records.some((e) => /name\s*=\s*'[^*]/i.test(e.sql ?? '')), maskedSql);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

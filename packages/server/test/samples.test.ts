// The sample configuration files of examples/ (the README points at them)
// load through the loaders the daemons use, agree with each other, and do
// what their comments say.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AuditEvent } from '@dbtap/core';
import { loadAgentConfig } from '@dbtap/agent';
import { loadRuleSelection, loadServerConfig } from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';

const run = promisify(execFile);
const sample = (name: string): string => join(repoRoot, 'examples', name);

/** `dbtap ARGS` from the repository root, as the README runs it; the records it printed. */
async function dbtap(...args: string[]): Promise<AuditEvent[]> {
  const { stdout } = await run(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), ...args], { cwd: repoRoot, maxBuffer: 16 << 20 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEvent);
}

test('examples/agent.conf and queue.conf load as the agent reads them, and point at examples/server.yaml', (t) => {
  const { config, files, warnings } = loadAgentConfig(sample('agent.conf'), { env: {} });
  t.deepEqual(files, [sample('agent.conf'), sample('queue.conf')], 'queue.conf beside agent.conf is read');
  t.deepEqual(warnings, []);
  t.deepEqual(config.source, { kind: 'live', device: 'lo', filter: 'tcp port 3306 or tcp port 5432', snapLen: 65535, bufferSize: 32 << 20, pollMs: 40, binding: 'auto' });
  t.deepEqual(config.queue, { maxPackets: 500_000, maxBytes: 512 << 20, overflow: 'drop-newest' });
  t.is(config.agentId, 'db-host-1');
  const server = loadServerConfig(sample('server.yaml'), {});
  t.deepEqual(server.agents.listen, [{ host: config.server.host, port: config.server.port }]);
  t.is(server.agents.token, config.server.token);
});

test('examples/server.yaml loads, and its rule files compile with the built-in library', (t) => {
  const cfg = loadServerConfig(sample('server.yaml'), {});
  t.is(cfg.dataDir, './data');
  t.deepEqual(cfg.objects.map((o) => `${o.id}:${o.dbType}:${o.ports.join(',')}`), ['mariadb-local:mysql:3306', 'postgres-local:postgres:5432']);
  t.deepEqual(cfg.rules, { builtin: true, files: ['examples/rules.yaml'] });
  t.truthy(cfg.masking);
  // rules.files are relative to the working directory, which the README's commands share
  const ruleSet = loadRuleSelection({ builtin: cfg.rules.builtin, files: cfg.rules.files.map((f) => join(repoRoot, f)) });
  const ids = ruleSet.rules.map((r) => r.id);
  for (const id of ['site.card-data-access', 'site.admin-schema-change', 'site.failed-statements-burst']) t.true(ids.includes(id), id);
  t.true(ruleSet.groups.has('pci'), 'the group the MariaDB object names');
  t.false(ruleSet.rule('offhours.access')!.enabled, 'the site switches the off-hours rule off');
  t.deepEqual(ruleSet.warnings, []);
});

test('dbtap audit --rules examples/rules.yaml applies the site rules and switches off the off-hours rule', async (t) => {
  const plain = await dbtap('audit', 'examples/captures/mariadb-session.pcap');
  const site = await dbtap('audit', 'examples/captures/mariadb-session.pcap', '--rules', 'examples/rules.yaml');
  const ruleIds = (records: AuditEvent[]) => new Set(records.flatMap((e) => e.ruleIds ?? []));
  t.false(ruleIds(plain).has('site.card-data-access'));
  t.false(ruleIds(site).has('offhours.access'));
  // the built-in rules still judge: the same alerts of theirs as without the file
  const builtinAlerts = (records: AuditEvent[]) => records.filter((e) => e.kind === 'alert' && !e.alert!.ruleId.startsWith('site.')).map((e) => e.alert!.ruleId);
  t.deepEqual(builtinAlerts(site), builtinAlerts(plain));
  const onCustomers = site.filter((e) => e.kind === 'statement' && /customers/.test(e.sql ?? ''));
  t.is(onCustomers.length, 7);
  t.true(onCustomers.every((e) => e.ruleIds!.includes('site.card-data-access')));
  const schemaAlerts = site.filter((e) => e.kind === 'alert' && e.alert?.ruleId === 'site.admin-schema-change').map((e) => e.sql);
  t.deepEqual(schemaAlerts.map((s) => s!.split(' ').slice(0, 2).join(' ')), ['CREATE TABLE', 'DROP TABLE']);
});

test('dbtap audit --config examples/server.yaml applies its audit objects, rules and masking', async (t) => {
  const records = await dbtap('audit', 'examples/captures/mariadb-session.pcap', '--config', 'examples/server.yaml');
  t.true(records.every((e) => e.auditObjectId === 'mariadb-local'));
  const insert = records.find((e) => e.statementType === 'insert')!;
  t.is(insert.sql, "INSERT INTO customers (name, card) VALUES ('Alice', '***'), ('Bob', '***')");
  t.true(insert.ruleIds!.includes('site.card-data-access'));
  t.deepEqual(records.filter((e) => e.kind === 'alert').map((e) => e.alert!.ruleId).sort(), [
    'dangerous.drop-or-truncate',
    'dangerous.write-without-where',
    'site.admin-schema-change',
    'site.admin-schema-change',
    'sqli.detected',
  ]);
});

test('examples/dbtap-server.service runs dbtap-server on the configuration with the signals the server handles', (t) => {
  const unit = readFileSync(sample('dbtap-server.service'), 'utf8');
  const keys = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, m[2]!);
  }
  t.is(keys.get('ExecStart'), '/usr/bin/env dbtap-server --config /etc/dbtap/server.yaml');
  t.is(keys.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  t.is(keys.get('KillSignal'), 'SIGTERM');
  // the data directory systemd creates is the one the server is told to use
  t.is(`/var/lib/${keys.get('StateDirectory')}`, keys.get('Environment')!.replace('DBTAP_DATA_DIR=', ''));
  t.is(keys.get('ReadWritePaths'), keys.get('WorkingDirectory'));
  const verify = spawnSync('systemd-analyze', ['verify', sample('dbtap-server.service')], { encoding: 'utf8' });
  if (verify.error !== undefined) t.log(`systemd-analyze is not installed: the unit was not verified by systemd (${verify.error.message})`);
  else t.is(verify.stderr.trim(), '', 'systemd-analyze verify finds nothing to say');
});

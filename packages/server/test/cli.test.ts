// The `dbtap` command line as a user runs it.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter, type AuditEvent } from '@dbtap/core';
import { corpusDir, corpusTest, repoRoot } from '../../../test-support/corpus.js';
import { captureFrames } from '../../../test-support/frames.js';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';
import { startProcess, waitFor } from '../../../test-support/process.js';
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

// --- conventions shared by every command ---

function sh(script: string): { code: number; out: string; err: string } {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const CLI = `${JSON.stringify(process.execPath)} --import=tsx packages/server/src/cli.ts`;

test('--version and -V print the version; --help works for the tool and every command', (t) => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'packages/server/package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = dbtap(flag);
    t.is(r.code, 0);
    t.is(r.out, `${version}\n`);
  }
  const top = dbtap('--help');
  t.is(top.code, 0);
  t.regex(top.out, /Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error/);
  for (const command of ['audit', 'sql', 'rules', 'serve', 'import', 'report', 'verify', 'token']) {
    for (const flag of ['--help', '-h']) {
      const r = dbtap(command, flag);
      t.is(r.code, 0, `${command} ${flag}: ${r.err}`);
      t.true(r.out.startsWith(`usage: dbtap\n  ${command}`), `${command} ${flag}`);
      t.is(r.err, '');
    }
  }
  const none = dbtap();
  t.is(none.code, 2);
  t.is(none.out, '', 'usage on stderr when no command is given');
  t.regex(none.err, /usage: dbtap <command>/);
  const unknown = dbtap('audit', '--bogus', 'x.pcap');
  t.is(unknown.code, 2);
  t.regex(unknown.err, /Unknown option '--bogus'[\s\S]*usage: dbtap\n {2}audit/);
});

test('a configuration error exits 2, a runtime failure 1', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-exit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'server.yaml');
  writeFileSync(cfg, 'agents:\n  tokens: [x]\n');
  const bad = dbtap('import', '--config', cfg, 'examples/captures/mariadb-session.pcap');
  t.is(bad.code, 2);
  t.regex(bad.err, /DBTAP_E_CONFIG: .*server\.yaml: agents\.tokens must be one of listen, token, helloTimeoutMs, maxHelloBytes, maxConnections, maxConnectionsPerAddress, tls, maxSeqJump, credentials \(unknown key; did you mean 'token'\?\)/);
  const missing = dbtap('audit', join(dir, 'no-such.pcap'));
  t.is(missing.code, 1);
  t.regex(missing.err, /DBTAP_E_IO/);
});

test('audit - reads a capture from stdin, pcap and pcapng alike', (t) => {
  const fromFile = dbtap('audit', '--no-rules', 'examples/captures/mariadb-session.pcap');
  for (const capture of ['examples/captures/mariadb-session.pcap', 'examples/captures/postgres-session.pcap']) {
    const file = dbtap('audit', '--no-rules', capture);
    const piped = sh(`cat ${capture} | ${CLI} audit --no-rules -`);
    t.is(piped.code, 0, piped.err);
    t.is(piped.out, file.out, capture);
    t.true(piped.out.length > 0);
  }
  t.is(fromFile.out.trim().split('\n').length, 14);
});

test('a closed stdout pipe ends audit and sql quietly with exit 0', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-pipe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const frames = repeatMariadbSession(300, 20000, 1000);
  const w = PcapWriter.open(join(dir, 'big.pcap'), { linkType: frames[0]!.linkType });
  for (const f of frames) w.write(f);
  w.close();
  writeFileSync(join(dir, 'many.sql'), 'select * from t where a = 1\n'.repeat(100_000));
  for (const cmd of [`${CLI} audit ${join(dir, 'big.pcap')}`, `${CLI} sql sqli < ${join(dir, 'many.sql')}`]) {
    const r = sh(`${cmd} 2>${join(dir, 'err')} | head -1; echo "exit \${PIPESTATUS[0]}"`);
    const err = readFileSync(join(dir, 'err'), 'utf8');
    t.regex(r.out, /^\{.*\}\nexit 0\n$/, cmd);
    t.notRegex(err, /EPIPE|Error/, cmd);
  }
  // the whole output is there when it is read to the end: 4200 records and 1080 alerts
  const all = sh(`${CLI} audit ${join(dir, 'big.pcap')} 2>/dev/null | wc -l`);
  t.is(all.out.trim(), '5280');
});

test('report --config applies the configuration file\'s report defaults, as the API does', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'server.yaml');
  writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nreports:\n  sensitive: [customers]\n  minRisk: high\n  workHours: '07:00-19:00'\n`);
  t.is(dbtap('import', '--config', cfg, 'examples/captures/mariadb-session.pcap').code, 0);
  const r = dbtap('report', 'compliance', '--config', cfg);
  t.is(r.code, 0, r.err);
  const report = JSON.parse(r.out) as { settings: { sensitiveTables: string[]; minRisk: string; workingHours: { start: string; end: string } } };
  t.deepEqual(report.settings.sensitiveTables, ['customers']);
  t.is(report.settings.minRisk, 'high');
  const over = JSON.parse(dbtap('report', 'compliance', '--config', cfg, '--min-risk', 'low', '--sensitive', 'orders').out) as typeof report;
  t.is(over.settings.minRisk, 'low', 'an option overrides the file');
  t.deepEqual(over.settings.sensitiveTables, ['orders']);
});

test('serve logs in the agent format and stops on SIGTERM, with npm start as with the executable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-serve-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'server.yaml');
  writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nagents:\n  listen: [{ host: 127.0.0.1, port: 0 }]\napi:\n  port: 0\n`);
  const server = startProcess(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--config', cfg], repoRoot);
  t.teardown(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });
  await waitFor(() => / info store /.test(server.out()), 'the start line', 60_000);
  server.child.kill('SIGTERM');
  t.is(await server.exited, 0, server.out());
  const lines = server.out().trim().split('\n');
  t.true(lines.some((l) => / info SIGTERM: flushing and stopping$/.test(l)), server.out());
  for (const l of lines) t.regex(l, /^\d{4}-\d\d-\d\dT\S+Z (info|warn|error) \S/);
});

test('SIGTERM to npm start stops the server it started', async (t) => {
  if (!existsSync(join(repoRoot, 'packages/server/dist/cli.js'))) return t.fail('packages/server/dist/cli.js is missing: run npm run build');
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'server.yaml');
  writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nagents:\n  listen: [{ host: 127.0.0.1, port: 0 }]\napi:\n  port: 0\n`);
  // the processes whose command line names this test's config file
  const ours = (): number[] =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(cfg) && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('cli.js');
        } catch {
          return false;
        }
      })
      .map(Number);
  const npm = startProcess('npm', ['start', '--', '--config', cfg], repoRoot);
  t.teardown(() => {
    for (const pid of ours()) process.kill(pid, 'SIGKILL');
  });
  await waitFor(() => / info store /.test(npm.out()), 'the start line', 60_000);
  t.true(ours().length > 0);
  npm.child.kill('SIGTERM');
  await npm.exited;
  await waitFor(() => ours().length === 0, 'the server to stop', 30_000);
  t.regex(npm.out(), / info SIGTERM: flushing and stopping/);
});

// Rotated captures (tcpdump -C / -G) of one connection: each part once held
// its own pipeline, record ids restarted per file and the store skipped the
// "duplicates" without a word.
function splitCapture(file: string, dir: string, framesPerPart: number): string[] {
  const frames = captureFrames(file);
  const parts: string[] = [];
  for (let i = 0; i < frames.length; i += framesPerPart) {
    const part = join(dir, `part${String(parts.length).padStart(2, '0')}.pcap`);
    const w = PcapWriter.open(part, { linkType: frames[0]!.linkType });
    for (const f of frames.slice(i, i + framesPerPart)) w.write(f);
    w.close();
    parts.push(part);
  }
  return parts;
}

async function storedIds(dataDir: string): Promise<string[]> {
  const store = new SqliteStore(join(dataDir, 'audit.db'));
  try {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.search({ limit: 1000, order: 'asc', ...(cursor !== undefined ? { cursor } : {}) });
      ids.push(...page.records.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return ids.sort();
  } finally {
    await store.close();
  }
}

async function importRotated(t: ExecutionContext, capture: string, framesPerPart: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-import-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const parts = splitCapture(capture, dir, framesPerPart);
  t.true(parts.length >= 3, 'the capture is split into several parts');
  const whole = dbtap('import', '--data-dir', join(dir, 'whole'), '--port', '3306', capture);
  t.is(whole.code, 0, whole.err);
  const expected = await storedIds(join(dir, 'whole'));
  t.true(expected.length > 10);

  const first = dbtap('import', '--data-dir', join(dir, 'rotated'), '--port', '3306', ...parts);
  t.is(first.code, 0, first.err);
  const ids = await storedIds(join(dir, 'rotated'));
  t.is(ids.length, expected.length, 'every record of the parts is stored, as from the whole capture');
  t.regex(first.err, new RegExp(`${expected.length} records and alerts, ${expected.length} stored\\n`));

  // the same files again: nothing new is stored, and the output says so
  const again = dbtap('import', '--data-dir', join(dir, 'rotated'), '--port', '3306', ...parts);
  t.is(again.code, 0, again.err);
  t.regex(again.err, new RegExp(`, 0 stored, ${expected.length} already stored`));
  t.deepEqual(await storedIds(join(dir, 'rotated')), ids);

  // another capture with the same addresses keeps ids of its own
  const other = dbtap('import', '--data-dir', join(dir, 'rotated'), '--port', '3306', parts[1]!);
  t.is(other.code, 0, other.err);
  t.true((await storedIds(join(dir, 'rotated'))).length > ids.length, 'a different capture is not taken for a duplicate');
}

test('import of a capture rotated into several files stores every record once, and a second import stores nothing new and says so', (t) =>
  importRotated(t, join(repoRoot, 'examples/captures/mariadb-session.pcap'), 20));

corpusTest('import of a rotated multi-connection corpus capture continues each connection across files', (t) =>
  importRotated(t, join(corpusDir, 'mysql/deepflow_171-mysql.pcap'), 300));

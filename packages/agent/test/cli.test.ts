// The dbtap-agent command line: version, help for every command, exit codes,
// and log lines printed once even with DEBUG=dbtap:* set.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../../test-support/corpus.js';
import { freePort } from '../../../test-support/net.js';
import { waitFor } from './helpers.js';

const CLI = join(repoRoot, 'packages/agent/src/cli.ts');

function agent(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', CLI, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('--version, -V and --help for the tool and each command', (t) => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'packages/agent/package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) t.deepEqual(agent(flag), { code: 0, out: `${version}\n`, err: '' });
  for (const args of [['--help'], ['-h'], ['help'], ['run', '--help'], ['receive', '-h'], ['status', '--help'], ['install-service', '--help'], ['--config', 'x.conf', '--help']]) {
    const r = agent(...args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.out, /^dbtap-agent .*\n\nUsage:/, args.join(' '));
    t.regex(r.out, /Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error/);
  }
  const bad = agent('receive', '--bogus');
  t.is(bad.code, 2);
  t.is(bad.out, '');
  t.regex(bad.err, /Unknown option '--bogus'/);
  const cfg = agent('--config', join(repoRoot, 'no-such-agent.conf'));
  t.is(cfg.code, 2);
  t.regex(cfg.err, /DBTAP_E_CONFIG/);
});

test("DEBUG='dbtap:*' prints each log line once", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-agent-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const child = spawn(process.execPath, ['--import=tsx', CLI, 'receive', '--write', join(dir, 'out.pcap'), '--listen', `127.0.0.1:${port}`], {
    cwd: repoRoot,
    env: { ...process.env, DEBUG: 'dbtap:*' },
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await waitFor(() => / info listening/.test(err), 'the listening line', 30_000);
  child.kill('SIGTERM');
  t.is(await exited, 0);
  // the agent's own lines (debug lines of other namespaces, e.g. dbtap:agent:server, may be there too)
  const lines = err.trim().split('\n').filter((l) => !/^\S+ dbtap:/.test(l));
  t.true(lines.length >= 2, err);
  for (const l of lines) t.regex(l, /^\d{4}-\d\d-\d\dT\S+Z (info|warn|error) /);
  const texts = lines.map((l) => l.replace(/^\S+ /, ''));
  t.deepEqual(texts, [...new Set(texts)], err);
  t.notRegex(err, /dbtap:agent (info|warn|error) /, 'no second copy through debug');
});

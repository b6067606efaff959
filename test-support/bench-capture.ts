// A large capture of real database traffic for benchmarks: recorded once on
// `lo` with dumpcap while pgbench and mariadb-slap run against the local
// servers, then reused from .bench/ (git-ignored).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** Path of the benchmark capture; recorded on first use (needs root, dumpcap, pgbench, mariadb-slap). */
export async function benchCapture(seconds = 10): Promise<string> {
  const dir = join(repoRoot, '.bench');
  const file = join(dir, 'db-traffic.pcap');
  if (existsSync(file) && statSync(file).size > 1_000_000) return file;
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[]): void => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr?.toString() ?? r.error?.message}`);
  };
  spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'DROP DATABASE IF EXISTS dbtap_bench', 'postgres']);
  run('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'CREATE DATABASE dbtap_bench', 'postgres']);
  run('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-i', '-s', '2', '-q', 'dbtap_bench']);
  const cap = spawn('dumpcap', ['-q', '-i', 'lo', '-f', 'tcp port 3306 or tcp port 5432', '-P', '-B', '64', '-a', 'filesize:400000', '-w', file], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  const pg = spawn('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-c', '4', '-T', String(seconds), '-M', 'extended', 'dbtap_bench'], { stdio: 'ignore' });
  const my = spawn('mariadb-slap', ['-h', '127.0.0.1', '-u', 'root', '--concurrency=4', '--iterations=2', '--number-of-queries=3000',
    '--auto-generate-sql', '--auto-generate-sql-load-type=mixed', '--create-schema=dbtap_bench'], { stdio: 'ignore' });
  await Promise.all([pg, my].map((p) => new Promise((r) => p.on('exit', r))));
  await new Promise((r) => setTimeout(r, 1000));
  cap.kill('SIGTERM');
  await new Promise((r) => cap.on('exit', r));
  spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'DROP DATABASE IF EXISTS dbtap_bench', 'postgres']);
  return file;
}

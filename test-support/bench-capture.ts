// A large capture of real database traffic for benchmarks: recorded once on
// `lo` with dumpcap while pgbench and mariadb-slap (or sysbench) run against
// the local servers, then reused from .bench/ (git-ignored).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..');

function runTool(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr?.toString() ?? r.error?.message}`);
}

/** `.bench/<name>`, recorded by `record` (into a scratch file renamed on success) unless a capture of over 1 MB is there. */
async function cachedCapture(name: string, record: (file: string) => Promise<void>): Promise<string> {
  const dir = join(repoRoot, '.bench');
  const file = join(dir, name);
  if (existsSync(file) && statSync(file).size > 1_000_000) return file;
  mkdirSync(dir, { recursive: true });
  await record(`${file}.partial`);
  renameSync(`${file}.partial`, file);
  return file;
}

/** Captures what `filter` (a capture filter) passes on lo into `file` with dumpcap while `traffic` runs. */
async function dumpcapWhile(file: string, filter: string, traffic: () => Promise<void>): Promise<void> {
  const cap = spawn('dumpcap', ['-q', '-i', 'lo', '-f', filter, '-P', '-B', '64', '-a', 'filesize:400000', '-w', file], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  try {
    await traffic();
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    cap.kill('SIGTERM');
    await new Promise((r) => cap.on('exit', r));
  }
}

/** Path of the benchmark capture; recorded on first use (needs root, dumpcap, pgbench, mariadb-slap). */
export async function benchCapture(seconds = 10): Promise<string> {
  return cachedCapture('db-traffic.pcap', async (file) => {
    spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'DROP DATABASE IF EXISTS dbtap_bench', 'postgres']);
    runTool('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'CREATE DATABASE dbtap_bench', 'postgres']);
    runTool('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-i', '-s', '2', '-q', 'dbtap_bench']);
    await dumpcapWhile(file, 'tcp port 3306 or tcp port 5432', async () => {
      const pg = spawn('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-c', '4', '-T', String(seconds), '-M', 'extended', 'dbtap_bench'], { stdio: 'ignore' });
      const my = spawn('mariadb-slap', ['-h', '127.0.0.1', '-u', 'root', '--concurrency=4', '--iterations=2', '--number-of-queries=3000',
        '--auto-generate-sql', '--auto-generate-sql-load-type=mixed', '--create-schema=dbtap_bench'], { stdio: 'ignore' });
      await Promise.all([pg, my].map((p) => new Promise((r) => p.on('exit', r))));
    });
    spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-c', 'DROP DATABASE IF EXISTS dbtap_bench', 'postgres']);
  });
}

/**
 * Path of a capture of `sysbench oltp_read_write` (4 threads, text protocol,
 * so every statement is a COM_QUERY) against the local MariaDB; recorded on
 * first use (needs root, dumpcap, sysbench, MariaDB on 127.0.0.1:3306).
 */
export async function sysbenchCapture(seconds = 8): Promise<string> {
  return cachedCapture('sysbench-mariadb.pcap', async (file) => {
    const sb = ['--db-driver=mysql', '--mysql-host=127.0.0.1', '--mysql-port=3306', '--mysql-user=root', '--mysql-db=dbtap_bench_sb', '--tables=2', '--table-size=10000'];
    runTool('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-e', 'DROP DATABASE IF EXISTS dbtap_bench_sb; CREATE DATABASE dbtap_bench_sb']);
    try {
      runTool('sysbench', ['oltp_read_write', ...sb, 'prepare']);
      await dumpcapWhile(file, 'tcp port 3306', async () => runTool('sysbench', ['oltp_read_write', ...sb, '--threads=4', `--time=${seconds}`, '--db-ps-mode=disable', 'run']));
    } finally {
      spawnSync('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-e', 'DROP DATABASE IF EXISTS dbtap_bench_sb']);
    }
  });
}

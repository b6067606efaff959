// A private PostgreSQL instance for tests that need server settings the
// shared one must not change (TLS on, for one): initdb into a temporary
// folder as the postgres user, start it on a free loopback port, remove it
// afterwards. Needs root (to act as postgres) and the server binaries.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

/** A running private instance. */
export interface PrivatePostgres {
  readonly port: number;
  /** Stops the server and removes its files. */
  stop(): void;
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return undefined;
}

/** Why a private instance cannot run here, or undefined when it can. */
export function privatePostgresUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run PostgreSQL as the postgres user';
  if (binDir() === undefined) return 'no PostgreSQL server binaries under /usr/lib/postgresql';
  if (spawnSync('id', ['postgres']).status !== 0) return 'no postgres user';
  return undefined;
}

/** Starts an instance with `settings` (postgresql.conf lines) and `files` written into its data folder (owned by postgres, mode 0600). */
export async function startPrivatePostgres(settings: readonly string[], files: Readonly<Record<string, string>> = {}): Promise<PrivatePostgres> {
  const bin = binDir()!;
  const base = mkdtempSync(join(tmpdir(), 'dbtap-pg-'));
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(base, uid, gid);
  const asPostgres = (cmd: string, args: string[]): void => {
    execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'ignore', timeout: 60_000 });
  };
  asPostgres(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  for (const [name, text] of Object.entries(files)) {
    const f = join(data, name);
    writeFileSync(f, text, { mode: 0o600 });
    chownSync(f, uid, gid);
  }
  const port = await freePort();
  writeFileSync(join(data, 'postgresql.auto.conf'), [`port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${base}'`, ...settings, ''].join('\n'));
  asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(base, 'log'), '-w', 'start']);
  return {
    port,
    stop: () => {
      try {
        asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}

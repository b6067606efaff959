// The databases' own log files as ground truth for live tests: reading what
// was appended since an offset, and asking PostgreSQL where its log is (the
// path differs between distributions, versions, clusters and settings).
import { closeSync, existsSync, openSync, readlinkSync, readSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

/** Size of a file in bytes, 0 when it does not exist. */
export function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** What was appended to `path` after `offset`, as UTF-8. */
export function readFrom(path: string, offset: number): string {
  const size = sizeOf(path);
  if (size <= offset) return '';
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Anything that runs a query the way a `pg` client does. */
export interface PgQueryable {
  query(sql: string): Promise<{ rows: Record<string, unknown>[] }>;
}

const readableFile = (f: string): boolean => {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
};

/**
 * The file the PostgreSQL server behind `c` writes its log to, or the reason
 * it cannot be found from here. In order: the collector's current file
 * (`pg_current_logfile()`, relative to `data_directory`); without the
 * collector, the file the server's stderr goes to, which this session's
 * backend inherited from the postmaster (`/proc/PID/fd/2`, same host only);
 * Debian's pg_ctlcluster file for `cluster_name`.
 */
export async function locatePgLog(c: PgQueryable): Promise<{ file: string } | { reason: string }> {
  const row = (await c.query("SELECT pg_current_logfile() AS current, pg_backend_pid() AS pid, current_setting('data_directory') AS data, current_setting('cluster_name') AS cluster, current_setting('logging_collector') AS collector"))
    .rows[0] as { current: string | null; pid: number; data: string; cluster: string; collector: string };
  const tried: string[] = [];
  if (row.current !== null) {
    const file = isAbsolute(row.current) ? row.current : join(row.data, row.current);
    if (readableFile(file)) return { file };
    tried.push(`pg_current_logfile() ${file} is not readable here`);
  } else tried.push(`logging_collector is ${row.collector}`);
  try {
    const stderr = readlinkSync(`/proc/${row.pid}/fd/2`);
    if (isAbsolute(stderr) && readableFile(stderr)) return { file: stderr };
    tried.push(`the server's stderr is ${stderr}`);
  } catch (err) {
    tried.push(`the server's stderr is unknown (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (/^\d+\/[\w.-]+$/.test(row.cluster)) {
    const file = `/var/log/postgresql/postgresql-${row.cluster.replace('/', '-')}.log`;
    if (readableFile(file)) return { file };
    tried.push(`${file} does not exist`);
  }
  return { reason: `cannot find PostgreSQL's log file: ${tried.join('; ')}` };
}

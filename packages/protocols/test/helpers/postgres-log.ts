// PostgreSQL's own server log as ground truth for live tests: switches on
// statement and connection logging (ALTER SYSTEM + reload, restored after),
// and parses the stderr log lines written meanwhile.
import pg from 'pg';
import { locatePgLog, readFrom, sizeOf } from '../../../../test-support/db-logs.js';

/** Connection settings for the local server (trust auth, no TLS). */
export const pgConn = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' } as const;

// A prefix we can parse back: time, pid, then for session processes user, database,
// application, remote host(port) and SQLSTATE in braces.
const PREFIX = '%m [%p] %q{%u}{%d}{%a}{%r}{%e} ';
const SETTINGS: [string, string][] = [
  ['log_statement', 'all'],
  ['log_connections', 'on'],
  ['log_disconnections', 'on'],
  ['log_line_prefix', PREFIX],
  ['log_parameter_max_length', '-1'],
];

/** True when the local server answers. */
export async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ ...pgConn, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ ...pgConn, application_name: 'dbtap-live-admin' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

let located: Promise<{ file: string } | { reason: string }> | undefined;
/** The server's log file, asked of the server once per process (see locatePgLog). */
export function pgLog(): Promise<{ file: string } | { reason: string }> {
  located ??= admin((c) => locatePgLog(c));
  return located;
}

/** The statement log switched on: what it wrote since, and how to switch it back. */
export interface StatementLog {
  /** The log text written since logging was switched on. */
  read(): string;
  /** Resets every setting to the server's configuration. */
  restore(): Promise<void>;
}

/** Resets the settings; each one even when another fails, so none stays changed. */
async function resetSettings(): Promise<void> {
  await admin(async (c) => {
    const failures: unknown[] = [];
    for (const [k] of SETTINGS) await c.query(`ALTER SYSTEM RESET ${k}`).catch((err: unknown) => failures.push(err));
    await c.query('SELECT pg_reload_conf()');
    if (failures.length > 0) throw failures[0];
  });
}

/**
 * Turns the logging on. Fails (changing nothing) when the log file cannot be
 * found; a failure half-way resets what was already set.
 */
export async function enableStatementLog(): Promise<StatementLog> {
  const where = await pgLog();
  if ('reason' in where) throw new Error(where.reason);
  const { file } = where;
  try {
    await admin(async (c) => {
      for (const [k, v] of SETTINGS) await c.query(`ALTER SYSTEM SET ${k} = '${v}'`);
      await c.query('SELECT pg_reload_conf()');
    });
    // The postmaster applies the reload asynchronously: wait until new sessions see it.
    for (;;) {
      const v = await admin(async (c) => (await c.query('SHOW log_line_prefix')).rows[0].log_line_prefix as string);
      if (v === PREFIX) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await resetSettings();
    throw err;
  }
  const offset = sizeOf(file);
  return { read: () => readFrom(file, offset), restore: resetSettings };
}

/** One parsed log entry of a session process. */
export interface PgLogEntry {
  pid: number;
  user: string;
  database: string;
  app: string;
  host: string;
  port: number;
  sqlState: string;
  level: string;
  message: string;
  /** DETAIL line(s) that followed, if any. */
  detail?: string;
  /** STATEMENT line that followed an error, if any. */
  statement?: string;
}

const lineRe = /^\S+ \S+ \S+ \[(\d+)\] \{([^}]*)\}\{([^}]*)\}\{([^}]*)\}\{([^}]*)\}\{([^}]*)\} (\w+):  ([\s\S]*)$/;

/**
 * Parses stderr log text written with our prefix. Continuation lines of a
 * multi-line message start with a tab.
 */
export function parseLog(text: string): PgLogEntry[] {
  const raw: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('\t') && raw.length > 0) raw[raw.length - 1] += `\n${line.slice(1)}`;
    else if (line !== '') raw.push(line);
  }
  const out: PgLogEntry[] = [];
  for (const r of raw) {
    const m = lineRe.exec(r);
    if (m === null) continue;
    const [, pid, user, database, app, remote, sqlState, level, message] = m;
    const hp = /^(.*)\((\d+)\)$/.exec(remote!);
    const e: PgLogEntry = { pid: Number(pid), user: user!, database: database!, app: app!, host: hp?.[1] ?? remote!, port: Number(hp?.[2] ?? 0), sqlState: sqlState!, level: level!, message: message! };
    const prev = out[out.length - 1];
    if ((level === 'DETAIL' || level === 'STATEMENT') && prev !== undefined && prev.pid === e.pid) {
      if (level === 'DETAIL') prev.detail = message!;
      else prev.statement = message!;
      continue;
    }
    out.push(e);
  }
  return out;
}

/** Parses `parameters: $1 = '1', $2 = NULL` into text values (null for NULL). */
export function parseLogParams(detail: string | undefined): (string | null)[] | undefined {
  if (detail === undefined || !detail.startsWith('parameters: ')) return undefined;
  const out: (string | null)[] = [];
  const re = /\$(\d+) = (NULL|'((?:[^']|'')*)')/g;
  for (let m = re.exec(detail); m !== null; m = re.exec(detail)) out.push(m[2] === 'NULL' ? null : m[3]!.replace(/''/g, "'"));
  return out;
}

/**
 * The extended-protocol part of the node pg workloads: an unnamed statement
 * with text parameters, a named one executed twice, a NULL parameter, an
 * error at Execute (22012) and one at Parse (42601).
 */
export async function extendedQueries(c: pg.Client): Promise<void> {
  await c.query('SELECT $1::int + $2::int AS s, $3::text AS t', [1, 2, "it's"]);
  await c.query({ name: 'by_id', text: 'SELECT relname FROM pg_class WHERE oid = $1', values: [1259] });
  await c.query({ name: 'by_id', text: 'SELECT relname FROM pg_class WHERE oid = $1', values: [1247] });
  await c.query('SELECT $1::text IS NULL AS n', [null]);
  await c.query('SELECT 1/$1::int', [0]).catch(() => undefined);
  await c.query('SELEC broken').catch(() => undefined);
}

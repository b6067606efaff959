// MariaDB's general query log as ground truth for live tests: switched on
// with log_output = TABLE for the duration of a test, read back from
// mysql.general_log for the connections of the test's own users, and
// restored afterwards.
import mysql from 'mysql2/promise';

/** Connection settings of the local server's administrator (root, no password). */
export const myAdmin = { host: '127.0.0.1', port: 3306, user: 'root', database: 'test' } as const;

/** True when the local server answers. */
export async function mysqlAvailable(): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ ...myAdmin, connectTimeout: 2000 });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** Connection ids of the administrator connections this process opened. */
const adminThreads = new Set<number>();

/** Runs `fn` on a fresh administrator connection. */
export async function admin<T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection({ ...myAdmin });
  adminThreads.add(c.threadId);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** One row of mysql.general_log. */
export interface GeneralLogEntry {
  /** Server time, `YYYY-MM-DD hh:mm:ss.uuuuuu`. */
  time: string;
  userHost: string;
  /** Connection id. */
  thread: number;
  /** `Connect`, `Query`, `Prepare`, `Execute`, `Init DB`, `Quit`, ... */
  command: string;
  /** The argument as raw bytes (statement text, user@host, ...). */
  argument: Buffer;
}

/** Global settings a live test changes, as they were before. */
interface Saved {
  generalLog: number;
  logOutput: string;
  maxAllowedPacket: number;
  /** The log table held no rows before the test. */
  tableWasEmpty: boolean;
}

/** A general log switched on for a test. */
export interface GeneralLogSession {
  /** Server time when logging started; rows before it are ignored. */
  since: string;
  /** Rows of the connections whose Connect entry names a user matching `userLike` (SQL LIKE). */
  read(userLike: string): Promise<GeneralLogEntry[]>;
  /**
   * Restores the saved settings. The rows the test added are removed only
   * when the table was empty before and now holds nothing but rows of the
   * test's own connections, so a concurrent user of the log loses nothing.
   */
  restore(userLike: string): Promise<void>;
}

/** Puts back the global settings {@link enableGeneralLog} changed, each one even when another fails. */
async function restoreSettings(c: mysql.Connection, saved: Saved, setOutput: boolean, raisePacket: boolean): Promise<void> {
  const statements = [
    ...(saved.generalLog === 0 ? ['SET GLOBAL general_log = 0'] : []),
    ...(setOutput ? [`SET GLOBAL log_output = '${saved.logOutput}'`] : []),
    ...(raisePacket ? [`SET GLOBAL max_allowed_packet = ${saved.maxAllowedPacket}`] : []),
  ];
  const failures: unknown[] = [];
  for (const sql of statements) await c.query(sql).catch((err: unknown) => failures.push(err));
  if (failures.length > 0) throw failures[0];
}

/**
 * Turns on the general log to a table (keeping any file output) and, when
 * `maxAllowedPacket` is given, raises max_allowed_packet for new connections.
 * Only what it changed is restored.
 */
export async function enableGeneralLog(opts: { maxAllowedPacket?: number } = {}): Promise<GeneralLogSession> {
  return admin(async (c) => {
    const [[row]] = (await c.query('SELECT @@global.general_log AS g, @@global.log_output AS o, @@global.max_allowed_packet AS m, (SELECT COUNT(*) FROM mysql.general_log) AS n')) as unknown as [
      { g: number; o: string; m: number; n: number }[],
    ];
    const saved: Saved = { generalLog: Number(row!.g), logOutput: row!.o, maxAllowedPacket: Number(row!.m), tableWasEmpty: Number(row!.n) === 0 };
    // Settings already in place are left alone (and not restored): other tests may rely on them meanwhile.
    const outputs = new Set(saved.logOutput.split(',').filter((x) => x !== 'NONE'));
    const setOutput = !outputs.has('TABLE');
    outputs.add('TABLE');
    const raisePacket = opts.maxAllowedPacket !== undefined && opts.maxAllowedPacket > saved.maxAllowedPacket;
    let since: string;
    try {
      if (setOutput) await c.query(`SET GLOBAL log_output = '${[...outputs].join(',')}'`);
      if (raisePacket) await c.query(`SET GLOBAL max_allowed_packet = ${opts.maxAllowedPacket}`);
      const [[now]] = (await c.query("SELECT DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f') AS t")) as unknown as [{ t: string }[]];
      if (saved.generalLog === 0) await c.query('SET GLOBAL general_log = 1');
      since = now!.t;
    } catch (err) {
      // a failure half-way leaves nothing changed
      await restoreSettings(c, saved, setOutput, raisePacket).catch(() => undefined);
      throw err;
    }
    const read = async (userLike: string): Promise<GeneralLogEntry[]> =>
      admin(async (a) => {
        const [rows] = (await a.query(
          `SELECT DATE_FORMAT(event_time, '%Y-%m-%d %H:%i:%s.%f') AS time, user_host AS userHost, thread_id AS thread, command_type AS command, CAST(argument AS BINARY) AS argument
             FROM mysql.general_log
            WHERE event_time >= ? AND thread_id IN (
              SELECT thread_id FROM mysql.general_log WHERE event_time >= ? AND command_type = 'Connect' AND argument LIKE ?)`,
          [since, since, `${userLike}@%`],
        )) as unknown as [{ time: string; userHost: string; thread: number; command: string; argument: Buffer }[]];
        return rows.map((r) => ({ time: r.time, userHost: String(r.userHost), thread: Number(r.thread), command: r.command, argument: Buffer.from(r.argument) }));
      });
    const restore = async (userLike: string): Promise<void> =>
      admin(async (a) => {
        await restoreSettings(a, saved, setOutput, raisePacket);
        if (!saved.tableWasEmpty || saved.generalLog !== 0) return;
        // Only rows of our connections (test users and this process's administrator sessions) may be there.
        const [[foreign]] = (await a.query(
          `SELECT COUNT(*) AS n FROM mysql.general_log
            WHERE thread_id NOT IN (?) AND thread_id NOT IN (
              SELECT thread_id FROM mysql.general_log WHERE command_type = 'Connect' AND argument LIKE ?)`,
          [[...adminThreads], `${userLike}@%`],
        )) as unknown as [{ n: number }[]];
        if (Number(foreign!.n) === 0) await a.query('TRUNCATE TABLE mysql.general_log');
      });
    return { since, read, restore };
  });
}

// ---- what the log says each connection did ------------------------------------------

/** The `COM_*` command behind each general-log command type. */
const logCommands: Record<string, string> = {
  Query: 'COM_QUERY',
  Prepare: 'COM_STMT_PREPARE',
  Execute: 'COM_STMT_EXECUTE',
  'Init DB': 'COM_INIT_DB',
  Quit: 'COM_QUIT',
  'Long Data': 'COM_STMT_SEND_LONG_DATA',
  'Close stmt': 'COM_STMT_CLOSE',
  'Reset stmt': 'COM_STMT_RESET',
  'Field List': 'COM_FIELD_LIST',
  Statistics: 'COM_STATISTICS',
  'Change user': 'COM_CHANGE_USER',
  Processlist: 'COM_PROCESS_INFO',
  Refresh: 'COM_REFRESH',
  'Create DB': 'COM_CREATE_DB',
  'Drop DB': 'COM_DROP_DB',
  Debug: 'COM_DEBUG',
};

/** One thing a connection did, as the general log tells it. */
export interface LogStep {
  thread: number;
  /** `login` for a Connect, else the `COM_*` command. */
  command: string;
  /** Statement text (or table, or database) as logged. */
  text: string;
  /** Account the server ran the step as. */
  user: string;
  /** Current database for the step (tracked from Connect, Init DB, Change user and USE). */
  database: string | undefined;
  /** For a refused login: the server's message. */
  denied?: string;
}

const connectRe = /^(.*)@(\S*) on (\S*) using /;
const useRe = /^use\s+(?:`([^`]+)`|([^\s;]+))/i;

/** Steps of every connection, in log order. */
export function logSteps(entries: readonly GeneralLogEntry[]): Map<number, LogStep[]> {
  const out = new Map<number, LogStep[]>();
  const state = new Map<number, { user: string; database: string | undefined }>();
  for (const e of entries) {
    const text = e.argument.toString('utf8');
    const steps = out.get(e.thread) ?? [];
    out.set(e.thread, steps);
    if (e.command === 'Connect') {
      const m = connectRe.exec(text);
      if (m) {
        const s = { user: m[1]!, database: m[3] || undefined };
        state.set(e.thread, s);
        steps.push({ thread: e.thread, command: 'login', text: '', ...s });
      } else if (steps.length > 0) {
        // The second Connect line of a refused login carries the error.
        steps[steps.length - 1]!.denied = text;
      }
      continue;
    }
    const command = logCommands[e.command];
    if (command === undefined) continue;
    const s = state.get(e.thread) ?? { user: '', database: undefined };
    state.set(e.thread, s);
    const user = /^([^[]*)\[/.exec(e.userHost)?.[1] ?? s.user;
    if (command === 'COM_INIT_DB') s.database = text;
    if (command === 'COM_CHANGE_USER') {
      const m = connectRe.exec(text);
      if (m) {
        s.user = m[1]!;
        s.database = m[3] || undefined;
      }
    }
    steps.push({ thread: e.thread, command, text, user: command === 'COM_CHANGE_USER' ? s.user : user, database: s.database });
    if (command === 'COM_QUERY') {
      const m = useRe.exec(text);
      if (m) s.database = m[1] ?? m[2];
    }
  }
  return out;
}

/**
 * The statement text as the server logs it: leading white space and trailing
 * white space and semicolons removed (sql_parse.cc alloc_query).
 */
export function serverText(sql: string): string {
  return sql.replace(/^\s+/, '').replace(/[\s;]+$/, '');
}

/** Splits SQL at its `?` placeholders (outside quotes and comments). */
export function splitPlaceholders(sql: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < sql.length && sql[i] !== c) i += sql[i] === '\\' && c !== '`' ? 2 : 1;
      i++;
    } else if ((c === '-' && sql[i + 1] === '-') || c === '#') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '?') {
      parts.push(sql.slice(start, i));
      start = ++i;
    } else {
      i++;
    }
  }
  parts.push(sql.slice(start));
  return parts;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A string literal as MariaDB writes a bound value into the log (escape_string_for_mysql). */
function quoted(s: string): string {
  return `'${s.replace(/[\0\n\r\\'"\x1a]/g, (c) => ({ '\0': '\\0', '\n': '\\n', '\r': '\\r', '\\': '\\\\', "'": "\\'", '"': '\\"', '\x1a': '\\Z' })[c]!)}'`;
}

/** Pattern of one decoded parameter value in the logged Execute text. */
function paramPattern(v: unknown): string {
  if (v === null) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return escapeRe(String(v));
  if (typeof v === 'string') {
    const alts = [escapeRe(quoted(v))];
    // Temporal values are logged with their type keyword; integers beyond 2^53 as digits.
    if (/^-?\d+:\d\d:\d\d(\.\d+)?$|^\d{4}-\d\d-\d\d( \d\d:\d\d:\d\d(\.\d+)?)?$/.test(v)) alts.push(`(?:TIMESTAMP|DATE|TIME)${escapeRe(quoted(v))}`);
    if (/^-?\d+$/.test(v)) alts.push(escapeRe(v));
    return `(?:${alts.join('|')})`;
  }
  // Binary values ({ type, hex }): any quoted literal (the log converts them to its charset).
  return "'(?:[^'\\\\]|\\\\.)*'";
}

/**
 * True when `logged` (an Execute line of the general log) is the prepared
 * `sql` with `params` substituted the way the server writes them.
 */
export function executeMatches(sql: string, params: readonly unknown[], logged: string): boolean {
  const parts = splitPlaceholders(serverText(sql));
  if (parts.length !== params.length + 1) return false;
  let re = '^' + escapeRe(parts[0]!);
  params.forEach((p, i) => {
    re += paramPattern(p) + escapeRe(parts[i + 1]!);
  });
  return new RegExp(re + '$', 's').test(logged);
}

// Derby's derby.log as ground truth: with derby.language.logStatementText
// every statement the engine executes is logged with its parameters, every
// statement that fails to compile or run is logged with its SQLSTATE. This
// reads those entries and matches them with dbtap's records.
import type { AuditEvent, ParamValue } from '@dbtap/core';

/** One statement Derby ran (or refused). */
export interface DerbyStatement {
  readonly database: string;
  readonly session: string;
  readonly sql: string;
  /** Parameters as Derby printed them (Java toString of the values). */
  readonly params: readonly string[];
  /** SQLSTATE when it failed. */
  sqlState?: string;
}

// Derby's network server runs this itself (DRDAConnThread checks whether the
// client-side LOB procedures exist before it sends a LOB locator); no client sent it.
const SERVER_INTERNAL = /^EXECUTE STATEMENT SYS\."getProcedures/;

const HEAD = /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4} Thread\[[^\]]*\] \(XID = \d+\), \(SESSIONID = (\d+)\), \(DATABASE = ([^)]*)\), \(DRDAID = .*?\), /;

/** Statement entries of derby.log, in log order. */
export function parseDerbyLog(log: string): DerbyStatement[] {
  // Entries start with a timestamp and thread; a statement's text may span lines.
  const lines = log.split('\n');
  const entries: { session: string; database: string; text: string; next: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = HEAD.exec(lines[i]!);
    if (m === null) continue;
    let text = lines[i]!.slice(m[0].length);
    let j = i + 1;
    while (j < lines.length && !/^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d /.test(lines[j]!) && !/^(ERROR|WARNING) \w{5}:/.test(lines[j]!) && !/^\s+at /.test(lines[j]!) && !/^Cleanup action/.test(lines[j]!)) {
      text += '\n' + lines[j];
      j++;
    }
    entries.push({ session: m[1]!, database: m[2]!, text, next: lines[j] ?? '' });
    i = j - 1;
  }
  const out: DerbyStatement[] = [];
  const open = new Map<string, DerbyStatement>(); // last statement per session, for its failure
  for (const e of entries) {
    const key = `${e.database}/${e.session}`;
    const ran = /^(Executing|Error compiling) prepared statement: ([\s\S]*?) :End prepared statement(?: with \d+ parameters ([\s\S]*))?$/.exec(e.text);
    if (ran !== null) {
      if (SERVER_INTERNAL.test(ran[2]!)) continue;
      const params = [...(ran[3] ?? '').matchAll(/begin parameter #\d+: ([\s\S]*?) :end parameter/g)].map((p) => p[1]!);
      const st: DerbyStatement = { database: e.database, session: e.session, sql: ran[2]!, params };
      out.push(st);
      open.set(key, st);
      continue;
    }
    const failed = /^Failed Statement is: ([\s\S]*?)(?: with \d+ parameters [\s\S]*)?$/.exec(e.text);
    if (failed !== null) {
      const state = /^ERROR (\w{5}):/.exec(e.next)?.[1];
      const last = open.get(key);
      if (last !== undefined && last.sql === failed[1] && last.sqlState === undefined) last.sqlState = state ?? '?????';
      else {
        // Refused before it was compiled (a syntax error): only the failure is logged.
        out.push({ database: e.database, session: e.session, sql: failed[1]!, params: [], sqlState: state ?? '?????' });
      }
      open.delete(key);
    }
  }
  return out;
}

/** Derby's printed form of a value against the decoded one. */
export function sameParam(logged: string, v: ParamValue): boolean {
  if (v === null) return logged === 'NULL' || logged === 'null';
  // LOB parameters: Derby prints the length of a small one, the stream object of a big one.
  const clob = /^CLOB\((\d+)\)$/.exec(logged);
  if (clob !== null) return typeof v === 'string' && v.length === Number(clob[1]);
  const blob = /^BLOB:Length=(\d+)$/.exec(logged);
  if (blob !== null) return typeof v === 'object' && 'hex' in v && v.hex.length / 2 === Number(blob[1]);
  if (/^(CLOB|BLOB)\(org\.apache\.derby\./.test(logged)) return typeof v === 'object' && v.type === logged.slice(0, 4).toLowerCase();
  if (typeof v === 'boolean') return logged === String(v);
  if (typeof v === 'number' || typeof v === 'bigint') return logged === String(v) || Number(logged) === Number(v);
  if (typeof v === 'object') {
    if ('hex' in v) return logged === `VARCHAR () FOR BIT DATA:Length=${v.hex.length / 2}` || logged.toLowerCase() === v.hex;
    if (v.type === 'decimal') return Number(logged) === Number(v.text) && logged.replace(/^-?0*/, '') === v.text.replace(/^-?0*/, '');
    if (v.type === 'clob') return logged.startsWith('CLOB(');
    if (v.type === 'blob') return logged.startsWith('BLOB');
    return logged === v.text;
  }
  if (logged === v) return true;
  // Timestamps: java.sql.Timestamp prints no trailing zeros of the fraction.
  const trim = (s: string): string => s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '.0');
  return /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(v) && trim(logged) === trim(v);
}

/** Statement commands whose records stand for statements Derby logs. */
export const LOGGED_COMMANDS = new Set(['EXCSQLIMM', 'EXCSQLSTT', 'OPNQRY', 'EXCSQLSET', 'PRPSQLSTT']);

/** The result of matching log entries with records. */
export interface LogMatch {
  /** Log entries with their record, in log order. */
  readonly matched: { readonly entry: DerbyStatement; readonly event: AuditEvent; readonly problems: string[] }[];
  /** Log entries no record stands for. */
  readonly missing: DerbyStatement[];
  /** Statement records no log entry stands for. */
  readonly invented: AuditEvent[];
}

/**
 * Matches each log entry, in order, with the next unused statement record of
 * the same database and SQL text (records of one connection keep their order;
 * Derby logs each connection's statements in the order it ran them), and
 * checks parameters, user and result.
 */
export function matchDerbyLog(entries: readonly DerbyStatement[], events: readonly AuditEvent[], users: Readonly<Record<string, string>>): LogMatch {
  const records = events.filter((e) => e.kind === 'statement' && e.command !== undefined && LOGGED_COMMANDS.has(e.command));
  const used = new Set<AuditEvent>();
  const matched: LogMatch['matched'][number][] = [];
  const missing: DerbyStatement[] = [];
  for (const entry of entries) {
    let hit: AuditEvent | undefined;
    for (let i = 0; i < records.length && hit === undefined; i++) {
      const r = records[i]!;
      if (!used.has(r) && r.sql === entry.sql && r.database === entry.database) hit = r;
    }
    if (hit === undefined) {
      missing.push(entry);
      continue;
    }
    used.add(hit);
    const problems: string[] = [];
    const params = hit.params ?? [];
    // `? = CALL f(?)`: the client sends the OUT parameter as NULL, Derby prints what the call returned.
    const out = /^\?\s*=\s*CALL\b/i.test(entry.sql) ? 0 : -1;
    if (params.length !== entry.params.length) problems.push(`${params.length} parameters, derby.log has ${entry.params.length}`);
    else entry.params.forEach((p, i) => !(i === out && params[i] === null) && !sameParam(p, params[i]!) && problems.push(`parameter ${i + 1}: ${JSON.stringify(params[i], (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x))} vs ${p}`));
    const user = users[entry.database];
    if (user !== undefined && hit.user?.toLowerCase() !== user.toLowerCase()) problems.push(`user ${hit.user} vs ${user}`);
    if (entry.sqlState !== undefined) {
      if (hit.status !== 'error' || hit.sqlState !== entry.sqlState) problems.push(`status ${hit.status} ${hit.sqlState ?? ''}, derby.log has ${entry.sqlState}`);
    } else if (hit.status !== 'ok') problems.push(`status ${hit.status} ${hit.sqlState ?? ''}, derby.log has no failure`);
    matched.push({ entry, event: hit, problems });
  }
  return { matched, missing, invented: records.filter((r) => !used.has(r)) };
}

// A guard in an application's own data layer: every statement passes through
// dbtap's built-in policies before it reaches the database, and those rated at
// or above a risk level (default high: DROP / TRUNCATE, UPDATE or DELETE
// without WHERE, SQL injection, GRANT and account changes, INTO OUTFILE) are
// refused with the reasons logged. Works with any mysql2/promise connection
// or pool: wrap it once, use it as before.
//
//   node --import=tsx examples/sql-guard.ts "DELETE FROM users" "SELECT * FROM users WHERE id = ?"
//   echo "DROP TABLE t" | node --import=tsx examples/sql-guard.ts         (one statement per line)
//   node --import=tsx examples/sql-guard.ts --live                        (a demo against MariaDB)
//
// Offline it prints one JSON verdict per statement; with --live it runs them
// (or a demo on a temporary table) on --url (default
// mysql://root@127.0.0.1:3306/test). Exit code 1 when any was refused (or
// failed on the server), 2 on a usage error.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { DbtapError, isDbtapError, type AuditEvent, type RiskLevel } from '@dbtap/core';
import { RuleEngine, defaultRuleSet } from '@dbtap/rules';

const RISK_ORDER: readonly RiskLevel[] = ['none', 'info', 'low', 'medium', 'high'];

/** What the guard decided about one statement: the risk and rules of the built-in policies, and why. */
export type GuardVerdict = { sql: string; allowed: boolean; risk: RiskLevel; ruleIds: string[]; reasons: string[] };

/** Options of {@link SqlGuard}. */
export interface SqlGuardOptions {
  /** Refuse statements rated at this risk or higher. Default `high`. */
  minRisk?: RiskLevel;
  /** Built-in policies to apply; the default set judges the statement text alone (no counting, no clock). */
  policies?: readonly string[];
  /** Receives one line per refusal. */
  log?: (line: string) => void;
}

/** Judges statements with the rule engine and wraps connections so refused ones never reach the server. */
export class SqlGuard {
  private readonly engine: RuleEngine;
  private readonly minRank: number;
  private n = 0;

  constructor(private readonly options: SqlGuardOptions = {}) {
    this.engine = new RuleEngine(defaultRuleSet(options.policies ?? ['dangerous-operations', 'privilege-changes', 'sql-injection', 'dump-tools']));
    this.minRank = RISK_ORDER.indexOf(options.minRisk ?? 'high');
    if (this.minRank < 1) throw new DbtapError('DBTAP_E_INVALID_ARGUMENT', `minRisk must be one of info, low, medium, high, not ${String(options.minRisk)}`);
  }

  /** The verdict on one statement text. */
  check(sql: string): GuardVerdict {
    // The engine reads audit records; a statement about to be sent is one without a response yet.
    const record: AuditEvent = {
      id: `guard:${++this.n}`, kind: 'statement', flowId: 'guard', ts: Date.now() * 1000, status: 'unknown',
      client: { ip: '127.0.0.1', port: 0 }, server: { ip: '127.0.0.1', port: 3306 }, dbType: 'mysql', sql,
    };
    const v = this.engine.process(record);
    // Alerts carry the most specific reason (the injection detector's findings); other matches give their rule's name.
    const reasons = v.alerts.map((a) => a.alert?.reason ?? a.ruleIds?.join(',') ?? '');
    for (const id of v.ruleIds) if (!v.alerts.some((a) => a.alert?.ruleId === id)) reasons.push(this.engine.ruleSet.rule(id)?.name ?? id);
    return { sql, allowed: RISK_ORDER.indexOf(v.risk) < this.minRank, risk: v.risk, ruleIds: v.ruleIds, reasons };
  }

  /** Throws `DBTAP_E_SQL_REFUSED` (details: the verdict) when the statement is refused. */
  assert(sql: unknown): void {
    // Fail closed: a call whose statement text cannot be found is refused too.
    const text = typeof sql === 'string' ? sql : typeof (sql as { sql?: unknown })?.sql === 'string' ? (sql as { sql: string }).sql : undefined;
    const v: GuardVerdict = text === undefined ? { sql: String(sql), allowed: false, risk: 'high', ruleIds: [], reasons: ['no statement text'] } : this.check(text);
    if (v.allowed) return;
    this.options.log?.(`sql-guard: refused (${v.risk}): ${v.sql.replace(/\s+/g, ' ').slice(0, 200)} -- ${v.reasons.join('; ')}`);
    throw new DbtapError('DBTAP_E_SQL_REFUSED', `statement refused (${v.risk} risk): ${v.reasons.join('; ')}`, { verdict: v });
  }

  /** The same connection or pool, with `query`, `execute` and `prepare` checked first (refusals are rejected promises). */
  wrap<T extends object>(conn: T): T {
    const guarded = new Set<PropertyKey>(['query', 'execute', 'prepare']);
    return new Proxy(conn, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (!guarded.has(prop)) return value.bind(target);
        return (...args: unknown[]) => {
          try {
            this.assert(args[0]);
          } catch (err) {
            return Promise.reject(err);
          }
          return value.apply(target, args);
        };
      },
    });
  }
}

const DEMO = [
  'CREATE TEMPORARY TABLE guard_demo (id INT PRIMARY KEY, name VARCHAR(32))',
  "INSERT INTO guard_demo VALUES (1, 'Alice'), (2, 'Bob')",
  "SELECT name FROM guard_demo WHERE name = '' OR '1'='1'",
  'DELETE FROM guard_demo',
  'DROP TABLE guard_demo',
  "UPDATE guard_demo SET name = 'Robert' WHERE id = 2",
  'SELECT id, name FROM guard_demo WHERE id > 0 ORDER BY id',
];

async function statementsFrom(positionals: string[], live: boolean): Promise<string[]> {
  if (positionals.length > 0) return positionals;
  if (process.stdin.isTTY) return live ? DEMO : [];
  const out: string[] = [];
  for await (const line of createInterface({ input: process.stdin })) if (line.trim() !== '') out.push(line);
  return out.length === 0 && live ? DEMO : out;
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: { live: { type: 'boolean', default: false }, 'min-risk': { type: 'string', default: 'high' }, url: { type: 'string', default: 'mysql://root@127.0.0.1:3306/test' } },
    });
  } catch (err) {
    throw new DbtapError('DBTAP_E_INVALID_ARGUMENT', (err as Error).message);
  }
  const { values: o, positionals } = args;
  const guard = new SqlGuard({ minRisk: o['min-risk'] as RiskLevel, log: (l) => process.stderr.write(`${l}\n`) });
  const statements = await statementsFrom(positionals, o.live!);
  if (statements.length === 0) {
    process.stderr.write('usage: sql-guard.ts [--live] [--url mysql://...] [--min-risk LEVEL] [STATEMENT]... (or one statement per line on stdin)\n');
    return 2;
  }
  let refused = 0; // refused or failed
  if (!o.live) {
    for (const sql of statements) {
      const v = guard.check(sql);
      if (!v.allowed) refused++;
      process.stdout.write(`${JSON.stringify(v)}\n`);
    }
    return refused > 0 ? 1 : 0;
  }
  const url = new URL(o.url!);
  const raw = await mysql.createConnection(o.url!).catch((err: unknown) => {
    throw new DbtapError('DBTAP_E_IO', `cannot connect to ${url.host}: ${(err as Error).message}`, undefined, { cause: err });
  });
  const conn = guard.wrap(raw);
  try {
    for (const sql of statements) {
      try {
        const [result] = await conn.query(sql);
        process.stdout.write(`ran: ${sql}\n     ${JSON.stringify(result)}\n`);
      } catch (err) {
        // A refusal never reached the server; a database error did, and the next statement still runs.
        if (isDbtapError(err, 'DBTAP_E_SQL_REFUSED')) process.stdout.write(`refused: ${sql}\n`);
        else process.stdout.write(`failed: ${sql}\n     ${(err as { code?: string }).code ?? ''} ${(err as Error).message}\n`);
        refused++;
      }
    }
    if (statements === DEMO) {
      // Placeholders keep values out of the statement text, and execute() is guarded as well.
      const [rows] = await conn.execute('SELECT COUNT(*) AS n FROM guard_demo WHERE id >= ?', [0]);
      process.stdout.write(`execute: rows left ${JSON.stringify(rows)}\n`);
    }
  } finally {
    await conn.end();
  }
  return refused > 0 ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`sql-guard: ${isDbtapError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    process.exitCode = isDbtapError(err, 'DBTAP_E_INVALID_ARGUMENT') ? 2 : 1;
  },
);

// `dbtap rules check|list` and `dbtap sql classify|fingerprint|sqli` as a user runs them.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinPolicies } from '@dbtap/rules';
import { repoRoot } from '../../../test-support/corpus.js';

const CLI = join(repoRoot, 'packages/server/src/cli.ts');

function dbtap(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', CLI, ...args], { encoding: 'utf8', cwd: repoRoot, ...(input !== undefined ? { input } : {}) });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const jsonLines = (out: string): Record<string, unknown>[] =>
  out
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('rules list prints every built-in policy with its rules', (t) => {
  const r = dbtap(['rules', 'list']);
  t.is(r.code, 0, r.err);
  for (const p of builtinPolicies()) {
    t.true(r.out.includes(`${p.name}: ${p.description}\n  rules: ${p.ruleIds.join(', ')}\n`), p.name);
  }
});

test('rules check: clean files exit 0, errors print file:line:column and exit 1, warnings alone exit 0', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-cli-rules-'));
  try {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'lists:\n  sensitive_tables: { append: true, items: [hr.salaries] }\nrules:\n  - id: my.rule\n    risk: medium\n    condition: statementType = delete and user != batch\n');
    const ok = dbtap(['rules', 'check', good]);
    t.is(ok.code, 0, ok.err);
    t.is(ok.out, '1 file(s): 0 error(s), 0 warning(s); 1 rule(s) compiled\n');

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'rules:\n  - id: broken\n    risk: high\n    condition: user = root and rowsReturned > many\n  - id: typo\n    risk: hihg\n    condition: "true"\n');
    const r = dbtap(['rules', 'check', good, bad]);
    t.is(r.code, 1);
    t.deepEqual(r.out.trim().split('\n'), [
      `${bad}:4:47: error DBTAP_E_RULE_BAD_VALUE: rule 'broken': field 'rowsReturned' is a number; 'many' is not`,
      `${bad}:6:11: error DBTAP_E_RULE_SCHEMA: rule 'typo': 'risk' must be one of high, medium, low, info`,
      '2 file(s): 2 error(s), 0 warning(s); 1 rule(s) compiled',
    ]);

    const warn = join(dir, 'warn.json');
    writeFileSync(warn, JSON.stringify({ rules: [{ id: 'w', risk: 'low', condition: 'user = x', colour: 'red' }] }, null, 2));
    const w = dbtap(['rules', 'check', warn]);
    t.is(w.code, 0);
    t.deepEqual(w.out.trim().split('\n'), [`${warn}:7:17: warning DBTAP_W_RULE_UNKNOWN_KEY: unknown rule key 'colour'`, '1 file(s): 0 error(s), 1 warning(s); 1 rule(s) compiled']);

    const missing = dbtap(['rules', 'check', join(dir, 'none.yaml')]);
    t.is(missing.code, 1);
    t.regex(missing.out, /none\.yaml: error DBTAP_E_IO: cannot read rule file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rules: usage errors exit 2', (t) => {
  for (const args of [['rules'], ['rules', 'check'], ['rules', 'frob']]) {
    const r = dbtap(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.err, /usage: dbtap rules check FILE\.\.\. \| dbtap rules list/);
  }
});

test('sql classify: one JSON object per input line', (t) => {
  const r = dbtap(['sql', 'classify'], 'SELECT a FROM shop.orders WHERE id = 1\n\nSET NAMES utf8; DROP TABLE t\r\nDELETE FROM carts\n');
  t.is(r.code, 0, r.err);
  const rows = jsonLines(r.out);
  t.is(rows.length, 3); // the empty line yields nothing
  t.deepEqual(rows[0], {
    sql: 'SELECT a FROM shop.orders WHERE id = 1',
    type: 'select',
    verb: 'SELECT',
    objects: [{ schema: 'shop', name: 'orders', op: 'read' }],
    hasWhere: true,
    fingerprint: 'select a from shop.orders where id = ?',
    statements: [{ type: 'select', verb: 'SELECT', objects: [{ schema: 'shop', name: 'orders', op: 'read' }], hasWhere: true, fingerprint: 'select a from shop.orders where id = ?' }],
  });
  t.is(rows[1]!.sql, 'SET NAMES utf8; DROP TABLE t'); // the CR of a CRLF line is not part of the statement
  t.is(rows[1]!.type, 'ddl');
  t.is(rows[1]!.verb, 'DROP TABLE');
  t.is((rows[1]!.statements as unknown[]).length, 2);
  t.deepEqual([rows[2]!.type, rows[2]!.hasWhere], ['delete', false]);
});

test('sql fingerprint and sqli, per dialect', (t) => {
  const fp = dbtap(['sql', 'fingerprint', '--dialect', 'postgres'], 'SELECT * FROM "Orders" WHERE id = $1 AND tag IN (\'a\', \'b\')\n');
  t.is(fp.code, 0, fp.err);
  t.deepEqual(jsonLines(fp.out), [{ sql: 'SELECT * FROM "Orders" WHERE id = $1 AND tag IN (\'a\', \'b\')', fingerprint: 'select * from "orders" where id = ? and tag in(?+)' }]);
  const my = dbtap(['sql', 'fingerprint'], 'SELECT * FROM `Orders` WHERE note = "x" LIMIT 5, 10\n');
  t.deepEqual(jsonLines(my.out)[0]!.fingerprint, 'select * from `orders` where note = ? limit ?');

  const sq = dbtap(['sql', 'sqli'], "SELECT * FROM users WHERE name = '' OR '1'='1'\nSELECT * FROM users WHERE name = 'O''Brien'\n");
  t.is(sq.code, 0, sq.err);
  t.deepEqual(jsonLines(sq.out), [
    { sql: "SELECT * FROM users WHERE name = '' OR '1'='1'", injection: true, score: 0.97, reasons: ['tautology', 'string-comparison'] },
    { sql: "SELECT * FROM users WHERE name = 'O''Brien'", injection: false, score: 0, reasons: [] },
  ]);
  // || concatenates in PostgreSQL; aliases name dialects too
  const pg = dbtap(['sql', 'sqli', '--dialect', 'pg'], "SELECT * FROM t WHERE name = 'a' || 'b'\n");
  t.is(pg.code, 0, pg.err);
  t.is(jsonLines(pg.out)[0]!.injection, false);
  const tsql = dbtap(['sql', 'sqli', '--dialect', 'tsql'], "SELECT * FROM t WHERE id = 1; WAITFOR DELAY '0:0:5'--\n");
  t.deepEqual(jsonLines(tsql.out)[0]!.reasons, ['stacked-query', 'time-based', 'trailing-comment']);
});

test('sql: usage errors exit 2', (t) => {
  const badDialect = dbtap(['sql', 'classify', '--dialect', 'cobol'], 'SELECT 1\n');
  t.is(badDialect.code, 2);
  t.regex(badDialect.err, /--dialect must be one of mysql, postgres, tsql, oracle, db2/);
  t.is(badDialect.out, '');
  for (const args of [['sql'], ['sql', 'explain'], ['sql', 'classify', 'extra']]) {
    const r = dbtap(args, '');
    t.is(r.code, 2, args.join(' '));
    t.regex(r.err, /usage: dbtap sql classify\|fingerprint\|sqli/);
  }
});

test('sql answers each line as it arrives (usable at the end of a live pipe)', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CLI, 'sql', 'fingerprint'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const lines: string[] = [];
  const waitLine = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`no output line ${n} while stdin is still open`)), 60_000);
      const check = (): void => {
        if (lines.length >= n) {
          clearTimeout(guard);
          resolve();
        }
      };
      child.stdout.on('data', check);
      check();
    });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
  });
  child.stdin.write('SELECT 1\n');
  await waitLine(1); // stdin still open: the answer came before the end of input
  child.stdin.write('SELECT 2, 3\n');
  await waitLine(2);
  child.stdin.end();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0);
  t.deepEqual(
    lines.map((l) => (JSON.parse(l) as { fingerprint: string }).fingerprint),
    ['select ?', 'select ?, ?'],
  );
});

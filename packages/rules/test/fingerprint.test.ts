// Fingerprints: hand-checked shapes, then agreement with pt-fingerprint
// (Percona Toolkit) on the capture corpus and on generated MariaDB /
// PostgreSQL regression-style and application SQL. Every difference must be
// one of the named exceptions in helpers/pt-exceptions.ts, each listed in
// docs/rules.md.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprint, type Dialect } from '../src/index.js';
import { corpusAvailable, hasTshark, repoRoot } from '../../../test-support/corpus.js';
import { allAppTemplates, appStatements } from './helpers/app-sql.js';
import { compareFingerprints, FINGERPRINT_EXCEPTIONS } from './helpers/pt-exceptions.js';
import { regressionStatements } from './helpers/regression-sql.js';
import { corpusQueries, hasPtFingerprint, ptFingerprints } from './helpers/sql-corpus.js';

const CASES: [sql: string, expected: string, dialect?: Dialect][] = [
  ['SELECT * FROM users WHERE id = 42', 'select * from users where id = ?'],
  ["select  NAME\n\tfrom Users where email='a@b.c'  and x=-1.5e3", 'select name from users where email=? and x=?'],
  ["SELECT 'it''s', \"dq\", 0x1F, X'41', b'01', NULL, TRUE", 'select ?, ?, ?, ?, ?, ?, true'],
  ['SELECT * FROM t WHERE a IN (1, 2, 3) AND b NOT IN (\'x\',NULL) AND c IN (SELECT id FROM u)', 'select * from t where a in(?+) and b not in(?+) and c in (select id from u)'],
  ['INSERT INTO t (a, b) VALUES (1, 2), (3, 4), (5, 6)', 'insert into t (a, b) values(?+)'],
  ['INSERT INTO t (a, b) VALUES (1, NOW()), (2, NOW())', 'insert into t (a, b) values (?, now())'],
  ['REPLACE INTO t VALUE (1)', 'replace into t value(?+)'],
  ['SELECT * FROM t LIMIT 10', 'select * from t limit ?'],
  ['SELECT * FROM t LIMIT 5, 10', 'select * from t limit ?'],
  ['SELECT * FROM t LIMIT 10 OFFSET 20', 'select * from t limit ?'],
  ['SELECT * FROM t ORDER BY a ASC, b DESC, c ASC', 'select * from t order by a, b desc, c'],
  ['SELECT /* hint */ a -- trailing\nFROM t # hash\nWHERE b = 1', 'select a from t where b = ?'],
  ['SELECT a FROM t1 WHERE b = 1 UNION SELECT a FROM t1 WHERE b = 2', 'select a from t1 where b = ? /*repeat union*/'],
  ['SELECT a FROM t1 UNION ALL SELECT a FROM t1 UNION ALL SELECT a FROM t1', 'select a from t1 /*repeat union all*/'],
  ['CALL shop.refresh(1, \'x\')', 'call shop.refresh'],
  ['USE analytics', 'use ?'],
  ['SET NAMES utf8; DROP TABLE t2', 'set names utf8; drop table t2'],
  ['select id from t where a = ? and b = ?', 'select id from t where a = ? and b = ?'],
  ['SELECT * FROM t WHERE a = $1 AND b = $2', 'select * from t where a = ? and b = ?', 'postgres'],
  ['SELECT * FROM "Orders" WHERE "Note" = E\'a\\\'b\' AND x = $$dollar$$', 'select * from "orders" where "note" = ? and x = ?', 'postgres'],
  ['SELECT * FROM [dbo].[Orders] WHERE id = @id AND n = N\'x\'', 'select * from [dbo].[orders] where id = ? and n = ?', 'tsql'],
  ['SELECT * FROM t WHERE id = :id', 'select * from t where id = ?', 'oracle'],
  ['SELECT /*!40001 SQL_NO_CACHE */ * FROM t', 'select sql_no_cache * from t'],
  ['SELECT a - 1, b + -2, -c FROM t', 'select a - ?, b + ?, -c from t'],
  ['', ''],
  ['   -- only a comment', ''],
];

test('fingerprints of hand-checked statements', (t) => {
  for (const [sql, expected, dialect] of CASES) t.is(fingerprint(sql, dialect ?? 'mysql'), expected, sql);
});

test('fingerprints ignore literal values, case, whitespace and comments; they keep names and structure', (t) => {
  const a = fingerprint("SELECT name FROM users WHERE id = 1 AND email = 'a@x'");
  t.is(fingerprint("select   name\nfrom USERS /* c */ where ID=1 and EMAIL='zz'").replace(/\s*=\s*/g, '='), a.replace(/\s*=\s*/g, '='));
  t.is(fingerprint("SELECT name FROM users WHERE id = 987654 AND email = 'other'"), a);
  t.not(fingerprint('SELECT name FROM customers WHERE id = 1'), fingerprint('SELECT name FROM users WHERE id = 1'));
  t.not(fingerprint('SELECT name FROM users WHERE id > 1'), fingerprint('SELECT name FROM users WHERE id = 1'));
  // IN lists of any length collapse to the same shape
  t.is(fingerprint('SELECT 1 FROM t WHERE a IN (1)'), fingerprint('SELECT 1 FROM t WHERE a IN (1,2,3,4,5,6,7,8)'));
});

/** A test that needs pt-fingerprint: skipped with a reason outside CI, failed in CI, when it is missing. */
function ptTest(title: string, needsCorpus: boolean, fn: (t: ExecutionContext) => void): void {
  const missing = !hasPtFingerprint() ? 'pt-fingerprint (percona-toolkit) is not installed' : needsCorpus && !(corpusAvailable && hasTshark()) ? 'needs tshark and the capture corpus' : undefined;
  if (missing === undefined) test.serial(title, fn);
  else if (process.env.CI) test(title, (t) => t.fail(missing));
  else {
    console.log(`skipping "${title}": ${missing}`);
    test.skip(title, () => {});
  }
}

interface Tally {
  compared: number;
  exact: number;
  used: Map<string, number>;
}
const tally: Tally = { compared: 0, exact: 0, used: new Map() };

function agree(t: ExecutionContext, statements: readonly { dialect: Dialect; sql: string }[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-fp-'));
  try {
    const pt = ptFingerprints(
      statements.map((s) => s.sql),
      dir,
    );
    const failures: string[] = [];
    let compared = 0;
    statements.forEach(({ dialect, sql }, i) => {
      const p = pt[i];
      if (p === undefined) return; // pt's file mode cannot take this text (see ptFingerprints)
      compared++;
      const r = compareFingerprints(sql, dialect, fingerprint(sql, dialect), p);
      if (!r.agrees) failures.push(`${dialect}: ${sql.slice(0, 200)}\n  dbtap: ${r.ours.slice(0, 200)}\n  pt:    ${r.pt.slice(0, 200)}`);
      else if (r.used.length === 0) tally.exact++;
      for (const u of r.used) tally.used.set(u, (tally.used.get(u) ?? 0) + 1);
    });
    tally.compared += compared;
    t.true(compared >= statements.length * 0.95, `pt compared only ${compared} of ${statements.length}`);
    t.deepEqual(failures, [], `${failures.length} fingerprints differ from pt-fingerprint outside the documented exceptions`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

ptTest('agrees with pt-fingerprint on generated MariaDB / PostgreSQL regression-style and application SQL', false, (t) => {
  agree(t, [...regressionStatements(400), ...allAppTemplates(), ...appStatements(300)]);
});

ptTest('agrees with pt-fingerprint on every statement of the capture corpus', true, (t) => {
  const { mysql, postgres } = corpusQueries();
  const statements = [...new Set(mysql)].map((sql) => ({ dialect: 'mysql' as Dialect, sql })).concat([...new Set(postgres)].map((sql) => ({ dialect: 'postgres' as Dialect, sql })));
  t.true(statements.length > 250);
  agree(t, statements);
});

test('every documented difference from pt-fingerprint is listed in docs/rules.md', (t) => {
  const docs = readFileSync(join(repoRoot, 'docs/rules.md'), 'utf8');
  for (const ex of FINGERPRINT_EXCEPTIONS) t.true(docs.includes(`\`${ex.name}\``), `exception '${ex.name}' is not listed in docs/rules.md`);
});

// Some differences occur only in the corpus' statements: without the corpus
// this check would call them unneeded.
ptTest('every documented difference from pt-fingerprint is needed by some query', true, (t) => {
  // serial tests run in order: the agreement tests above filled the tally
  for (const ex of FINGERPRINT_EXCEPTIONS) t.true((tally.used.get(ex.name) ?? 0) > 0, `exception '${ex.name}' is never needed: remove it or add the query that needs it`);
  t.log(`compared ${tally.compared}, identical ${tally.exact}; exceptions used: ${[...tally.used].map(([k, v]) => `${k}=${v}`).join(' ')}`);
});

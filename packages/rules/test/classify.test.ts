import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatementType } from '@dbtap/core';
import { analyzeSql, classify, type Dialect } from '../src/index.js';
import { tsharkTest } from '../../../test-support/corpus.js';
import { corpusQueries } from './helpers/sql-corpus.js';

const here = dirname(fileURLToPath(import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

type Row = [sql: string, type: StatementType, verb: string, objects: string, hasWhere?: boolean, dialect?: Dialect];
const obj = (sql: string, d: Dialect = 'mysql'): string =>
  analyzeSql(sql, { dialect: d })
    .objects.map((o) => `${o.op}:${o.schema === undefined ? '' : `${o.schema}.`}${o.name}`)
    .join(' ');

// Hand-checked classification of statements covering every class and the tricky corners.
const ROWS: Row[] = [
  ['SELECT * FROM users', 'select', 'SELECT', 'read:users'],
  ['select u.id from shop.users u join shop.orders o on o.uid = u.id where o.total > 10', 'select', 'SELECT', 'read:shop.users read:shop.orders', true],
  ['SELECT * FROM a, b AS bb, c cc LEFT OUTER JOIN d ON 1', 'select', 'SELECT', 'read:a read:b read:c read:d'],
  ['SELECT * FROM (SELECT * FROM x) s, y', 'select', 'SELECT', 'read:y read:x'],
  ['SELECT EXTRACT(YEAR FROM created) FROM t', 'select', 'SELECT', 'read:t'],
  ["SELECT TRIM(LEADING 'x' FROM name), SUBSTRING(a FROM 2) FROM t2", 'select', 'SELECT', 'read:t2'],
  ['SELECT * FROM generate_series(1, 10) g, real_t', 'select', 'SELECT', 'read:real_t', false, 'postgres'],
  ['WITH c AS (SELECT * FROM orders) SELECT * FROM c JOIN customers ON 1', 'select', 'SELECT', 'read:orders read:customers'],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r', 'select', 'SELECT', ''],
  ['WITH d AS (SELECT id FROM old) DELETE FROM t WHERE id IN (SELECT id FROM d)', 'delete', 'DELETE', 'read:old delete:t', true, 'postgres'],
  ['(SELECT a FROM t1) UNION (SELECT a FROM t2)', 'select', 'SELECT', 'read:t1 read:t2'],
  ['VALUES (1), (2)', 'select', 'VALUES', '', false, 'postgres'],
  ['TABLE films', 'select', 'TABLE', '', false, 'postgres'],
  ['SELECT @@version_comment LIMIT 1', 'select', 'SELECT', ''],
  ['SELECT 1 FROM DUAL', 'select', 'SELECT', ''],
  ['SELECT a INTO @x FROM t', 'select', 'SELECT', 'read:t'],
  ["SELECT * INTO OUTFILE '/tmp/x' FROM t", 'select', 'SELECT', 'read:t'],
  ['SELECT * INTO new_t FROM t', 'select', 'SELECT', 'create:new_t read:t', false, 'tsql'],
  ['SELECT * FROM t WITH (NOLOCK), u', 'select', 'SELECT', 'read:t read:u', false, 'tsql'],
  ['SELECT * FROM [dbo].[Orders] o WHERE o.id = @id', 'select', 'SELECT', 'read:dbo.Orders', true, 'tsql'],
  ['SELECT * FROM "Sales"."Q1"', 'select', 'SELECT', 'read:Sales.Q1', false, 'postgres'],
  ['SELECT * FROM `db`.`my``t`', 'select', 'SELECT', 'read:db.my`t'],
  ['SELECT * FROM srv.db.dbo.t', 'select', 'SELECT', 'read:dbo.t', false, 'tsql'],
  ['SELECT * FROM t FOR UPDATE', 'select', 'SELECT', 'read:t'],
  ['INSERT INTO t (a, b) VALUES (1, 2)', 'insert', 'INSERT', 'insert:t'],
  ['INSERT t VALUES (1)', 'insert', 'INSERT', 'insert:t'],
  ['INSERT IGNORE INTO db.t SELECT * FROM s WHERE x', 'insert', 'INSERT', 'insert:db.t read:s', true],
  ['INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)', 'insert', 'INSERT', 'insert:t'],
  ['REPLACE INTO t VALUES (1)', 'insert', 'REPLACE', 'insert:t'],
  ["LOAD DATA LOCAL INFILE '/x.csv' INTO TABLE imp", 'insert', 'LOAD DATA', 'insert:imp'],
  ['COPY t FROM STDIN', 'insert', 'COPY', 'insert:t', false, 'postgres'],
  ['COPY public.t (a, b) TO STDOUT', 'select', 'COPY', 'read:public.t', false, 'postgres'],
  ['COPY (SELECT * FROM x) TO STDOUT', 'select', 'COPY', 'read:x', false, 'postgres'],
  ['UPDATE t SET a = 1', 'update', 'UPDATE', 'update:t', false],
  ['UPDATE LOW_PRIORITY t SET a = 1 WHERE id = 2', 'update', 'UPDATE', 'update:t', true],
  ['UPDATE a JOIN b ON a.id = b.id SET a.x = b.x', 'update', 'UPDATE', 'update:a read:b', false],
  ['UPDATE t SET a = (SELECT max(x) FROM u WHERE u.k = t.k)', 'update', 'UPDATE', 'update:t read:u', false],
  ['DELETE FROM t', 'delete', 'DELETE', 'delete:t', false],
  ['DELETE FROM t WHERE id = 3', 'delete', 'DELETE', 'delete:t', true],
  ['DELETE FROM t USING u WHERE t.id = u.id', 'delete', 'DELETE', 'delete:t read:u', true, 'postgres'],
  ['DELETE FROM t WHERE id IN (SELECT id FROM u)', 'delete', 'DELETE', 'delete:t read:u', true],
  ['MERGE INTO tgt USING src ON tgt.id = src.id WHEN MATCHED THEN UPDATE SET v = src.v', 'merge', 'MERGE', 'merge:tgt read:src', false, 'oracle'],
  ['CREATE TABLE t (id INT PRIMARY KEY)', 'ddl', 'CREATE TABLE', 'create:t'],
  ['CREATE TEMPORARY TABLE IF NOT EXISTS s.t (id INT)', 'ddl', 'CREATE TABLE', 'create:s.t'],
  ['CREATE TABLE t2 AS SELECT * FROM t1', 'ddl', 'CREATE TABLE', 'create:t2 read:t1'],
  ['CREATE OR REPLACE VIEW v AS SELECT * FROM base', 'ddl', 'CREATE VIEW', 'create:v read:base'],
  ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'ddl', 'CREATE MATERIALIZED VIEW', 'create:mv', false, 'postgres'],
  ['CREATE UNIQUE INDEX i ON t (a)', 'ddl', 'CREATE INDEX', 'alter:t'],
  ['CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY t (a)', 'ddl', 'CREATE INDEX', 'alter:t', false, 'postgres'],
  ['DROP INDEX i ON t', 'ddl', 'DROP INDEX', 'alter:t'],
  ['DROP TABLE IF EXISTS a, b.c', 'ddl', 'DROP TABLE', 'drop:a drop:b.c'],
  ['DROP TEMPORARY TABLE tmp', 'ddl', 'DROP TABLE', 'drop:tmp'],
  ['DROP DATABASE shop', 'ddl', 'DROP DATABASE', 'drop:shop'],
  ['DROP SCHEMA s CASCADE', 'ddl', 'DROP SCHEMA', 'drop:s', false, 'postgres'],
  ['TRUNCATE logs', 'ddl', 'TRUNCATE TABLE', 'truncate:logs'],
  ['TRUNCATE TABLE ONLY a, b', 'ddl', 'TRUNCATE TABLE', 'truncate:a truncate:b', false, 'postgres'],
  ['ALTER TABLE t ADD COLUMN c INT', 'ddl', 'ALTER TABLE', 'alter:t'],
  ['RENAME TABLE a TO b, c TO d', 'ddl', 'RENAME TABLE', 'rename:a rename:b rename:c rename:d'],
  ['COMMENT ON TABLE t IS $$x$$', 'ddl', 'COMMENT ON', '', false, 'postgres'],
  ['CREATE DEFINER=`root`@`%` PROCEDURE p() BEGIN SELECT 1; END', 'ddl', 'CREATE PROCEDURE', 'create:p'],
  ['CREATE OR REPLACE PACKAGE BODY pk AS PROCEDURE x IS BEGIN NULL; END; END pk;', 'ddl', 'CREATE PACKAGE BODY', 'create:pk', false, 'oracle'],
  ['GRANT SELECT, INSERT ON shop.* TO app@localhost', 'dcl', 'GRANT', 'grant:shop.*'],
  ['GRANT ALL ON TABLE accounts TO bob', 'dcl', 'GRANT', 'grant:accounts', false, 'postgres'],
  ['GRANT admin TO bob', 'dcl', 'GRANT', ''],
  ['REVOKE UPDATE ON t FROM bob', 'dcl', 'REVOKE', 'revoke:t'],
  ['DENY SELECT ON dbo.Salaries TO guest', 'dcl', 'DENY', 'deny:dbo.Salaries', false, 'tsql'],
  ["CREATE USER 'x'@'%' IDENTIFIED BY 'y'", 'dcl', 'CREATE USER', ''],
  ['ALTER USER bob WITH SUPERUSER', 'dcl', 'ALTER USER', '', false, 'postgres'],
  ['DROP ROLE r', 'dcl', 'DROP ROLE', ''],
  ["CREATE LOGIN l WITH PASSWORD = 'p'", 'dcl', 'CREATE LOGIN', '', false, 'tsql'],
  ["SET PASSWORD FOR bob = 'x'", 'dcl', 'SET PASSWORD', ''],
  ['BEGIN', 'tcl', 'BEGIN', ''],
  ['BEGIN TRAN', 'tcl', 'BEGIN TRANSACTION', '', false, 'tsql'],
  ['START TRANSACTION READ ONLY', 'tcl', 'START TRANSACTION', ''],
  ['COMMIT', 'tcl', 'COMMIT', ''],
  ['ROLLBACK TO SAVEPOINT s1', 'tcl', 'ROLLBACK', ''],
  ['SAVEPOINT s1', 'tcl', 'SAVEPOINT', ''],
  ['RELEASE SAVEPOINT s1', 'tcl', 'RELEASE SAVEPOINT', ''],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'tcl', 'SET TRANSACTION', ''],
  ['SET SESSION TRANSACTION READ WRITE', 'tcl', 'SET TRANSACTION', ''],
  ['END', 'tcl', 'END', '', false, 'postgres'],
  ['SET NAMES utf8mb4', 'other', 'SET', ''],
  ['SHOW TABLES', 'other', 'SHOW', ''],
  ['USE shop', 'other', 'USE', ''],
  ['EXPLAIN SELECT * FROM t', 'other', 'EXPLAIN', 'read:t'],
  ['DESCRIBE users', 'other', 'DESCRIBE', 'describe:users'],
  ['CALL proc(1)', 'other', 'CALL', 'execute:proc'],
  ["EXEC sp_who2 'active'", 'other', 'EXEC', 'execute:sp_who2', false, 'tsql'],
  ['LOCK TABLES a READ, b WRITE', 'other', 'LOCK TABLES', 'lock:a lock:b'],
  ['UNLOCK TABLES', 'other', 'UNLOCK TABLES', ''],
  ['VACUUM ANALYZE t', 'other', 'VACUUM', '', false, 'postgres'],
  ['BEGIN NULL; END;', 'other', 'BEGIN', '', false, 'oracle'],
  ['', 'other', '', ''],
  ['/* only a comment */', 'other', '', ''],
];

test('classification, verb, objects and WHERE of hand-checked statements', (t) => {
  for (const [sql, type, verb, objects, hasWhere, dialect] of ROWS) {
    const d = dialect ?? 'mysql';
    const a = analyzeSql(sql, { dialect: d });
    t.is(a.type, type, `type of ${sql}`);
    t.is(a.verb, verb, `verb of ${sql}`);
    t.is(obj(sql, d), objects, `objects of ${sql}`);
    if (hasWhere !== undefined) t.is(a.hasWhere, hasWhere, `hasWhere of ${sql}`);
  }
});

test('multiple statements in one text: split on top-level semicolons only, the most consequential speaks for the text', (t) => {
  const a = analyzeSql("SET NAMES utf8; DROP TABLE t; SELECT ';' FROM u", { dialect: 'mysql' });
  t.deepEqual(
    a.statements.map((s) => [s.type, s.verb]),
    [
      ['other', 'SET'],
      ['ddl', 'DROP TABLE'],
      ['select', 'SELECT'],
    ],
  );
  t.is(a.type, 'ddl');
  t.is(a.verb, 'DROP TABLE');
  t.is(obj("SET NAMES utf8; DROP TABLE t; SELECT ';' FROM u"), 'drop:t read:u');
  t.is(a.fingerprint, 'set names utf8; drop table t; select ? from u');
  // stored program bodies keep their semicolons
  const p = analyzeSql('CREATE PROCEDURE p() BEGIN IF x THEN SELECT 1; END IF; WHILE y DO SET y = 0; END WHILE; SELECT CASE WHEN 1 THEN 2 END; END; SELECT 3');
  t.deepEqual(
    p.statements.map((s) => s.verb),
    ['CREATE PROCEDURE', 'SELECT'],
  );
  // T-SQL and PL/SQL bodies run to the end of the batch
  t.is(analyzeSql('CREATE PROCEDURE p AS SELECT 1; SELECT 2', { dialect: 'tsql' }).statements.length, 1);
  t.is(analyzeSql('DECLARE x NUMBER; BEGIN x := 1; END;', { dialect: 'oracle' }).statements.length, 1);
  t.is(analyzeSql('BEGIN; UPDATE t SET a = 1 WHERE b = 2; COMMIT;', { dialect: 'postgres' }).statements.length, 3);
  // statement offsets point into the text
  const s2 = analyzeSql('SELECT 1 ;  DELETE FROM x  -- c').statements[1]!;
  t.is('SELECT 1 ;  DELETE FROM x  -- c'.slice(s2.start, s2.end), 'DELETE FROM x');
});

// Regression-style SQL generated from templates: each object spelling in each
// dialect, through every statement form, must come back as the same object.
test('generated statements: every dialect, quoting and statement form yields the expected class and object', (t) => {
  const spell: Record<Dialect, [string, string][]> = {
    mysql: [['shop.orders', 'shop.orders'], ['`shop`.`orders`', 'shop.orders'], ['orders', 'orders']],
    postgres: [['shop.orders', 'shop.orders'], ['"shop"."orders"', 'shop.orders'], ['orders', 'orders']],
    tsql: [['[shop].[orders]', 'shop.orders'], ['shop.orders', 'shop.orders'], ['"orders"', 'orders']],
    oracle: [['SHOP.ORDERS', 'SHOP.ORDERS'], ['"shop"."orders"', 'shop.orders']],
    db2: [['SHOP.ORDERS', 'SHOP.ORDERS'], ['orders', 'orders']],
  };
  const forms: [string, StatementType, string, string][] = [
    ['SELECT a, b FROM {t} WHERE id = 1', 'select', 'SELECT', 'read'],
    ['SELECT COUNT(*) FROM {t} x JOIN other y ON x.k = y.k', 'select', 'SELECT', 'read'],
    ['INSERT INTO {t} (a) VALUES (1)', 'insert', 'INSERT', 'insert'],
    ['UPDATE {t} SET a = 2 WHERE id = 3', 'update', 'UPDATE', 'update'],
    ['DELETE FROM {t} WHERE id = 3', 'delete', 'DELETE', 'delete'],
    ['DROP TABLE {t}', 'ddl', 'DROP TABLE', 'drop'],
    ['CREATE TABLE {t} (a INT)', 'ddl', 'CREATE TABLE', 'create'],
    ['ALTER TABLE {t} ADD b INT', 'ddl', 'ALTER TABLE', 'alter'],
    ['TRUNCATE TABLE {t}', 'ddl', 'TRUNCATE TABLE', 'truncate'],
    ['GRANT SELECT ON {t} TO someone', 'dcl', 'GRANT', 'grant'],
  ];
  let n = 0;
  for (const [d, names] of Object.entries(spell) as [Dialect, [string, string][]][]) {
    for (const [written, expected] of names) {
      for (const [tpl, type, verb, op] of forms) {
        for (const ws of [' ', '\n\t', ' /* c */ ']) {
          const sql = tpl.replace('{t}', written).replace(/ /g, ws);
          const a = analyzeSql(sql, { dialect: d });
          t.is(a.type, type, `${d}: ${sql}`);
          t.is(a.verb, verb, `${d}: ${sql}`);
          const first = a.objects[0]!;
          t.is(`${op}:${first.schema === undefined ? '' : `${first.schema}.`}${first.name}`, `${op}:${expected}`, `${d}: ${sql}`);
          n++;
        }
      }
    }
  }
  t.true(n >= 300);
});

test('classify() summarises a text', (t) => {
  t.deepEqual(classify('DELETE FROM t'), { type: 'delete', verb: 'DELETE', objects: [{ name: 't', op: 'delete' }], hasWhere: false, statements: 1 });
});

// Every statement of the capture corpus: classification never fails, and a
// golden file records type / verb / objects / fingerprint for each one
// (UPDATE_GOLDEN=1 rewrites it after a reviewed change).
tsharkTest('capture corpus statements classify stably (golden file)', (t) => {
  const { mysql, postgres } = corpusQueries();
  const rows: Record<string, unknown>[] = [];
  const seen = new Set<string>();
  for (const [d, list] of [['mysql', mysql], ['postgres', postgres]] as const) {
    for (const sql of list) {
      if (seen.has(`${d}\u0000${sql}`)) continue;
      seen.add(`${d}\u0000${sql}`);
      const a = analyzeSql(sql, { dialect: d });
      t.truthy(a.type);
      rows.push({ dialect: d, sql: sql.length > 160 ? `${sql.slice(0, 160)}…` : sql, type: a.type, verb: a.verb, objects: a.objects.map((o) => `${o.op}:${o.schema ?? ''}${o.schema === undefined ? '' : '.'}${o.name}`), fingerprint: a.fingerprint.length > 160 ? `${a.fingerprint.slice(0, 160)}…` : a.fingerprint });
    }
  }
  t.true(rows.length > 250, `only ${rows.length} distinct corpus statements`);
  const file = join(here, 'golden', 'corpus-classification.json');
  const text = `${JSON.stringify(rows, null, 1)}\n`;
  if (UPDATE || !existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    t.log(`wrote ${file} (${rows.length} statements)`);
  }
  t.deepEqual(JSON.parse(text), JSON.parse(readFileSync(file, 'utf8')));
  const byType: Record<string, number> = {};
  for (const r of rows) byType[r.type as string] = (byType[r.type as string] ?? 0) + 1;
  t.log(JSON.stringify(byType));
  // the corpus has every DML class plus DDL and transaction control
  for (const k of ['select', 'insert', 'update', 'delete', 'ddl', 'tcl', 'other']) t.true((byType[k] ?? 0) > 0, k);
});

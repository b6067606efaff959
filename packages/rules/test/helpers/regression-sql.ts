// Regression-style SQL in the manner of the MariaDB mysql-test suite and the
// PostgreSQL regression tests: small tables t1, t2, ... created, filled,
// queried every which way, altered and dropped, with literals of every form
// (integers, negatives, decimals, exponents, hex, strings, NULL), lists,
// comments and odd whitespace. Deterministic (seeded).
import type { Dialect } from '../../src/index.js';

/** A generated statement and its dialect. */
export interface RegressionStatement {
  readonly dialect: Dialect;
  readonly sql: string;
}

let seed = 0x1f123bb5;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;

const NUMS = (): string => pick([String(rnd(100)), `-${1 + rnd(50)}`, `${rnd(100)}.${rnd(100)}`, `${1 + rnd(9)}e${rnd(5)}`, `${1 + rnd(9)}.5E-${1 + rnd(3)}`, '0', `${rnd(10) * 1000000007}`, '0x1F', `.${rnd(10)}5`]);
const STRS = (): string => pick(["'a'", "'abc'", "''", "'it''s'", "'2026-01-15'", "'x y z'", "'NULL'", "'O''Brien'", "'%foo%'", "'1'", "'   '"]);
const VAL = (): string => (rnd(3) === 0 ? STRS() : rnd(8) === 0 ? 'NULL' : NUMS());
const COL = (): string => pick(['a', 'b', 'c', 'id', 'f1', 'col2', 'name', 'val']);
const TBL = (): string => pick(['t1', 't2', 't3', 'test', 'tbl', 'orders']);
const WS = (): string => pick([' ', ' ', ' ', '  ', '\n', '\t', ' \n  ']);
const CMP = (): string => pick(['=', '<', '>', '<=', '>=', '<>', '!=']);

type Gen = (d: Dialect) => string;

const COMMON: Gen[] = [
  () => `CREATE TABLE ${TBL()} (a INT, b VARCHAR(${1 + rnd(200)}), c DECIMAL(${1 + rnd(20)},${rnd(5)}) NOT NULL DEFAULT ${rnd(9)})`,
  () => `INSERT INTO ${TBL()} VALUES (${VAL()}, ${VAL()}, ${VAL()})`,
  () => `INSERT INTO ${TBL()} (a, b) VALUES (${VAL()},${VAL()}),(${VAL()},${VAL()}),(${VAL()}, ${VAL()})`,
  () => `INSERT INTO ${TBL()} (a) VALUES (${VAL()})`,
  () => `SELECT * FROM ${TBL()}`,
  () => `SELECT ${COL()}, ${COL()} FROM ${TBL()} WHERE ${COL()} ${CMP()} ${VAL()}`,
  () => `select ${COL()}${WS()}from${WS()}${TBL()}${WS()}where${WS()}${COL()}${CMP()}${VAL()}`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} IN (${VAL()}, ${VAL()}, ${VAL()}) ORDER BY ${COL()}`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} NOT IN (${VAL()},${VAL()})`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} IS NULL OR ${COL()} IS NOT NULL`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} BETWEEN ${NUMS()} AND ${NUMS()}`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} LIKE ${STRS()}`,
  () => `SELECT ${COL()} FROM ${TBL()} ORDER BY ${COL()} DESC, ${COL()} LIMIT ${rnd(100)}`,
  () => `SELECT ${COL()} FROM ${TBL()} ORDER BY ${COL()} LIMIT ${rnd(100)} OFFSET ${rnd(100)}`,
  () => `SELECT COUNT(*), SUM(${COL()}), MAX(${COL()}) FROM ${TBL()} GROUP BY ${COL()} HAVING COUNT(*) > ${rnd(5)}`,
  () => `SELECT t1.a, t2.b FROM t1 JOIN t2 ON t1.a = t2.a WHERE t2.b ${CMP()} ${VAL()}`,
  () => `SELECT t1.a FROM t1 LEFT JOIN t2 ON t2.a = t1.a AND t2.c = ${VAL()} WHERE t2.a IS NULL`,
  () => `SELECT * FROM t1 WHERE a = (SELECT MAX(a) FROM t2 WHERE b = ${VAL()})`,
  () => `SELECT * FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.a = t1.a)`,
  () => `SELECT a FROM t1 UNION SELECT a FROM t2`,
  () => `SELECT a FROM t1 UNION ALL SELECT a FROM t2 ORDER BY a`,
  () => `SELECT CASE WHEN a > ${NUMS()} THEN ${STRS()} WHEN a < ${NUMS()} THEN ${STRS()} ELSE NULL END FROM ${TBL()}`,
  () => `SELECT ${COL()} + ${NUMS()}, ${COL()} * 2, -${COL()} FROM ${TBL()}`,
  () => `SELECT COALESCE(${COL()}, ${VAL()}), NULLIF(${COL()}, ${VAL()}) FROM ${TBL()}`,
  () => `SELECT ABS(${NUMS()}), ROUND(${NUMS()}, ${rnd(4)}), LENGTH(${STRS()})`,
  () => `SELECT DISTINCT ${COL()} FROM ${TBL()} WHERE ${COL()} <> ${VAL()} AND ${COL()} ${CMP()} ${VAL()} OR ${COL()} = ${VAL()}`,
  () => `UPDATE ${TBL()} SET ${COL()} = ${VAL()} WHERE ${COL()} = ${VAL()}`,
  () => `UPDATE ${TBL()} SET ${COL()} = ${COL()} + ${NUMS()}, ${COL()} = ${VAL()}`,
  () => `DELETE FROM ${TBL()} WHERE ${COL()} ${CMP()} ${VAL()}`,
  () => `DELETE FROM ${TBL()}`,
  () => `DROP TABLE ${TBL()}`,
  () => `DROP TABLE IF EXISTS t1, t2, t3`,
  () => `ALTER TABLE ${TBL()} ADD COLUMN d INT DEFAULT ${rnd(100)}`,
  () => `ALTER TABLE ${TBL()} DROP COLUMN ${COL()}`,
  () => `CREATE INDEX i1 ON ${TBL()} (${COL()})`,
  () => `CREATE VIEW v1 AS SELECT a, b FROM t1 WHERE a > ${NUMS()}`,
  () => `DROP VIEW v1`,
  () => `TRUNCATE TABLE ${TBL()}`,
  () => `EXPLAIN SELECT * FROM ${TBL()} WHERE ${COL()} = ${VAL()}`,
  () => `SELECT /* inline comment */ ${COL()} FROM ${TBL()}`,
  () => `SELECT ${COL()} FROM ${TBL()} -- trailing comment\nWHERE ${COL()} = ${VAL()}`,
  () => `SELECT a FROM t1 WHERE a IN (SELECT a FROM t2 WHERE b IN (${VAL()}, ${VAL()}))`,
  () => `SELECT * FROM t1 ORDER BY a ASC, b ASC`,
  () => `SELECT * FROM t1 ORDER BY a ASC LIMIT ${rnd(9)}`,
  () => `BEGIN`,
  () => `COMMIT`,
  () => `ROLLBACK`,
  () => `SELECT ${NUMS()}`,
  () => `SELECT ${STRS()}, ${NUMS()}, NULL`,
  () => `SELECT a FROM t1 WHERE a = ${VAL()} UNION SELECT a FROM t1 WHERE a = ${VAL()}`,
  () => `SELECT * FROM (SELECT a FROM t1 ORDER BY a LIMIT ${rnd(9)} OFFSET ${rnd(9)}) x ORDER BY a LIMIT ${rnd(9)} OFFSET ${rnd(9)}`,
  () => `SELECT ${VAL()};SELECT ${VAL()} FROM ${TBL()}`,
];

const MARIADB: Gen[] = [
  () => `CREATE TABLE ${TBL()} (a INT NOT NULL AUTO_INCREMENT PRIMARY KEY, b VARCHAR(${1 + rnd(99)}) CHARACTER SET utf8mb4, KEY (b)) ENGINE=InnoDB`,
  () => `SELECT * FROM \`${TBL()}\` WHERE \`${COL()}\` = ${VAL()}`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} = "double quoted"`,
  () => `SELECT * FROM ${TBL()} LIMIT ${rnd(20)}, ${rnd(20)}`,
  () => `REPLACE INTO ${TBL()} VALUES (${VAL()}, ${VAL()})`,
  () => `INSERT IGNORE INTO ${TBL()} (a, b) VALUES (${VAL()}, ${VAL()})`,
  () => `INSERT INTO ${TBL()} (a, b) VALUES (${VAL()}, ${VAL()}) ON DUPLICATE KEY UPDATE b = VALUES(b)`,
  () => `INSERT INTO ${TBL()} SELECT * FROM t2 WHERE a > ${NUMS()}`,
  () => `SET @a = ${VAL()}`,
  () => `SELECT @a, @@version, @@session.sql_mode`,
  () => `SHOW CREATE TABLE ${TBL()}`,
  () => `SHOW TABLES`,
  () => `SHOW VARIABLES LIKE 'max_%'`,
  () => `USE test`,
  () => `CALL p1(${VAL()}, ${VAL()})`,
  () => `SELECT IF(a > ${NUMS()}, 'big', 'small') FROM t1`,
  () => `SELECT CONCAT(a, '-', b), CONCAT_WS(',', a, b) FROM t1`,
  () => `SELECT * FROM t1 WHERE a = ${NUMS()} # hash comment\nAND b = ${VAL()}`,
  () => `SELECT HEX(b), UNHEX('4142'), X'4142', 0x4142`,
  () => `SELECT * FROM t1 WHERE b REGEXP '^a' AND a DIV ${1 + rnd(9)} = ${rnd(9)}`,
  () => `SELECT a FROM t1 WHERE a = ${VAL()} FOR UPDATE`,
  () => `ANALYZE TABLE ${TBL()}`,
  () => `OPTIMIZE TABLE ${TBL()}`,
  () => `LOCK TABLES t1 READ, t2 WRITE`,
  () => `UNLOCK TABLES`,
  () => `SET NAMES latin1`,
  () => `FLUSH TABLES`,
  () => `DROP DATABASE IF EXISTS mysqltest1`,
  () => `CREATE DATABASE mysqltest1`,
  // a statement cut short by the capture: the last string never ends
  () => `INSERT INTO t1 (a, b) VALUES (${NUMS()}, 'cut short by the capt`,
];

const POSTGRES: Gen[] = [
  () => `CREATE TABLE ${TBL()} (a int4, b text, c numeric(${1 + rnd(20)}, ${rnd(5)}), d timestamptz DEFAULT now())`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} = $1`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} = $1 AND ${COL()} > $2 LIMIT $3`,
  () => `INSERT INTO ${TBL()} (a, b) VALUES ($1, $2) RETURNING a`,
  () => `SELECT ${COL()}::text, ${NUMS()}::int, ${STRS()}::date FROM ${TBL()}`,
  () => `SELECT * FROM ${TBL()} WHERE ${COL()} ILIKE ${STRS()}`,
  () => `SELECT a, b FROM ${TBL()} ORDER BY a NULLS FIRST, b DESC NULLS LAST`,
  () => `SELECT ARRAY[1, 2, 3], '{1,2}'::int[]`,
  () => `SELECT generate_series(1, ${1 + rnd(50)})`,
  () => `WITH x AS (SELECT a FROM t1 WHERE a > ${NUMS()}) SELECT * FROM x`,
  () => `UPDATE ${TBL()} SET b = ${STRS()} WHERE a = ${NUMS()} RETURNING *`,
  () => `DELETE FROM ${TBL()} WHERE a = ${NUMS()} RETURNING a`,
  () => `SELECT a, count(*) OVER (PARTITION BY b ORDER BY a) FROM t1`,
  () => `SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'pg_%'`,
  () => `SELECT a FROM t1 WHERE a = ANY ('{1,2,3}'::int[])`,
  () => `VACUUM ANALYZE ${TBL()}`,
  () => `SET search_path TO public`,
  () => `SELECT a FROM t1 INTERSECT SELECT a FROM t2`,
  () => `SELECT a FROM t1 EXCEPT SELECT a FROM t2`,
  () => `SELECT 'a' || 'b', upper(${STRS()}), lower(b) FROM t1`,
  () => `SELECT * FROM t1 WHERE b ~ '^x' AND b !~* 'y'`,
  () => `SELECT coalesce(max(a), ${NUMS()}) FROM t1`,
  () => `CREATE TEMP TABLE tmp AS SELECT * FROM t1 WHERE false`,
  () => `SELECT * FROM t1 FETCH FIRST ${1 + rnd(9)} ROWS ONLY`,
];

/** `count` statements per dialect family (MariaDB and PostgreSQL), plus every template once. */
export function regressionStatements(count: number): RegressionStatement[] {
  seed = 0x1f123bb5;
  const out: RegressionStatement[] = [];
  const all: [Dialect, Gen[]][] = [
    ['mysql', [...COMMON, ...MARIADB]],
    ['postgres', [...COMMON, ...POSTGRES]],
  ];
  for (const [dialect, gens] of all) {
    for (const g of gens) out.push({ dialect, sql: g(dialect) });
    for (let i = 0; i < count; i++) out.push({ dialect, sql: pick(gens)(dialect) });
  }
  return out;
}

// Application-style SQL generated from templates: what ORMs, drivers, admin
// tools and report code send to MySQL/MariaDB and PostgreSQL, with literals
// that vary and properly escaped user text (quotes, backslashes, SQL words,
// punctuation). Every statement here is benign: the injection detector must
// stay silent on all of them. Deterministic (seeded), so failures reproduce.
import type { Dialect } from '../../src/index.js';

/** A generated statement and the dialect it is written in. */
export interface AppStatement {
  readonly dialect: Dialect;
  readonly sql: string;
}

/** Free text users type into forms, including quotes and SQL words (escaped before use). */
export const USER_TEXT: readonly string[] = [
  "O'Brien",
  'Y\'ALL COME BACK NOW',
  'SELECT * FROM the catalogue',
  'union station',
  '1 OR 1',
  'rock & roll',
  '50% off -- today only',
  'C:\\Users\\public',
  '"quoted" title',
  "it's 5 o'clock",
  'DROP by anytime',
  'admin',
  "1950's dresses",
  '/* not a comment */',
  'a;b;c',
  'sleep well',
  'where is george',
  'waitfor it',
  '#hashtag',
  'Ürün Çeşitleri',
  '東京',
];

let seed = 0x2545f491;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;

/** Escapes text into a string literal the way drivers do for the dialect. */
export function quote(text: string, dialect: Dialect): string {
  if (dialect === 'mysql') return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `'${text.replace(/'/g, "''")}'`;
}

type Template = (q: (s: string) => string) => string;

const MYSQL: Template[] = [
  () => `SELECT id, name, email FROM users WHERE id = ${rnd(100000)}`,
  (q) => `SELECT * FROM products WHERE name = ${q(pick(USER_TEXT))}`,
  (q) => `SELECT * FROM products WHERE name LIKE ${q(`%${pick(USER_TEXT)}%`)} ORDER BY price ASC LIMIT ${rnd(50)}, 25`,
  () => `SELECT u.id, u.name, COUNT(o.id) AS orders FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at >= '2026-0${1 + rnd(9)}-01' GROUP BY u.id, u.name HAVING COUNT(o.id) > ${rnd(5)} ORDER BY orders DESC`,
  () => `SELECT * FROM orders WHERE 1=1 AND status IN ('open', 'paid') AND customer_id = ${rnd(9999)}`,
  () => `SELECT 1`,
  () => `SELECT @@version_comment LIMIT 1`,
  () => `SELECT @@session.transaction_isolation`,
  () => `SELECT DATABASE(), USER(), VERSION()`,
  () => `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'shop'`,
  () => `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'orders' ORDER BY ordinal_position`,
  (q) => `INSERT INTO comments (post_id, author, body, created_at) VALUES (${rnd(500)}, ${q(pick(USER_TEXT))}, ${q(pick(USER_TEXT))}, NOW())`,
  (q) => `INSERT INTO tags (name) VALUES (${q(pick(USER_TEXT))}), (${q(pick(USER_TEXT))}) ON DUPLICATE KEY UPDATE name = VALUES(name)`,
  (q) => `UPDATE users SET display_name = ${q(pick(USER_TEXT))}, updated_at = NOW() WHERE id = ${rnd(100000)}`,
  () => `UPDATE counters SET hits = hits + 1 WHERE page_id = ${rnd(1000)}`,
  () => `DELETE FROM sessions WHERE expires_at < NOW() - INTERVAL 1 DAY`,
  () => `SELECT SQL_CALC_FOUND_ROWS * FROM posts WHERE published = 1 LIMIT 10`,
  () => `SELECT FOUND_ROWS()`,
  () => `SELECT /*+ MAX_EXECUTION_TIME(1000) */ id FROM big_table WHERE k = ${rnd(100)}`,
  () => `/* ping */ SELECT 1`,
  () => `SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
  () => `SELECT a.id, b.total FROM (SELECT id FROM accounts WHERE active = 1) a JOIN (SELECT account_id, SUM(amount) AS total FROM ledger GROUP BY account_id) b ON b.account_id = a.id`,
  () => `SELECT id, 'active' AS state FROM users WHERE active = 1 UNION ALL SELECT id, 'inactive' AS state FROM users WHERE active = 0`,
  () => `SELECT name FROM customers WHERE country = 'DE' UNION SELECT name FROM suppliers WHERE country = 'DE'`,
  () => `SELECT CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 THEN 'B' ELSE 'C' END AS grade FROM results WHERE exam_id = ${rnd(40)}`,
  () => `SELECT IF(stock > 0, 'in stock', 'sold out') AS availability FROM products WHERE sku = 'SKU-${rnd(9999)}'`,
  () => `SELECT CONCAT(first_name, ' ', last_name) AS full_name FROM people WHERE id IN (${rnd(99)}, ${rnd(99)}, ${rnd(99)})`,
  () => `SELECT JSON_EXTRACT(payload, '$.user.id') FROM events WHERE type = 'login' AND ts > ${1700000000 + rnd(1000000)}`,
  () => `SELECT payload->>'$.name' FROM events WHERE id = ${rnd(1000)}`,
  () => `SELECT * FROM t WHERE created BETWEEN '2026-01-01' AND '2026-01-31' AND amount BETWEEN ${rnd(10)} AND ${10 + rnd(10)}`,
  () => `SELECT MD5(CONCAT(id, '-', salt)) FROM api_keys WHERE id = ${rnd(99)}`,
  () => `SELECT ASCII(SUBSTRING(code, 1, 1)) FROM vouchers WHERE id = ${rnd(99)}`,
  () => `SELECT * FROM logs WHERE message REGEXP '^ERROR' AND level >= ${rnd(5)}`,
  () => `SELECT id FROM t WHERE flags & 4 = 4`,
  () => `SELECT LENGTH(body) FROM posts WHERE id = ${rnd(99)}`,
  () => `SELECT SLEEP(0)`,
  () => `SET NAMES utf8mb4`,
  () => `SET autocommit=${rnd(2)}`,
  () => `SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'`,
  () => `/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */`,
  () => 'SELECT /*!40001 SQL_NO_CACHE */ * FROM `orders`',
  () => `SHOW FULL COLUMNS FROM \`orders\` FROM \`shop\` LIKE 'total'`,
  () => `SHOW VARIABLES LIKE 'lower_case_%'`,
  () => `START TRANSACTION`,
  () => `COMMIT`,
  () => `ROLLBACK`,
  () => `SELECT * FROM users WHERE email = 'user${rnd(999)}@example.com' AND password_hash = '$2y$10$${rnd(1e9)}abcdef'`,
  () => `SELECT * FROM products WHERE price > ${rnd(100)}.${rnd(99)} AND price < -1 * -${rnd(1000)}`,
  () => `SELECT * FROM t WHERE id = -${rnd(100)}`,
  () => `SELECT COUNT(DISTINCT user_id) FROM visits WHERE day = CURDATE() - INTERVAL ${rnd(30)} DAY`,
  (q) => `SELECT id FROM articles WHERE MATCH (title, body) AGAINST (${q(pick(USER_TEXT))} IN NATURAL LANGUAGE MODE)`,
  () => `CALL refresh_stats(${rnd(9)})`,
  () => `INSERT INTO audit (who, what) SELECT user_id, 'export' FROM exports WHERE id = ${rnd(99)}`,
  () => `UPDATE t1 JOIN t2 ON t2.id = t1.t2_id SET t1.total = t2.total WHERE t2.changed = 1`,
  () => `DELETE FROM cart_items WHERE cart_id = ${rnd(1000)} AND sku NOT IN ('A-1', 'B-2')`,
  () => `SELECT x FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id)`,
  () => `SELECT COALESCE(nickname, name, 'anonymous') FROM users WHERE id = ${rnd(9)}`,
  () => `SELECT * FROM t ORDER BY 1 DESC LIMIT 5`,
  () => `SELECT id FROM t WHERE a = 1 OR b = 2 OR c IS NULL`,
  () => `SELECT id FROM t WHERE deleted_at IS NULL AND (owner_id = ${rnd(99)} OR shared = TRUE)`,
];

const POSTGRES: Template[] = [
  () => `SELECT id, name FROM users WHERE id = $1`,
  () => `SELECT * FROM "public"."orders" WHERE "customer_id" = $1 AND "status" = ANY($2) ORDER BY "created_at" DESC LIMIT 20 OFFSET $3`,
  (q) => `SELECT * FROM products WHERE name ILIKE ${q(`%${pick(USER_TEXT)}%`)}`,
  (q) => `INSERT INTO comments (post_id, body) VALUES (${rnd(99)}, ${q(pick(USER_TEXT))}) RETURNING id`,
  (q) => `UPDATE users SET bio = ${q(pick(USER_TEXT))} WHERE id = ${rnd(999)} RETURNING updated_at`,
  () => `SELECT first_name || ' ' || last_name AS full_name FROM people WHERE id = ${rnd(99)}`,
  () => `SELECT 'prefix-' || id::text FROM t WHERE id < ${rnd(99)}`,
  () => `SELECT data->>'name', data->'tags' FROM docs WHERE data @> '{"active": true}' AND id = ${rnd(99)}`,
  () => `SELECT now() - interval '1 day', current_date, current_user`,
  () => `SELECT pg_sleep(0)`,
  () => `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
  () => `SELECT version()`,
  () => `SHOW server_version`,
  () => `SET search_path TO app, public`,
  () => `BEGIN`,
  () => `COMMIT`,
  () => `DISCARD ALL`,
  () => `DEALLOCATE ALL`,
  () => `SELECT 1`,
  () => `WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '7 days') SELECT customer_id, count(*) FROM recent GROUP BY customer_id HAVING count(*) > 1`,
  () => `INSERT INTO kv (k, v) VALUES ('a', 1), ('b', 2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`,
  () => `SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`,
  () => `SELECT count(*) FILTER (WHERE paid) AS paid, count(*) AS total FROM invoices WHERE issued >= date_trunc('month', now())`,
  () => `SELECT $$it's a dollar-quoted string$$`,
  () => `SELECT E'line\\nbreak', 'a' = 'a' AS same`,
  () => `SELECT regexp_replace(name, '\\s+', ' ', 'g') FROM t WHERE id = ${rnd(9)}`,
  () => `SELECT * FROM t WHERE tags && ARRAY['a', 'b'] AND id <> ${rnd(9)}`,
  () => `SELECT generate_series(1, ${1 + rnd(9)})`,
  () => `COPY (SELECT * FROM exports WHERE batch = ${rnd(99)}) TO STDOUT WITH CSV HEADER`,
  () => `SELECT id FROM a UNION ALL SELECT id FROM b ORDER BY 1`,
  () => `SELECT CASE WHEN x > 0 THEN 'pos' ELSE 'neg' END FROM t`,
  () => `LISTEN events`,
  () => `SELECT * FROM t WHERE id = ${rnd(9)} AND true`,
];

/** `count` benign application statements, mixed MySQL/MariaDB and PostgreSQL. */
export function appStatements(count: number): AppStatement[] {
  seed = 0x2545f491;
  const out: AppStatement[] = [];
  for (let i = 0; i < count; i++) {
    const pg = rnd(3) === 0;
    const dialect: Dialect = pg ? 'postgres' : 'mysql';
    const t = pick(pg ? POSTGRES : MYSQL);
    out.push({ dialect, sql: t((s) => quote(s, dialect)) });
  }
  return out;
}

/** Every template once (for tests that want full coverage rather than a sample). */
export function allAppTemplates(): AppStatement[] {
  seed = 0x2545f491;
  const out: AppStatement[] = [];
  for (const t of MYSQL) out.push({ dialect: 'mysql', sql: t((s) => quote(s, 'mysql')) });
  for (const t of POSTGRES) out.push({ dialect: 'postgres', sql: t((s) => quote(s, 'postgres')) });
  return out;
}

// The analysis cache is keyed by statement shape (literal values dropped).
// A wrong share would classify a statement as another one, so: texts that
// share a shape must have identical analyses, every text must analyse the
// same through the engine's cache as without it, and anything the shape
// scan cannot reproduce exactly must bypass the cache.
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import { RuleEngine, TokenBuffer, analyzeSql, detectSqlInjection, dialectOptions, fingerprint, loadRuleObjects, scanSql, type Dialect } from '../src/index.js';
import { ShapeCache, shapeKey } from '../src/sql/shape.js';
import { detectInjectionTokens } from '../src/sql/sqli.js';
import { allAppTemplates, appStatements } from './helpers/app-sql.js';
import { regressionStatements } from './helpers/regression-sql.js';
import { statement } from './helpers/events.js';
import { corpusQueries } from './helpers/sql-corpus.js';
import { tsharkTest } from '../../../test-support/corpus.js';

const view = (sql: string, d: Dialect): unknown => {
  const a = analyzeSql(sql, { dialect: d });
  return { type: a.type, verb: a.verb, objects: a.objects, hasWhere: a.hasWhere, fingerprint: a.fingerprint, statements: a.statements.map((s) => [s.type, s.verb, s.hasWhere]) };
};

test('shapes drop literal values and nothing else', (t) => {
  const my = dialectOptions('mysql');
  const pg = dialectOptions('postgres');
  t.is(shapeKey("SELECT a FROM t1 WHERE id = 42 AND name = 'o''x' AND f = 1.5", my), "mSELECT a FROM t1 WHERE id = 0 AND name = '' AND f = 0");
  t.is(shapeKey('SELECT * FROM "T 1" WHERE a = $1 AND b = \'x\'', pg), 'pSELECT * FROM "T 1" WHERE a = $1 AND b = \'\'');
  t.is(shapeKey('SELECT `a``b` FROM t WHERE c = "dq"', my), "mSELECT `a``b` FROM t WHERE c = ''");
  // what only the lexer gets right is not shaped
  for (const sql of ["SELECT 'a\\'b'", 'SELECT 1 -- c', 'SELECT /* c */ 1', 'SELECT 1 # c', "SELECT N'x'", "SELECT _utf8mb4'x'", 'SELECT 0x1F', 'SELECT 1e3', 'SELECT 1abc', "SELECT 'open", 'SELECT `open']) t.is(shapeKey(sql, my), undefined, sql);
  for (const sql of ['SELECT $$x$$', 'SELECT $a$x$a$', "SELECT E'x'"]) t.is(shapeKey(sql, pg), undefined, sql);
  t.is(shapeKey('SELECT [a] FROM t', dialectOptions('tsql')), undefined);
  t.is(shapeKey(`SELECT '${'x'.repeat(5000)}'`, my), undefined);
  t.is(shapeKey("SELECT '\\\\host\\share'", pg), undefined); // a possible UNC path
  // dialects never share a shape
  t.not(shapeKey('SELECT 1', my), shapeKey('SELECT 1', pg));
});

test('a cache hit needs the same shape, not just the same hash', (t) => {
  const my = dialectOptions('mysql');
  const c = new ShapeCache<string>(4);
  t.is(c.get('SELECT a FROM t WHERE id = 1', my), undefined);
  c.set('A');
  t.is(c.get('SELECT a FROM t WHERE id = 987654321', my), 'A');
  t.is(c.get('SELECT a FROM u WHERE id = 1', my), undefined);
  c.set('B');
  t.is(c.get('SELECT a FROM t WHERE id = 1 -- c', my), undefined); // not shaped
  c.set('ignored'); // a text without a shape is not stored
  t.is(c.size, 2);
  // bounded: full means starting over
  for (const x of ['v', 'w', 'x']) {
    c.get(`SELECT ${x} FROM t`, my);
    c.set(x);
  }
  t.true(c.size <= 4);
});

/** Every statement: analysed alone, and through an engine whose cache saw other texts of its shape first. */
function sameThroughCache(t: import('ava').ExecutionContext, statements: { dialect: Dialect; sql: string }[]): void {
  const rs = loadRuleObjects({ rules: [{ id: 'x', risk: 'low', condition: 'kind = statement' }] }).ruleSet;
  const engine = new RuleEngine(rs, { analysisCacheSize: 100_000 });
  const byShape = new Map<string, unknown>();
  let shared = 0;
  for (const { dialect, sql } of statements) {
    const expected = view(sql, dialect);
    const key = shapeKey(sql, dialectOptions(dialect));
    if (key !== undefined) {
      const first = byShape.get(key);
      if (first === undefined) byShape.set(key, expected);
      else {
        shared++;
        t.deepEqual(expected, first, `same shape, different analysis: ${sql}`);
      }
    }
    const e: AuditEvent = statement(sql, { dbType: dialect === 'postgres' ? 'postgres' : 'mysql' });
    engine.process(e);
    const ex = expected as { type: AuditEvent['statementType']; verb: string; objects: unknown; fingerprint: string };
    if (ex.fingerprint.length > 0) {
      t.is(e.statementType, ex.type, sql);
      t.is(e.verb, ex.verb.length > 0 ? ex.verb : undefined, sql);
      t.deepEqual(e.objects, ex.objects, sql);
      t.is(e.fingerprint, ex.fingerprint, sql);
    }
  }
  t.true(shared > 0);
  t.true(engine.stats().analysisCacheHits > 0);
}

test('generated statements analyse the same through the shape cache', (t) => {
  sameThroughCache(t, [...regressionStatements(600), ...allAppTemplates(), ...appStatements(2000)]);
});

tsharkTest('capture corpus statements analyse the same through the shape cache', (t) => {
  const { mysql, postgres } = corpusQueries();
  sameThroughCache(t, [...mysql.map((sql) => ({ dialect: 'mysql' as Dialect, sql })), ...postgres.map((sql) => ({ dialect: 'postgres' as Dialect, sql }))]);
});

test('injection verdicts and fingerprints through their shape caches match a fresh scan of every text', (t) => {
  // Texts of one shape in both orders, so a verdict that read a literal
  // (AND 1=1 vs AND 8=3, OR 2>1 vs OR 1>2) is met first either way.
  const probes = ['1=1', '8=3', '2>1', '1>2', "'a'='a'", "'a'='b'", '1', '0', '3 BETWEEN 1 AND 5', '9 BETWEEN 1 AND 5'];
  const attacks: { dialect: Dialect; sql: string }[] = [];
  for (const op of ['AND', 'OR', 'XOR']) for (const p of [...probes, ...[...probes].reverse()]) attacks.push({ dialect: 'mysql', sql: `SELECT * FROM items WHERE id = 5 ${op} ${p}` });
  // a UNC path looks like an ordinary string only to the shape scan, which therefore leaves it out
  for (const s of ["'\\\\\\\\evil\\\\x'", "'plain'", "'\\\\\\\\evil\\\\x'"]) attacks.push({ dialect: 'postgres', sql: `SELECT * FROM files WHERE path = ${s}` });
  const texts = [...attacks, ...regressionStatements(600), ...allAppTemplates(), ...appStatements(2000)];
  const buf = new TokenBuffer();
  let flagged = 0;
  for (const { dialect, sql } of texts) {
    const fresh = detectInjectionTokens(scanSql(sql, dialect, buf));
    const cached = detectSqlInjection(sql, dialect);
    t.deepEqual(cached, fresh, `${dialect}: ${sql}`);
    if (cached.injection) flagged++;
    cached.reasons.push('changed by the caller'); // a caller's copy: the cache keeps its own
    t.deepEqual(detectSqlInjection(sql, dialect), fresh, `${dialect}: ${sql} (again)`);
    t.is(fingerprint(sql, dialect), analyzeSql(sql, { dialect }).fingerprint, sql);
  }
  t.true(flagged >= 30, `${flagged} attacks flagged`);
});

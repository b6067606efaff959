// The rule index (by record class, then by what a statement's shape decides)
// must give exactly the verdicts of evaluating every rule's whole condition
// on every record. Both engines see the same varied records in the same
// order; every built-in rule fires at least once among them.
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import { RuleEngine, builtinRuleFiles, compileRules, loadRuleText, type Verdict } from '../src/index.js';
import { events as workload } from '../bench/workload.js';
import { MONDAY_10AM, login, s, statement } from './helpers/events.js';

// The library, with its lists filled and its one disabled rule enabled, plus
// local rules that use the index in other ways (an allow-list rule, a
// decoder-set class, negations and verbs).
const LOCAL = `
lists:
  sensitive_tables: { append: true, items: [hr.salaries, cards] }
  allowed_client_networks: { append: true, items: [10.0.0.0/8] }
rules:
  - id: connections.outside-allowed-networks
    override: true
    enabled: true
  - id: local.ignore-monitor
    name: Monitoring reads are expected
    risk: info
    action: ignore
    condition: user = monitor and statementType = select
  - id: local.not-select
    name: Writes by the reporting user
    risk: low
    condition: kind = statement and user = reporting and not statementType in (select, tcl, other)
  - id: local.call-verb
    name: Procedure called
    risk: low
    condition: verb = CALL or sql.verbs in (EXEC, EXECUTE)
  - id: local.injection-reasons
    name: Stacked query
    risk: medium
    condition: sql.injectionReasons in (stacked-query) and sql.length > 10
  - id: local.users-table
    name: Users table read without a filter
    risk: low
    condition: objects.name = users and not sql.hasWhere and fingerprint exists
`;

function ruleSet() {
  const r = loadRuleText(LOCAL, 'local.yaml', { include: builtinRuleFiles() });
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
  return compileRules(r);
}

/** Records that make every rule fire, mixed with a realistic workload. */
function records(): AuditEvent[] {
  const out: AuditEvent[] = [];
  const weekend = Date.UTC(2026, 0, 10, 12, 0, 0) * 1000;
  const at = (i: number): number => MONDAY_10AM + s(i);
  const stmts: [string, Partial<AuditEvent>][] = [
    ['DROP TABLE customers', {}],
    ['TRUNCATE TABLE orders', {}],
    ['ALTER TABLE orders ADD COLUMN note TEXT', {}],
    ['UPDATE accounts SET balance = 0', {}],
    ['DELETE FROM carts', {}],
    ['SET autocommit=0; DELETE FROM carts', {}],
    ["GRANT ALL ON *.* TO 'eve'@'%'", {}],
    ["CREATE USER 'eve'@'%' IDENTIFIED BY 'x'", {}],
    ["UPDATE mysql.user SET plugin = '' WHERE User = 'root'", {}],
    ['SELECT /*!40001 SQL_NO_CACHE */ * FROM `customers`', { clientProgram: 'mysqldump' }],
    ['COPY public.orders (id, total) TO stdout;', { dbType: 'postgres' }],
    ["SELECT * FROM orders INTO OUTFILE '/tmp/o.csv'", {}],
    ["SELECT * FROM users WHERE name = '' OR '1'='1'", {}],
    ['SELECT * FROM users WHERE id = 1; DROP TABLE users', {}],
    ['SELECT * FROM users WHERE id = 2; DROP TABLE users', {}],
    ['SELECT salary FROM hr.salaries WHERE id = 4', {}],
    ["UPDATE cards SET pan = 'x' WHERE id = 3", {}],
    ['SELECT * FROM users', {}],
    ['SELECT * FROM users', { user: 'monitor' }],
    ['SELECT id FROM users WHERE id = 7', { user: 'monitor' }],
    ['INSERT INTO report_log VALUES (1)', { user: 'reporting' }],
    ['SELECT 1', { user: 'reporting' }],
    ['CALL refresh_stats(3)', {}],
    ['EXEC sp_who', { dbType: 'tsql' }],
    // classes a decoder set itself, which the text alone would not give
    ['DROP TABLE t1', { statementType: 'other', verb: 'DROP TABLE' }],
    ['SELECT * FROM users', { statementType: 'select', verb: 'SELECT', objects: [{ name: 'accounts' }], fingerprint: 'select * from accounts' }],
    ['SELECT * FROM users WHERE id = 3', { objects: [{ name: 'users' }] }],
    // a shape first met with the fields from its text, then with a decoder's own
    ['SELECT * FROM accounts', {}],
    ['SELECT * FROM accounts', {}],
    ['SELECT * FROM accounts', { objects: [{ name: 'users' }] }],
    ['SELECT * FROM big_table', { rowsReturned: 200_000 }],
    ['SELECT * FROM slow_view WHERE id = 1', { durationUs: 6_000_000 }],
  ];
  let i = 0;
  for (const [sql, over] of stmts) out.push(statement(sql, { ts: at(i++), ...over }));
  for (let k = 0; k < 12; k++) out.push(login({ ts: at(i++), status: 'error', user: 'root', client: { ip: '10.9.9.9', port: 5000 + k } }));
  for (let k = 0; k < 3; k++) out.push(login({ ts: at(i++), user: 'shared', client: { ip: `10.0.7.${k + 1}`, port: 6000 } }));
  out.push(login({ ts: at(i++), clientProgram: 'mysqldump' }));
  out.push(login({ ts: at(i++), clientProgram: 'weird-tool' }));
  out.push(login({ ts: at(i++), client: { ip: '192.0.2.7', port: 7000 } }));
  out.push(statement('SELECT 1', { ts: weekend }));
  for (let k = 0; k < 6; k++) out.push(statement(`SELECT * FROM ledger WHERE id > ${k}`, { ts: at(i++), user: 'exporter', rowsReturned: 200_000 }));
  for (let k = 0; k < 10; k++) out.push(statement(`SELECT * FROM slow_view WHERE id = ${k}`, { ts: at(i++), durationUs: 1_500_000 }));
  const conn = (over: Partial<AuditEvent>): AuditEvent => ({ id: `c${i}`, kind: 'connection', flowId: `c${i}`, ts: at(i++), client: { ip: '10.1.1.1', port: 1 }, server: { ip: '10.0.0.5', port: 3306 }, dbType: 'unknown', status: 'unknown', ...over });
  out.push(conn({ attributes: { undecoded: 'unknown-protocol' } }));
  out.push(conn({ tlsFacts: { version: 'TLS 1.0' } }));
  out.push(conn({ client: { ip: '203.0.113.9', port: 2 } }));
  out.push({ ...statement('SELECT 1'), kind: 'logout', ts: at(i++), sql: undefined });
  // the same shapes again, so the second meeting of each comes from the shape cache
  for (const [sql, over] of stmts) out.push(statement(sql, { ts: at(i++), ...over }));
  out.push(...workload(3000, at(i)));
  return out;
}

const view = (v: Verdict) => ({ risk: v.risk, ruleIds: v.ruleIds, alerts: v.alerts.map((a) => `${a.id} ${a.alert.reason}`) });

test('indexed evaluation gives the verdicts of evaluating every rule on every record', (t) => {
  const rs = ruleSet();
  const indexed = new RuleEngine(rs);
  const exhaustive = new RuleEngine(rs, { exhaustive: true });
  const fired = new Set<string>();
  let n = 0;
  for (const e of records()) {
    const a = indexed.process(structuredClone(e));
    const b = exhaustive.process(structuredClone(e));
    t.deepEqual(view(a), view(b), `record ${n} (${e.kind} ${e.sql ?? ''})`);
    for (const id of b.ruleIds) fired.add(id);
    for (const al of b.alerts) fired.add(al.alert.ruleId);
    n++;
  }
  const all = rs.rules.filter((r) => r.enabled).map((r) => r.id);
  t.deepEqual(
    all.filter((id) => !fired.has(id) && id !== 'local.ignore-monitor'),
    [],
    'every rule fires at least once',
  );
  // the index did its job: far fewer conditions evaluated
  const si = indexed.stats();
  const se = exhaustive.stats();
  t.is(si.events, se.events);
  t.true(si.candidates * 2 < se.candidates, `${si.candidates} candidates indexed vs ${se.candidates} exhaustive`);
  // the allow-list rule showed itself by silencing what would have matched
  t.deepEqual(indexed.process(statement('SELECT * FROM users', { user: 'monitor' })).ruleIds, []);
  t.deepEqual(indexed.process(statement('SELECT * FROM users', { user: 'other' })).ruleIds, ['local.users-table']);
});

test('an injection verdict that read literal values is not reused for another text of the same shape', (t) => {
  const rs = ruleSet();
  const eng = new RuleEngine(rs);
  // same shape (literals differ); only the second compares two different constants
  const quiet = eng.process(statement('SELECT * FROM t WHERE a = 5 AND 1=1'));
  const probe = eng.process(statement('SELECT * FROM t WHERE a = 5 AND 8=3'));
  const quietAgain = eng.process(statement('SELECT * FROM t WHERE a = 6 AND 1=1'));
  t.false(quiet.ruleIds.includes('sqli.detected'));
  t.true(probe.ruleIds.includes('sqli.detected'));
  t.false(quietAgain.ruleIds.includes('sqli.detected'));
});

test('icontains matches as lower-casing the text would, non-ASCII letters included', (t) => {
  const needles = ['sql_no_cache */ * from', 'k', 'ik', 'i', 'select'];
  const texts = ['SELECT /*!40001 SQL_NO_CACHE */ * FROM t', 'select /*!40001 sql_no_cache */ * from t', 'SQL_NO_CACHE */ *  FROM', 'x', '', 'K', '\u212a', 'I\u0307', '\u0130K', 'SEL\u0130ECT', 'sElEcT', 'Straße select', 'xSELEC'];
  for (const v of needles) {
    const rs = loadRuleText(`rules:\n  - id: r\n    risk: low\n    condition: sql icontains ${JSON.stringify(v)}\n`, 'r.yaml');
    const eng = new RuleEngine(compileRules(rs));
    for (const sql of texts) t.is(eng.evaluate(statement(sql)).ruleIds.length === 1, sql.toLowerCase().includes(v), `${JSON.stringify(sql)} icontains ${JSON.stringify(v)}`);
  }
});

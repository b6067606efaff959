// The built-in policy library: every shipped policy loads by name, fires on a
// realistic positive record and stays quiet on a near miss.
import test from 'ava';
import type { AuditEvent } from '@dbtap/core';
import { isDbtapError } from '@dbtap/core';
import { RuleEngine, builtinPolicies, builtinPolicyText, builtinRuleFiles, compileRules, defaultRuleSet, loadBuiltinPolicy, loadRuleText, parseRuleText } from '../src/index.js';
import { MONDAY_10AM, login, s, statement } from './helpers/events.js';

/** Rule ids (stateless matches and alerting detectors) a policy produces for a sequence of records. */
function hits(policy: string | RuleEngine, events: AuditEvent[]): string[] {
  const eng = typeof policy === 'string' ? new RuleEngine(defaultRuleSet([policy])) : policy;
  const out: string[] = [];
  for (const e of events) {
    const v = eng.process({ ...e });
    out.push(...v.ruleIds, ...v.alerts.filter((a) => !v.ruleIds.includes(a.alert.ruleId)).map((a) => `alert:${a.alert.ruleId}`));
  }
  return out;
}

test('the library lists its policies; each loads by name, compiles alone and defines a group of its name', (t) => {
  const names = builtinPolicies().map((p) => p.name);
  t.deepEqual(names, ['dangerous-operations', 'privilege-changes', 'dump-tools', 'sql-injection', 'brute-force', 'account-sharing', 'off-hours', 'bulk-export', 'slow-sql', 'sensitive-tables', 'unknown-clients', 'connections']);
  for (const p of builtinPolicies()) {
    t.true(p.description.length > 0);
    t.true(p.ruleIds.length > 0, p.name);
    const rs = defaultRuleSet([p.name]);
    t.deepEqual(
      rs.rules.map((r) => r.id),
      p.ruleIds,
    );
    t.deepEqual(rs.groups.get(p.name), p.ruleIds);
    t.is(loadBuiltinPolicy(p.name).name, `builtin:${p.name}`);
    // the shipped text is a valid rule file on its own
    t.true(loadRuleText(builtinPolicyText(p.name), `${p.name}.yaml`).ok, p.name);
  }
  t.is(defaultRuleSet().rules.length, builtinPolicies().reduce((n, p) => n + p.ruleIds.length, 0));
  const err = t.throws(() => loadBuiltinPolicy('nope'));
  t.true(isDbtapError(err));
  t.regex(err!.message, /unknown built-in policy 'nope' \(known: dangerous-operations, /);
  t.throws(() => builtinRuleFiles(['sql-injection', 'nope']), { message: /unknown built-in policy 'nope'/ });
});

test('dangerous-operations: DROP / TRUNCATE, ALTER, UPDATE or DELETE without WHERE', (t) => {
  t.deepEqual(hits('dangerous-operations', [statement('DROP TABLE customers')]), ['dangerous.drop-or-truncate']);
  t.deepEqual(hits('dangerous-operations', [statement('truncate orders')]), ['dangerous.drop-or-truncate']);
  t.deepEqual(hits('dangerous-operations', [statement('ALTER TABLE orders DROP COLUMN note')]), ['dangerous.alter-structure']);
  t.deepEqual(hits('dangerous-operations', [statement('UPDATE accounts SET balance = 0')]), ['dangerous.write-without-where']);
  t.deepEqual(hits('dangerous-operations', [statement('SET autocommit=0; DELETE FROM carts')]), ['dangerous.write-without-where']);
  // near misses
  t.deepEqual(hits('dangerous-operations', [statement('SELECT * FROM drop_log WHERE reason = "truncate"'), statement('UPDATE accounts SET balance = 0 WHERE id = 7'), statement('DELETE FROM carts WHERE expires < NOW()'), statement('CREATE TABLE t (a INT)')]), []);
});

test('privilege-changes: GRANT / REVOKE, accounts, direct writes to grant tables', (t) => {
  t.deepEqual(hits('privilege-changes', [statement("GRANT ALL PRIVILEGES ON *.* TO 'eve'@'%'")]), ['privilege.grant-revoke']);
  t.deepEqual(hits('privilege-changes', [statement('REVOKE SELECT ON hr.* FROM bob', { dbType: 'mysql' })]), ['privilege.grant-revoke']);
  t.deepEqual(hits('privilege-changes', [statement("CREATE USER 'eve'@'%' IDENTIFIED BY 'x'")]), ['privilege.account-change']);
  t.deepEqual(hits('privilege-changes', [statement('ALTER ROLE analyst WITH SUPERUSER', { dbType: 'postgres' })]), ['privilege.account-change']);
  t.deepEqual(hits('privilege-changes', [statement("UPDATE mysql.user SET authentication_string = '' WHERE User = 'root'")]), ['privilege.grant-tables-write']);
  // near misses: reading the grant tables, a table named grants
  t.deepEqual(hits('privilege-changes', [statement("SELECT User, Host FROM mysql.user WHERE User = 'root'"), statement('SELECT * FROM grants'), statement('SHOW GRANTS FOR CURRENT_USER')]), []);
});

test('dump-tools: dump programs, dump-shaped queries, INTO OUTFILE', (t) => {
  t.deepEqual(hits('dump-tools', [login({ clientProgram: 'mysqldump' })]), ['dump.tool-login']);
  t.deepEqual(hits('dump-tools', [statement('SELECT * FROM t', { clientProgram: 'pg_dump', dbType: 'postgres' })]), ['dump.tool-statement']);
  t.deepEqual(hits('dump-tools', [statement('SELECT /*!40001 SQL_NO_CACHE */ * FROM `customers`', { clientProgram: 'x' })]), ['dump.query-shape']);
  t.deepEqual(hits('dump-tools', [statement('COPY public.customers (id, name) TO stdout;', { dbType: 'postgres', clientProgram: undefined })]), ['dump.query-shape']);
  t.deepEqual(hits('dump-tools', [statement("SELECT * FROM customers INTO OUTFILE '/tmp/c.csv'")]), ['dump.into-outfile']);
  // near misses
  t.deepEqual(hits('dump-tools', [login({ clientProgram: 'mysql' }), statement('COPY imports FROM STDIN', { dbType: 'postgres' }), statement('SELECT * FROM customers LIMIT 10'), statement('SELECT 1 INTO @x')]), []);
});

test('sql-injection: alerts with reasons on an attack, silent on a similar benign query', (t) => {
  const eng = new RuleEngine(defaultRuleSet(['sql-injection']));
  const v = eng.process(statement("SELECT * FROM users WHERE name = 'x' OR '1'='1'"));
  t.deepEqual(v.ruleIds, ['sqli.detected']);
  t.is(v.risk, 'high');
  t.is(v.alerts[0]!.alert.reason, 'SQL injection: tautology, string-comparison (score 0.97)');
  t.deepEqual(hits(eng, [statement("SELECT * FROM users WHERE name = 'x\\' OR \\'1\\'=\\'1'"), statement("SELECT * FROM users WHERE name = 'x' OR email = 'y'")]), []);
});

test('brute-force: each failed login is tagged; repeated failures alert', (t) => {
  const fail = (n: number): AuditEvent => login({ status: 'error', client: { ip: '192.0.2.7', port: 1 }, ts: MONDAY_10AM + s(n) });
  t.deepEqual(hits('brute-force', [fail(0), fail(1), fail(2), fail(3), fail(4)]), ['bruteforce.failed-login', 'bruteforce.failed-login', 'bruteforce.failed-login', 'bruteforce.failed-login', 'bruteforce.failed-login', 'alert:bruteforce.per-client']);
  // near miss: four failures in a minute, and successful logins
  t.deepEqual(hits('brute-force', [fail(0), fail(1), fail(2), fail(3), login({ ts: MONDAY_10AM + s(5) })]).filter((x) => x.startsWith('alert:')), []);
});

test('account-sharing: one user from three addresses in ten minutes', (t) => {
  const ok = (ip: string, sec: number, user = 'svc'): AuditEvent => login({ user, client: { ip, port: 1 }, ts: MONDAY_10AM + s(sec) });
  t.deepEqual(hits('account-sharing', [ok('10.0.0.1', 0), ok('10.0.0.2', 60), ok('10.0.0.3', 120)]), ['alert:sharing.user-many-addresses']);
  // near misses: two addresses; three addresses but spread over more than ten minutes; three users
  t.deepEqual(hits('account-sharing', [ok('10.0.0.1', 0), ok('10.0.0.2', 60), ok('10.0.0.1', 120)]), []);
  t.deepEqual(hits('account-sharing', [ok('10.0.0.1', 0), ok('10.0.0.2', 300), ok('10.0.0.3', 601)]), []);
  t.deepEqual(hits('account-sharing', [ok('10.0.0.1', 0, 'a'), ok('10.0.0.2', 1, 'b'), ok('10.0.0.3', 2, 'c')]), []);
});

test('off-hours: night and weekend access (engine time zone)', (t) => {
  const at = (day: number, h: number, m = 0): AuditEvent => statement('SELECT 1', { ts: Date.UTC(2026, 0, day, h, m) * 1000 });
  t.deepEqual(hits('off-hours', [at(5, 23, 30)]), ['offhours.access']); // Monday night
  t.deepEqual(hits('off-hours', [at(10, 11)]), ['offhours.access']); // Saturday late morning
  t.deepEqual(hits('off-hours', [login({ ts: Date.UTC(2026, 0, 6, 6, 59) * 1000 })]), ['offhours.access']);
  // near misses: Monday 07:00 and 19:59
  t.deepEqual(hits('off-hours', [at(5, 7, 0), at(5, 19, 59)]), []);
  // in another time zone the same instant is inside business hours
  t.deepEqual(hits(new RuleEngine(defaultRuleSet(['off-hours']), { timezone: 10 * 60 }), [at(5, 23, 30)]), []);
});

test('bulk-export: a huge result, and many rows to one user in ten minutes', (t) => {
  t.deepEqual(hits('bulk-export', [statement('SELECT * FROM customers', { rowsReturned: 100_000 })]), ['bulk.large-result']);
  const rows = (n: number, sec: number): AuditEvent => statement('SELECT * FROM customers WHERE region = 1', { rowsReturned: n, ts: MONDAY_10AM + s(sec) });
  t.deepEqual(hits('bulk-export', [rows(90_000, 0), rows(90_000, 60), ...Array.from({ length: 10 }, (_, i) => rows(82_000, 120 + i * 30))]), ['alert:bulk.user-volume']);
  // near misses
  t.deepEqual(hits('bulk-export', [statement('SELECT * FROM customers', { rowsReturned: 99_999 })]), []);
  t.deepEqual(hits('bulk-export', Array.from({ length: 11 }, (_, i) => rows(95_000, i * 61))), []); // under a million in any ten minutes
});

test('slow-sql: a slow statement', (t) => {
  t.deepEqual(hits('slow-sql', [statement('SELECT SUM(total) FROM orders', { durationUs: 5_000_000 })]), ['slow.statement']);
  t.deepEqual(hits('slow-sql', [statement('SELECT SUM(total) FROM orders', { durationUs: 4_999_999 })]), []);
});

test('sensitive-tables: empty until a user file fills the list, then reads and changes are flagged', (t) => {
  const user = 'lists:\n  sensitive_tables: { append: true, items: [hr.salaries, creditcards] }\n';
  const r = loadRuleText(user, 'mine.yaml', { include: builtinRuleFiles(['sensitive-tables']) });
  t.true(r.ok);
  const eng = (): RuleEngine => new RuleEngine(r.ruleSet);
  t.deepEqual(hits(eng(), [statement('SELECT base, bonus FROM HR.Salaries WHERE emp = 7')]), ['sensitive.read']);
  t.deepEqual(hits(eng(), [statement('SELECT * FROM creditcards c JOIN users u ON u.id = c.user_id')]), ['sensitive.read']);
  const change = new RuleEngine(r.ruleSet).process(statement('UPDATE hr.salaries SET bonus = 0 WHERE emp = 7'));
  t.deepEqual(change.ruleIds, ['sensitive.change']);
  t.is(change.alerts.length, 1);
  // near misses: another schema's salaries, another table, and the empty default list
  t.deepEqual(hits(eng(), [statement('SELECT * FROM payroll.salaries'), statement('SELECT * FROM cards')]), []);
  t.deepEqual(hits('sensitive-tables', [statement('SELECT * FROM hr.salaries')]), []);
});

test('unknown-clients: a login from a program nobody listed', (t) => {
  t.deepEqual(hits('unknown-clients', [login({ clientProgram: 'sqlmap/1.7' })]), ['clients.unknown-program']);
  t.deepEqual(hits('unknown-clients', [login({ clientProgram: 'psql' }), login({ clientProgram: undefined }), statement('SELECT 1', { clientProgram: 'sqlmap/1.7' })]), []);
  // the list is extended by a user file
  const r = compileRules([...builtinRuleFiles(['unknown-clients']), parseRuleText('lists:\n  known_client_programs: { append: true, items: [billing-service] }\n', 'mine.yaml')]);
  t.deepEqual(hits(new RuleEngine(r), [login({ clientProgram: 'billing-service' })]), []);
});

test('connections: an unknown protocol and outdated TLS are flagged; the network rule waits for its list', (t) => {
  const conn = (over: Partial<AuditEvent>): AuditEvent => ({ ...login(), kind: 'connection', dbType: 'unknown', ...over });
  t.deepEqual(hits('connections', [conn({ attributes: { undecoded: 'unknown-protocol' } })]), ['connections.unknown-protocol']);
  t.deepEqual(hits('connections', [conn({ attributes: { undecoded: 'tls' }, tls: true, tlsFacts: { version: 'TLS 1.0' } })]), ['connections.outdated-tls']);
  t.deepEqual(hits('connections', [conn({ attributes: { undecoded: 'tls' }, tls: true, tlsFacts: { version: 'TLS 1.3' } }), login({ client: { ip: '203.0.113.9', port: 1 } })]), []);
  // enabled with the user's own networks, connections and logins from elsewhere alert
  const r = compileRules([
    ...builtinRuleFiles(['connections']),
    parseRuleText('lists:\n  allowed_client_networks: { append: true, items: [10.0.0.0/8] }\nrules:\n  - { id: connections.outside-allowed-networks, override: true, enabled: true }\n', 'mine.yaml'),
  ]);
  t.deepEqual(hits(new RuleEngine(r), [login({ client: { ip: '203.0.113.9', port: 1 } })]), ['connections.outside-allowed-networks']);
  t.deepEqual(hits(new RuleEngine(r), [login({ client: { ip: '10.9.8.7', port: 1 } }), conn({ client: { ip: '127.0.0.1', port: 1 } })]), []);
});

// The rule language: loading (YAML, JSON, plain objects), lists and macros,
// append / override across files, every condition operator, golden compiled
// conditions and their index keys, diagnostics with file:line:column, the
// all-or-nothing load of a file, actions and rule groups.
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '@dbtap/core';
import { isDbtapError } from '@dbtap/core';
import {
  RuleEngine,
  builtinRuleFiles,
  checkRuleFiles,
  compileRules,
  defaultRuleSet,
  formatDiagnostic,
  loadRuleFiles,
  loadRuleObjects,
  loadRuleText,
  parseRuleText,
  parseWindow,
  ruleFields,
  type RuleEngineOptions,
  type RuleFileContent,
  type RuleSet,
} from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';
import { MONDAY_10AM, login, statement } from './helpers/events.js';

const here = dirname(fileURLToPath(import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function compileOne(condition: string, extra: Partial<RuleFileContent> = {}): RuleSet {
  const r = loadRuleObjects({ ...extra, rules: [{ id: 'x', risk: 'low', condition }] }, 'test');
  if (!r.ok) throw new Error(r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.ruleSet;
}

/** Whether `condition` matches `event` (evaluated by a fresh engine). */
function matches(condition: string, event: AuditEvent, opts: RuleEngineOptions = {}, extra: Partial<RuleFileContent> = {}): boolean {
  return new RuleEngine(compileOne(condition, extra), opts).process({ ...event }).ruleIds.includes('x');
}

/** The diagnostics (formatted) of a condition that must not compile. */
function errorsOf(condition: string): string[] {
  const r = loadRuleObjects({ rules: [{ id: 'x', risk: 'low', condition }] }, 'test');
  t_assert(!r.ok, `expected '${condition}' to fail`);
  return r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.code}: ${d.message}`);
}
function t_assert(c: boolean, m: string): void {
  if (!c) throw new Error(m);
}

// ---- loading ---------------------------------------------------------------------

const SAMPLE_YAML = `# sample
lists:
  admins: [root, dba]
  ops: [drop, truncate]
macros:
  is_admin: user in (admins)
  destructive: objects.op in (ops)
rules:
  - id: admin.destructive
    name: Admin destroys
    description: An administrator drops or truncates.
    risk: high
    action: alert
    tags: [admin]
    condition: kind = statement and is_admin and destructive
  - id: big.reads
    risk: medium
    condition: statementType = select and rowsReturned >= 1000
groups:
  admin: [admin.*]
`;

const SAMPLE_OBJECT: RuleFileContent = {
  lists: { admins: ['root', 'dba'], ops: ['drop', 'truncate'] },
  macros: { is_admin: 'user in (admins)', destructive: 'objects.op in (ops)' },
  rules: [
    { id: 'admin.destructive', name: 'Admin destroys', description: 'An administrator drops or truncates.', risk: 'high', action: 'alert', tags: ['admin'], condition: 'kind = statement and is_admin and destructive' },
    { id: 'big.reads', risk: 'medium', condition: 'statementType = select and rowsReturned >= 1000' },
  ],
  groups: { admin: ['admin.*'] },
};

const summary = (rs: RuleSet): unknown =>
  rs.rules.map((r) => ({ id: r.id, name: r.name, description: r.description, risk: r.risk, action: r.action, enabled: r.enabled, tags: r.tags, compiled: r.compiled, indexKeys: r.indexKeys, fields: r.fields }));

test('YAML, JSON and plain objects load into the same compiled rules', (t) => {
  const y = loadRuleText(SAMPLE_YAML, 'sample.yaml');
  const j = loadRuleText(JSON.stringify(SAMPLE_OBJECT, null, 2), 'sample.json');
  const o = loadRuleObjects(SAMPLE_OBJECT, 'sample');
  for (const r of [y, j, o]) t.true(r.ok, r.diagnostics.map(formatDiagnostic).join('\n'));
  t.deepEqual(summary(j.ruleSet), summary(y.ruleSet));
  t.deepEqual(summary(o.ruleSet), summary(y.ruleSet));
  t.deepEqual([...y.ruleSet.groups], [['admin', ['admin.destructive']]]);
  t.deepEqual(y.ruleSet.rule('admin.destructive')!.source, { file: 'sample.yaml', line: 9, column: 5 });
  t.deepEqual(o.ruleSet.rule('admin.destructive')!.source, { file: 'sample', line: 0, column: 0 });
  // defaults: name = id, action log, enabled
  const b = y.ruleSet.rule('big.reads')!;
  t.is(b.name, 'big.reads');
  t.is(b.action, 'log');
  t.true(b.enabled);
  // and they behave alike
  const e = statement('DROP TABLE orders', { user: 'dba' });
  for (const r of [y, j, o]) t.deepEqual(new RuleEngine(r.ruleSet).process({ ...e }).ruleIds, ['admin.destructive']);
});

test('files on disk load in order; a missing file is an I/O diagnostic', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-rules-'));
  try {
    writeFileSync(join(dir, 'a.yaml'), SAMPLE_YAML);
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ rules: [{ id: 'big.reads', override: true, risk: 'high' }] }));
    const r = loadRuleFiles([join(dir, 'a.yaml'), join(dir, 'b.json')]);
    t.true(r.ok);
    t.is(r.ruleSet.rule('big.reads')!.risk, 'high');
    t.is(r.ruleSet.rule('big.reads')!.source.file, join(dir, 'b.json'));
    const missing = loadRuleFiles([join(dir, 'nope.yaml')]);
    t.false(missing.ok);
    t.is(missing.diagnostics[0]!.code, 'DBTAP_E_IO');
    t.regex(formatDiagnostic(missing.diagnostics[0]!), /nope\.yaml: error DBTAP_E_IO: cannot read rule file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- lists, macros, append / override ---------------------------------------------

test('lists expand inside lists and value lists; macros expand inside macros', (t) => {
  const rs = compileOne('kind = statement and risky', {
    lists: { a: ['x', 'y'], b: ['a', 'z'] },
    macros: { inner: 'user in (b)', risky: 'inner or clientProgram in (a)' },
  });
  t.is(rs.rule('x')!.compiled, '(and (= kind "statement") (or (in user ["x","y","z"]) (in clientProgram ["x","y"])))');
  // a list where one value is expected is an error
  t.throws(() => compileOne('clientProgram = a', { lists: { a: ['x', 'y'] } }), { message: /operator '=' takes one value/ });
  t.true(new RuleEngine(rs).process(statement('SELECT 1', { user: 'z' })).ruleIds.includes('x'));
  t.true(new RuleEngine(rs).process(statement('SELECT 1', { clientProgram: 'y' })).ruleIds.includes('x'));
  t.false(new RuleEngine(rs).process(statement('SELECT 1', { user: 'q', clientProgram: 'q' })).ruleIds.includes('x'));
  // a quoted value is never a list name
  t.is(compileOne("user = 'a'", { lists: { a: ['x'] } }).rule('x')!.compiled, '(= user "a")');
});

test('cycles in macros and lists are diagnosed', (t) => {
  const m = loadRuleObjects({ macros: { a: 'b', b: 'a' }, rules: [{ id: 'x', risk: 'low', condition: 'a' }] });
  t.false(m.ok);
  t.true(m.diagnostics.some((d) => d.code === 'DBTAP_E_RULE_MACRO_CYCLE' && d.message.includes('a -> b -> a')));
  const l = loadRuleObjects({ lists: { a: ['b'], b: ['a'] }, rules: [{ id: 'x', risk: 'low', condition: 'user in (a)' }] });
  t.false(l.ok);
  t.true(l.diagnostics.some((d) => d.code === 'DBTAP_E_RULE_LIST_CYCLE'));
});

test('later files append to and override lists, macros and rules of earlier ones', (t) => {
  const base = parseRuleText(SAMPLE_YAML, 'base.yaml');
  const user = `
lists:
  admins: { append: true, items: [sa] }
  ops: [alter]
macros:
  is_admin: { append: true, condition: user startswith "adm_" }
rules:
  - id: admin.destructive
    append: true
    condition: database != scratch
  - id: big.reads
    override: true
    risk: low
    condition: statementType = select and rowsReturned >= 5000
    tags: [volume]
`;
  const r = loadRuleText(user, 'user.yaml', { include: [base] });
  t.true(r.ok, r.diagnostics.map(formatDiagnostic).join('\n'));
  const ad = r.ruleSet.rule('admin.destructive')!;
  t.is(ad.condition, '(kind = statement and is_admin and destructive) and (database != scratch)');
  t.is(ad.compiled, '(and (and (= kind "statement") (or (in user ["root","dba","sa"]) (startswith user "adm_")) (in objects.op ["alter"])) (!= database "scratch"))');
  t.is(ad.risk, 'high'); // appending keeps the other fields
  t.is(ad.source.file, 'user.yaml');
  const br = r.ruleSet.rule('big.reads')!;
  t.is(br.risk, 'low');
  t.deepEqual(br.tags, ['volume']);
  t.is(br.compiled, '(and (= statementType "select") (>= rowsReturned 5000))');
  t.deepEqual(r.ruleSet.lists.get('admins'), ['root', 'dba', 'sa']);
  t.deepEqual(r.ruleSet.lists.get('ops'), ['alter']); // replaced
  const eng = new RuleEngine(r.ruleSet);
  t.deepEqual(eng.process(statement('ALTER TABLE t ADD c INT', { user: 'adm_joe' })).ruleIds, ['admin.destructive']);
  t.deepEqual(eng.process(statement('ALTER TABLE t ADD c INT', { user: 'adm_joe', database: 'scratch' })).ruleIds, []);
  t.deepEqual(eng.process(statement('DROP TABLE t', { user: 'root' })).ruleIds, []);
  // override can disable a rule of the built-in library
  const off = loadRuleText('rules:\n  - id: offhours.access\n    override: true\n    enabled: false\n', 'off.yaml', { include: builtinRuleFiles() });
  t.true(off.ok);
  t.false(off.ruleSet.rule('offhours.access')!.enabled);
  t.false(off.ruleSet.select().some((x) => x.id === 'offhours.access'));
});

test('appending to or overriding something no earlier file defines is an error', (t) => {
  const r = loadRuleText('lists:\n  nope: { append: true, items: [1] }\nmacros:\n  m: { append: true, condition: "user = a" }\nrules:\n  - id: ghost\n    override: true\n    risk: low\n', 'u.yaml');
  t.false(r.ok);
  t.deepEqual(
    r.diagnostics.map(formatDiagnostic),
    [
      "u.yaml:2:9: error DBTAP_E_RULE_APPEND_MISSING: cannot append to list 'nope': no earlier file defines it",
      "u.yaml:4:6: error DBTAP_E_RULE_APPEND_MISSING: cannot append to macro 'm': no earlier file defines it",
      "u.yaml:6:9: error DBTAP_E_RULE_APPEND_MISSING: rule 'ghost' overrides a rule no earlier file defines",
    ],
  );
});

// ---- operators -------------------------------------------------------------------

test('comparison operators on text, numbers and booleans', (t) => {
  const e = statement('SELECT * FROM orders WHERE id = 1', { user: 'alice', rowsReturned: 10, durationUs: 2_500_000, tls: true, errorCode: 1045 });
  const yes = ['user = alice', "user == 'alice'", 'user != bob', 'user <> bob', 'rowsReturned = 10', 'rowsReturned > 9', 'rowsReturned >= 10', 'rowsReturned < 11', 'rowsReturned <= 10', 'durationMs > 2000', 'durationUs >= 2500000', 'tls', 'tls = true', 'errorCode = 1045', 'errorCode > 1000', "user iequals 'ALICE'"];
  const no = ['user = Alice', 'user != alice', 'rowsReturned > 10', 'rowsReturned < 10', 'durationMs < 2000', 'not tls', 'tls = false', 'bytesIn > 0', 'errorCode < 1000'];
  for (const c of yes) t.true(matches(c, e), c);
  for (const c of no) t.false(matches(c, e), c);
});

test('in, contains, startswith, endswith (and case-insensitive forms), regex, negated word operators', (t) => {
  const e = statement('SELECT * FROM Payroll.Salaries', { clientProgram: 'DBeaver 23.1', user: 'Bob' });
  const yes = [
    'user in (alice, Bob)',
    "user iin ('ALICE', 'bob')",
    'user not in (alice, carol)',
    'sql contains Salaries',
    'sql icontains "payroll.salaries"',
    'sql not contains DELETE',
    'clientProgram startswith DBeaver',
    "clientProgram istartswith 'dbeaver'",
    'clientProgram endswith "23.1"',
    "clientProgram iendswith ' 23.1'",
    "clientProgram matches '^DBeaver \\\\d+'",
    "sql imatches 'from\\\\s+payroll'",
    "sql not matches 'DELETE|UPDATE'",
    "clientProgram contains (Toad, DBeaver)",
  ];
  const no = ['user in (alice, bob)', 'sql contains salaries', 'clientProgram startswith dbeaver', "sql matches 'from\\\\s+payroll'", 'user not in (Bob)', 'clientProgram endswith 23'];
  for (const c of yes) t.true(matches(c, e), c);
  for (const c of no) t.false(matches(c, e), c);
});

test('CIDR matching for IPv4, IPv6 and IPv4-mapped addresses', (t) => {
  const v4 = statement('SELECT 1', { client: { ip: '192.168.10.77', port: 1 } });
  const v6 = statement('SELECT 1', { client: { ip: '2001:db8:abcd::17', port: 1 } });
  const mapped = statement('SELECT 1', { client: { ip: '::ffff:10.9.8.7', port: 1 } });
  t.true(matches('client.ip in_cidr 192.168.0.0/16', v4));
  t.true(matches('client.ip in_cidr (10.0.0.0/8, 192.168.10.77)', v4));
  t.false(matches('client.ip in_cidr 192.168.11.0/24', v4));
  t.true(matches('client.ip not in_cidr 10.0.0.0/8', v4));
  t.true(matches('client.ip in_cidr "2001:db8::/32"', v6));
  t.false(matches('client.ip in_cidr "2001:db9::/32"', v6));
  t.false(matches('client.ip in_cidr 0.0.0.0/0', v6));
  t.true(matches('client.ip in_cidr 10.0.0.0/8', mapped));
  t.true(matches('client.ip in_cidr ::/0', v4)); // every address, IPv4 included
  t.false(matches('client.ip in_cidr 10.0.0.0/8', statement('SELECT 1', { client: { ip: 'not-an-ip', port: 1 } })));
});

test('time-of-day and day-of-week windows, in UTC, a fixed offset or local time', (t) => {
  const at = (h: number, m: number, day = 5): AuditEvent => statement('SELECT 1', { ts: Date.UTC(2026, 0, day, h, m) * 1000 });
  t.true(matches('time within "09:00-17:00"', at(9, 0)));
  t.true(matches('time within "09:00-17:00"', at(16, 59)));
  t.false(matches('time within "09:00-17:00"', at(17, 0))); // the end is exclusive
  t.false(matches('time within "09:00-17:00"', at(8, 59)));
  // a window across midnight
  t.true(matches('time within "22:00-06:00"', at(23, 30)));
  t.true(matches('time within "22:00-06:00"', at(5, 59)));
  t.false(matches('time within "22:00-06:00"', at(6, 0)));
  t.true(matches('time within ("00:00-01:00", "12:00-13:00")', at(12, 30)));
  t.true(matches('time.hour = 9', at(9, 45)));
  t.true(matches('time.weekday = mon', at(10, 0, 5)));
  t.true(matches('time.weekday in (sat, sun)', at(10, 0, 10)));
  t.false(matches('time.weekday in (sat, sun)', at(10, 0, 9)));
  // +02:00: 07:30 UTC is 09:30 there; -05:00: Monday 03:00 UTC is Sunday 22:00
  t.true(matches('time within "09:00-10:00"', at(7, 30), { timezone: 120 }));
  t.true(matches('time.weekday = sun', at(3, 0), { timezone: -300 }));
  t.notThrows(() => new RuleEngine(compileOne('time.hour >= 0'), { timezone: 'local' }));
});

test('statement type, verbs, objects, fingerprint, client program and derived SQL fields', (t) => {
  const e = statement('UPDATE shop.orders SET paid = 1; DELETE FROM carts');
  const yes = [
    'statementType = delete', // the most consequential statement of the text
    'verb = DELETE',
    'sql.verbs in (UPDATE)',
    'sql.types in (update)',
    'sql.statementCount = 2',
    'sql.unfilteredWrite',
    'not sql.hasWhere',
    'objects.name = carts',
    'objects.schema = shop',
    'objects.qualified iin (SHOP.ORDERS)',
    'objects.op = delete',
    "fingerprint = 'update shop.orders set paid = ?; delete from carts'",
    'clientProgram = billing-service',
    'sql.length > 10',
    'sql.injection = false',
  ];
  for (const c of yes) t.true(matches(c, e), c);
  t.false(matches('objects.name = customers', e));
  t.false(matches('sql.hasWhere', e));
  t.true(matches('sql.injection and sql.injectionScore >= 0.9 and sql.injectionReasons in (tautology)', statement("SELECT * FROM u WHERE name = '' OR 1=1")));
  // record fields the decoder set win over the analysis
  t.true(matches('verb = "CUSTOM"', statement('SELECT 1', { verb: 'CUSTOM' })));
});

test('exists, attributes, params, list-valued fields and boolean combinations', (t) => {
  const e = statement('SELECT ?', { params: [42, 'x', null], attributes: { _os: 'Linux' }, osUser: undefined, columns: ['id', 'ssn'] });
  const yes = ['user exists', 'not osUser exists', 'attributes._os = Linux', 'params in (42)', 'params contains x', 'params = NULL', 'columns in (ssn, pan)', '(user = app or user = root) and not (database = test)', 'not not user = app', 'true', 'user = nobody or true'];
  const no = ['osUser exists', 'attributes._client_name exists', 'columns in (pan)', 'false', 'user = app and false', 'not (user = app)'];
  for (const c of yes) t.true(matches(c, e), c);
  for (const c of no) t.false(matches(c, e), c);
  // and binds tighter than or; not binds tightest
  t.is(compileOne('user = a or user = b and not database = c').rule('x')!.compiled, '(or (= user "a") (and (= user "b") (not (= database "c"))))');
});

test('type and value errors are diagnosed with codes', (t) => {
  t.deepEqual(errorsOf('user > 3'), ["DBTAP_E_RULE_TYPE: rule 'x': operator '>' needs a numeric field; 'user' is string"]);
  t.deepEqual(errorsOf('rowsReturned = many'), ["DBTAP_E_RULE_BAD_VALUE: rule 'x': field 'rowsReturned' is a number; 'many' is not"]);
  t.deepEqual(errorsOf('rowsReturned contains 3'), ["DBTAP_E_RULE_TYPE: rule 'x': operator 'contains' needs a text field; 'rowsReturned' is number"]);
  t.deepEqual(errorsOf("sql matches '(unclosed'"), ["DBTAP_E_RULE_BAD_REGEX: rule 'x': bad regular expression '(unclosed': Invalid regular expression: /(unclosed/: Unterminated group"]);
  t.deepEqual(errorsOf('client.ip in_cidr 10.0.0.0/33'), ["DBTAP_E_RULE_BAD_VALUE: rule 'x': '10.0.0.0/33' is not an address or CIDR block"]);
  t.deepEqual(errorsOf('time within "9-17"'), ["DBTAP_E_RULE_BAD_VALUE: rule 'x': '9' is not a time of day (HH:MM)"]);
  t.deepEqual(errorsOf('user within "09:00-10:00"'), ["DBTAP_E_RULE_TYPE: rule 'x': operator 'within' applies to the field 'time' only"]);
  t.deepEqual(errorsOf('nosuch = 1'), ["DBTAP_E_RULE_UNKNOWN_FIELD: rule 'x': unknown field 'nosuch'"]);
  t.deepEqual(errorsOf('nosuch_macro'), ["DBTAP_E_RULE_UNKNOWN_NAME: rule 'x': 'nosuch_macro' is neither a macro nor a field"]);
  t.deepEqual(errorsOf('user'), ["DBTAP_E_RULE_TYPE: rule 'x': field 'user' is not boolean; compare it with an operator"]);
  t.deepEqual(errorsOf('tls = maybe'), ["DBTAP_E_RULE_BAD_VALUE: rule 'x': field 'tls' is boolean; use true or false"]);
  t.deepEqual(errorsOf('user = (a, b)'), ["DBTAP_E_RULE_BAD_VALUE: rule 'x': operator '=' takes one value; use 'in' for lists"]);
  t.deepEqual(errorsOf('user = a user = b'), ["DBTAP_E_RULE_SYNTAX: unexpected 'user' after a complete condition (missing 'and' / 'or'?)"]);
  t.deepEqual(errorsOf('(user = a'), ["DBTAP_E_RULE_SYNTAX: missing ')'"]);
  t.deepEqual(errorsOf("user = 'open"), ['DBTAP_E_RULE_SYNTAX: unterminated string']);
  t.deepEqual(errorsOf('and user = a'), ["DBTAP_E_RULE_SYNTAX: expected a condition before 'and'"]);
});

// ---- compiled form and index (golden) --------------------------------------------

test('golden: compiled conditions and index keys of the built-in library and a sample file', (t) => {
  const rs = compileRules([...builtinRuleFiles(), parseRuleText(SAMPLE_YAML, 'sample.yaml')]);
  const rows = rs.rules.map((r) => ({ id: r.id, risk: r.risk, action: r.action, compiled: r.compiled, index: r.indexKeys ?? 'all', fields: r.fields, ...(r.detector ? { detector: r.detector } : {}) }));
  const file = join(here, 'golden', 'compiled-rules.json');
  const text = `${JSON.stringify(rows, null, 1)}\n`;
  if (UPDATE || !existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    t.log(`wrote ${file}`);
  }
  t.deepEqual(JSON.parse(text), JSON.parse(readFileSync(file, 'utf8')));
});

test('the index hands each record only the rules of its class', (t) => {
  const rs = loadRuleObjects({
    rules: [
      { id: 'sel', risk: 'low', condition: 'statementType = select and user = app' },
      { id: 'del1', risk: 'low', condition: 'statementType = delete' },
      { id: 'del2', risk: 'low', condition: 'statementType in (delete, update) and user = app' },
      { id: 'login', risk: 'low', condition: 'kind = login' },
      { id: 'any', risk: 'low', condition: 'user = app' },
      { id: 'never', risk: 'low', condition: 'false and user = app' },
    ],
  }).ruleSet;
  t.deepEqual(
    rs.rules.map((r) => [r.id, r.indexKeys ?? 'all']),
    [
      ['sel', ['statement:select']],
      ['del1', ['statement:delete']],
      ['del2', ['statement:delete', 'statement:update']],
      ['login', ['login']],
      ['any', 'all'],
      ['never', []],
    ],
  );
  const eng = new RuleEngine(rs);
  t.deepEqual(eng.process(statement('SELECT 1')).ruleIds, ['sel', 'any']);
  t.is(eng.stats().candidates, 2); // sel + any, not the four others
  t.deepEqual(eng.process(statement('DELETE FROM t WHERE a = 1')).ruleIds, ['del1', 'del2', 'any']);
  t.is(eng.stats().candidates, 5);
  t.deepEqual(eng.process(login()).ruleIds, ['login', 'any']);
  t.is(eng.stats().candidates, 7);
});

// ---- diagnostics -----------------------------------------------------------------

test('diagnostics carry file:line:column for YAML, schema and condition errors, in every scalar style', (t) => {
  const text = [
    'rules:', // 1
    '  - id: plain', // 2
    '    risk: high', // 3
    '    condition: kind = statement and user in (a', // 4
    '  - id: quoted', // 5
    '    risk: low', // 6
    '    condition: "kind = login and nosuch = 1"', // 7
    '  - id: block', // 8
    '    risk: medium', // 9
    '    condition: |', // 10
    '      kind = statement', // 11
    '        and rowsReturned > lots', // 12
    '  - id: schema', // 13
    '    risk: severe', // 14
    '    action: shout', // 15
    '    condition: true', // 16
    '    colour: red', // 17
    '  - risk: low', // 18
    '', //
  ].join('\n');
  const r = loadRuleText(text, 'rules.yaml');
  t.false(r.ok);
  t.deepEqual(r.diagnostics.map(formatDiagnostic), [
    "rules.yaml:4:47: error DBTAP_E_RULE_SYNTAX: expected ',' or ')' in the value list, found 'end of text'",
    "rules.yaml:7:34: error DBTAP_E_RULE_UNKNOWN_FIELD: rule 'quoted': unknown field 'nosuch'",
    "rules.yaml:12:28: error DBTAP_E_RULE_BAD_VALUE: rule 'block': field 'rowsReturned' is a number; 'lots' is not",
    "rules.yaml:14:11: error DBTAP_E_RULE_SCHEMA: rule 'schema': 'risk' must be one of high, medium, low, info",
    "rules.yaml:15:13: error DBTAP_E_RULE_SCHEMA: rule 'schema': 'action' must be one of alert, log, ignore",
    // YAML reads an unquoted true as a boolean, not as the condition "true"
    "rules.yaml:16:16: error DBTAP_E_RULE_SCHEMA: rule 'schema': 'condition' must be a condition string",
    "rules.yaml:17:13: warning DBTAP_W_RULE_UNKNOWN_KEY: unknown rule key 'colour'",
    "rules.yaml:18:5: error DBTAP_E_RULE_SCHEMA: rule 5 needs an 'id' (a non-empty string)",
  ]);
  // YAML syntax errors point at the offending character
  const y = loadRuleText('rules:\n  - id: a\n    risk: [high\n', 'broken.yaml');
  t.false(y.ok);
  t.is(y.diagnostics[0]!.code, 'DBTAP_E_RULE_YAML');
  t.is(y.diagnostics[0]!.line, 4); // the sequence is found unterminated at the end of the text
  // JSON sources get positions too
  const j = loadRuleText('{\n  "rules": [\n    { "id": "j", "risk": "low", "condition": "user = " }\n  ]\n}\n', 'rules.json');
  t.deepEqual(j.diagnostics.map(formatDiagnostic), ["rules.json:3:54: error DBTAP_E_RULE_SYNTAX: expected a value, found the end of the condition"]);
  // duplicate ids, unknown top-level keys, detector schema
  const d = loadRuleText('extra: 1\nrules:\n  - { id: a, risk: low, condition: "true" }\n  - { id: a, risk: low, condition: "true" }\n  - { id: b, risk: low, condition: "true", detector: { window: soon, threshold: -1, groupBy: [nosuch] } }\n', 'd.yaml');
  t.deepEqual(
    d.diagnostics.map((x) => `${x.line}:${x.column} ${x.code}`),
    // positions of the offending values: extra's 1, the second a, soon, -1, nosuch
    ['1:8 DBTAP_W_RULE_UNKNOWN_KEY', '4:11 DBTAP_E_RULE_DUPLICATE', '5:64 DBTAP_E_RULE_SCHEMA', '5:81 DBTAP_E_RULE_SCHEMA', '5:95 DBTAP_E_RULE_UNKNOWN_FIELD'],
  );
});

test('a bad rule file never half-loads, and files that depend on it fail too', (t) => {
  const good = 'lists:\n  l: [x]\nrules:\n  - { id: g1, risk: low, condition: "user in (l)" }\n';
  const bad = 'macros:\n  m: user = a\nrules:\n  - { id: b1, risk: low, condition: "user = ok" }\n  - { id: b2, risk: low, condition: "user > 1" }\n';
  const dependent = 'macros:\n  m: { append: true, condition: user = b }\nrules:\n  - { id: d1, risk: low, condition: m }\n';
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-rules-'));
  try {
    for (const [n, x] of [['good.yaml', good], ['bad.yaml', bad], ['dependent.yaml', dependent]] as const) writeFileSync(join(dir, n), x);
    const r = loadRuleFiles(['good.yaml', 'bad.yaml', 'dependent.yaml'].map((n) => join(dir, n)));
    t.false(r.ok);
    // b1 is fine on its own, but its file has an error: nothing of bad.yaml loads
    t.deepEqual(
      r.ruleSet.rules.map((x) => x.id),
      ['g1'],
    );
    t.deepEqual(r.files.map((f) => f.name), [join(dir, 'good.yaml')]);
    t.deepEqual(
      r.diagnostics.map((x) => `${x.file.slice(dir.length + 1)}:${x.line}:${x.column} ${x.code}`),
      ['bad.yaml:5:38 DBTAP_E_RULE_TYPE', 'dependent.yaml:2:6 DBTAP_E_RULE_APPEND_MISSING', 'dependent.yaml:4:37 DBTAP_E_RULE_UNKNOWN_NAME'],
    );
    // the compiled rule set of the clean sources works
    t.deepEqual(new RuleEngine(r.ruleSet).process(statement('SELECT 1', { user: 'x' })).ruleIds, ['g1']);
    // compileRules refuses outright, with the diagnostics attached
    const err = t.throws(() => compileRules([parseRuleText(good, 'g.yaml'), parseRuleText(bad, 'b.yaml')]));
    t.true(isDbtapError(err));
    t.is((err as unknown as { code: string }).code, 'DBTAP_E_RULE_LOAD');
    t.regex(err!.message, /b\.yaml:5:38: error DBTAP_E_RULE_TYPE/);
    t.throws(() => parseRuleText('rules: [', 'x.yaml'), { message: /DBTAP_E_RULE_YAML/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one run reports the read-stage and the compile-stage errors of a file together', (t) => {
  const r = loadRuleText('rules:\n  - { id: a, risk: low, condition: "user in (x" }\n  - { id: b, risk: low, condition: "nosuch = 1" }\n  - { id: c, risk: nope, condition: "user > 1" }\n', 'both.yaml');
  t.deepEqual(
    r.diagnostics.map((d) => `${d.line}:${d.column} ${d.code}`),
    ['2:47 DBTAP_E_RULE_SYNTAX', '3:37 DBTAP_E_RULE_UNKNOWN_FIELD', '4:20 DBTAP_E_RULE_SCHEMA'],
  );
  t.is(r.ruleSet.rules.length, 0);
});

test('checkRuleFiles prints one line per diagnostic and a summary', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-rules-'));
  try {
    writeFileSync(join(dir, 'ok.yaml'), 'rules:\n  - { id: mine, risk: low, condition: "user = x" }\n  - { id: offhours.access, override: true, enabled: false }\n');
    const ok = checkRuleFiles([join(dir, 'ok.yaml')], { include: builtinRuleFiles() });
    t.true(ok.ok);
    t.deepEqual(ok.lines, ['1 file(s): 0 error(s), 0 warning(s); 2 rule(s) compiled']);
    writeFileSync(join(dir, 'bad.yaml'), 'rules:\n  - { id: b, risk: low, condition: "user >" }\n');
    const bad = checkRuleFiles([join(dir, 'ok.yaml'), join(dir, 'bad.yaml')], { include: builtinRuleFiles() });
    t.false(bad.ok);
    t.deepEqual(bad.lines, [`${join(dir, 'bad.yaml')}:2:43: error DBTAP_E_RULE_SYNTAX: expected a value, found the end of the condition`, '2 file(s): 1 error(s), 0 warning(s); 2 rule(s) compiled']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- actions and groups ---------------------------------------------------------

test('actions: alert raises an alert record, log only tags, ignore allow-lists; the highest risk wins', (t) => {
  const rs = loadRuleObjects({
    rules: [
      { id: 'quiet', risk: 'low', condition: 'statementType = delete' },
      { id: 'loud', risk: 'high', action: 'alert', description: 'deletes orders', condition: 'statementType = delete and objects.name = orders' },
      { id: 'medium', risk: 'medium', condition: 'statementType = delete' },
      { id: 'allow-batch', risk: 'info', action: 'ignore', condition: 'user = batch' },
      { id: 'off', risk: 'high', enabled: false, condition: 'true' },
    ],
  }).ruleSet;
  const eng = new RuleEngine(rs);
  const e = statement('DELETE FROM orders WHERE id = 3');
  const v = eng.process(e);
  t.deepEqual(v.ruleIds, ['quiet', 'loud', 'medium']);
  t.is(v.risk, 'high');
  t.is(e.risk, 'high');
  t.deepEqual(e.ruleIds, ['quiet', 'loud', 'medium']);
  t.is(v.alerts.length, 1);
  const a = v.alerts[0]!;
  t.is(a.kind, 'alert');
  t.is(a.id, `${e.id}:alert:loud`);
  t.deepEqual(a.ruleIds, ['loud']);
  t.is(a.risk, 'high');
  t.is(a.alert.reason, 'loud: deletes orders');
  t.is(a.user, 'app');
  t.is(a.sql, e.sql);
  const ignored = statement('DELETE FROM orders WHERE id = 3', { user: 'batch' });
  t.deepEqual(eng.process(ignored), { risk: 'none', ruleIds: [], alerts: [] });
  t.is(ignored.risk, 'none');
  t.deepEqual(eng.process(statement('SELECT 1')).ruleIds, []);
  // the injection rule explains itself with the detector's reasons
  const sq = new RuleEngine(defaultRuleSet(['sql-injection'])).process(statement("SELECT * FROM u WHERE name = '' OR 1=1 -- '"));
  t.regex(sq.alerts[0]!.alert.reason, /^SQL injection: tautology, comment-truncation \(score 0\.98\)$/);
});

test('rule groups: by id, prefix and tag, merged across files, chosen per record', (t) => {
  const a = parseRuleText(
    'rules:\n  - { id: a.one, risk: low, tags: [pii], condition: "statementType = select" }\n  - { id: a.two, risk: low, condition: "statementType = select" }\n  - { id: b.one, risk: low, tags: [pii], condition: "statementType = select" }\ngroups:\n  g1: [a.*]\n  g2: ["tag:pii"]\n',
    'a.yaml',
  );
  const b = parseRuleText('groups:\n  g1: [b.one]\n  g3: [nothing.*]\n', 'b.yaml');
  const r = loadRuleObjects({}, 'empty', { include: [a, b] });
  t.deepEqual([...r.ruleSet.groups], [
    ['g1', ['a.one', 'a.two', 'b.one']],
    ['g2', ['a.one', 'b.one']],
    ['g3', []],
  ]);
  t.deepEqual(r.diagnostics.map(formatDiagnostic), ["b.yaml:3:8: warning DBTAP_W_RULE_GROUP_EMPTY: group 'g3': 'nothing.*' matches no rule"]);
  const rs = r.ruleSet;
  t.deepEqual(new RuleEngine(rs, { group: 'g2' }).process(statement('SELECT 1')).ruleIds, ['a.one', 'b.one']);
  t.deepEqual(new RuleEngine(rs).process(statement('SELECT 1')).ruleIds, ['a.one', 'a.two', 'b.one']);
  // per audit object
  const eng = new RuleEngine(rs, { groupFor: (e) => (e.auditObjectId === 'hr-db' ? 'g2' : e.auditObjectId === 'none' ? 'g3' : undefined), group: 'g1' });
  t.deepEqual(eng.process(statement('SELECT 1', { auditObjectId: 'hr-db' })).ruleIds, ['a.one', 'b.one']);
  t.deepEqual(eng.process(statement('SELECT 1', { auditObjectId: 'none' })).ruleIds, []);
  t.deepEqual(eng.process(statement('SELECT 1', { auditObjectId: 'shop' })).ruleIds, ['a.one', 'a.two', 'b.one']);
  t.throws(() => new RuleEngine(rs, { group: 'nope' }), { message: /unknown rule group 'nope'/ });
  // every built-in policy is also a group of the same name
  const lib = defaultRuleSet();
  t.deepEqual(lib.groups.get('brute-force'), ['bruteforce.failed-login', 'bruteforce.per-client', 'bruteforce.per-user']);
});

test('windows and the field catalogue', (t) => {
  t.is(parseWindow(90), 90_000_000);
  t.is(parseWindow('500ms'), 500_000);
  t.is(parseWindow('30s'), 30_000_000);
  t.is(parseWindow('5m'), 300_000_000);
  t.is(parseWindow('1.5h'), 5_400_000_000);
  t.is(parseWindow('1d'), 86_400_000_000);
  t.is(parseWindow('45'), 45_000_000);
  for (const bad of ['0s', '-1m', 'soon', '', 0, -5, Number.NaN, null]) t.is(parseWindow(bad), undefined, String(bad));
  const fields = ruleFields();
  const names = fields.map((f) => f.name);
  for (const n of ['user', 'client.ip', 'statementType', 'objects.qualified', 'rowsReturned', 'durationUs', 'fingerprint', 'clientProgram', 'time', 'time.weekday', 'sql.injection']) t.true(names.includes(n), n);
  t.true(fields.every((f) => f.description.length > 0));
  t.is(MONDAY_10AM % 1000, 0);
});

test('docs/rules.md: its example file loads and prints as shown; it documents every field, operator and diagnostic code', (t) => {
  const md = readFileSync(join(repoRoot, 'docs/rules.md'), 'utf8');
  const example = md.split('```yaml\n')[1]!.split('```')[0]!;
  const r = loadRuleText(example, 'example.yaml', { include: builtinRuleFiles() });
  t.true(r.ok, r.diagnostics.map(formatDiagnostic).join('\n'));
  t.deepEqual(r.diagnostics, []);
  const rule = r.ruleSet.rule('site.admin-night-drop')!;
  t.true(md.includes(`  ${rule.compiled}\n  index: all`), rule.compiled);
  t.is(r.ruleSet.rule('site.too-many-errors')!.detector!.windowUs, 300_000_000);
  t.false(r.ruleSet.rule('offhours.access')!.enabled);
  t.deepEqual(r.ruleSet.groups.get('hr-database'), ['site.admin-night-drop', 'site.too-many-errors', 'dangerous.drop-or-truncate']);
  for (const f of ruleFields()) t.true(md.includes(`\`${f.name}\``), `field ${f.name}`);
  for (const op of ['=', '!=', '<', '<=', '>', '>=', 'in', 'iin', 'contains', 'icontains', 'startswith', 'istartswith', 'endswith', 'iendswith', 'iequals', 'matches', 'imatches', 'in_cidr', 'within', 'exists']) t.true(md.includes(`\`${op}\``), `operator ${op}`);
  const codes = readFileSync(join(here, '../src/rules/loader.ts'), 'utf8') + readFileSync(join(here, '../src/rules/ruleset.ts'), 'utf8') + readFileSync(join(here, '../src/rules/compile.ts'), 'utf8');
  for (const code of new Set(codes.match(/DBTAP_[EW]_[A-Z_]+/g))) t.true(md.includes(`\`${code}\``), `code ${code}`);
});

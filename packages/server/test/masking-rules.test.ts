// Masking rules, one type at a time, across everything a record carries:
// SQL text, bound parameters, result rows, messages, attributes and alerts.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, isDbtapError, type AuditEvent } from '@dbtap/core';
import { classify, dialectForDbType, RuleEngine, loadRuleText } from '@dbtap/rules';
import { RecordMasker, loadServerConfig, parseMaskingConfig, type MaskingConfig } from '../src/index.js';

const HASH_KEY = 'masking-test-hash-key-0123456789';

function rec(sql: string | undefined, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: 'r1', kind: 'statement', flowId: 'f1', ts: 1_700_000_000_000_000, client: { ip: '127.0.0.1', port: 50000 }, server: { ip: '127.0.0.1', port: 3306 },
    dbType: 'mysql', status: 'ok', ...(sql !== undefined ? { sql } : {}), ...extra,
  };
}

const password = new RecordMasker({ rules: [{ type: 'password' }] });

test('password: account statements of each dialect keep their shape, lose the secret', (t) => {
  const cases: Array<[string, string, string]> = [
    ['mysql', "CREATE USER 'app'@'%' IDENTIFIED BY 'Tr0ub4dor&3'", "CREATE USER 'app'@'%' IDENTIFIED BY '***'"],
    ['mysql', "CREATE USER a IDENTIFIED BY 'p1', b IDENTIFIED BY \"p2\"", "CREATE USER a IDENTIFIED BY '***', b IDENTIFIED BY '***'"],
    ['mysql', "ALTER USER 'app'@'%' IDENTIFIED WITH caching_sha2_password BY 'n3w-pw' REPLACE 'old-pw'", "ALTER USER 'app'@'%' IDENTIFIED WITH caching_sha2_password BY '***' REPLACE '***'"],
    ['mysql', "ALTER USER app IDENTIFIED WITH mysql_native_password AS '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'", "ALTER USER app IDENTIFIED WITH mysql_native_password AS '***'"],
    ['mysql', "CREATE USER e IDENTIFIED VIA ed25519 USING PASSWORD('ed-secret')", "CREATE USER e IDENTIFIED VIA ed25519 USING PASSWORD('***')"],
    ['mysql', "SET PASSWORD FOR 'app'@'localhost' = 'It''s-a\\'secret'", "SET PASSWORD FOR 'app'@'localhost' = '***'"],
    ['mysql', "SET PASSWORD = PASSWORD('plain-pw')", "SET PASSWORD = PASSWORD('***')"],
    ['mysql', "GRANT SELECT ON db.* TO u@h IDENTIFIED BY PASSWORD '*ABCDEF0123'", "GRANT SELECT ON db.* TO u@h IDENTIFIED BY PASSWORD '***'"],
    ['mysql', "ALTER USER app IDENTIFIED BY RANDOM PASSWORD", "ALTER USER app IDENTIFIED BY RANDOM PASSWORD"],
    ['mysql', "ALTER USER app PASSWORD EXPIRE INTERVAL 90 DAY PASSWORD HISTORY 5", "ALTER USER app PASSWORD EXPIRE INTERVAL 90 DAY PASSWORD HISTORY 5"],
    ['mysql', "CHANGE MASTER TO MASTER_HOST='db1', MASTER_PASSWORD='repl-pw'", "CHANGE MASTER TO MASTER_HOST='db1', MASTER_PASSWORD='***'"],
    ['mysql', "SELECT AES_ENCRYPT(card, 'aes-key'), AES_DECRYPT(x, UNHEX(SHA2('k2', 256))) FROM t", "SELECT AES_ENCRYPT(card, '***'), AES_DECRYPT(x, UNHEX(SHA2('***', '***'))) FROM t"],
    ['mysql', "UPDATE users SET password = 'pw-in-table' WHERE id = 7", "UPDATE users SET password = '***' WHERE id = 7"],
    ['mysql', "SELECT password FROM users /* password 'not-a-literal' */", "SELECT password FROM users /* password 'not-a-literal' */"],
    ['postgres', "CREATE ROLE app WITH LOGIN PASSWORD 'pg-secret' VALID UNTIL '2030-01-01'", "CREATE ROLE app WITH LOGIN PASSWORD '***' VALID UNTIL '2030-01-01'"],
    ['postgres', "ALTER ROLE app ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi'", "ALTER ROLE app ENCRYPTED PASSWORD '***'"],
    ['postgres', "ALTER USER app WITH PASSWORD E'esc\\'aped'", "ALTER USER app WITH PASSWORD '***'"],
    ['postgres', 'ALTER ROLE app PASSWORD NULL', 'ALTER ROLE app PASSWORD NULL'],
    ['postgres', "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'remote', password 'fdw-pw')", "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'remote', password '***')"],
    ['postgres', "SELECT dblink_connect('host=db2 user=app password=conn-pw dbname=x')", "SELECT dblink_connect('host=db2 user=app password=*** dbname=x')"],
    ['postgres', "SELECT pgp_sym_encrypt('data', 'sym-key')", "SELECT pgp_sym_encrypt('data', '***')"],
    ['tds', "CREATE LOGIN app WITH PASSWORD = 'Tds-pw1', CHECK_POLICY = ON", "CREATE LOGIN app WITH PASSWORD = '***', CHECK_POLICY = ON"],
    ['tds', "ALTER LOGIN app WITH PASSWORD = 'new-pw' OLD_PASSWORD = 'old-pw'", "ALTER LOGIN app WITH PASSWORD = '***' OLD_PASSWORD = '***'"],
    ['oracle', 'ALTER USER scott IDENTIFIED BY tiger REPLACE lion', 'ALTER USER scott IDENTIFIED BY "***" REPLACE "***"'],
    ['oracle', 'CREATE USER app IDENTIFIED BY "Quoted pw"', 'CREATE USER app IDENTIFIED BY "***"'],
  ];
  for (const [dbType, sql, want] of cases) {
    const out = password.mask(rec(sql, { dbType }));
    t.is(out.sql, want, `${dbType}: ${sql}`);
    // The statement still reads as the same kind of statement.
    const d = dialectForDbType(dbType);
    t.is(classify(out.sql!, d).verb, classify(sql, d).verb, sql);
  }
});

test('password: placeholders in password positions mask the bound value', (t) => {
  const my = password.mask(rec('ALTER USER ? IDENTIFIED BY ?', { params: ['app', 'bound-pw'] }));
  t.deepEqual(my.params, ['app', '***']);
  const pg = password.mask(rec('ALTER ROLE app PASSWORD $2 VALID UNTIL $1', { dbType: 'postgres', params: ['2030-01-01', 'pg-bound'] }));
  t.deepEqual(pg.params, ['2030-01-01', '***']);
  const typed = password.mask(rec('SET PASSWORD = ?', { params: [{ type: 'blob', hex: '736563726574' }] }));
  t.deepEqual(typed.params, [{ type: 'blob', text: '***' }]);
  // A connection string bound as a parameter loses its password too.
  const conn = password.mask(rec('SELECT dblink_connect($1)', { dbType: 'postgres', params: ['host=x password=p4ss'] }));
  t.deepEqual(conn.params, ['host=x password=***']);
});

test('password: result columns named like passwords are masked', (t) => {
  const out = password.mask(rec('SELECT user, authentication_string FROM mysql.user', { columns: ['User', 'authentication_string'], rows: [['root', '*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B'], ['app', null]] }));
  t.deepEqual(out.rows, [['root', '***'], ['app', null]]);
  const custom = new RecordMasker({ rules: [{ type: 'password', columns: ['secret_hash'] }] });
  t.deepEqual(custom.mask(rec('SELECT secret_hash, password FROM t', { columns: ['secret_hash', 'password'], rows: [['x', 'y']] })).rows, [['***', 'y']]);
});

const patterns = new RecordMasker({
  rules: [
    { type: 'pattern', builtin: 'card' },
    { type: 'pattern', builtin: 'iban', replacement: '[iban]' },
    { type: 'pattern', builtin: 'us-ssn' },
    { type: 'pattern', builtin: 'email', replacement: 'hash' },
    { type: 'pattern', name: 'employee-id', regex: 'emp-[0-9]{6}', flags: 'i', replacement: '[emp]' },
  ],
  hashKey: HASH_KEY,
});

test('pattern: card numbers (Luhn), IBANs (mod 97), SSNs, e-mails and custom patterns', (t) => {
  const out = patterns.mask(rec(
    "INSERT INTO pay VALUES ('4111 1111 1111 1111', 5500000000000004, '4111111111111112', 1709251200000000, 'DE89 3704 0044 0532 0130 00', 'DE89370400440532013001', '078-05-1120', '000-12-3456', 'EMP-123456') -- card 378282246310005",
  ));
  t.is(out.sql, "INSERT INTO pay VALUES ('***', '***', '4111111111111112', 1709251200000000, '[iban]', 'DE89370400440532013001', '***', '000-12-3456', '[emp]') -- card ***");
  const mail = patterns.mask(rec("SELECT * FROM u WHERE mail = 'Alice@Example.com' OR mail = 'alice@example.com'"));
  const hashes = mail.sql!.match(/h:[0-9a-f]{16}/g)!;
  t.is(hashes.length, 2);
  t.is(hashes[0], hashes[1], 'one address, one hash (addresses compare case-insensitively)');
  t.false(mail.sql!.includes('example.com'));
});

test('pattern: parameters, rows, messages, attributes and alert details', (t) => {
  const out = patterns.mask(rec('SELECT * FROM pay WHERE card = ? AND n = ?', {
    params: ['4012888888881881', 4012888888881881n as unknown as number, { type: 'varchar', text: 'ref 078-05-1120' }, 42],
    columns: ['card', 'note'],
    rows: [['5105105105105100', 'mail bob@example.org'], ['n/a', null]],
    message: "Duplicate entry '4012888888881881' for key 'pay.card_uq'",
    attributes: { program_name: 'emp-654321 tool', _os: 'Linux' },
  }));
  t.deepEqual(out.params, ['***', '***', { type: 'varchar', text: 'ref ***' }, 42]);
  t.deepEqual(out.rows![0]![0], '***');
  t.regex(out.rows![0]![1]!, /^mail h:[0-9a-f]{16}$/);
  t.deepEqual(out.rows![1], ['n/a', null]);
  t.is(out.message, "Duplicate entry '***' for key 'pay.card_uq'");
  t.deepEqual(out.attributes, { program_name: '[emp] tool', _os: 'Linux' });
  const alert = patterns.mask(rec('SELECT 1', { kind: 'alert', alert: { ruleId: 'r', name: 'R', reason: 'card 4111111111111111 seen', group: { user: 'emp-000001' } } }));
  t.deepEqual(alert.alert, { ruleId: 'r', name: 'R', reason: 'card *** seen', group: { user: '[emp]' } });
});

const columns = new RecordMasker({ rules: [{ type: 'column', columns: ['ssn', 'customers.card_no'] }, { type: 'column', columns: ['salary'], replacement: 'hash' }], hashKey: HASH_KEY });

test('column: literals compared, assigned, listed and inserted', (t) => {
  const cases: Array<[string, string]> = [
    ["SELECT * FROM p WHERE ssn = '078-05-1120' AND name = 'Ann'", "SELECT * FROM p WHERE ssn = '***' AND name = 'Ann'"],
    ["SELECT * FROM p WHERE p.`ssn` <> \"x1\" OR '222' = p.ssn", "SELECT * FROM p WHERE p.`ssn` <> '***' OR '***' = p.ssn"],
    ["SELECT * FROM p WHERE ssn IN ('1', '2', UPPER('3')) OR ssn NOT LIKE '9%' OR ssn BETWEEN '4' AND '5'", "SELECT * FROM p WHERE ssn IN ('***', '***', UPPER('***')) OR ssn NOT LIKE '***' OR ssn BETWEEN '***' AND '***'"],
    ['SELECT * FROM p WHERE ssn IN (SELECT ssn FROM q WHERE id = 5)', 'SELECT * FROM p WHERE ssn IN (SELECT ssn FROM q WHERE id = 5)'],
    ["UPDATE p SET ssn = CONCAT('12', '34'), name = 'Bo' WHERE ssn = 123456789", "UPDATE p SET ssn = CONCAT('***', '***'), name = 'Bo' WHERE ssn = '***'"],
    ["INSERT INTO p (id, name, ssn) VALUES (1, 'Ann', '111'), (2, 'Bo', '222') ON DUPLICATE KEY UPDATE ssn = '333'", "INSERT INTO p (id, name, ssn) VALUES (1, 'Ann', '***'), (2, 'Bo', '***') ON DUPLICATE KEY UPDATE ssn = '***'"],
    ["INSERT INTO p SET ssn = '444', name = 'Cy'", "INSERT INTO p SET ssn = '***', name = 'Cy'"],
    ["INSERT INTO p VALUES (1, 'Ann', '111')", "INSERT INTO p VALUES (1, 'Ann', '111')"],
    // table-qualified: only in statements naming the table
    ["UPDATE customers SET card_no = '4000' WHERE id = 1", "UPDATE customers SET card_no = '***' WHERE id = 1"],
    ["UPDATE suppliers SET card_no = '4000' WHERE id = 1", "UPDATE suppliers SET card_no = '4000' WHERE id = 1"],
  ];
  for (const [sql, want] of cases) t.is(columns.mask(rec(sql)).sql, want, sql);
  // literals that only look like the column are left alone
  t.is(columns.mask(rec("SELECT 'ssn = 1' AS ssn_text, ssn(1)")).sql, "SELECT 'ssn = 1' AS ssn_text, ssn(1)");
});

test('column: placeholders map to parameters in MySQL and PostgreSQL style', (t) => {
  const my = columns.mask(rec('INSERT INTO p (id, ssn, name) VALUES (?, ?, ?), (?, ?, ?)', { params: [1, '111', 'Ann', 2, '222', 'Bo'] }));
  t.deepEqual(my.params, [1, '***', 'Ann', 2, '***', 'Bo']);
  const pg = columns.mask(rec('UPDATE p SET name = $1 WHERE ssn = $3 AND id = $2', { dbType: 'postgres', params: ['Ann', 7, '333'] }));
  t.deepEqual(pg.params, ['Ann', 7, '***']);
});

test('column: rows by column name, and values echoed in messages', (t) => {
  const out = columns.mask(rec("SELECT ssn AS s, salary, name FROM p WHERE ssn = '078-05-1120' AND salary > 50000", {
    columns: ['s', 'SALARY', 'name'],
    rows: [['078-05-1120', '72000', 'Ann'], ['078-05-1121', '50000', 'Bo']],
    message: "Data truncated for value '078-05-1120'",
  }));
  // 's' is an alias: the masked literal's value still finds the cell; SALARY by name (hash).
  t.is(out.rows![0]![0], '***');
  t.is(out.rows![1]![0], '078-05-1121');
  t.regex(out.rows![0]![1]!, /^h:[0-9a-f]{16}$/);
  t.is(out.rows![0]![2], 'Ann');
  t.is(out.message, "Data truncated for value '***'");
  // salary > 50000 compares: the literal is hashed, equal to the hash of the row value 50000.
  t.true(out.sql!.includes(`salary > '${out.rows![1]![1]}'`));
  const pg = columns.mask(rec('INSERT INTO p (ssn) VALUES ($1)', {
    dbType: 'postgres', params: ['078-05-1120'], status: 'error',
    message: 'duplicate key value violates unique constraint "p_ssn_key" Key (ssn)=(078-05-1120) already exists.',
  }));
  t.is(pg.message, 'duplicate key value violates unique constraint "p_ssn_key" Key (ssn)=(***) already exists.');
  const my = columns.mask(rec('INSERT INTO q (a) VALUES (1)', { message: "Incorrect integer value: 'abc' for column `db`.`p`.`ssn` at row 1" }));
  t.is(my.message, "Incorrect integer value: '***' for column `db`.`p`.`ssn` at row 1");
});

test('hash replacements: equal values correlate, other keys and values do not', (t) => {
  const cfg: MaskingConfig = { rules: [{ type: 'column', columns: ['ssn'], replacement: 'hash' }], hashKey: HASH_KEY };
  const a = new RecordMasker(cfg).mask(rec("SELECT * FROM p WHERE ssn = '111' OR ssn = ?", { params: ['111'] }));
  const h = /'(h:[0-9a-f]{16})'/.exec(a.sql!)![1]!;
  t.deepEqual(a.params, [h]);
  const b = new RecordMasker(cfg).mask(rec("SELECT * FROM p WHERE ssn = '112'"));
  t.false(b.sql!.includes(h));
  const other = new RecordMasker({ ...cfg, hashKey: 'a-different-key-of-enough-length' }).mask(rec("SELECT * FROM p WHERE ssn = '111'"));
  t.false(other.sql!.includes(h));
});

test('the input record is never changed; a record with nothing to mask is returned as is', (t) => {
  const m = new RecordMasker({ rules: [{ type: 'password' }, { type: 'pattern', builtin: 'card' }] });
  const input = rec("CREATE USER u IDENTIFIED BY 'pw'", { params: ['4111111111111111'], rows: [['4111111111111111']], columns: ['c'], attributes: { a: 'b' } });
  const copy = structuredClone(input);
  const out = m.mask(input);
  t.deepEqual(input, copy);
  t.not(out, input);
  const clean = rec('SELECT 1', { params: [1], rows: [['1']], columns: ['1'] });
  t.is(m.mask(clean), clean);
  t.deepEqual(m.stats(), { records: 2, masked: 1, values: 3 });
});

test('rules judge the statement before masking; the alert they raise is masked alike', (t) => {
  const rules = loadRuleText('rules:\n  - id: t.account\n    name: Account change\n    risk: high\n    action: alert\n    condition: statementType = dcl\n', 'inline.yaml');
  t.true(rules.ok, JSON.stringify(rules.diagnostics));
  const engine = new RuleEngine(rules.ruleSet);
  const m = new RecordMasker({ rules: [{ type: 'password' }] });
  const e = rec("ALTER USER app IDENTIFIED BY 'hunter2-pw'");
  const v = engine.process(e);
  t.is(e.statementType, 'dcl');
  t.is(e.verb, 'ALTER USER');
  const stored = [e, ...v.alerts].map(m.mask);
  t.is(stored.length, 2);
  for (const r of stored) {
    t.false(JSON.stringify(r).includes('hunter2-pw'), r.kind);
    t.is(r.sql, "ALTER USER app IDENTIFIED BY '***'");
  }
  t.is(stored[0]!.verb, 'ALTER USER');
  t.is(stored[1]!.alert?.ruleId, 't.account');
});

test('bad masking configuration fails with DBTAP_E_CONFIG naming the key', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ rules: 'password' }, /masking\.rules must be a list/],
    [{ rules: [{ type: 'secret' }] }, /masking\.rules\[0\]\.type must be password, pattern or column/],
    [{ rules: [{ type: 'pattern' }] }, /masking\.rules\[0\] must be given exactly one of builtin and regex/],
    [{ rules: [{ type: 'pattern', regex: '(' }] }, /masking\.rules\[0\]\.regex must be a valid regular expression/],
    [{ rules: [{ type: 'pattern', regex: 'a*' }] }, /masking\.rules\[0\]\.regex must be a regular expression that cannot match the empty string/],
    [{ rules: [{ type: 'pattern', regex: 'x', flags: 'g' }] }, /masking\.rules\[0\]\.flags/],
    [{ rules: [{ type: 'pattern', builtin: 'passport' }] }, /masking\.rules\[0\]\.builtin must be one of card, iban, email, us-ssn/],
    [{ rules: [{ type: 'column', columns: [] }] }, /masking\.rules\[0\]\.columns must be a non-empty list/],
    [{ rules: [{ type: 'column', columns: ['a b'] }] }, /masking\.rules\[0\]\.columns must be a list of column names/],
    [{ rules: [{ type: 'column', columns: ['x'], replacement: "it's" }] }, /masking\.rules\[0\]\.replacement must be 'hash' or a text/],
    [{ rules: [{ type: 'column', columns: ['x'], replacement: 'hash' }] }, /masking\.hashKey must be set/],
    [{ rules: [{ type: 'password' }, { type: 'password' }] }, /masking\.rules\[1\] must be the only rule of type password/],
    [{ rules: [{ type: 'column', columns: ['x'], colour: 'red' }] }, /masking\.rules\[0\]\.colour must be one of type, replacement, columns/],
    [{ rules: [], hashKey: 'short' }, /masking\.hashKey must be at least 16 bytes/],
  ];
  for (const [cfg, msg] of cases) {
    const err = t.throws(() => new RecordMasker(cfg as MaskingConfig), undefined, JSON.stringify(cfg));
    t.true(isDbtapError(err, ErrorCodes.CONFIG), JSON.stringify(cfg));
    t.regex(err!.message, msg);
  }
});

test('the masking: and integrity: sections of the server configuration', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-mask-cfg-'));
  try {
    writeFileSync(join(dir, 'mask.key'), `${HASH_KEY}\n`);
    writeFileSync(join(dir, 'chain.key'), 'chain-key-0123456789abcdef\n');
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, `masking:\n  replacement: hash\n  hashKeyFile: ${join(dir, 'mask.key')}\n  rules:\n    - type: password\n    - type: pattern\n      builtin: card\n      replacement: '#'\nintegrity:\n  keyFile: ${join(dir, 'chain.key')}\n`);
    const cfg = loadServerConfig(ok, {});
    t.is(Buffer.from(cfg.integrity.key!).toString(), 'chain-key-0123456789abcdef');
    t.is(Buffer.from(cfg.masking!.hashKey as Uint8Array).toString(), HASH_KEY);
    const m = new RecordMasker(cfg.masking!);
    t.regex(m.mask(rec("SET PASSWORD = 'x1'")).sql!, /^SET PASSWORD = 'h:[0-9a-f]{16}'$/);
    t.is(m.mask(rec("SELECT '4111111111111111'")).sql, "SELECT '#'");
    // Environment variables win over the files.
    const env = loadServerConfig(ok, { DBTAP_INTEGRITY_KEY: 'env-chain-key-0123456789', DBTAP_MASKING_KEY: 'env-mask-key-0123456789' });
    t.is(Buffer.from(env.integrity.key!).toString(), 'env-chain-key-0123456789');
    t.is(env.masking!.hashKey, 'env-mask-key-0123456789');
    t.deepEqual(loadServerConfig(undefined, {}).integrity, {});
    const bad: Array<[string, Record<string, string>, RegExp]> = [
      ['masking:\n  rules:\n    - type: column\n      columns: [ssn]\n      replacement: hash\n', {}, /masking\.hashKey must be set/],
      ['masking:\n  rules: []\n  hashKeyFile: /nonexistent/key\n', {}, /masking\.hashKeyFile must be a readable file/],
      ['masking:\n  rules: []\n  extra: 1\n', {}, /masking\.extra must be one of rules, replacement, hashKeyFile/],
      ['masking: [1]\n', {}, /masking must be a mapping/],
      ['integrity:\n  keyFile: /nonexistent/key\n', {}, /integrity\.keyFile must be a readable file/],
      ['integrity:\n  key: inline\n', {}, /integrity\.key must be one of keyFile \(unknown key; did you mean 'keyFile'\?\)/],
      ['dataDir: /tmp\n', { DBTAP_INTEGRITY_KEY: 'short' }, /environment: DBTAP_INTEGRITY_KEY must be a key of at least 16 bytes/],
    ];
    for (const [text, e, msg] of bad) {
      const f = join(dir, 'bad.yaml');
      writeFileSync(f, text);
      const err = t.throws(() => loadServerConfig(f, e), undefined, text);
      t.true(isDbtapError(err, ErrorCodes.CONFIG), text);
      t.regex(err!.message, msg, text);
    }
    t.is(parseMaskingConfig({ rules: [{ type: 'password' }] }, 'masking', {}).rules.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Secrets of account statements are masked by default: a server.yaml that
// says nothing about masking gets the password rule, for every dialect the
// server decodes, in the SQL text, the fingerprint, result column names and
// the alerts rules raise. `masking: false` is the one way to turn it off.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { createDefaultRegistry } from '@dbtap/protocols';
import { classify, loadRuleText, RuleEngine } from '@dbtap/rules';
import { DEFAULT_MASKING, defaultServerConfig, loadServerConfig, RecordMasker } from '../src/index.js';
import { registryDialects } from '../src/compose.js';

const dialectFor = registryDialects(createDefaultRegistry());
const dir = mkdtempSync(join(tmpdir(), 'dbtap-mask-default-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function configFile(text: string): string {
  const f = join(dir, `server-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, text);
  return f;
}

function rec(dbType: string, sql: string, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: 'r1', kind: 'statement', flowId: 'f1', ts: 1_700_000_000_000_000, client: { ip: '127.0.0.1', port: 50000 }, server: { ip: '127.0.0.1', port: 1 },
    dbType, status: 'ok', sql, ...extra,
  };
}

// An account-change rule, so each statement also raises an alert to check.
const rules = loadRuleText('rules:\n  - id: t.account\n    name: Account change\n    risk: high\n    action: alert\n    condition: statementType = dcl or verb = "CALL" or verb = "EXEC" or verb = "EXECUTE"\n', 'inline.yaml');
const engine = new RuleEngine(rules.ruleSet, { dialectFor });

// [dbType, statement as sent, as stored, the secrets it carries]
const CASES: Array<[string, string, string, string[]]> = [
  // MySQL / MariaDB
  ['mysql', "CREATE USER 'app'@'%' IDENTIFIED BY 'My-Secret-1'", "CREATE USER 'app'@'%' IDENTIFIED BY '***'", ['My-Secret-1']],
  ['mysql', "ALTER USER 'app'@'%' IDENTIFIED WITH caching_sha2_password BY 'My-Secret-2'", "ALTER USER 'app'@'%' IDENTIFIED WITH caching_sha2_password BY '***'", ['My-Secret-2']],
  ['mysql', "CREATE USER app IDENTIFIED WITH mysql_native_password AS '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'", "CREATE USER app IDENTIFIED WITH mysql_native_password AS '***'", ['*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19']],
  ['mysql', "SET PASSWORD FOR 'app'@'%' = 'My-Secret-3'", "SET PASSWORD FOR 'app'@'%' = '***'", ['My-Secret-3']],
  ['mysql', "SET PASSWORD FOR app = PASSWORD('My-Secret-4')", "SET PASSWORD FOR app = PASSWORD('***')", ['My-Secret-4']],
  ['mysql', "SET PASSWORD = OLD_PASSWORD('My-Secret-5')", "SET PASSWORD = OLD_PASSWORD('***')", ['My-Secret-5']],
  // PostgreSQL
  ['postgres', "CREATE ROLE app LOGIN PASSWORD 'Pg-Secret-1'", "CREATE ROLE app LOGIN PASSWORD '***'", ['Pg-Secret-1']],
  ['postgres', "CREATE USER app WITH ENCRYPTED PASSWORD 'Pg-Secret-2' VALID UNTIL 'infinity'", "CREATE USER app WITH ENCRYPTED PASSWORD '***' VALID UNTIL 'infinity'", ['Pg-Secret-2']],
  ['postgres', "ALTER ROLE app WITH PASSWORD 'Pg-Secret-3'", "ALTER ROLE app WITH PASSWORD '***'", ['Pg-Secret-3']],
  // T-SQL
  ['tds', "CREATE LOGIN app WITH PASSWORD = N'Tds-Secret-1', DEFAULT_DATABASE = master", "CREATE LOGIN app WITH PASSWORD = '***', DEFAULT_DATABASE = master", ['Tds-Secret-1']],
  ['tds', "ALTER LOGIN app WITH PASSWORD = 'Tds-Secret-2' OLD_PASSWORD = 'Tds-Secret-3'", "ALTER LOGIN app WITH PASSWORD = '***' OLD_PASSWORD = '***'", ['Tds-Secret-2', 'Tds-Secret-3']],
  ['tds', "EXEC sp_addlogin 'bob', 'Tds-Secret-4', 'salesdb'", "EXEC sp_addlogin 'bob', '***', 'salesdb'", ['Tds-Secret-4']],
  ['tds', "EXEC master.dbo.sp_password 'Tds-Secret-5', 'Tds-Secret-6', 'bob'", "EXEC master.dbo.sp_password '***', '***', 'bob'", ['Tds-Secret-5', 'Tds-Secret-6']],
  ['tds', "EXECUTE sp_password @old = NULL, @new = N'Tds-Secret-7', @loginame = 'bob'", "EXECUTE sp_password @old = NULL, @new = '***', @loginame = 'bob'", ['Tds-Secret-7']],
  ['tds', "EXEC sp_addlogin @loginame = 'eve', @passwd = 'Tds-Secret-8'", "EXEC sp_addlogin @loginame = 'eve', @passwd = '***'", ['Tds-Secret-8']],
  // Oracle: the password is an identifier, quoted or not
  ['oracle', 'CREATE USER app IDENTIFIED BY OraSecret1 DEFAULT TABLESPACE users', 'CREATE USER app IDENTIFIED BY "***" DEFAULT TABLESPACE users', ['OraSecret1']],
  ['oracle', 'ALTER USER app IDENTIFIED BY "Ora Secret 2" REPLACE OraSecret3', 'ALTER USER app IDENTIFIED BY "***" REPLACE "***"', ['Ora Secret 2', 'OraSecret3']],
  // DB2 / Derby system procedures
  ['drda', "CALL SYSCS_UTIL.SYSCS_CREATE_USER('fred', 'Derby-Secret-1')", "CALL SYSCS_UTIL.SYSCS_CREATE_USER('fred', '***')", ['Derby-Secret-1']],
  ['drda', "CALL SYSCS_UTIL.SYSCS_RESET_PASSWORD('fred', 'Derby-Secret-2')", "CALL SYSCS_UTIL.SYSCS_RESET_PASSWORD('fred', '***')", ['Derby-Secret-2']],
  ['drda', "CALL SYSCS_UTIL.SYSCS_MODIFY_PASSWORD('Derby-Secret-3')", "CALL SYSCS_UTIL.SYSCS_MODIFY_PASSWORD('***')", ['Derby-Secret-3']],
  // Dameng (Oracle-style, identifier passwords)
  ['dameng', 'CREATE USER app IDENTIFIED BY DmSecret123', 'CREATE USER app IDENTIFIED BY "***"', ['DmSecret123']],
  ['dameng', 'ALTER USER app IDENTIFIED BY "Dm Secret 456"', 'ALTER USER app IDENTIFIED BY "***"', ['Dm Secret 456']],
];

test('with no masking section the server masks account secrets of every dialect', (t) => {
  const cfg = loadServerConfig(configFile('dataDir: ./data\n'), {});
  t.deepEqual(cfg.masking, DEFAULT_MASKING);
  t.deepEqual(defaultServerConfig().masking, DEFAULT_MASKING);
  const masker = new RecordMasker(cfg.masking!, { dialectFor });
  for (const [dbType, sql, want, secrets] of CASES) {
    const e = rec(dbType, sql);
    const v = engine.process(e);
    t.truthy(e.fingerprint, sql);
    const stored = [e, ...v.alerts].map(masker.mask);
    t.is(stored[0]!.sql, want, `${dbType}: ${sql}`);
    t.is(v.alerts.length, 1, `${dbType}: an alert for ${sql}`);
    for (const r of stored) {
      const text = JSON.stringify(r).toLowerCase();
      for (const s of secrets) t.false(text.includes(s.toLowerCase()), `${dbType} ${r.kind}: ${s} in ${JSON.stringify(r)}`);
    }
    // the statement still reads as the statement it was
    t.is(classify(want, dialectFor(e) ?? "mysql").verb, e.verb ?? "", sql);
  }
});

test('fingerprints lose identifier passwords but keep their shape', (t) => {
  const masker = new RecordMasker(DEFAULT_MASKING, { dialectFor });
  const a = rec('oracle', 'CREATE USER app IDENTIFIED BY Tiger1');
  const b = rec('oracle', 'create user app identified by Lion22');
  engine.process(a);
  engine.process(b);
  t.regex(a.fingerprint!, /tiger1/, 'the rules package keeps identifiers in fingerprints');
  const fa = masker.mask(a).fingerprint!;
  t.is(fa, masker.mask(b).fingerprint!);
  t.false(fa.includes('tiger1'));
  t.regex(fa, /identified by \?/);
});

test('result column names named after the expression lose the secret (PASSWORD, OLD_PASSWORD, AES_ENCRYPT)', (t) => {
  const masker = new RecordMasker(DEFAULT_MASKING, { dialectFor });
  const out = masker.mask(rec('mysql', "SELECT PASSWORD('Col-Secret-1'), OLD_PASSWORD('Col-Secret-2'), AES_ENCRYPT('card', 'Col-Key-3') AS k, user", {
    columns: ["PASSWORD('Col-Secret-1')", "OLD_PASSWORD('Col-Secret-2')", 'k', 'user'],
    rows: [['*7AB2', '51f2', 'x', 'root']],
  }));
  t.deepEqual(out.columns, ["PASSWORD('***')", "OLD_PASSWORD('***')", 'k', 'user']);
  t.is(out.sql, "SELECT PASSWORD('***'), OLD_PASSWORD('***'), AES_ENCRYPT('card', '***') AS k, user");
  t.false(/Col-(Secret|Key)/.test(JSON.stringify(out)));
  // a column truncated by the server (unterminated literal) and one echoing the key alone
  const cut = masker.mask(rec('mysql', "SELECT AES_ENCRYPT('x', 'Col-Key-4')", { columns: ["AES_ENCRYPT('x', 'Col-Ke"] }));
  t.deepEqual(cut.columns, ["AES_ENCRYPT('x', '***'"]);
  // column names that hold no secret are kept as they are
  const plain = rec('mysql', 'SELECT id, name FROM t', { columns: ['id', 'name'] });
  t.is(masker.mask(plain), plain);
});

test('masking: false turns masking off; an explicit masking section replaces the default', (t) => {
  const off = loadServerConfig(configFile('masking: false\n'), {});
  t.is(off.masking, undefined);
  const own = loadServerConfig(configFile('masking:\n  rules:\n    - { type: pattern, builtin: card }\n'), {});
  t.deepEqual(own.masking!.rules, [{ type: 'pattern', builtin: 'card' }]);
  const cards = new RecordMasker(own.masking!, { dialectFor });
  t.is(cards.mask(rec('mysql', "CREATE USER a IDENTIFIED BY 'kept-as-asked'")).sql, "CREATE USER a IDENTIFIED BY 'kept-as-asked'");
});

// Real clients against the test responder (test-support/tds-responder.ts):
// the bytes tedious, FreeTDS tsql, pytds and jTDS send are tapped at the
// responder's socket and run through the decoder; the records must carry
// what the clients were told to send.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '@dbtap/core';
import { Connection, Request, TYPES } from 'tedious';
import { startTdsResponder, type TapChunk, type TdsResponder } from '../../../test-support/tds-responder.js';
import { runTds, unhex } from './helpers/tds.js';

const PASSWORD = 'S3cret-pw!x9';

function connect(r: TdsResponder, password: string): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const c = new Connection({
      server: '127.0.0.1',
      authentication: { type: 'default', options: { userName: 'auditor', password } },
      options: { port: r.port, encrypt: false, database: 'sales', appName: 'dbtap-live', connectTimeout: 5000 },
    });
    c.on('connect', (err) => (err ? reject(err) : resolve(c)));
    c.connect();
  });
}

function run(c: Connection, req: (done: () => void) => Request, how: 'execSql' | 'callProcedure' = 'execSql'): Promise<void> {
  return new Promise((resolve) => {
    const q = req(resolve);
    c[how](q);
  });
}

/** Every string in the records (and JSON of them): the password must appear in none. */
function noPassword(t: { false(v: boolean, m?: string): void }, events: readonly AuditEvent[]): void {
  const all = JSON.stringify(events, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  t.false(all.includes(PASSWORD), 'password in a record');
}

let tediousConversations: TapChunk[][] = [];

test.serial('tedious 18: login, batches, sp_executesql, procedures, a table-valued parameter, prepare/execute, transactions, failed login', async (t) => {
  const r = await startTdsResponder({ password: PASSWORD });
  try {
    const c = await connect(r, PASSWORD);
    await run(c, (done) => new Request('select id, name from customers', () => done()));
    await run(c, (done) => new Request('select * from missing_table', () => done()));
    await run(c, (done) => {
      const q = new Request('select * from t where id = @id and name = @name', () => done());
      q.addParameter('id', TYPES.Int, 42);
      q.addParameter('name', TYPES.NVarChar, 'zoë');
      return q;
    });
    await run(
      c,
      (done) => {
        const q = new Request('sp_update_price', () => done());
        q.addParameter('sku', TYPES.VarChar, 'A-1');
        q.addParameter('price', TYPES.Decimal, 12.5, { precision: 10, scale: 2 });
        q.addParameter('at', TYPES.DateTime2, new Date(Date.UTC(2024, 0, 2, 3, 4, 5)));
        q.addParameter('id', TYPES.UniqueIdentifier, '6F9619FF-8B86-D011-B42D-00C04FC964FF');
        q.addParameter('flag', TYPES.Bit, true);
        q.addParameter('blob', TYPES.VarBinary, Buffer.from([1, 2, 3]));
        q.addParameter('nothing', TYPES.Int, null);
        q.addParameter('big', TYPES.BigInt, '9007199254740993');
        q.addParameter('f', TYPES.Float, 1.5);
        q.addParameter('long', TYPES.NVarChar, 'x'.repeat(5000));
        return q;
      },
      'callProcedure',
    );
    const prep = new Request('update t set n = @n where id = 1', () => {});
    prep.addParameter('n', TYPES.Int);
    await new Promise<void>((res) => {
      prep.once('prepared', () => res());
      c.prepare(prep);
    });
    await run(
      c,
      (done) => {
        const q = new Request('sp_load_items', () => done());
        q.addParameter('items', TYPES.TVP, { name: 'ItemList', schema: 'dbo', columns: [{ name: 'id', type: TYPES.Int }, { name: 'label', type: TYPES.NVarChar, length: 20 }], rows: [[1, 'one'], [2, 'two'], [3, null]] });
        q.addParameter('after', TYPES.Int, 5);
        return q;
      },
      'callProcedure',
    );
    await new Promise<void>((res) => {
      prep.once('requestCompleted', () => res());
      c.execute(prep, { n: 7 });
    });
    await new Promise<void>((res) => c.beginTransaction(() => res()));
    await new Promise<void>((res) => c.commitTransaction(() => res()));
    await new Promise<void>((res) => {
      c.on('end', () => res());
      c.close();
    });
    await t.throwsAsync(connect(r, 'not-the-password'));
    await new Promise((res) => setTimeout(res, 100));
  } finally {
    await r.close();
  }
  tediousConversations = r.conversations;
  t.is(r.conversations.length, 2);
  const { events, stats } = runTds(r.conversations[0]!);
  noPassword(t, events);
  t.is(stats.malformed, 0);
  t.is(stats.unmatchedRequests + stats.unmatchedResponses, 0);
  const [login, init, sel, missing, param, proc, prepare, tvp, execute, begin, commit, logout] = events;
  t.is(events.length, 12);
  t.like(tvp, { sql: 'EXEC sp_load_items', status: 'ok' });
  t.deepEqual(tvp!.params, [{ type: 'tvp', text: 'dbo.ItemList (3 rows)' }, 5]);
  t.like(login, { kind: 'login', status: 'ok', dbType: 'tds', dbProduct: 'mssql', user: 'auditor', database: 'sales', clientProgram: 'dbtap-live', serverVersion: '16.0.1000', sessionId: '57', tls: false, command: 'LOGIN7' });
  t.like(login!.attributes, { tdsVersion: '7.4', serverProduct: 'Microsoft SQL Server', serverName: '127.0.0.1', language: 'us_english', encryption: 'not_sup', packetSize: '4096' });
  t.regex(login!.clientLibrary ?? '', /^Tedious/);
  t.regex(login!.clientPid ?? '', /^\d+$/);
  t.like(init, { kind: 'statement', command: 'SQLBatch', status: 'ok' });
  t.regex(init!.sql ?? '', /^set ansi_nulls on/);
  t.like(sel, { command: 'RPC', sql: 'select id, name from customers', status: 'ok', rowsReturned: 2, user: 'auditor', database: 'sales', clientProgram: 'dbtap-live' });
  t.deepEqual(sel!.columns, ['id', 'name']);
  t.deepEqual(sel!.rows, [['1', 'alice'], ['2', 'bob']]);
  t.like(missing, { sql: 'select * from missing_table', status: 'error', errorCode: 208, message: "Invalid object name 'missing_table'." });
  t.is(missing!.attributes?.errorClass, '16');
  t.like(param, { sql: 'select * from t where id = @id and name = @name', status: 'ok' });
  t.deepEqual(param!.params, [42, 'zoë']);
  t.is(param!.attributes?.paramDeclaration, '@id int, @name nvarchar(3)');
  t.like(proc, { sql: 'EXEC sp_update_price', status: 'ok', affectedRows: 1 });
  t.is(proc!.attributes?.procedure, 'sp_update_price');
  t.deepEqual(proc!.params, ['A-1', '12.50', '2024-01-02 03:04:05.0000000', '6F9619FF-8B86-D011-B42D-00C04FC964FF', true, { type: 'varbinary', hex: '010203' }, null, 9007199254740993n, 1.5, 'x'.repeat(5000)]);
  t.like(prepare, { sql: 'update t set n = @n where id = 1', statementId: '1' });
  t.is(prepare!.attributes?.procedure, 'sp_prepare');
  t.like(execute, { sql: 'update t set n = @n where id = 1', statementId: '1', affectedRows: 1, status: 'ok' });
  t.deepEqual(execute!.params, [7]);
  t.like(begin, { command: 'TransactionManager', sql: 'BEGIN TRANSACTION', status: 'ok' });
  t.like(commit, { command: 'TransactionManager', sql: 'COMMIT TRANSACTION', status: 'ok' });
  t.like(logout, { kind: 'logout', user: 'auditor' });

  const failed = runTds(r.conversations[1]!).events;
  noPassword(t, failed);
  t.is(failed.length, 1);
  t.like(failed[0], { kind: 'login', status: 'error', user: 'auditor', errorCode: 18456, message: "Login failed for user 'auditor'." });
});

test.serial('tedious conversation: every split, byte-at-a-time delivery and mid-session pickup give the same statements', (t) => {
  const conv = tediousConversations[0];
  if (conv === undefined) return t.pass('the tedious test did not run');
  const whole = runTds(conv).events.map((e) => [e.kind, e.sql, e.status]);
  // One client chunk at a time split in two at every offset.
  for (let i = 0; i < conv.length; i++) {
    const [dir, b] = conv[i]!;
    for (const k of [1, 4, 7, 8, 9, Math.floor(b.length / 2), b.length - 1]) {
      if (k <= 0 || k >= b.length) continue;
      const split: TapChunk[] = [...conv.slice(0, i), [dir, b.subarray(0, k)], [dir, b.subarray(k)], ...conv.slice(i + 1)];
      t.deepEqual(
        runTds(split).events.map((e) => [e.kind, e.sql, e.status]),
        whole,
      );
    }
  }
  // Picked up after the login: statements decode, marked midSession.
  const after = conv.findIndex(([d, b]) => d === 0 && b[0] === 0x03);
  const mid = runTds(conv.slice(after), {}, true).events;
  t.true(mid.length >= 7);
  t.true(mid.every((e) => e.midSession === true));
  t.is(mid[0]!.sql, 'select id, name from customers');
});

// ---- FreeTDS tsql, pytds, jTDS ---------------------------------------------------

function sh(cmd: string, args: string[], env: Record<string, string>, input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
    if (input !== undefined) p.stdin?.end(input);
  });
}

function toolTest(title: string, tool: string, fn: (t: import('ava').ExecutionContext) => Promise<void>): void {
  if (existsSync(tool)) test.serial(title, fn);
  else if (process.env.CI) test(title, (t) => t.fail(`${tool} missing (see .ci/run)`));
  else {
    console.log(`skipping "${title}": ${tool} not installed`);
    test.skip(title, () => {});
  }
}

for (const tdsver of ['7.4', '5.0']) {
  toolTest(`FreeTDS tsql TDSVER=${tdsver}: login, batches, error`, '/usr/bin/tsql', async (t) => {
    const r = await startTdsResponder({ password: PASSWORD, database: 'sales' });
    const dir = mkdtempSync(join(tmpdir(), 'dbtap-tsql-'));
    try {
      const script = 'select id, name from customers\ngo\nselect * from missing_table\ngo\nupdate t set n = 1\ngo\nexit\n';
      const res = await sh('tsql', ['-H', '127.0.0.1', '-p', String(r.port), '-U', 'freetds_user', '-P', PASSWORD, '-D', 'sales'], { TDSVER: tdsver, FREETDSCONF: join(dir, 'none.conf'), HOME: dir }, script);
      t.log(res.out.split('\n').slice(0, 3).join(' | '));
    } finally {
      await r.close();
    }
    t.true(r.conversations.length >= 1);
    const { events } = runTds(r.conversations[0]!);
    noPassword(t, events);
    const login = events[0]!;
    t.like(login, { kind: 'login', status: 'ok', user: 'freetds_user', dbProduct: tdsver === '5.0' ? 'sybase' : 'mssql' });
    t.is(login.clientProgram, 'TSQL');
    const sqls = events.filter((e) => e.kind === 'statement').map((e) => [e.sql?.trim(), e.status]);
    t.deepEqual(
      sqls.filter(([s]) => s === 'select id, name from customers' || s === 'select * from missing_table' || s === 'update t set n = 1'),
      [
        ['select id, name from customers', 'ok'],
        ['select * from missing_table', 'error'],
        ['update t set n = 1', 'ok'],
      ],
    );
    const sel = events.find((e) => e.sql?.trim() === 'select id, name from customers')!;
    t.is(sel.rowsReturned, 2);
    t.deepEqual(sel.rows, [['1', 'alice'], ['2', 'bob']]);
    const upd = events.find((e) => e.sql?.trim() === 'update t set n = 1')!;
    t.is(upd.affectedRows, 1);
    t.true(events.every((e) => e.user === 'freetds_user'));
  });
}

toolTest('pytds: login, execute with parameters, callproc', '/usr/lib/python3/dist-packages/pytds/__init__.py', async (t) => {
  const r = await startTdsResponder({ password: PASSWORD });
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-pytds-'));
  const py = join(dir, 'client.py');
  writeFileSync(
    py,
    [
      'import sys, pytds',
      `conn = pytds.connect(server='127.0.0.1', port=int(sys.argv[1]), database='inventory', user='pyuser', password='${PASSWORD}', appname='pytds-live', autocommit=True)`,
      'cur = conn.cursor()',
      "cur.execute('select id, name from items where id = %s and name = %s', (5, 'bolt'))",
      'cur.fetchall()',
      "cur.execute('update items set qty = 3')",
      'conn.close()',
    ].join('\n'),
  );
  try {
    const res = await sh('/usr/bin/python3', [py, String(r.port)], {});
    t.log(res.out.slice(0, 300));
  } finally {
    await r.close();
  }
  const { events } = runTds(r.conversations[0]!);
  noPassword(t, events);
  t.like(events[0], { kind: 'login', status: 'ok', user: 'pyuser', database: 'inventory', clientProgram: 'pytds-live' });
  const sel = events.find((e) => e.sql?.includes('from items where'))!;
  t.truthy(sel);
  t.is(sel.status, 'ok');
  t.is(sel.rowsReturned, 2);
  t.deepEqual(sel.params, [5, 'bolt']);
  t.truthy(events.find((e) => e.sql === 'update items set qty = 3' && e.status === 'ok'));
});

const JAVA = `import java.sql.*;
public class JtdsClient {
  public static void main(String[] a) throws Exception {
    Class.forName("net.sourceforge.jtds.jdbc.Driver");
    try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
      try (Statement s = c.createStatement()) { try (ResultSet rs = s.executeQuery("select id, name from customers")) { while (rs.next()) {} } }
      try (PreparedStatement p = c.prepareStatement("select id, name from orders where id = ? and note = ?")) {
        p.setInt(1, 77); p.setString(2, "rush");
        try (ResultSet rs = p.executeQuery()) { while (rs.next()) {} } catch (SQLException e) { System.out.println("first: " + e.getMessage()); }
      }
      try (Statement s = c.createStatement()) { s.executeUpdate("update t set n = 2"); }
      try (Statement s = c.createStatement()) { s.executeQuery("select * from missing_table"); } catch (SQLException e) { System.out.println("expected: " + e.getMessage()); }
    }
  }
}
`;

for (const mode of ['sqlserver', 'sybase'] as const) {
  toolTest(`jTDS 1.3 (${mode}): login, statement, prepared statement with parameters, error`, '/usr/share/java/jtds.jar', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'dbtap-jtds-'));
    writeFileSync(join(dir, 'JtdsClient.java'), JAVA);
    const javac = await sh('javac', ['-cp', '/usr/share/java/jtds.jar', '-d', dir, join(dir, 'JtdsClient.java')], {});
    t.is(javac.code, 0, javac.out);
    const r = await startTdsResponder({ password: PASSWORD });
    try {
      const res = await sh('java', ['-cp', `/usr/share/java/jtds.jar:${dir}`, 'JtdsClient', `jdbc:jtds:${mode}://127.0.0.1:${r.port}/shop;appName=jtds-live`, 'juser', PASSWORD], {});
      t.log(res.out.split('\n')[0]);
    } finally {
      await r.close();
    }
    const { events, stats } = runTds(r.conversations[0]!);
    noPassword(t, events);
    t.is(stats.malformed, 0);
    t.like(events[0], { kind: 'login', status: 'ok', user: 'juser', clientProgram: 'jtds-live', dbProduct: mode === 'sybase' ? 'sybase' : 'mssql' });
    t.regex(events[0]!.clientLibrary ?? '', /^jTDS/);
    t.truthy(events.find((e) => e.sql === 'select id, name from customers' && e.status === 'ok' && e.rowsReturned === 2));
    t.truthy(events.find((e) => e.sql === 'update t set n = 2' && e.status === 'ok'));
    t.truthy(events.find((e) => e.sql === 'select * from missing_table' && e.status === 'error'));
    const exec = events.find((e) => e.params !== undefined && e.params.length === 2);
    if (mode === 'sqlserver') {
      // sp_prepare, then sp_execute with the handle the server returned.
      t.like(exec, { sql: 'select id, name from orders where id =  @P0  and note =  @P1 ', statementId: '1', command: 'RPC' });
      t.deepEqual(exec!.params, [77, 'rush']);
    } else {
      // TDS 5.0 DYNAMIC prepare ("create proc jtds000001 as ...") then execute with PARAMFMT/PARAMS.
      t.like(exec, { sql: 'select id, name from orders where id = ? and note = ?', statementId: 'jtds000001', command: 'Dynamic' });
      t.deepEqual(exec!.params, [77, 'rush']);
      t.is(events.at(-1)!.command, 'LOGOUT');
    }
  });
}

// Recorded from jTDS (ssl=request) against the responder answering ENCRYPT_OFF with a real TLS 1.2
// handshake (test-support/tds-responder.ts `encryption: 'off'`); replayed from the fixture because the
// client's timing against the responder's TLS layer makes the live run racy.
test('jTDS ssl=request against ENCRYPT_OFF: the LOGIN7 inside TLS, everything after it decoded in clear', (t) => {
  const lines = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tds-jtds-login-tls.hex'), 'utf8').split('\n');
  const conv = unhex(lines.filter((l) => l !== '' && !l.startsWith('#')));
  const client = Buffer.concat(conv.filter(([d]) => d === 0).map(([, b]) => b));
  t.true(client.some((x, i) => x === 0x12 && client[i + 8] === 0x16 && client[i + 9] === 0x03), 'no TLS handshake in PRELOGIN packets');
  t.true(client.some((x, i) => x === 0x17 && client[i + 1] === 0x03 && client[i + 2] === 0x03 && client[i - 5] !== 0x12), 'no raw TLS record');
  const { events, stats } = runTds(conv);
  t.is(stats.malformed, 0);
  t.false(JSON.stringify(events).includes('jtds-tls-pw'));
  const login = events[0]!;
  t.like(login, { kind: 'login', status: 'ok', tls: false, command: 'LOGIN7', serverVersion: '16.0.1000' });
  t.like(login.attributes, { loginEncrypted: 'true', encryption: 'off', serverEncryption: 'off', serverTdsVersion: '7.1' });
  t.is(login.user, undefined); // it travelled encrypted
  t.like(events.find((e) => e.sql === 'select id, name from customers'), { status: 'ok', rowsReturned: 2, tls: false });
  const exec = events.find((e) => e.attributes?.procedure === 'sp_execute')!;
  t.deepEqual(exec.params, [77, 'rush']);
  t.truthy(events.find((e) => e.sql === 'select * from missing_table' && e.status === 'error' && e.errorCode === 208));
});

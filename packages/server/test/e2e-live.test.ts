// The product end to end, as deployed: the dbtap-agent daemon captures `lo`
// while real clients use the local MariaDB and PostgreSQL, the dbtap-server
// daemon stores what it decodes, and the HTTP API must answer with exactly
// the statements the databases' own logs recorded for those connections,
// with the right users, programs and results; a DROP TABLE, a DELETE
// without WHERE and a burst of failed logins raise alerts.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { AuditEvent } from '@dbtap/core';
import { repoRoot } from '../../../test-support/corpus.js';
import { freePort } from '../../../test-support/net.js';
import { startProcess, waitFor, type Proc } from '../../../test-support/process.js';
import { canCapture } from '../../../test-support/live-capture.js';
import { withDbLogLock } from '../../../test-support/db-lock.js';
import { enableStatementLog, parseLog, pgAvailable, pgLog, type StatementLog } from '../../protocols/test/helpers/postgres-log.js';

const TOKEN = 'e2e-agent-token-7f3a-0123';
const API_TOKEN = 'e2e-auditor-token-0123456789';

async function mariaAvailable(): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test', connectTimeout: 2000 });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

const notReady = !canCapture()
  ? 'needs capture rights on lo'
  : !(await mariaAvailable())
    ? 'needs MariaDB on 127.0.0.1:3306'
    : !(await pgAvailable())
      ? 'needs PostgreSQL on 127.0.0.1:5432'
      : ((w) => ('reason' in w ? w.reason : undefined))(await pgLog());
const ready = notReady === undefined;
if (!ready) {
  if (process.env.CI) throw new Error(`the end-to-end test cannot run: ${notReady}`);
  console.log(`skipping the server end-to-end test: ${notReady}`);
}
const e2e = ready ? test.serial : test.skip;

const start = (args: string[]): Proc => startProcess(process.execPath, ['--import=tsx', ...args], repoRoot);

const localPort = (c: unknown): number => (c as { connection: { stream: { localPort: number } } }).connection.stream.localPort;

e2e('agent -> server -> API: the statements of the databases own logs, with users, programs, results and alerts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-srv-e2e-'));
  const procs: Proc[] = [];
  t.teardown(() => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const agentPort = await freePort();
  const apiPort = await freePort();
  writeFileSync(
    join(dir, 'server.yaml'),
    [
      `dataDir: ${dir}/data`,
      'agents:',
      `  listen: [{ host: 127.0.0.1, port: ${agentPort} }]`,
      `  token: ${TOKEN}`,
      'api:',
      `  host: 127.0.0.1`,
      `  port: ${apiPort}`,
      '  users:',
      `    - { name: alice, role: auditor, token: ${API_TOKEN} }`,
      'objects:',
      '  - { id: maria, name: MariaDB, dbType: mysql, addresses: [127.0.0.1], ports: [3306] }',
      '  - { id: pg, name: PostgreSQL, dbType: postgres, addresses: [127.0.0.1], ports: [5432] }',
      '',
    ].join('\n'),
  );
  const server = start([join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--config', join(dir, 'server.yaml')]);
  procs.push(server);
  await waitFor(() => server.out().includes('API on'), 'server started', 30_000, 100);
  writeFileSync(
    join(dir, 'agent.conf'),
    `receive_device=lo\npacket_filter=tcp port 3306 or tcp port 5432\ndst_ip=127.0.0.1\ndst_port=${agentPort}\ntoken=${TOKEN}\nagent_id=db-host-1\nstatus_socket=\nlog_file=${join(dir, 'agent.log')}\n`,
  );
  const api = async (path: string): Promise<any> => {
    const r = await fetch(`http://127.0.0.1:${apiPort}${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };

  let fromIso = '';
  // the agent captures only while this test holds the database-log lock: other live tests' heavy traffic stays out
  const truth = await withDbLogLock(async () => {
    const agent = start([join(repoRoot, 'packages/agent/src/cli.ts'), '--config', join(dir, 'agent.conf')]);
    procs.push(agent);
    await waitFor(() => agent.out().includes('capture started') && agent.out().includes('connected to'), 'agent capturing and connected', 30_000, 100);
    fromIso = new Date(Date.now() - 1000).toISOString();
    try {
      return await workload();
    } finally {
      // the agent flushes on SIGTERM; the server stores what it decodes
      agent.child.kill('SIGTERM');
      t.is(await agent.exited, 0, agent.out());
    }
  });

  async function workload() {
    // ---- MariaDB, with its general log on -------------------------------------------------
    const root = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test' });
    const [[saved]] = (await root.query('SELECT @@global.general_log AS g, @@global.log_output AS o')) as unknown as [[{ g: number; o: string }]];
    let statementLog: StatementLog | undefined;
    try {
      await root.query("SET GLOBAL log_output = 'TABLE', GLOBAL general_log = 1");
      statementLog = await enableStatementLog();
      const my = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test', connectAttributes: { program_name: 'dbtap-e2e-app' } });
      const myPort = localPort(my);
      const myThread = my.threadId;
      await my.query('CREATE TABLE IF NOT EXISTS dbtap_srv_e2e (id INT PRIMARY KEY, name VARCHAR(40))');
      await my.query("INSERT INTO dbtap_srv_e2e VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')");
      await my.execute('SELECT name FROM dbtap_srv_e2e WHERE id = ?', [2]);
      await my.query("UPDATE dbtap_srv_e2e SET name = 'bo' WHERE id = 2");
      await my.query('SELECT * FROM dbtap_srv_e2e_missing').catch(() => undefined);
      await my.query('DELETE FROM dbtap_srv_e2e');
      await my.query('DROP TABLE dbtap_srv_e2e');
      await my.end();
      // a burst of failed logins from one client
      for (let i = 0; i < 6; i++) {
        await mysql.createConnection({ host: '127.0.0.1', user: 'dbtap_e2e_nobody', password: `guess-${i}`, database: 'test' }).then(
          (c) => c.end(),
          () => undefined,
        );
      }
      // ---- PostgreSQL, with its statement log on ------------------------------------------
      const pc = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', application_name: 'dbtap-e2e-pg' });
      await pc.connect();
      const pgPort = localPort(pc);
      await pc.query('CREATE TEMP TABLE e2e_t (id int, v text)');
      await pc.query("INSERT INTO e2e_t VALUES (1, 'a'), (2, 'b')");
      await pc.query({ name: 'by_id', text: 'SELECT v FROM e2e_t WHERE id = $1', values: [2] });
      await pc.query('SELECT * FROM e2e_missing').catch(() => undefined);
      await pc.end();
      await new Promise((r) => setTimeout(r, 300));
      const general = (await root.query(
        "SELECT thread_id, command_type, CONVERT(argument USING utf8mb4) AS argument FROM mysql.general_log WHERE thread_id = ? AND command_type IN ('Query', 'Prepare', 'Execute') ORDER BY event_time, thread_id",
        [myThread],
      )) as unknown as [Array<{ thread_id: number; command_type: string; argument: string }>];
      const failed = (await root.query(
        "SELECT COUNT(*) AS n FROM mysql.general_log WHERE command_type = 'Connect' AND CONVERT(argument USING utf8mb4) LIKE 'Access denied for user \\'dbtap_e2e_nobody\\'%' AND event_time >= NOW() - INTERVAL 5 MINUTE",
      )) as unknown as [Array<{ n: number }>];
      const pgEntries = parseLog(statementLog.read()).filter((e) => e.port === pgPort && e.level === 'LOG');
      return { myPort, myThread, general: general[0], failedLogins: Number(failed[0][0]!.n), pgPort, pgEntries };
    } finally {
      try {
        await root.query('SET GLOBAL general_log = ?, GLOBAL log_output = ?', [saved.g, saved.o]);
        await root.end();
      } finally {
        await statementLog?.restore();
      }
    }
  }

  const my = (): Promise<{ records: AuditEvent[] }> => api(`/api/records?from=${fromIso}&clientIp=127.0.0.1&order=asc&limit=10000`);
  await waitFor(async () => (await my()).records.some((e) => e.sql === 'DROP TABLE dbtap_srv_e2e') && (await my()).records.some((e) => e.clientProgram === 'dbtap-e2e-pg'), 'records stored', 60_000, 100);
  const records = (await my()).records;

  // ---- MariaDB: every Query/Execute of the general log, in order, same text ----------------
  const myRecs = records.filter((e) => e.client.port === truth.myPort && e.kind === 'statement');
  const logged = truth.general.map((g) => g.argument);
  t.true(logged.length >= 7, `general log has ${logged.length} entries`);
  const decoded = myRecs.map((e) => (e.params !== undefined && e.params.length > 0 ? e.sql!.replace('?', String(e.params[0])) : e.sql));
  t.deepEqual(decoded, logged);
  for (const e of myRecs) {
    t.is(e.user, 'root');
    t.is(e.database, 'test');
    t.is(e.sessionId, String(truth.myThread));
    t.is(e.clientProgram, 'dbtap-e2e-app');
    t.is(e.auditObjectId, 'maria');
  }
  const missing = myRecs.find((e) => e.sql === 'SELECT * FROM dbtap_srv_e2e_missing')!;
  t.is(missing.status, 'error');
  t.is(missing.errorCode, 1146);
  t.is(myRecs.find((e) => e.sql?.startsWith('INSERT'))!.affectedRows, 3);
  const failedLogins = records.filter((e) => e.kind === 'login' && e.status === 'error' && e.user === 'dbtap_e2e_nobody');
  t.is(failedLogins.length, 6);
  t.is(truth.failedLogins >= 6, true, 'MariaDB logged the failed logins');

  // ---- PostgreSQL: every statement the server logged for the connection ------------------
  const pgRecs = records.filter((e) => e.client.port === truth.pgPort && e.kind === 'statement');
  const pgLogged = truth.pgEntries.map((e) => /^(?:statement|execute [^:]*): ([\s\S]*)$/.exec(e.message)?.[1]).filter((x): x is string => x !== undefined);
  t.deepEqual(pgRecs.map((e) => e.sql), pgLogged);
  for (const e of pgRecs) {
    t.is(e.user, 'postgres');
    t.is(e.database, 'test');
    t.is(e.clientProgram, 'dbtap-e2e-pg');
    t.is(e.auditObjectId, 'pg');
  }
  t.deepEqual(pgRecs.find((e) => e.sql === 'SELECT v FROM e2e_t WHERE id = $1')!.params, ['2']);
  t.is(pgRecs.find((e) => e.sql === 'SELECT * FROM e2e_missing')!.sqlState, '42P01');

  // ---- alerts from the built-in library ---------------------------------------------------
  const alerts = (await api(`/api/alerts?from=${fromIso}&limit=10000`)) as { alerts: Array<{ record: AuditEvent }> };
  const rules = new Set(alerts.alerts.map((a) => a.record.alert?.ruleId));
  t.true(rules.has('dangerous.drop-or-truncate'), [...rules].join(', '));
  t.true(rules.has('dangerous.write-without-where'));
  t.true(rules.has('bruteforce.per-client'));

  server.child.kill('SIGTERM');
  t.is(await server.exited, 0, server.out());
});

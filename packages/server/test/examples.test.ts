// The programs under examples/ run as a user runs them (node --import=tsx
// from the repository root), on the small captures of examples/captures.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { formatTimestamp, openCapture } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { auditCaptureFile, loadRuleSelection, rulesProcessor } from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';
import { freePort } from '../../../test-support/net.js';
import { waitFor } from '../../../test-support/process.js';

const capture = 'examples/captures/mariadb-session.pcap';

// The live demo needs the local MariaDB; without it the test is skipped with the reason (failed under CI).
const mariadbDown = await mysql
  .createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: 'test' })
  .then((c) => c.end().then(() => undefined))
  .catch((err: unknown) => `MariaDB on 127.0.0.1:3306 is out of reach: ${(err as Error).message}`);
if (mariadbDown !== undefined) console.log(`skipping "sql-guard --live": ${mariadbDown}`);
const liveTest = mariadbDown === undefined ? test : process.env.CI ? (title: string) => test(title, (t) => t.fail(mariadbDown)) : test.skip;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs an example to completion, optionally with text on stdin. */
function run(example: string, args: string[], stdin?: string): Promise<Run> {
  const child = spawn(process.execPath, ['--import=tsx', `examples/${example}`, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

/** Parses `_bulk` NDJSON into [action, document] pairs, failing on anything else. */
function bulkPairs(t: ExecutionContext, text: string): Array<[Record<string, any>, Record<string, any>]> {
  t.true(text.endsWith('\n'), 'a _bulk body ends with a newline');
  const lines = text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  t.is(lines.length % 2, 0, 'action and document lines come in pairs');
  const pairs: Array<[Record<string, any>, Record<string, any>]> = [];
  for (let i = 0; i < lines.length; i += 2) pairs.push([lines[i]!, lines[i + 1]!]);
  return pairs;
}

test('elastic-bulk: one index action and one ECS document per record and alert', async (t) => {
  const [r, expected] = await Promise.all([
    run('elastic-bulk.ts', [capture]),
    (async () => {
      const { process: judge } = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
      return (await auditCaptureFile(join(repoRoot, capture))).events.flatMap((e) => judge(e));
    })(),
  ]);
  t.is(r.code, 0, r.err);
  t.regex(r.err, /17 documents \(14 records, 3 alerts\) from 62 frames, 4 flows/);
  const pairs = bulkPairs(t, r.out);
  t.is(pairs.length, expected.length);
  for (const [[action, doc], e] of pairs.map((p, i) => [p, expected[i]!] as const)) {
    t.deepEqual(action, { index: { _index: 'dbtap-audit', _id: e.id } });
    t.is(doc.event.id, e.id);
    t.is(doc['@timestamp'], formatTimestamp(e.ts));
    t.is(doc.event.kind, e.kind === 'alert' ? 'alert' : 'event');
    t.deepEqual(doc.source, { ip: e.client.ip, port: e.client.port });
    t.deepEqual(doc.destination, { ip: '127.0.0.1', port: 3306 });
    t.is(doc.network.protocol, 'mysql');
    t.is(doc.user.name, e.user);
    t.is(doc.db?.statement, e.sql);
    t.is(doc.dbtap.risk, e.risk);
    if (e.durationUs !== undefined) t.is(doc.event.duration, e.durationUs * 1000);
  }
  const drops = pairs.map(([, d]) => d).filter((d) => d.db?.statement === 'DROP TABLE customers');
  t.is(drops.length, 2, 'the statement and its alert');
  const [record, alert] = [drops.find((d) => d.event.kind === 'event')!, drops.find((d) => d.event.kind === 'alert')!];
  t.is(record.dbtap.risk, 'high');
  t.true(record.rule.id.includes('dangerous.drop-or-truncate'));
  t.is(record.event.action, 'DROP TABLE');
  t.deepEqual(record.event.type, ['change']);
  t.is(alert.dbtap.risk, 'high');
  t.deepEqual(alert.rule.id, ['dangerous.drop-or-truncate']);
  t.is(alert.event.severity, 8);
  t.is(alert.db.operation, 'DROP TABLE');
  const failedLogins = pairs.map(([, d]) => d).filter((d) => d.event.category.includes('authentication') && d.event.outcome === 'failure');
  t.deepEqual(failedLogins.map((d) => d.user.name), ['intruder', 'intruder']);
  t.true(failedLogins.every((d) => d.error.code.startsWith('1045') && d.event.type.includes('error')));
});

test('elastic-bulk: --index, --op create and --out; bad input exits with a code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-examples-'));
  try {
    const file = join(dir, 'bulk.ndjson');
    const [r, missing, usage, badOp] = await Promise.all([
      run('elastic-bulk.ts', [capture, '--index', 'db-audit-test', '--op', 'create', '--out', file]),
      run('elastic-bulk.ts', ['/nonexistent/capture.pcap']),
      run('elastic-bulk.ts', []),
      run('elastic-bulk.ts', [capture, '--op', 'upsert']),
    ]);
    t.is(r.code, 0, r.err);
    t.is(r.out, '');
    const pairs = bulkPairs(t, readFileSync(file, 'utf8'));
    t.is(pairs.length, 17);
    t.true(pairs.every(([a, d]) => a.create?._index === 'db-audit-test' && a.create._id === d.event.id));
    t.is(missing.code, 1);
    t.regex(missing.err, /DBTAP_E_IO/);
    t.is(usage.code, 2);
    t.is(badOp.code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sql-guard offline: refuses what the policies rate high, allows the rest', async (t) => {
  const safe = ['SELECT id, name FROM customers WHERE id = ?', "UPDATE customers SET name = 'Robert' WHERE id = 2", "INSERT INTO customers (name) VALUES ('Carol')", 'ALTER TABLE customers ADD COLUMN note TEXT'];
  const dangerous: Record<string, string> = {
    'DELETE FROM customers': 'dangerous.write-without-where',
    'UPDATE customers SET card = NULL': 'dangerous.write-without-where',
    'DROP TABLE customers': 'dangerous.drop-or-truncate',
    "SELECT id FROM customers WHERE name = '' OR '1'='1'": 'sqli.detected',
    "GRANT ALL ON *.* TO 'mallory'@'%'": 'privilege.grant-revoke',
  };
  const [mixed, allSafe, stdin, medium] = await Promise.all([
    run('sql-guard.ts', [...safe, ...Object.keys(dangerous)]),
    run('sql-guard.ts', safe),
    run('sql-guard.ts', [], `${safe[0]}\n\nTRUNCATE TABLE customers\n`),
    run('sql-guard.ts', ['--min-risk', 'medium', 'ALTER TABLE customers ADD COLUMN note TEXT']),
  ]);
  t.is(mixed.code, 1, mixed.err);
  const verdicts = mixed.out.trim().split('\n').map((l) => JSON.parse(l) as { sql: string; allowed: boolean; risk: string; ruleIds: string[]; reasons: string[] });
  t.deepEqual(verdicts.map((v) => v.sql), [...safe, ...Object.keys(dangerous)]);
  for (const v of verdicts) {
    const rule = dangerous[v.sql];
    if (rule === undefined) t.true(v.allowed, v.sql);
    else {
      t.false(v.allowed, v.sql);
      t.is(v.risk, 'high');
      t.true(v.ruleIds.includes(rule), `${v.sql}: ${v.ruleIds.join(',')}`);
      t.true(v.reasons.length > 0 && v.reasons.every((x) => x.length > 0));
    }
  }
  t.regex(verdicts.find((v) => v.sql.includes("'1'='1'"))!.reasons[0]!, /tautology/);
  t.is(allSafe.code, 0, allSafe.err);
  t.is(stdin.code, 1, stdin.err);
  t.deepEqual(stdin.out.trim().split('\n').map((l) => (JSON.parse(l) as { allowed: boolean }).allowed), [true, false]);
  t.is(medium.code, 1);
  t.false((JSON.parse(medium.out) as { allowed: boolean }).allowed);
  const bad = await run('sql-guard.ts', ['--min-risk', 'severe', 'SELECT 1']);
  t.is(bad.code, 2);
  t.regex(bad.err, /DBTAP_E_INVALID_ARGUMENT/);
});

liveTest('sql-guard --live: refused statements never reach MariaDB', async (t) => {
  const r = await run('sql-guard.ts', ['--live']);
  t.is(r.code, 1, r.err);
  t.deepEqual(r.out.split('\n').filter((l) => l.startsWith('refused: ')), [
    "refused: SELECT name FROM guard_demo WHERE name = '' OR '1'='1'",
    'refused: DELETE FROM guard_demo',
    'refused: DROP TABLE guard_demo',
  ]);
  // the two rows are still there, the allowed UPDATE went through
  t.regex(r.out, /\[\{"id":1,"name":"Alice"\},\{"id":2,"name":"Robert"\}\]/);
  t.regex(r.out, /execute: rows left \[\{"n":2\}\]/);
  t.is(r.err.split('\n').filter((l) => l.startsWith('sql-guard: refused (high)')).length, 3);
});

test('siem-forward: agent frames in, one CEF line per alert out, stops on SIGINT', async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import=tsx', 'examples/siem-forward.ts', '--listen', `127.0.0.1:${port}`, '--token', 'example-token'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (c) => ((out += c), waiters.forEach((w) => w())));
  child.stderr.on('data', (c) => ((err += c), waiters.forEach((w) => w())));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Resolves once `pred` holds for the output so far; rejects when the process
  // ends first. No clock: a loaded machine is slow, not wrong (the test
  // runner's timeout bounds a hang).
  const until = (pred: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      const check = () => {
        if (pred()) done();
      };
      waiters.add(check);
      void exited.then(() => done(new Error(`exited before ${what}; stderr: ${err}`)));
      check();
    });
  try {
    await until(() => err.includes(`listening on 127.0.0.1:${port}`), 'listener');
    // an agent with the wrong token is refused and delivers nothing
    const intruder = new TransportClient({ host: '127.0.0.1', port, token: 'guessed', agentId: 'intruder', reconnectMinMs: 5000 }).start();
    await until(() => /refused 127\.0\.0\.1:\d+: DBTAP_E_/.test(err), 'refusal of a wrong token');
    await intruder.stop(0);
    const client = new TransportClient({ host: '127.0.0.1', port, token: 'example-token', agentId: 'db-host-1' }).start();
    const reader = openCapture(join(repoRoot, capture));
    for (let f = reader.next(); f !== undefined; f = reader.next()) client.send(f);
    reader.close();
    await waitFor(() => client.stats().ackedPackets >= 62, 'acknowledgement of all 62 frames', Infinity);
    t.is((await client.stop()).ackedPackets, 62);
    await until(() => out.includes('|dangerous.drop-or-truncate|'), 'DROP alert');
    child.kill('SIGINT');
    t.is(await exited, 0, err);
  } finally {
    child.kill('SIGKILL');
  }
  const lines = out.trim().split('\n');
  t.deepEqual(lines.map((l) => l.split('|')[4]), ['sqli.detected', 'dangerous.write-without-where', 'dangerous.drop-or-truncate']);
  const drop = lines[2]!;
  t.true(drop.startsWith('CEF:0|dbtap|dbtap|0.1.0|dangerous.drop-or-truncate|Object dropped or table truncated|8|'), drop);
  for (const field of ['src=127.0.0.1', 'dst=127.0.0.1', 'dpt=3306', 'duser=root', 'act=DROP TABLE', 'cs1=DROP TABLE customers', 'cs2=test']) t.true(drop.includes(` ${field} `), field);
  t.regex(drop, / cs6=db-host-1\.[0-9a-f]{8}\/127\.0\.0\.1:60552>127\.0\.0\.1:3306#2:4:alert:dangerous\.drop-or-truncate /);
  t.regex(err, /agent db-host-1 connected/);
  t.notRegex(err, /agent intruder connected/);
  t.regex(err, /SIGINT: stopped after 1 batches, 62 frames, 3 CEF lines/);
});

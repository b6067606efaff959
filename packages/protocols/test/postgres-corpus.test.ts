// Real captures through the whole pipeline (packet decoding, reassembly,
// detection, the PostgreSQL decoder).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openCapture, type AuditEvent } from '@dbtap/core';
import { corpusDir, corpusFiles, corpusTest, repoRoot, tshark, tsharkTest } from '../../../test-support/corpus.js';
import { auditPgCapture } from './helpers/postgres-pcap.js';

// Server ports used by corpus captures besides 5432.
const ports = [5432, 15432, 60102, 8000];
const pgFile = (name: string): string => join(corpusDir, 'postgresql', name);

/** The stable parts of a record (no flow ids or times). */
function shape(e: AuditEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: e.kind, status: e.status };
  for (const k of ['command', 'sql', 'user', 'database', 'clientProgram', 'sqlState', 'affectedRows', 'rowsReturned', 'tls'] as const) {
    if (e[k] !== undefined) out[k] = e[k];
  }
  return out;
}

test('golden: examples/captures/postgres-session.pcap (psql against the local server)', async (t) => {
  const { events, stats } = await auditPgCapture(join(repoRoot, 'examples/captures/postgres-session.pcap'), { session: { maxRows: 5 } });
  // tshark -r postgres-session.pcap -d tcp.port==5432,pgsql: SSLRequest 'N', Startup, then
  // Q CREATE TABLE / INSERT / SELECT (1 row) / SELECT missing_table (42P01) / DELETE / DROP, X;
  // a second connection to database nosuchdb fails with FATAL 3D000 after AuthenticationOk.
  t.deepEqual(events.map(shape), [
    { kind: 'login', status: 'ok', command: 'StartupMessage', user: 'postgres', database: 'test', clientProgram: 'psql', tls: false },
    { kind: 'statement', status: 'ok', command: 'Query', sql: 'CREATE TABLE IF NOT EXISTS orders (id serial primary key, customer text, amount numeric)', user: 'postgres', database: 'test', clientProgram: 'psql', tls: false },
    { kind: 'statement', status: 'ok', command: 'Query', sql: "INSERT INTO orders (customer, amount) VALUES ('alice', 10.5), ('bob', 99)", user: 'postgres', database: 'test', clientProgram: 'psql', affectedRows: 2, tls: false },
    { kind: 'statement', status: 'ok', command: 'Query', sql: 'SELECT * FROM orders WHERE amount > 50', user: 'postgres', database: 'test', clientProgram: 'psql', rowsReturned: 1, tls: false },
    { kind: 'statement', status: 'error', command: 'Query', sql: 'SELECT * FROM missing_table', user: 'postgres', database: 'test', clientProgram: 'psql', sqlState: '42P01', tls: false },
    { kind: 'statement', status: 'ok', command: 'Query', sql: 'DELETE FROM orders', user: 'postgres', database: 'test', clientProgram: 'psql', affectedRows: 2, tls: false },
    { kind: 'statement', status: 'ok', command: 'Query', sql: 'DROP TABLE orders', user: 'postgres', database: 'test', clientProgram: 'psql', tls: false },
    { kind: 'logout', status: 'ok', command: 'Terminate', user: 'postgres', database: 'test', clientProgram: 'psql', tls: false },
    { kind: 'login', status: 'error', command: 'StartupMessage', user: 'postgres', database: 'nosuchdb', clientProgram: 'report-tool', sqlState: '3D000', tls: false },
  ]);
  const select = events[3]!;
  t.deepEqual(select.columns, ['id', 'customer', 'amount']);
  t.deepEqual(select.rows, [['2', 'bob', '99']]);
  t.is(events[0]!.serverVersion, '15.20 (Debian 15.20-0+deb12u1)');
  t.is(events[0]!.sessionId, '13572');
  t.is(events[0]!.client.port, 56230);
  t.is(events[8]!.client.port, 56232);
  t.is(events[4]!.message, 'relation "missing_table" does not exist');
  t.true(events.every((e) => e.dbType === 'postgres' && e.midSession === undefined));
  t.is(stats.sessions.malformed, 0);
  t.is(stats.sessions.unmatchedRequests + stats.sessions.unmatchedResponses, 0);
});

// Captures that are deliberately broken (fuzzing regressions of other projects).
const brokenOnPurpose = new Set(['zeek_bad-backend-message-1.pcap', 'zeek_bad-startup-message-1.pcap', 'suricata_pgsql-events.pcap']);

corpusTest('every PostgreSQL corpus capture decodes without an exception', async (t) => {
  const files = corpusFiles('postgresql');
  t.true(files.length > 0);
  for (const f of files) {
    const r = await auditPgCapture(f, { ports, session: { maxRows: 3 } });
    t.is(r.stats.undetectedFlows, 0, basename(f));
    if (!brokenOnPurpose.has(basename(f))) t.is(r.stats.sessions.malformed, 0, `${basename(f)}: malformed messages`);
    for (const e of r.events) t.is(e.dbType, 'postgres');
  }
});

/** tshark prints each non-ASCII byte of a query as U+FFFD; do the same to ours. */
function asTshark(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (b < 0x80 ? String.fromCharCode(b) : '\ufffd')).join('');
}

tsharkTest('every query tshark decodes (pgsql.query) is in a record, and nothing else', async (t) => {
  // One tshark run over all files concatenated (tshark's start-up dominates otherwise);
  // frame numbers map back to files through each file's frame count. Sequence analysis
  // is off because some captures are slices of the same connection.
  const all = corpusFiles('postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-pg-'));
  const merged = join(dir, 'all.pcapng');
  const pgArgs = [...ports.flatMap((p) => ['-d', `tcp.port==${p},pgsql`]), '-Y', 'pgsql.query', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\u0001', '-e', 'frame.number', '-e', 'pgsql.query'];
  const run = (file: string): string => {
    try {
      return tshark(['-n', '-o', 'tcp.analyze_sequence_numbers:FALSE', '-r', file, ...pgArgs]);
    } catch (err) {
      // tshark exits non-zero on captures cut mid-packet but still prints what it decoded.
      return String((err as { stdout?: unknown }).stdout ?? '');
    }
  };
  const unescape = (q: string): string => q.replace(/\\([ntr\\])/g, (_m, c: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\' })[c]!);
  /** Queries per frame number from tshark output. */
  const parseOut = (out: string): [number, string[]][] =>
    out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const tab = l.indexOf('\t');
        return [Number(l.slice(0, tab)), l.slice(tab + 1).split('\u0001').map(unescape)];
      });
  try {
    // Files mergecap refuses (cut short mid-packet) get a tshark run of their own.
    const files: string[] = [];
    const alone: string[] = [];
    for (const f of all) {
      try {
        execFileSync('mergecap', ['-F', 'pcapng', '-w', join(dir, 'probe.pcapng'), f], { stdio: 'ignore' });
        files.push(f);
      } catch {
        alone.push(f);
      }
    }
    execFileSync('mergecap', ['-a', '-F', 'pcapng', '-w', merged, ...files], { stdio: 'ignore' });
    const ends: number[] = [];
    let total = 0;
    for (const f of files) {
      const reader = openCapture(f);
      for (const _frame of reader) total++;
      ends.push(total);
    }
    const theirs = all.map(() => new Set<string>());
    for (const [frame, qs] of parseOut(run(merged))) {
      const idx = all.indexOf(files[ends.findIndex((e) => frame <= e)]!);
      for (const q of qs) theirs[idx]!.add(q);
    }
    for (const f of alone) for (const [, qs] of parseOut(run(f))) for (const q of qs) theirs[all.indexOf(f)]!.add(q);
    t.true(theirs.some((s) => s.size > 0), 'tshark decoded some queries');
    for (const [i, f] of all.entries()) {
      const r = await auditPgCapture(f, { ports });
      const mine = new Set(r.events.flatMap((e) => (e.sql === undefined ? [] : [asTshark(e.sql)])));
      t.deepEqual([...theirs[i]!].filter((q) => !mine.has(q)), [], `${basename(f)}: queries tshark saw that dbtap did not record`);
      t.deepEqual([...mine].filter((q) => !theirs[i]!.has(q)), [], `${basename(f)}: recorded queries tshark did not see`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

corpusTest('corpus: COPY in/out, cancel, 5000-row result, login failures, TLS upgrade', async (t) => {
  const copyIn = (await auditPgCapture(pgFile('suricata_pgsql-copy-data-in.pcap'))).events.find((e) => e.sql === 'COPY tmp FROM STDIN');
  t.like(copyIn, { status: 'ok', affectedRows: 5 });
  t.is(copyIn?.attributes?.copy, 'in');
  t.true(Number(copyIn?.attributes?.copyBytes) > 0);

  const copyOut = (await auditPgCapture(pgFile('suricata_pgsql-copy-data-out.pcap'), { session: { maxRows: 2 } })).events.find((e) => e.sql?.startsWith('COPY (SELECT'));
  t.like(copyOut, { status: 'ok', rowsReturned: 5 });
  t.is(copyOut?.rows?.length, 2);

  const cancel = (await auditPgCapture(pgFile('suricata_pgsql-cancel-request.pcap'))).events;
  const req = cancel.find((e) => e.command === 'CancelRequest');
  const login = cancel.find((e) => e.kind === 'login');
  t.truthy(req);
  t.is(req?.statementId, login?.sessionId, 'the cancel names the backend of the other connection');
  t.like(cancel.find((e) => e.sql === 'select pg_sleep(9)'), { status: 'error', sqlState: '57014' });

  const big = (await auditPgCapture(pgFile('suricata_pgsql-5000-query-results.pcap'))).events.find((e) => e.kind === 'statement');
  t.like(big, { rowsReturned: 5000, status: 'ok' });

  t.like((await auditPgCapture(pgFile('zeek_psql-login-wrong.pcap'))).events[0], { kind: 'login', status: 'error', sqlState: '28P01', user: 'zeek' });
  t.like((await auditPgCapture(pgFile('zeek_psql-login-no-role.pcap'))).events[0], { kind: 'login', status: 'error', sqlState: '28000' });

  const tls = (await auditPgCapture(pgFile('zeek_psql-aws-ssl-require.pcap'))).events;
  // The login attempt, then the kit's connection record of the encrypted rest.
  t.deepEqual(tls.map((e) => e.kind), ['login', 'connection']);
  t.like(tls[0], { kind: 'login', tls: true });
  t.like(tls[1], { tls: true, attributes: { undecoded: 'ssl' } });

  const gss = (await auditPgCapture(pgFile('ndpi_pgsql.pcap'))).events.filter((e) => e.attributes?.encryption === 'gss');
  t.is(gss.length, 2);
});

corpusTest('corpus: extended query parameters and mid-session pickup', async (t) => {
  const ext = (await auditPgCapture(pgFile('packetbeat_pgsql_extended_query.pcap'), { session: { maxRows: 5 } })).events;
  const sel = ext.find((e) => e.sql === 'SELECT * from test where id = $1');
  t.like(sel, { command: 'Execute', rowsReturned: 1, status: 'ok' });
  t.deepEqual(sel?.params, [1]);
  // A capture that starts after the login: statements are flagged midSession, no login record.
  const mid = (await auditPgCapture(pgFile('deepflow_pgsql-all.pcap'), { ports })).events;
  t.true(mid.length > 0);
  t.true(mid.every((e) => e.midSession === true));
  t.false(mid.some((e) => e.kind === 'login'));
});

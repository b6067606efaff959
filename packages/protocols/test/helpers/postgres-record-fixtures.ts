// Records the real-traffic fixtures of postgres-fixtures.ts: short sessions
// of real clients (psql, pgbench, node pg) against the local PostgreSQL,
// captured on lo and cut into per-direction chunks as TCP delivered them.
// Run as root, with PostgreSQL on 127.0.0.1:5432 (trust authentication):
//
//   npx tsx packages/protocols/test/helpers/postgres-record-fixtures.ts
//
// It rewrites packages/protocols/test/helpers/postgres-fixtures.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePacket, Direction, FlowTable } from '@dbtap/core';
import pg from 'pg';
import { startLiveCapture } from '../../../../test-support/live-capture.js';
import { extendedQueries, pgConn } from './postgres-log.js';

/** Runs a client to its end, ignoring its exit status (failed logins are part of the workload). */
function client(cmd: string, args: string[], env: Record<string, string>, input?: string): Promise<void> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, PGCONNECT_TIMEOUT: '5', ...env } }, () => resolve());
    child.stdin?.end(input ?? '');
  });
}

const psql = (app: string, args: string[], input?: string, ssl = 'disable'): Promise<void> =>
  client('psql', ['-X', '-h', '127.0.0.1', '-v', 'ON_ERROR_STOP=0', ...args], { PGAPPNAME: app, PGSSLMODE: ssl }, input);

interface Session {
  name: string;
  /** application_name the session's client sends (other connections in the capture are ignored). */
  app: string;
  doc: string;
  run: (dir: string) => Promise<void>;
}

const sessions: Session[] = [
  {
    name: 'simpleQuerySession',
    app: 'fixture-simple',
    doc: '`psql -c`: SSLRequest refused with N, trust login, a simple Query with rows, Terminate',
    run: () => psql('fixture-simple', ['-U', 'postgres', '-d', 'test', '-c', "SELECT 1 AS one, 'two' AS two"], undefined, 'prefer'),
  },
  {
    name: 'errorSession',
    app: 'fixture-errors',
    doc: '`psql`: several statements in one Query, an SQL error (42P01), a division by zero in a multi-statement Query, a notice, an empty query',
    run: () =>
      psql('fixture-errors', ['-U', 'postgres', '-d', 'test'], "SELECT * FROM no_such_table_fixture;\nSELECT 1; SELECT 1/0;\nDROP TABLE IF EXISTS no_such_table_fixture;\n;\nSELECT 'last';\n"),
  },
  {
    name: 'copySession',
    app: 'fixture-copy',
    doc: '`psql`: COPY FROM STDIN of three rows, COPY TO STDOUT, a count',
    run: () => psql('fixture-copy', ['-U', 'postgres', '-d', 'test'], 'CREATE TEMP TABLE c (a int, b text);\nCOPY c FROM STDIN;\n1\tx\n2\ty\n3\tz\n\\.\nCOPY c TO STDOUT;\nSELECT count(*) FROM c;\n'),
  },
  {
    name: 'extendedSession',
    app: 'fixture-pg',
    doc: 'node pg: unnamed and named extended queries with text parameters, a NULL parameter, an error at Execute and one at Parse, a last simple query',
    run: async () => {
      const c = new pg.Client({ ...pgConn, application_name: 'fixture-pg' });
      await c.connect();
      await extendedQueries(c);
      await c.query("SELECT 'last'");
      await c.end();
    },
  },
  {
    name: 'pipelineSession',
    app: 'fixture-pipeline',
    doc: '`pgbench -M extended` with \\startpipeline: three parameterised statements and one Sync per transaction, two transactions',
    run: async (dir) => {
      const file = join(dir, 'pipeline.sql');
      writeFileSync(file, '\\set a random(1, 100)\n\\startpipeline\nSELECT :a::int AS v;\nSELECT :a::int * 2 AS w, :a::text AS t;\nSELECT g FROM generate_series(1, 3) g;\n\\endpipeline\n');
      await client('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-n', '-M', 'extended', '-t', '2', '-c', '1', '-f', file, 'test'], { PGSSLMODE: 'disable', PGAPPNAME: 'fixture-pipeline' });
    },
  },
  {
    name: 'failedLoginSession',
    app: 'fixture-badrole',
    doc: '`psql` as an unknown role: FATAL 28000 answers the StartupMessage',
    run: () => psql('fixture-badrole', ['-U', 'nobody_fixture', '-d', 'test', '-c', 'SELECT 1']),
  },
];

/** One connection's bytes, chunk by chunk. */
interface Followed {
  chunks: [0 | 1, Uint8Array][];
  lost: number;
}

function follow(frames: Iterable<Parameters<typeof decodePacket>[0]>): Followed[] {
  const out: Followed[] = [];
  const table = new FlowTable<Followed>(
    {
      open(flow) {
        flow.user = { chunks: [], lost: 0 };
        out.push(flow.user);
      },
      data(flow, dir, bytes) {
        flow.user!.chunks.push([dir === Direction.ToServer ? 0 : 1, Uint8Array.from(bytes)]);
      },
      gap(flow, _dir, n) {
        flow.user!.lost += n;
      },
      close() {},
    },
    { isServerPort: (p) => p === 5432 },
  );
  for (const f of frames) table.process(decodePacket(f));
  table.flush(Number.MAX_SAFE_INTEGER);
  return out.filter((f) => f.chunks.length > 0);
}

/** Message types and lengths of a chunk, `Q 24, X 5` (typed) or `startup 84` (untyped), for the dump comment. */
function describeChunk(b: Uint8Array, untypedFirst: boolean): string {
  const parts: string[] = [];
  let at = 0;
  if (untypedFirst && b.length >= 8 && b[0] === 0) {
    const len = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
    parts.push(`untyped ${len}`);
    at = len;
  } else if (b.length === 1) {
    return `'${String.fromCharCode(b[0]!)}'`;
  }
  while (at + 5 <= b.length && parts.length < 12) {
    const len = ((b[at + 1]! << 24) | (b[at + 2]! << 16) | (b[at + 3]! << 8) | b[at + 4]!) >>> 0;
    parts.push(`${String.fromCharCode(b[at]!)} ${len + 1}`);
    at += len + 1;
  }
  if (at < b.length) parts.push('...');
  return parts.join(', ');
}

function printable(b: Uint8Array): string {
  return Buffer.from(b.subarray(0, 60))
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.')
    .replace(/\*\//g, '*.');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-pg-fixtures-'));
  const out: string[] = [
    '// Real PostgreSQL traffic for the conformance suite: sessions of real',
    '// clients against the local server, captured on loopback and cut into',
    '// per-direction chunks as the TCP segments carried them.',
    '// Generated by postgres-record-fixtures.ts (do not edit by hand).',
    '',
    '/** One recorded session: chunks in stream order, 0 = client to server, 1 = server to client. */',
    'export interface RecordedPgSession {',
    '  readonly name: string;',
    '  readonly server: string;',
    '  readonly chunks: readonly (readonly [0 | 1, string])[];',
    '}',
    '',
  ];
  try {
    const admin = new pg.Client(pgConn);
    await admin.connect();
    const version = String((await admin.query<{ v: string }>('SHOW server_version')).rows[0]!.v);
    await admin.end();
    for (const s of sessions) {
      const cap = startLiveCapture('tcp port 5432');
      try {
        await s.run(dir);
      } finally {
        // pgbench opens a second connection of its own before the measured one: the session is the biggest one of its client.
        const flows = follow(await cap.stop())
          .filter((f) => f.chunks.some(([d, b]) => d === 0 && Buffer.from(b).includes(Buffer.from(s.app))))
          .sort((a, b) => b.chunks.length - a.chunks.length);
        if (flows.length === 0) throw new Error(`${s.name}: no connection of ${s.app}`);
        const f = flows[0]!;
        if (f.lost > 0) throw new Error(`${s.name}: capture lost ${f.lost} bytes`);
        out.push(`/** ${s.doc} (PostgreSQL ${version}). */`);
        out.push(`export const ${s.name}: RecordedPgSession = {`);
        out.push(`  name: '${s.name}',`);
        out.push(`  server: '${version}',`);
        out.push('  chunks: [');
        let startup = true;
        for (const [d, b] of f.chunks) {
          const untyped = d === 0 && startup;
          if (untyped && b.length >= 8 && b[4] === 0 && b[5] === 3) startup = false;
          out.push(`    // ${d === 0 ? 'C' : 'S'} ${b.length} bytes [${describeChunk(b, untyped)}]: ${printable(b)}`);
          out.push(`    [${d}, '${Buffer.from(b).toString('hex')}'],`);
        }
        out.push('  ],');
        out.push('};');
        out.push('');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(fileURLToPath(new URL('./postgres-fixtures.ts', import.meta.url)), out.join('\n'));
}

await main();

// The conformance suite on real PostgreSQL traffic (postgres-fixtures.ts,
// recorded from psql, pgbench and node pg against the local server): every
// split, truncation, lost chunk, early end and garbage prefix of these
// conversations must keep the promises of the plugin contract.
import test from 'ava';
import { Direction, type AuditEvent } from '@dbtap/core';
import { defaultSessionOptions, postgres } from '@dbtap/protocols';
import { conformance, type Conversation } from './conformance/harness.js';
import { copySession, errorSession, extendedSession, failedLoginSession, pipelineSession, simpleQuerySession, type RecordedPgSession } from './helpers/postgres-fixtures.js';

function chunks(s: RecordedPgSession): [Direction, Uint8Array][] {
  return s.chunks.map(([d, h]) => [d === 0 ? Direction.ToServer : Direction.ToClient, Uint8Array.from(Buffer.from(h, 'hex'))]);
}

const conversations: Conversation[] = [
  { name: 'postgres: psql, SSL refused, simple query', decoder: postgres, chunks: chunks(simpleQuerySession), lastSql: "SELECT 1 AS one, 'two' AS two" },
  { name: 'postgres: psql, errors, notice, empty query', decoder: postgres, chunks: chunks(errorSession), lastSql: "SELECT 'last';" },
  { name: 'postgres: psql, COPY in and out', decoder: postgres, chunks: chunks(copySession), lastSql: 'SELECT count(*) FROM c;' },
  { name: 'postgres: node pg, extended protocol with parameters and errors', decoder: postgres, chunks: chunks(extendedSession), lastSql: "SELECT 'last'" },
  { name: 'postgres: pgbench, pipelined extended protocol', decoder: postgres, chunks: chunks(pipelineSession), lastSql: 'SELECT g FROM generate_series(1, 3) g;' },
];

conformance(conversations);

/** Records of a conversation, each chunk delivered as `split` says. */
function records(cs: readonly [Direction, Uint8Array][], split: (i: number, b: Uint8Array) => Uint8Array[]): AuditEvent[] {
  const events: AuditEvent[] = [];
  const s = postgres.createSession({ flowId: 'f1', client: { ip: '10.0.0.1', port: 50000 }, server: { ip: '10.0.0.2', port: 5432 }, midStream: false, options: defaultSessionOptions, emit: (e) => events.push(e) });
  cs.forEach(([dir, b], i) => {
    for (const part of split(i, b)) s.data(dir, part, 100 * (i + 1));
  });
  s.close('fin', 100 * (cs.length + 1));
  return events;
}

// A failed login has no statement after it, which the suite needs: its records are checked here.
test('postgres: psql, failed login: one error login record however the chunks are cut', (t) => {
  const cs = chunks(failedLoginSession);
  const whole = records(cs, (_i, b) => [b]);
  t.like(whole, [{ kind: 'login', status: 'error', user: 'nobody_fixture', database: 'test', clientProgram: 'fixture-badrole', sqlState: '28000' }]);
  t.is(whole.length, 1);
  const ref = JSON.stringify(whole);
  cs.forEach(([, b], i) => {
    for (let k = 1; k < b.length; k++) t.is(JSON.stringify(records(cs, (j, x) => (j === i ? [x.subarray(0, k), x.subarray(k)] : [x]))), ref, `chunk ${i} split at ${k}`);
  });
});

test('postgres: recorded sessions: the records say what the clients did', (t) => {
  const simple = records(chunks(simpleQuerySession), (_i, b) => [b]);
  t.like(simple[0], { kind: 'login', status: 'ok', user: 'postgres', database: 'test', clientProgram: 'fixture-simple', tls: false, attributes: { sslRequest: 'sent', sslResponse: 'N' } });
  t.like(simple[1], { kind: 'statement', status: 'ok', sql: "SELECT 1 AS one, 'two' AS two", rowsReturned: 1, columns: ['one', 'two'] });
  t.like(simple[2], { kind: 'logout', command: 'Terminate' });
  const ext = records(chunks(extendedSession), (_i, b) => [b]).filter((e) => e.kind === 'statement');
  t.deepEqual(
    ext.map((e) => [e.command, e.status, e.sqlState, e.params]),
    [
      ['Execute', 'ok', undefined, ['1', '2', "it's"]],
      ['Execute', 'ok', undefined, ['1259']],
      ['Execute', 'ok', undefined, ['1247']],
      ['Execute', 'ok', undefined, [null]],
      ['Execute', 'error', '22012', ['0']],
      ['Query', 'error', '42601', undefined],
      ['Query', 'ok', undefined, undefined],
    ],
  );
  t.true(ext.slice(1, 3).every((e) => e.statementId === 'by_id'));
  const pipe = records(chunks(pipelineSession), (_i, b) => [b]).filter((e) => e.kind === 'statement');
  t.is(pipe.length, 6);
  t.true(pipe.every((e) => e.status === 'ok' && e.command === 'Execute'));
  t.deepEqual(pipe.map((e) => e.rowsReturned), [1, 1, 3, 1, 1, 3]);
  const copy = records(chunks(copySession), (_i, b) => [b]).filter((e) => e.kind === 'statement');
  t.like(copy[1], { sql: 'COPY c FROM STDIN;', affectedRows: 3, attributes: { copy: 'in', copyMessages: '1' } });
  t.like(copy[2], { sql: 'COPY c TO STDOUT;', rowsReturned: 3, attributes: { copy: 'out', copyMessages: '3' } });
});

// Session state kept across a restart, offline: a capture with prepared
// statements is cut at every frame; one pipeline reads the frames before the
// cut (and is then dropped, as a killed server is), a second one resumes
// from the first's session states and reads the rest. Together they must
// yield exactly the records of one pipeline reading the whole capture.
import test from 'ava';
import { join } from 'node:path';
import type { AuditEvent, Frame } from '@dbtap/core';
import { createDefaultRegistry, decodeState, encodeState, MAX_SESSION_STATE_BYTES } from '@dbtap/protocols';
import { AuditPipeline } from '../src/index.js';
import { corpusDir, corpusTest } from '../../../test-support/corpus.js';
import { captureFrames, exampleFrames } from '../../../test-support/frames.js';

const registry = createDefaultRegistry();

function pipeline(out: AuditEvent[]): AuditPipeline {
  return new AuditPipeline({ registry, ports: new Map([[3306, undefined], [5432, undefined]]), onEvent: (e) => out.push(e) });
}

// Flows opened after the cut are numbered anew by the second pipeline: compare ids without the flow number, keep the record number.
const view = (e: AuditEvent): unknown => ({ id: e.id.replace(/#\d+:/, ':'), kind: e.kind, sql: e.sql, params: e.params, user: e.user, database: e.database, status: e.status, midSession: e.midSession });

/** Reads the capture in two pipelines cut before frame `cut`, the second resuming from the first's state (or not). */
function cutAt(frames: readonly Frame[], cut: number, resume: boolean): { records: AuditEvent[]; kept: boolean; resumed: number } {
  const records: AuditEvent[] = [];
  const first = pipeline(records);
  for (const f of frames.slice(0, cut)) first.push(f);
  // the first pipeline is dropped unfinished, as a killed server's is
  const kept = first.sessionStates().text;
  const second = pipeline(records);
  const resumed = resume && kept !== undefined ? second.resumeSessions(kept) : 0;
  for (const f of frames.slice(cut)) second.push(f);
  second.finish();
  return { records, kept: kept !== undefined, resumed };
}

/**
 * Every cut with kept state (a cut during a login keeps nothing: that
 * connection is picked up mid-session, as without kept state): the
 * records with and without resuming, judged by `wrong`. Returns the number
 * of cuts that resumed a session and the cuts `wrong` rejected.
 */
function judgeCuts(frames: readonly Frame[], wrong: (records: AuditEvent[]) => boolean): { resumed: number; wrong: number[]; wrongWithout: number[] } {
  let resumed = 0;
  const bad: number[] = [];
  const badWithout: number[] = [];
  for (let cut = 1; cut < frames.length; cut++) {
    const r = cutAt(frames, cut, true);
    if (!r.kept) continue;
    if (r.resumed > 0) resumed++;
    if (wrong(r.records)) bad.push(cut);
    if (wrong(cutAt(frames, cut, false).records)) badWithout.push(cut);
  }
  return { resumed, wrong: bad, wrongWithout: badWithout };
}

/** Cuts at which the records differ from the whole capture's, with and without resuming. */
function cutEverywhere(frames: readonly Frame[]): { whole: AuditEvent[]; resumed: number; differ: number[]; differWithout: number[] } {
  const whole: AuditEvent[] = [];
  const p = pipeline(whole);
  for (const f of frames) p.push(f);
  p.finish();
  const expected = JSON.stringify(whole.map(view));
  const r = judgeCuts(frames, (records) => JSON.stringify(records.map(view)) !== expected);
  return { whole, resumed: r.resumed, differ: r.wrong, differWithout: r.wrongWithout };
}

corpusTest('a MySQL session with prepared statements resumes at any frame with its identity, statement texts and record ids', (t) => {
  const r = cutEverywhere(captureFrames(join(corpusDir, 'mysql/pcap2mysqllog_execute.pcap')));
  t.true(r.whole.some((e) => e.params !== undefined), 'the capture executes prepared statements');
  t.true(r.resumed > 10, 'sessions were resumed');
  t.true(r.differWithout.length > 0, 'without kept state a cut loses context');
  t.deepEqual(r.differ, [], 'cuts at which the resumed records differ from the whole capture\'s');
});

test('the sessions of the example capture resume at any frame; without kept state they lose their context', (t) => {
  const r = cutEverywhere(exampleFrames());
  t.true(r.resumed > 10);
  t.true(r.differWithout.length > 10, 'without kept state the cuts lose user, database or records');
  t.deepEqual(r.differ, []);
});

/** Cuts after which some statement lacks its text or user or is marked mid-session, with and without resuming. */
function contextLost(frames: readonly Frame[]): { resumed: number; lost: number[]; lostWithout: number[] } {
  const r = judgeCuts(frames, (records) => records.some((e) => e.kind === 'statement' && (e.user === undefined || e.midSession === true || (e.sql ?? '') === '')));
  return { resumed: r.resumed, lost: r.wrong, lostWithout: r.wrongWithout };
}

// PostgreSQL requests still waiting for their responses are not kept (docs/security.md): a cut between a
// request and its response may lose that record, but no later statement loses its text, user or database.
test('the PostgreSQL sessions of the example capture resume at any frame with their user, database and statement texts', (t) => {
  const r = contextLost(exampleFrames('postgres-session.pcap'));
  t.true(r.resumed > 10);
  t.true(r.lostWithout.length > 10, 'without kept state the cuts lose the context');
  t.deepEqual(r.lost, []);
});

corpusTest('a PostgreSQL session with named prepared statements resumes with their texts', (t) => {
  const r = contextLost(captureFrames(join(corpusDir, 'postgresql/packetbeat_pgsql_extended_query.pcap')));
  t.true(r.resumed > 0, 'sessions were resumed');
  t.deepEqual(r.lost, []);
});

test('session state text: round trip of bigints, byte arrays and maps; bad text is refused', (t) => {
  const value = { a: 1n << 70n, b: Uint8Array.of(0, 255, 7), m: new Map([[1, { sql: 'SELECT ?' }]]), tricky: { $n: 'not a bigint' }, u: undefined };
  const back = decodeState(encodeState(value)) as Record<string, unknown>;
  t.is(back.a, 1n << 70n);
  t.deepEqual(back.b, Uint8Array.of(0, 255, 7));
  t.deepEqual(back.m, new Map([[1, { sql: 'SELECT ?' }]]));
  t.deepEqual(back.tricky, { $n: 'not a bigint' });
  t.false('u' in back);
  t.throws(() => decodeState('{'), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  const p = pipeline([]);
  t.is(p.resumeSessions('not json'), 0);
  t.is(p.resumeSessions('{"v":2,"flows":[]}'), 0);
  t.true(MAX_SESSION_STATE_BYTES >= 64 << 10);
});

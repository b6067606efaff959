// The one composition of the record stages: the order judge -> mask -> sink,
// the same records from the daemon and from an offline audit, and the
// dialect a decoder declares reaching the rules.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, type Frame } from '@dbtap/core';
import { ProtocolRegistry, mysql, type ProtocolDecoder } from '@dbtap/protocols';
import { AuditServer, RecordMasker, SqliteStore, auditFrames, composeStages, loadRuleSelection, registryDialects, rulesProcessor, type MaskingConfig } from '../src/index.js';
import { exampleFrames } from '../../../test-support/frames.js';

const frames = (): Frame[] => exampleFrames();

const masking: MaskingConfig = { rules: [{ type: 'pattern', builtin: 'card' }] };

test('the judge sees the statement as sent; the mask applies to records and alerts alike', (t) => {
  const seen: string[] = [];
  const out: AuditEvent[] = [];
  const judge = (e: AuditEvent): AuditEvent[] => {
    seen.push(e.sql ?? '');
    return [e, { ...e, id: `${e.id}/a`, kind: 'alert' }];
  };
  const push = composeStages({ judge, mask: (e) => ({ ...e, sql: 'masked' }), sink: (e) => out.push(e) });
  push({ id: 'r1', kind: 'statement', sql: "SELECT '4111111111111111'" } as AuditEvent);
  t.deepEqual(seen, ["SELECT '4111111111111111'"]);
  t.deepEqual(out.map((e) => [e.id, e.kind, e.sql]), [['r1', 'statement', 'masked'], ['r1/a', 'alert', 'masked']]);
  const bare: AuditEvent[] = [];
  composeStages({ sink: (e) => bare.push(e) })({ id: 'r2', kind: 'statement' } as AuditEvent);
  t.deepEqual(bare.map((e) => e.id), ['r2']);
});

test('the daemon stores exactly the records an offline audit with the same stages gives', async (t) => {
  const fs = frames();
  const ruleSet = loadRuleSelection({ builtin: true, files: [] });
  const offline = auditFrames(fs, { judge: rulesProcessor(ruleSet).process, mask: new RecordMasker(masking).mask }).events;
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-compose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new SqliteStore({ path: join(dir, 'audit.db') });
  const server = new AuditServer({ store, agentListen: [], processRecord: rulesProcessor(ruleSet).process, mask: new RecordMasker(masking).mask });
  await server.ingest('file:x', fs);
  await server.endSource('file:x');
  const stored = (await store.search({ order: 'asc', limit: 1000 })).records;
  const view = (e: AuditEvent): unknown[] => [e.id, e.kind, e.sql, e.risk, e.ruleIds, e.alert?.ruleId];
  t.true(offline.some((e) => e.kind === 'alert'));
  t.false(offline.some((e) => e.sql?.includes('4111111111111111')), 'the card number is masked');
  t.deepEqual(stored.map(view).sort(), offline.map(view).sort());
  await server.stop();
});

test("a decoder's declared dialect reaches the rules; without one the dbType decides", (t) => {
  const declaring: ProtocolDecoder = { ...mysql, dialect: 'postgres' };
  const odd: ProtocolDecoder = { ...mysql, dialect: 'no-such-dialect' };
  const event = (): AuditEvent => ({ id: 'x', kind: 'statement', flowId: 'f', ts: 0, dbType: 'mysql', sql: 'SELECT "a" FROM t' }) as AuditEvent;
  const ruleSet = loadRuleSelection({ builtin: false, files: [] });
  const judged = (registry: ProtocolRegistry | undefined): string | undefined => {
    const e = event();
    rulesProcessor(ruleSet, registry ? { dialectFor: registryDialects(registry) } : {}).process(e);
    return e.fingerprint;
  };
  // MySQL reads "a" as a string literal, PostgreSQL as a column name
  t.is(judged(undefined), 'select ? from t');
  t.is(judged(new ProtocolRegistry().register(mysql)), 'select ? from t');
  t.is(judged(new ProtocolRegistry().register(odd)), 'select ? from t');
  t.not(judged(new ProtocolRegistry().register(declaring)), 'select ? from t');
  t.is(registryDialects(new ProtocolRegistry().register(declaring))(event()), 'postgres');
});

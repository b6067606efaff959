// Real clients on an ephemeral port, captured on lo with dumpcap: the file
// goes through the whole pipeline (detection by content: no decoder claims
// the port) and through tshark, which must find nothing malformed in what
// the clients and the test responder exchanged.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditCaptureFile } from '@dbtap/server';
import { hasTshark, tshark } from '../../../test-support/corpus.js';
import { canRecordTds, recordTds } from '../../../test-support/tds-traffic.js';

const PASSWORD = 'Capture-pw-5521';
const ok = canRecordTds() && hasTshark();
if (!ok) console.log('skipping TDS capture tests: needs root, dumpcap and tshark');
const live = ok ? test.serial : test.skip;

live('tedious and FreeTDS 5.0 on an ephemeral port: detected by content, every request a record, tshark finds nothing malformed', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'dbtap-tds-cap-')), 'tds.pcap');
  const port = await recordTds(file, { statements: 40, connections: 2, freetds5: true, password: PASSWORD });
  const malformed = tshark(['-r', file, '-d', `tcp.port==${port},tds`, '-Y', '_ws.malformed', '-T', 'fields', '-e', 'frame.number']).trim();
  t.is(malformed, '', 'tshark flags malformed frames');
  const batches = tshark(['-r', file, '-d', `tcp.port==${port},tds`, '-Y', 'tds.query', '-T', 'fields', '-e', 'tds.query']).split('\n').filter((l) => l !== '')
    // tshark prints newlines inside a field as \n
    .map((l) => l.replace(/\\n/g, '\n').replace(/\\r/g, '\r'));
  const rpcs = tshark(['-r', file, '-d', `tcp.port==${port},tds`, '-Y', 'tds.type == 3', '-T', 'fields', '-e', 'frame.number']).split('\n').filter((l) => l !== '');
  const r = await auditCaptureFile(file, {});
  t.deepEqual(r.summary.flowsByProtocol, { tds: 3 });
  t.is(r.summary.sessions.malformed, 0);
  const st = r.events.filter((e) => e.kind === 'statement');
  const ourBatches = st.filter((e) => e.command === 'SQLBatch');
  const ourRpcs = st.filter((e) => e.command === 'RPC');
  t.is(ourBatches.length, batches.length);
  t.deepEqual(ourBatches.map((e) => e.sql).sort(), [...batches].sort());
  t.is(ourRpcs.length, rpcs.length);
  // 2 connections x (2 init/prepare + 20 statements): one tedious init batch and one sp_prepare each.
  t.is(ourRpcs.filter((e) => e.attributes?.procedure === 'sp_execute').length, 10);
  t.true(ourRpcs.filter((e) => e.attributes?.procedure === 'sp_execute').every((e) => e.sql === 'update acct set balance = balance + @d where id = @id' && e.params?.length === 2));
  t.true(st.every((e) => e.status === 'ok'));
  const logins = r.events.filter((e) => e.kind === 'login');
  t.deepEqual(logins.map((e) => [e.user, e.dbProduct]).sort(), [['app0', 'mssql'], ['app1', 'mssql'], ['sybuser', 'sybase']]);
  t.truthy(st.find((e) => e.command === 'Language' && e.sql === 'update t set n = 1\n' && e.affectedRows === 1));
  t.false(JSON.stringify(r.events).includes(PASSWORD));
});

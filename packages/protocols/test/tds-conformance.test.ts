// The kit conformance suite on recorded TDS conversations (real clients
// against the test responder, hex in test/fixtures/ with how they were made):
// every split, byte-at-a-time delivery, truncation, lost chunk, capture end
// and garbage before the first message.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tds } from '@dbtap/protocols';
import { conformance } from './conformance/harness.js';
import { unhex } from './helpers/tds.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const load = (name: string) => unhex(readFileSync(join(fixtures, name), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')));

conformance([
  // tedious 18, TDS 7.4: PRELOGIN, LOGIN7, batches, sp_executesql, sp_prepare/sp_execute; ends with a batch.
  { name: 'tds tedious 7.4', decoder: tds, chunks: load('tds-tedious-7.4.hex'), lastSql: 'delete from t where id = 9' },
  // FreeTDS tsql, TDS 5.0: login, LANGUAGE select with ROWFMT rows, LANGUAGE update.
  { name: 'tds freetds 5.0', decoder: tds, chunks: load('tds-freetds-5.0.hex'), lastSql: 'update t set n = 1\n' },
  // pytds with MARS: SMP sessions 0-3, statements on sessions 2 and 3 (ends at the last response; the FINs are dropped).
  { name: 'tds pytds mars', decoder: tds, chunks: load('tds-pytds-mars.hex').slice(0, -4), lastSql: 'select id, name from parts where id = @P1' },
]);

// Every MySQL capture of the public corpus decodes through the full pipeline
// without an exception, and every query tshark decodes appears in dbtap's
// records with the same text.
import { basename } from 'node:path';
import { auditCaptureFile } from '@dbtap/server';
import { corpusFiles, corpusTest, tshark, tsharkTest } from '../../../test-support/corpus.js';

// Server ports of the corpus (SOURCES.md: decode-as for mysql/).
const PORTS = [3306, 12345, 3307, 5432, 20130, 30130, 2883, 6033, 13001];
const decodeAs = PORTS.filter((p) => p !== 3306).flatMap((p) => ['-d', `tcp.port==${p},mysql`]);

/**
 * tshark prints non-printable bytes as C escapes (`\n`, `\xHH`) but leaves
 * backslashes alone, and stops at a NUL. Both sides are compared on printable
 * ASCII with escapes blanked, backslashes dropped and whitespace collapsed; a
 * statement with a NUL byte only has to start with tshark's text.
 */
function norm(s: string): string {
  return s.replace(/\\x[0-9a-fA-F]{2}|\\[nrt]/g, ' ').replace(/\\/g, '').replace(/[^\x21-\x7e]+/g, ' ').trim();
}

const files = corpusFiles('mysql');

corpusTest('the MySQL corpus is present', (t) => {
  t.true(files.length >= 100, `${files.length} files`);
});

for (const file of files) {
  tsharkTest(`corpus ${basename(file)}: decodes, and every query tshark sees is in the records`, async (t) => {
    const { events, summary } = await auditCaptureFile(file, { ports: PORTS });
    const expected = tshark(['-r', file, ...decodeAs, '-Y', 'mysql.query', '-T', 'fields', '-e', 'mysql.query'])
      .split('\n')
      .filter((l) => l !== '')
      .map(norm);
    const sqls = events.filter((e) => e.dbType === 'mysql' && e.sql !== undefined).map((e) => e.sql!);
    const seen = new Set(sqls.map(norm));
    const withNul = sqls.filter((s) => s.includes('\0')).map(norm);
    const missing = expected.filter((q) => !seen.has(q) && !withNul.some((s) => s.startsWith(q)));
    t.deepEqual(missing, [], `${missing.length} of ${expected.length} queries missing`);
    for (const e of events) {
      t.true(e.id.startsWith(e.flowId + ':'));
      t.true(['ok', 'error', 'unknown'].includes(e.status));
    }
    t.log(`${expected.length} tshark queries, ${events.length} records, sessions ${JSON.stringify(summary.sessions)}`);
  });
}

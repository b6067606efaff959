// The kit conformance suite on DRDA conversations recorded from Derby's
// Network Server (ij as the client; see helpers/drda-record-fixtures.ts):
// login, EXCSQLIMM with autocommit, a failed prepare, OPNQRY with rows,
// PRPSQLSTT + EXCSQLSTT with parameters, and a refused password.
import { join } from 'node:path';
import { drda } from '@dbtap/protocols';
import { conformance } from './conformance/harness.js';
import { chunksOf, fixturesDir } from './helpers/drda.js';

const ij = chunksOf(join(fixturesDir, 'drda-derby-ij.pcap'));

conformance([
  { name: 'drda derby ij session', decoder: drda, chunks: ij, lastSql: 'drop table fixture' },
  // The same conversation with every DSS a chunk of its own: several DSSs per TCP segment become one per chunk.
  { name: 'drda derby ij session, one DSS per chunk', decoder: drda, chunks: perDss(ij), lastSql: 'drop table fixture', options: { maxRows: 0 } },
]);

/** Re-cuts each direction's bytes at DSS boundaries (the 16-bit length of each segment). */
function perDss(chunks: ReturnType<typeof chunksOf>): ReturnType<typeof chunksOf> {
  const out: ReturnType<typeof chunksOf> = [];
  for (const [dir, b] of chunks) {
    let i = 0;
    while (i + 2 <= b.length) {
      const len = Math.max(2, ((b[i]! << 8) | b[i + 1]!) & 0x7fff);
      out.push([dir, b.subarray(i, Math.min(b.length, i + len))]);
      i += len;
    }
    if (i < b.length) out.push([dir, b.subarray(i)]);
  }
  return out;
}

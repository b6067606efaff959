// The kit's conformance suite on real Oracle conversations, taken at test
// time from the corpus captures (one TCP connection each, as reassembly
// delivered it).
import test from 'ava';
import { join } from 'node:path';
import { oracle } from '@dbtap/protocols';
import { corpusAvailable, corpusDir } from '../../../test-support/corpus.js';
import { conformance, type Conversation } from './conformance/harness.js';
import { auditOracleCapture } from './helpers/oracle-pcap.js';

/** The chunks of the first connection of a capture. */
async function conversation(name: string, file: string, lastSql: string): Promise<Conversation> {
  const r = await auditOracleCapture(join(corpusDir, 'oracle', file));
  const flow = r.flows[0]!;
  return { name, decoder: oracle, chunks: flow.chunks, lastSql };
}

if (corpusAvailable) {
  conformance([
    // sqlplus 11.1 (x86_64) -> 11g on Windows: CONNECT/RESEND/ACCEPT, ANO, negotiation, O5LOGON, OALL8 + OFETCH.
    await conversation('oracle sqlplus 11g (Oracle-good)', 'johnsamples_Oracle-good.pcap', 'SELECT USER FROM DUAL'),
  ]);
  conformance(
    [
      // TOAD (OCI 8, 32-bit pointers): bundled parse (0x3e) + OALL7 (0x47), fetches, ORA-00942, commit, rollback.
      await conversation('oracle TOAD (trex_cap2_Oracle)', 'trex_cap2_Oracle.pcap', "select 'x' from dual\n"),
    ],
    { maxOffsetsPerChunk: 24 },
  );
} else if (process.env.CI) {
  test('oracle conformance', (t) => t.fail(`capture corpus not found at ${corpusDir}`));
} else {
  console.log(`skipping oracle conformance: capture corpus not found at ${corpusDir}`);
  test.skip('oracle conformance', () => {});
}

// The NDJSON of `dbtap audit` and of toNdjson is the text JSON.stringify with
// jsonReplacer gives (what the stores hash and sign, and what users parse),
// byte for byte, now that toNdjson skips the replacer for records that need
// none and the command writes in large chunks.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '@dbtap/core';
import { corpusFiles, corpusTest, repoRoot } from '../../../test-support/corpus.js';
import { repeatMariadbSession } from '../../../test-support/repeat-session.js';
import { analyzeCaptureFile } from '../src/index.js';
import { jsonReplacer, toNdjson } from '../src/format.js';

const reference = (record: object): string => JSON.stringify(record, jsonReplacer);

test('toNdjson is JSON.stringify with the replacer, for values the replacer changes and values it does not', (t) => {
  class WithProto {
    own = 1;
  }
  (WithProto.prototype as unknown as Record<string, unknown>).inherited = 2n;
  const records: object[] = [
    { id: 'a', kind: 'statement', ts: 1, client: { ip: '::1', port: 1 }, sql: 'SELECT "x"\n\u2028\ud800', durationUs: 0 },
    { params: [1n, 'x', null, { type: 'blob', hex: '00ff' }], affected: -0 },
    { nested: { deeper: [{ big: 12345678901234567890n }] } },
    { bytes: new Uint8Array([0, 1, 255]), buffer: Buffer.from('hi'), view: new Uint8Array(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2) },
    { when: new Date(0), n: Number.NaN, inf: -Infinity, u: undefined, f: () => 1, s: Symbol('x') },
    { arr: [undefined, () => 1, Symbol('y'), Number.NaN, [1n]] },
    { wrapped: [new Number(3), new String('s'), new Boolean(false)] },
    { 2: 'two', 1: 'one', b: 'b', a: 'a' },
    new WithProto(),
    { u16: new Uint16Array([1, 2]), dv: new DataView(new ArrayBuffer(2)) },
  ];
  for (const r of records) t.is(toNdjson(r), reference(r));
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  t.throws(() => toNdjson(cycle), { instanceOf: TypeError });
});

function dbtapAudit(file: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'audit', file], { encoding: 'utf8', cwd: repoRoot, maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function sameAsReference(t: import('ava').ExecutionContext, file: string): Promise<number> {
  const { events } = await analyzeCaptureFile(file);
  const expected = events.map((e) => `${reference(e)}\n`).join('');
  const r = dbtapAudit(file);
  t.true(r.code === 0 || r.code === 1, r.err);
  t.is(r.out, expected, file);
  return events.length;
}

test('dbtap audit prints the example captures as JSON.stringify with the replacer does', async (t) => {
  for (const f of ['mariadb-session.pcap', 'postgres-session.pcap']) t.true((await sameAsReference(t, join(repoRoot, 'examples/captures', f))) > 0);
});

test('dbtap audit output larger than one write chunk is complete and in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-ndjson-'));
  try {
    const frames = repeatMariadbSession(400, 20000, 1000);
    const w = PcapWriter.open(join(dir, 'many.pcap'), { linkType: frames[0]!.linkType });
    for (const f of frames) w.write(f);
    w.close();
    // 400 copies of 14 records plus alerts: well over one 256 KiB chunk
    t.true((await sameAsReference(t, join(dir, 'many.pcap'))) > 5000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

corpusTest('dbtap audit prints corpus captures as JSON.stringify with the replacer does', async (t) => {
  const picks = [
    ['mysql', 'pcap2mysqllog_type-error.pcap'],
    ['postgresql', 'deepflow_pgsql-all.pcap'],
    ['mssql-tds', 'ndpi_mssql_tds.pcap'],
    ['oracle', 'johnsamples_11gR2-Nmap-sys-username-good.pcap'],
    ['mongodb', 'packetbeat_mongodb_more_rows.pcap'],
    ['drda', 'ndpi_drda_db2.pcap'],
  ];
  let records = 0;
  for (const [dir, name] of picks) {
    const file = corpusFiles(dir).find((f) => f.endsWith(`/${name}`));
    if (file === undefined) t.fail(`${dir}/${name} is not in the corpus`);
    else records += await sameAsReference(t, file);
  }
  t.true(records > 0);
});

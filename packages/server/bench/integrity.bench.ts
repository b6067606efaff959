// Tamper evidence and masking costs. One JSON line per case on stdout.
//
//   node --import=tsx packages/server/bench/integrity.bench.ts
//   DBTAP_BENCH_INTEGRITY_RECORDS=200000   records per case (default 50000)
//
// Cases:
// - integrity.hash: SHA-256 of each record's JSON (what sealing adds per record).
// - integrity.append: SqliteStore appends, unsigned and signed chain; `hashShare`
//   is the part of the append time spent hashing (the rest of the chain's cost
//   is one link row per batch).
// - integrity.verify: verification speed over the filled store.
// - masking.default: the default masking (password rule) over records that
//   carry fingerprints and result column names, against the same lexer pass.
// - masking: RecordMasker over a mixed statement workload, against the SQL
//   lexer pass alone over the same texts (the baseline: masking needs that
//   pass, the rest is its own work).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@dbtap/core';
import { TokenBuffer, scanSql } from '@dbtap/rules';
import { SqliteStore } from '../src/store/index.js';
import { recordHash } from '../src/integrity/chain.js';
import { RecordMasker } from '../src/masking/index.js';
import { toNdjson } from '../src/format.js';

const RECORDS = Number(process.env.DBTAP_BENCH_INTEGRITY_RECORDS ?? 50_000);
const BATCH = 1000;
const T0 = Date.UTC(2024, 0, 1) * 1000;
const KEY = 'bench-chain-key-0123456789abcdef';

const sqls = [
  (i: number) => `SELECT id, name, email FROM customers WHERE id = ${i} AND status = 'active'`,
  (i: number) => `UPDATE accounts SET balance = balance - ${i % 500}, note = 'transfer ${i}' WHERE account_no = 'AC${i}'`,
  (i: number) => `INSERT INTO payments (id, card_no, amount, ssn) VALUES (${i}, '4111111111111111', ${i % 1000}.50, '078-05-${String(1000 + (i % 9000))}')`,
  (i: number) => `SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created > '2024-01-0${1 + (i % 9)}' ORDER BY o.id LIMIT 50`,
  (i: number) => `ALTER USER 'app${i % 10}'@'%' IDENTIFIED BY 'pw-${i}'`,
  (i: number) => `DELETE FROM sessions WHERE last_seen < NOW() - INTERVAL ${i % 30} DAY`,
];

function record(i: number): AuditEvent {
  const flow = Math.floor(i / 20);
  const ts = T0 + i * 33_000;
  return {
    id: `b${flow}:${i % 20}`, kind: 'statement', flowId: `b${flow}`, ts, endTs: ts + 800, durationUs: 800,
    client: { ip: `10.0.${flow % 250}.${(flow >> 8) % 250}`, port: 40000 + (flow % 20000) }, server: { ip: '10.1.0.1', port: 3306 },
    dbType: 'mysql', user: `user${flow % 50}`, database: 'app', clientProgram: 'app-server', status: 'ok', risk: 'none',
    sql: sqls[i % sqls.length]!(i), statementType: 'select', verb: 'SELECT',
  };
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const round = (v: number, d = 2): number => Math.round(v * 10 ** d) / 10 ** d;
const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/** Best of `runs` timings of `fn` after one warm-up run (the machine is shared: the best run is the least disturbed). */
function best(fn: () => void, runs = 3): number {
  fn();
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    min = Math.min(min, seconds(t0));
  }
  return min;
}

async function fill(store: SqliteStore, records: AuditEvent[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < records.length; i += BATCH) await store.append(records.slice(i, i + BATCH));
  return seconds(t0);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-bench-integrity-'));
  const wall = Date.now();
  try {
    const records = Array.from({ length: RECORDS }, (_, i) => record(i));
    const jsons = records.map((r) => toNdjson(r));
    const bytes = jsons.reduce((a, j) => a + Buffer.byteLength(j), 0);
    const hashS = best(() => {
      for (const j of jsons) recordHash(j);
    });
    emit({ bench: 'integrity.hash', records: RECORDS, nsPerRecord: Math.round((hashS / RECORDS) * 1e9), mbPerSec: round(bytes / hashS / 1e6, 1) });

    for (const signed of [false, true]) {
      const path = join(dir, `${signed ? 'signed' : 'unsigned'}.db`);
      const store = new SqliteStore({ path, synchronous: 'normal', ...(signed ? { integrity: { key: KEY } } : {}) });
      const s = await fill(store, records);
      emit({ bench: 'integrity.append', store: 'sqlite', chain: signed ? 'hmac-sha256' : 'sha256', batch: BATCH, records: RECORDS, recordsPerSec: Math.round(RECORDS / s), hashShare: round(hashS / s, 3) });
      const t0 = process.hrtime.bigint();
      const r = await store.verify(signed ? { key: KEY } : {});
      const v = seconds(t0);
      if (!r.ok || r.records !== RECORDS) throw new Error(`verify failed: ${JSON.stringify(r.problems.slice(0, 3))}`);
      emit({ bench: 'integrity.verify', store: 'sqlite', chain: signed ? 'hmac-sha256' : 'sha256', records: RECORDS, seconds: round(v), recordsPerSec: Math.round(RECORDS / v) });
      await store.close();
    }

    // Masking against the lexer pass it builds on.
    const buf = new TokenBuffer();
    const lexS = best(() => {
      for (const r of records) scanSql(r.sql!, 'mysql', buf);
    });
    const masker = new RecordMasker({
      rules: [{ type: 'password' }, { type: 'pattern', builtin: 'card' }, { type: 'column', columns: ['ssn', 'account_no'], replacement: 'hash' }],
      hashKey: KEY,
    });
    const maskS = best(() => {
      for (const r of records) masker.mask(r);
    });
    const st = masker.stats();
    emit({
      bench: 'masking', records: RECORDS, usPerRecord: round((maskS / RECORDS) * 1e6), recordsPerSec: Math.round(RECORDS / maskS), lexerOnlyPerSec: Math.round(RECORDS / lexS),
      vsLexer: round(maskS / lexS), maskedShare: round(st.masked / st.records), valuesPerRecord: round(st.values / st.records),
    });
    // The default (password rule) over records as the pipeline hands them on:
    // with fingerprints and result column names, both of which masking reads.
    const shaped = records.map((r, i) => ({ ...r, fingerprint: `fp-${i % 6}`, columns: i % 6 === 0 ? ['id', 'name', 'email'] : i % 6 === 3 ? ['id', 'customer_id', 'created', 'name'] : [] }));
    const defaults = new RecordMasker({ rules: [{ type: 'password' }] });
    const defaultS = best(() => {
      for (const r of shaped) defaults.mask(r);
    });
    emit({ bench: 'masking.default', records: RECORDS, usPerRecord: round((defaultS / RECORDS) * 1e6), recordsPerSec: Math.round(RECORDS / defaultS), vsLexer: round(defaultS / lexS) });
    emit({ bench: 'integrity', wallSeconds: round((Date.now() - wall) / 1000, 1) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

// `dbtap verify`: check the store's hash chain.
import { parseArgs } from 'node:util';
import { isDbtapError } from '@dbtap/core';
import { loadServerConfig } from '../config.js';
import type { ChainAnchor, IntegrityReport } from '../integrity/types.js';
import { verifySqliteFile } from '../integrity/sqlite.js';
import { readKeyFile } from '../masking/config.js';
import { UsageError, type Command } from './common.js';
import { configuredSqlitePath, describeStore, openStore } from '../store/config.js';

/** `verify`'s own exit code: the store cannot be verified (no store, no chain, key missing or unreadable). */
const CANNOT_VERIFY = 3;

export const verifyCommand: Command = {
  name: 'verify',
  usage: `  verify [--data-dir DIR] [--config FILE] [--key-file FILE] [--anchor LINK:HASH]... [--json]
      Verify the store's hash chain: exit 0 when intact, 1 naming the first
      altered, missing or inserted record, 3 when it cannot be verified.
`,
  run,
};

/** Prints a verification report for people. */
function printIntegrity(r: IntegrityReport, path: string): void {
  const out = process.stdout;
  const mode = r.mode === 'sha256' ? 'unsigned SHA-256' : r.mode === 'mixed' ? 'SHA-256, then HMAC-SHA-256' : 'HMAC-SHA-256';
  const scope = `${r.records} records in ${r.links} links (${mode}${r.keyId !== undefined ? `, key id ${r.keyId}` : ''})${r.removedByRetention > 0 ? `, ${r.removedByRetention} removed by retention` : ''}`;
  if (r.ok) out.write(`intact: ${path}: ${scope}\n`);
  else {
    out.write(`NOT INTACT: ${path}: ${r.problems[0]!.message}\n`);
    out.write(`${r.problemCount} problem${r.problemCount === 1 ? '' : 's'} in all; checked ${scope}\n`);
    for (const p of r.problems.slice(1, 20)) out.write(`  ${p.kind}: ${p.message}\n`);
    if (r.problemCount > 20) out.write(`  ... and ${r.problemCount - 20} more (--json lists up to 100)\n`);
  }
  for (const n of r.notes) out.write(`note: ${n}\n`);
  if (r.head !== undefined) out.write(`head: link ${r.head.link} ${r.head.hash} (note it elsewhere; --anchor ${r.head.link}:${r.head.hash} later proves nothing was cut from the end)\n`);
}

/** 0 intact, 1 problems found, 3 cannot verify. */
async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    allowPositionals: false,
    options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, 'key-file': { type: 'string' }, anchor: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } },
  });
  const anchors: ChainAnchor[] = (values.anchor ?? []).map((a) => {
    const m = /^(\d+):([0-9a-fA-F]{64})$/.exec(a.trim());
    if (m === null) throw new UsageError(`--anchor must be LINK:HASH (a link number and 64 hex digits), not '${a}'`);
    return { link: Number(m[1]), hash: m[2]!.toLowerCase() };
  });
  try {
    const cfg = loadServerConfig(values.config);
    if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
    const key = values['key-file'] !== undefined ? readKeyFile(values['key-file'], '--key-file') : cfg.integrity.key;
    const options = { ...(key !== undefined ? { key } : {}), anchors };
    const where = { dataDir: cfg.dataDir, mustExist: true };
    // A SQLite file is read through a read-only connection; PostgreSQL through the store.
    const path = configuredSqlitePath(cfg.store, where);
    let report: IntegrityReport;
    if (path !== undefined) report = await verifySqliteFile(path, options);
    else {
      const store = await openStore(cfg.store, where);
      try {
        report = await store.verify(options);
      } finally {
        await store.close();
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printIntegrity(report, path ?? describeStore(cfg.store, cfg.dataDir));
    return report.ok ? 0 : 1;
  } catch (err) {
    if (!isDbtapError(err)) throw err;
    process.stderr.write(`dbtap: cannot verify: ${err.code}: ${err.message}\n`);
    return CANNOT_VERIFY;
  }
}

// Each package has one table of its DBTAP_E_* codes: no code is written in a
// package's source outside its table, and docs/errors.md lists every one.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes } from '@dbtap/core';
import { RuleErrorCodes } from '@dbtap/rules';
import { AgentErrorCodes } from '@dbtap/agent';
import { ServerErrorCodes, StoreErrorCodes, HttpErrorCodes, AccessErrorCodes, NotifyErrorCodes, IntegrityErrorCodes, ReportErrorCodes } from '../src/index.js';
import { repoRoot } from '../../../test-support/corpus.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const TABLES: Record<string, string> = { core: 'src/errors.ts', rules: 'src/errors.ts', agent: 'src/errors.ts', server: 'src/errors.ts' };

test('no code string is written outside its package table', (t) => {
  for (const [pkg, table] of Object.entries(TABLES)) {
    const root = join(repoRoot, 'packages', pkg);
    for (const file of sources(join(root, 'src'))) {
      if (file === join(root, table)) continue;
      const text = readFileSync(file, 'utf8');
      const literal = /['"]DBTAP_E_[A-Z0-9_]+['"]/.exec(text); // (backquoted codes are documentation)
      t.is(literal, null, `${file.slice(repoRoot.length + 1)}: ${literal?.[0]}`);
    }
  }
});

test('the area tables of the server are views of its one table', (t) => {
  const all = new Set(Object.values(ServerErrorCodes));
  for (const view of [StoreErrorCodes, HttpErrorCodes, AccessErrorCodes, NotifyErrorCodes, IntegrityErrorCodes, ReportErrorCodes]) {
    for (const code of Object.values(view)) t.true(all.has(code), code);
  }
});

test('docs/errors.md lists every code of every table', (t) => {
  const doc = readFileSync(join(repoRoot, 'docs/errors.md'), 'utf8');
  for (const table of [ErrorCodes, RuleErrorCodes, AgentErrorCodes, ServerErrorCodes]) {
    for (const code of Object.values(table)) t.true(doc.includes(`\`${code}\``), code);
  }
});

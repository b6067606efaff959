// `@dbtap/server/offline`: capture to analysed records with no native module
// loaded. Each case runs in a child process, so the modules it loads are its
// own and not those of the test runner.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../../test-support/corpus.js';

const NATIVE = ['better-sqlite3', 'pg', 'cap'];

interface ChildReport {
  statements: { sql: string; statementType?: string; verb?: string; objects?: unknown[]; fingerprint?: string; risk?: string; ruleIds?: string[] }[];
  alerts: string[];
  /** require.cache entries under node_modules/<native package>/ */
  loaded: string[];
  /** Shared objects (native addons) the process opened. */
  addons: string[];
}

// The child audits the example MariaDB session and reports what it loaded.
const body = (load: string): string => `
${load}
const { events } = await m.analyzeCaptureFile(${JSON.stringify(join(repoRoot, 'examples/captures/mariadb-session.pcap'))});
const cache = Object.keys(require.cache);
const out = {
  statements: events.filter((e) => e.kind === 'statement'),
  alerts: events.filter((e) => e.kind === 'alert').map((e) => e.alert.ruleId).sort(),
  loaded: cache.filter((k) => ${JSON.stringify(NATIVE)}.some((n) => k.includes('/node_modules/' + n + '/'))),
  addons: process.report.getReport().sharedObjects.filter((s) => s.endsWith('.node')),
};
process.stdout.write(JSON.stringify(out));
`;

function run(args: string[], script: string): ChildReport {
  const r = spawnSync(process.execPath, [...args, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: join(repoRoot, 'packages/server') });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildReport;
}

function check(t: import('ava').ExecutionContext, r: ChildReport): void {
  t.deepEqual(r.loaded, [], 'no native package in require.cache');
  t.deepEqual(r.addons, [], 'no native addon opened');
  t.true(r.statements.length >= 8);
  for (const s of r.statements) {
    t.truthy(s.statementType, s.sql);
    t.truthy(s.verb, s.sql);
    t.true(Array.isArray(s.objects), s.sql);
    t.truthy(s.fingerprint, s.sql);
    t.truthy(s.risk, s.sql);
  }
  const drop = r.statements.find((s) => s.sql === 'DROP TABLE customers');
  t.is(drop?.statementType, 'ddl');
  t.deepEqual(drop?.objects, [{ name: 'customers', op: 'drop' }]);
  t.deepEqual(r.alerts, ['dangerous.drop-or-truncate', 'dangerous.write-without-where', 'sqli.detected']);
}

const built = join(repoRoot, 'packages/server/dist/offline.js');

test('the built ESM entry gives analysed records and loads no native module', (t) => {
  if (!existsSync(built)) return t.fail('packages/server/dist/offline.js is missing: run npm run build');
  check(t, run([], `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);\n${body("const m = await import('@dbtap/server/offline');")}`));
});

test('the built CJS entry gives analysed records and loads no native module', (t) => {
  if (!existsSync(built)) return t.fail('packages/server/dist/offline.cjs is missing: run npm run build');
  check(t, run([], `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);\n${body("const m = require('@dbtap/server/offline');")}`));
});

test('the source entry loads no native module either', (t) => {
  const src = join(repoRoot, 'packages/server/src/offline.ts');
  check(t, run(['--import=tsx'], `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);\n${body(`const m = await import(${JSON.stringify(src)});`)}`));
});

test('the main entry, by contrast, loads the SQLite addon (the check above can fail)', (t) => {
  if (!existsSync(built)) return t.fail('packages/server/dist/index.js is missing: run npm run build');
  const r = run([], `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);\n${body("const m = await import('@dbtap/server');")}`);
  t.true(r.loaded.some((k) => k.includes('/node_modules/better-sqlite3/')));
});

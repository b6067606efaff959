// The packages as a product that embeds them sees them: `npm pack` every
// package, install the tarballs into a scratch project, type-check an ES
// module consumer and a CommonJS consumer (strict, no skipLibCheck), and load
// them. The install skips install scripts, so the native addons
// (better-sqlite3, cap) are present but not built: whatever loads them
// eagerly fails here.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../../test-support/corpus.js';

const run = promisify(execFile);
const PACKAGES = ['core', 'protocols', 'rules', 'agent', 'server'] as const;
const TSC = join(repoRoot, 'node_modules/typescript/bin/tsc');

interface PackResult {
  name: string;
  filename: string;
  files: { path: string }[];
}

const scratch = mkdtempSync(join(tmpdir(), 'dbtap-pack-'));
let packed: PackResult[] = [];

test.before(async () => {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])], { cwd: repoRoot, maxBuffer: 64 << 20 });
  // npm prints the prepack scripts' banners before the JSON
  packed = JSON.parse(stdout.slice(stdout.indexOf('['))) as PackResult[];
  const nodeTypes = (JSON.parse(readFileSync(join(repoRoot, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--no-package-lock', ...packed.map((p) => `./${p.filename}`), `@types/node@${nodeTypes}`], { cwd: scratch, maxBuffer: 64 << 20 });
});
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

test('every tarball carries LICENSE, README, CommonJS declarations and no declaration maps', (t) => {
  t.deepEqual(packed.map((p) => p.name).sort(), PACKAGES.map((p) => `@dbtap/${p}`).sort());
  for (const p of packed) {
    const files = p.files.map((f) => f.path);
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'lib/index.d.ts', 'lib/index.d.cts']) t.true(files.includes(f), `${p.name} lacks ${f}`);
    t.deepEqual(files.filter((f) => f.endsWith('.map') && !f.startsWith('dist/')), [], `${p.name} ships maps into sources it does not ship`);
    t.deepEqual(files.filter((f) => f.startsWith('src/') || f.startsWith('test/')), [], p.name);
    const manifest = JSON.parse(readFileSync(join(scratch, 'node_modules', p.name, 'package.json'), 'utf8')) as { repository?: { directory?: string }; license?: string };
    t.is(manifest.license, 'Apache-2.0');
    t.is(manifest.repository?.directory, `packages/${p.name.slice('@dbtap/'.length)}`);
  }
  t.is(readFileSync(join(scratch, 'node_modules/@dbtap/core/LICENSE'), 'utf8'), readFileSync(join(repoRoot, 'LICENSE'), 'utf8'));
});

// Uses a value and a type of every package, so that each package's whole
// declaration graph (and the types of its dependencies) is checked.
const CONSUMER = `import { ByteReader, type AuditEvent } from '@dbtap/core';
import { ProtocolRegistry, mysql } from '@dbtap/protocols';
import { fingerprint, type Dialect } from '@dbtap/rules';
import { AgentErrorCodes, type AgentConfig } from '@dbtap/agent';
import { SqliteStore, PostgresStore, AuditServer, type ServerConfig } from '@dbtap/server';

const dialect: Dialect = 'mysql';
export const checks = [new ByteReader(new Uint8Array(4)).u32le(), new ProtocolRegistry().register(mysql).list().length, fingerprint('SELECT 1', dialect), AgentErrorCodes.CAPTURE];
export type Used = [AuditEvent, AgentConfig, ServerConfig, SqliteStore, PostgresStore, AuditServer];
`;

async function typecheck(dir: string, type: 'module' | 'commonjs', module: string): Promise<{ code: number; out: string }> {
  const root = join(scratch, dir);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: dir, private: true, type }));
  writeFileSync(join(root, 'index.ts'), CONSUMER);
  // strict, no skipLibCheck: what a careful consumer runs
  writeFileSync(join(root, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module, moduleResolution: module, target: 'ES2022', types: ['node'], noEmit: true }, files: ['index.ts'] }));
  try {
    await run(process.execPath, [TSC, '-p', root], { cwd: root });
    return { code: 0, out: '' };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? 1, out: e.stdout ?? String(err) };
  }
}

test('an ES module consumer type-checks against every package', async (t) => {
  const r = await typecheck('esm', 'module', 'nodenext');
  t.is(r.code, 0, r.out);
});

test('a CommonJS consumer (module node16) type-checks against every package', async (t) => {
  const r = await typecheck('cjs', 'commonjs', 'node16');
  t.is(r.code, 0, r.out);
});

// Prints, as JSON, which of the native or heavy modules the process loaded.
const PROBE = `const loaded = () => {
  const natives = process.report.getReport().sharedObjects.filter((s) => s.endsWith('.node'));
  const modules = Object.keys(require('node:module').Module._cache).filter((k) => /node_modules[\\\\/](better-sqlite3|pg|cap|msgpackr-extract|@msgpackr-extract)[\\\\/]/.test(k));
  return { natives, modules };
};`;

async function probe(code: string, esm: boolean): Promise<{ natives: string[]; modules: string[]; extra?: unknown }> {
  const args = esm ? ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(process.cwd() + '/'); ${PROBE} ${code}`] : ['-e', `${PROBE} ${code}`];
  const { stdout } = await run(process.execPath, args, { cwd: scratch });
  return JSON.parse(stdout) as { natives: string[]; modules: string[] };
}

for (const name of ['core', 'protocols', 'rules'] as const) {
  test(`@dbtap/${name} loads with require and import and loads no native module`, async (t) => {
    const viaRequire = await probe(`const m = require('@dbtap/${name}'); console.log(JSON.stringify({ ...loaded(), extra: Object.keys(m).length }));`, false);
    t.deepEqual([viaRequire.natives, viaRequire.modules], [[], []]);
    t.true((viaRequire.extra as number) > 5, 'the CommonJS build exports the API');
    const viaImport = await probe(`const m = await import('@dbtap/${name}'); console.log(JSON.stringify({ ...loaded(), extra: Object.keys(m).length }));`, true);
    t.deepEqual([viaImport.natives, viaImport.modules], [[], []]);
    t.is(viaImport.extra, viaRequire.extra, 'both builds export the same names');
  });
}

test('@dbtap/server loads its database drivers only when a store is made', async (t) => {
  const r = await probe(
    `const s = require('@dbtap/server');
     const before = loaded();
     let code;
     try { new s.SqliteStore(':memory:').close(); code = 'ok'; } catch (err) { code = err.code; }
     console.log(JSON.stringify({ ...before, extra: { code, after: loaded().modules } }));`,
    false,
  );
  t.deepEqual(r.modules.filter((m) => !/msgpackr/.test(m)), [], 'importing @dbtap/server loads no database driver or capture binding');
  const { code, after } = r.extra as { code: string; after: string[] };
  // the scratch install built no addon, so better-sqlite3 loads but its binding does not
  t.is(code, 'DBTAP_E_STORE_FAILED');
  t.true(
    after.some((m) => /better-sqlite3/.test(m)),
    'making a store loads better-sqlite3',
  );
});

test('@dbtap/agent without a built libpcap binding: the transport loads, live capture fails with DBTAP_E_NO_CAPTURE_BINDING', async (t) => {
  const r = await probe(
    `const a = await import('@dbtap/agent');
     const before = loaded();
     let code;
     try { a.listCaptureDevices(); code = 'ok'; } catch (err) { code = err.code; }
     console.log(JSON.stringify({ ...before, extra: { code, transport: typeof a.TransportServer } }));`,
    true,
  );
  t.deepEqual(r.modules.filter((m) => /[\\/]cap[\\/]/.test(m)), []);
  t.deepEqual(r.extra, { code: 'DBTAP_E_NO_CAPTURE_BINDING', transport: 'function' });
});

test('the installed executables run: dbtap audit, dbtap-agent --version', async (t) => {
  const bin = join(scratch, 'node_modules/.bin');
  t.true(existsSync(join(bin, 'dbtap')) && existsSync(join(bin, 'dbtap-server')) && existsSync(join(bin, 'dbtap-agent')));
  const audit = await run(join(bin, 'dbtap'), ['audit', join(repoRoot, 'examples/captures/mariadb-session.pcap')], { cwd: scratch });
  const records = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
  t.true(records.filter((r) => r.kind === 'statement').length > 5, audit.stderr);
  const agent = await run(join(bin, 'dbtap-agent'), ['--version'], { cwd: scratch });
  t.is(agent.stdout.trim(), '0.1.0');
});

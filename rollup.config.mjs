// Bundles each package's tsc output (lib/) into one ESM and one CJS file in
// dist/. Type declarations stay in lib/ (see each package's exports map).
import { existsSync, readFileSync } from 'node:fs';

const packages = ['core', 'protocols', 'rules', 'agent', 'server'];

// Everything that is not a relative path is a dependency, never bundled.
const external = (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('\0');

const configs = [];
for (const name of packages) {
  const dir = `packages/${name}`;
  configs.push({
    input: `${dir}/lib/index.js`,
    external,
    output: [
      { file: `${dir}/dist/index.js`, format: 'es', sourcemap: true },
      { file: `${dir}/dist/index.cjs`, format: 'cjs', sourcemap: true, exports: 'named', interop: 'auto' },
    ],
    onwarn(warning, warn) {
      if (warning.code === 'CIRCULAR_DEPENDENCY') return;
      warn(warning);
    },
  });
  const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
  // Subpath entries (exports other than '.') get their own ESM and CJS bundles.
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (subpath === '.' || typeof target !== 'object' || target.import === undefined) continue;
    const base = target.import.replace(/^\.\/dist\//, '').replace(/\.js$/, '');
    configs.push({
      input: `${dir}/lib/${base}.js`,
      external,
      output: [
        { file: `${dir}/dist/${base}.js`, format: 'es', sourcemap: true },
        { file: `${dir}/dist/${base}.cjs`, format: 'cjs', sourcemap: true, exports: 'named', interop: 'auto' },
      ],
    });
  }
  // A package's worker-thread entry (server: src/worker.ts) is started by file name, beside the bundles.
  if (existsSync(`${dir}/src/worker.ts`)) {
    configs.push({ input: `${dir}/lib/worker.js`, external, output: { file: `${dir}/dist/worker.js`, format: 'es', sourcemap: true } });
  }
  // Executables (bin entries) are ESM files with a shebang.
  if (pkg.bin && existsSync(`${dir}/src/cli.ts`)) {
    configs.push({
      input: `${dir}/lib/cli.js`,
      external,
      output: { file: `${dir}/dist/cli.js`, format: 'es', sourcemap: true, banner: '#!/usr/bin/env node' },
    });
  }
}

export default configs;

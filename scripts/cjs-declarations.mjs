// Writes a CommonJS twin (`.d.cts`) beside every declaration file tsc emitted
// into packages/*/lib. The packages' `require` export condition points at
// these: a `.d.ts` in a `"type": "module"` package declares an ES module, and
// TypeScript refuses to let CommonJS code require one (TS1479). The twins are
// the same declarations with relative imports renamed `./x.js` -> `./x.cjs`,
// which TypeScript resolves to `./x.d.cts`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// `from './x.js'`, `import('./x.js')`, `export * from '../y/index.js'`
const RELATIVE = /((?:from|import)\s*\(?\s*)(['"])(\.\.?\/[^'"]*)\.js\2/g;

function walk(dir) {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) n += walk(path);
    else if (entry.name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8').replace(RELATIVE, '$1$2$3.cjs$2');
      writeFileSync(path.slice(0, -'.d.ts'.length) + '.d.cts', text);
      n++;
    }
  }
  return n;
}

for (const pkg of readdirSync('packages')) {
  const lib = join('packages', pkg, 'lib');
  try {
    walk(lib);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
}

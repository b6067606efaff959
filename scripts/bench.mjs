// Runs every benchmark (packages/*/bench/*.bench.ts) in turn with tsx.
// Each prints machine-readable JSON lines; this script only sequences them.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const only = process.argv.slice(2);
let failed = 0;
for (const pkg of readdirSync('packages')) {
  const dir = join('packages', pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.bench.ts')).sort()) {
    const file = join(dir, f);
    if (only.length > 0 && !only.some((o) => file.includes(o))) continue;
    console.error(`# ${file}`);
    const r = spawnSync(process.execPath, ['--import=tsx', '--expose-gc', file], { stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
}
process.exit(failed === 0 ? 0 : 1);

// The `dbtap` and `dbtap-server` executables: only the dispatch. Each
// command is a file of its own under cli/.
import { readFileSync } from 'node:fs';
import { exitQuietlyOnClosedStdout, main } from './cli/main.js';

// src/cli.ts, lib/cli.js and dist/cli.js all sit one level below the package.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

exitQuietlyOnClosedStdout();
main(process.argv.slice(2), { version, program: process.argv[1] ?? 'dbtap' }).then((code) => {
  process.exitCode = code;
});

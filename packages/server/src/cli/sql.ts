// `dbtap sql`: classify, fingerprint or look for injection in one statement per line of stdin.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DIALECTS, parseDialect, runSqlTool, type Dialect, type SqlToolMode } from '@dbtap/rules';
import { printLine, UsageError, type Command } from './common.js';

export const sqlCommand: Command = {
  name: 'sql',
  usage: `  sql classify|fingerprint|sqli [--dialect mysql|postgres|tsql|oracle|db2]
      Read one statement per line on stdin, print one JSON object per line.
`,
  run,
};

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { dialect: { type: 'string', default: 'mysql' } } });
  const mode = positionals[0];
  if (positionals.length !== 1 || (mode !== 'classify' && mode !== 'fingerprint' && mode !== 'sqli')) {
    throw new UsageError('usage: dbtap sql classify|fingerprint|sqli [--dialect mysql|postgres|tsql|oracle|db2]');
  }
  let dialect: Dialect;
  try {
    dialect = parseDialect(values.dialect);
  } catch {
    throw new UsageError(`--dialect must be one of ${DIALECTS.join(', ')} (or mariadb, postgresql, mssql), not '${values.dialect}'`);
  }
  // One line in, one line out as each line arrives, so the tool works at the end of a live pipe.
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    for (const out of runSqlTool(mode as SqlToolMode, [line], dialect)) printLine(`${out}\n`);
  }
  return 0;
}

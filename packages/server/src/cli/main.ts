// The `dbtap` dispatcher: picks the command, answers --help and --version,
// and turns what a command throws into a message on stderr and an exit code.
import { basename } from 'node:path';
import { ErrorCodes, isDbtapError } from '@dbtap/core';
import { auditCommand } from './audit.js';
import { EXIT, UsageError, type Command } from './common.js';
import { importCommand } from './import.js';
import { reportCommand } from './report.js';
import { rulesCommand } from './rules.js';
import { serveCommand } from './serve.js';
import { sqlCommand } from './sql.js';
import { tokenCommand } from './token.js';
import { verifyCommand } from './verify.js';

const COMMANDS: readonly Command[] = [auditCommand, rulesCommand, sqlCommand, serveCommand, importCommand, reportCommand, verifyCommand, tokenCommand];

// Commands `dbtap-server` runs as such; anything else is an argument of `serve`.
const SERVER_COMMANDS = new Set(['import', 'report', 'verify', 'help']);

function usage(version: string): string {
  return `dbtap ${version}: network database audit

usage: dbtap <command> [options]
       dbtap <command> --help | dbtap --help | dbtap --version

commands:
${COMMANDS.map((c) => c.usage).join('')}  help
      Show this text.

Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error
(verify: 3 when the store cannot be verified).
`;
}

/** Whether the arguments ask for help (before any `--`). */
function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Runs `dbtap ARGS` (or `dbtap-server ARGS` when `program` is
 * `dbtap-server`) and resolves with the exit code: usage and errors go to
 * stderr, help and version to stdout.
 */
export async function main(argv: string[], options: { version: string; program: string }): Promise<number> {
  const { version } = options;
  if (basename(options.program) === 'dbtap-server' && !SERVER_COMMANDS.has(argv[0] ?? '') && argv[0] !== '--version' && argv[0] !== '-V' && argv[0] !== '--help' && argv[0] !== '-h') {
    argv = ['serve', ...argv];
  }
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${version}\n`);
    return EXIT.OK;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const command = COMMANDS.find((c) => c.name === rest[0]);
    process.stdout.write(command !== undefined ? `usage: dbtap\n${command.usage}` : usage(version));
    return EXIT.OK;
  }
  if (name === undefined) {
    process.stderr.write(usage(version));
    return EXIT.USAGE;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`dbtap: unknown command '${name}'\n\n${usage(version)}`);
    return EXIT.USAGE;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(`usage: dbtap\n${command.usage}`);
    return EXIT.OK;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`dbtap: ${err.message}\n\nusage: dbtap\n${command.usage}`);
      return EXIT.USAGE;
    }
    if (isDbtapError(err)) {
      process.stderr.write(`dbtap: ${err.code}: ${err.message}\n`);
      return err.code === ErrorCodes.CONFIG ? EXIT.USAGE : EXIT.FAILURE;
    }
    process.stderr.write(`dbtap: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.FAILURE;
  }
}

/**
 * Ends quietly (exit 0) when whoever reads stdout goes away, as `| head -1`
 * does: the output is no longer wanted, which is no failure.
 */
export function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.OK);
    throw err;
  });
}

// What every `dbtap` command shares: the command shape, usage errors, exit
// codes, port lists, the log, and the rules and catalog of a configuration.
import { mkdirSync, writeSync } from 'node:fs';
import { AgentLogger } from '@dbtap/agent';
import { createDefaultRegistry, type ProtocolRegistry } from '@dbtap/protocols';
import { AuditCatalog } from '../catalog.js';
import { registryDialects } from '../compose.js';
import type { ServerConfig } from '../config.js';
import { loadRuleSelection, RuleRouter, type RuleSelection } from '../rules.js';

/**
 * Exit codes of `dbtap`, `dbtap-server` and `dbtap-agent`: 0 done, 1 a
 * runtime failure (I/O, a database, a capture that cannot be read), 2 a
 * usage or configuration error. A command may add its own above 2
 * (`verify`: 3 when the store cannot be verified).
 */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

/** A wrong command line: printed with the command's usage, exit 2. */
export class UsageError extends Error {}

/** One `dbtap` command. */
export interface Command {
  /** What follows `dbtap`. */
  readonly name: string;
  /** Its usage and description, as `dbtap help` and `dbtap NAME --help` print them. */
  readonly usage: string;
  /** Runs it; resolves with the exit code. */
  run(args: string[]): Promise<number>;
}

// Something to Atomics.wait on while a non-blocking stdout is full.
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes to stdout synchronously, so a long audit holds no queue of output
 * in memory and a slow reader slows it down; once the reader is gone
 * (`| head -1` closed the pipe), ends the process quietly with exit 0
 * instead of working on for nobody.
 */
export function printLine(text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  writeStdout(bytes, bytes.length);
}

function writeStdout(bytes: Uint8Array, length: number): void {
  for (let off = 0; off < length; ) {
    try {
      off += writeSync(1, bytes, off, length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') process.exit(EXIT.OK);
      if (code !== 'EAGAIN') throw err;
      Atomics.wait(PAUSE, 0, 0, 2);
    }
  }
}

/** Bytes {@link StdoutLines} gathers before one write. */
const STDOUT_CHUNK = 256 * 1024;

/**
 * {@link printLine} for many lines: text is encoded into one chunk and
 * written when the chunk is full (or on {@link StdoutLines.flush}), so an
 * audit makes one system call per 256 KiB instead of one per record, with
 * the same blocking writes (a slow reader slows the audit) and the same
 * quiet exit once the reader is gone.
 */
export class StdoutLines {
  private readonly chunk = Buffer.allocUnsafe(STDOUT_CHUNK);
  private used = 0;

  /** Adds text (UTF-8 encoded) to the chunk, writing the chunk first when the text might not fit. */
  write(text: string): void {
    // a UTF-16 unit is at most 3 UTF-8 bytes
    if (text.length * 3 > STDOUT_CHUNK - this.used) {
      this.flush();
      if (text.length * 3 > STDOUT_CHUNK) {
        printLine(text);
        return;
      }
    }
    this.used += this.chunk.write(text, this.used, 'utf8');
  }

  /** Writes what the chunk holds. */
  flush(): void {
    if (this.used === 0) return;
    const used = this.used;
    this.used = 0;
    writeStdout(this.chunk, used);
  }
}

/** Ports from `--port 3306,5432` (each a whole number from 1 to 65535). */
export function parsePorts(text: string): number[] {
  const ports = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`invalid port in --port: '${text}'`);
  }
  return ports;
}

/** The server's log on stderr: `<ISO time> <level> <message>`, as the agent writes it. */
export function serverLog(): AgentLogger {
  return new AgentLogger(undefined, true);
}

/**
 * The decoders, rule engine and audit catalog of a server configuration:
 * `selection` of rules, judged per audit object by its rule group, with the
 * SQL dialect each decoder declares. With `dataDir`, API changes to objects
 * and rule groups are kept there (it is created).
 */
export function configuredRules(
  cfg: ServerConfig,
  selection: RuleSelection,
  dataDir?: string,
): { catalog: AuditCatalog; rules: RuleRouter; registry: ProtocolRegistry } {
  const ruleSet = loadRuleSelection(selection);
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const registry = createDefaultRegistry();
  const catalog = new AuditCatalog({ ...(dataDir !== undefined ? { dataDir } : {}), objects: cfg.objects, ruleGroups: cfg.ruleGroups, ruleFileGroups: ruleSet.groups.keys() });
  return { catalog, rules: new RuleRouter(ruleSet, catalog, { dialectFor: registryDialects(registry) }), registry };
}

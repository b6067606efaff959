// The agent's (and the server's) log: every line goes to stderr when asked,
// else through `debug` (namespace dbtap:agent), and to a log file when
// configured. Lines read `<ISO time> <level> <message>`.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import createDebug from 'debug';

const debug = createDebug('dbtap:agent');

/** Severity of a log line. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Where the agent daemon writes what happens (connects, disconnects, errors with their reasons). */
export class AgentLogger {
  private file: string | undefined;
  private fileBroken = false;

  /**
   * @param file - log file to append to (created with its directory); undefined for none
   * @param stderr - also write lines to stderr
   */
  constructor(
    file: string | undefined,
    private readonly stderr = false,
  ) {
    this.setFile(file);
  }

  /** Switches the log file (on reload). */
  setFile(file: string | undefined): void {
    this.file = file;
    this.fileBroken = false;
    if (file) {
      try {
        mkdirSync(dirname(file), { recursive: true });
      } catch {
        // reported on the first write
      }
    }
  }

  /** Writes one line. */
  log(level: LogLevel, message: string): void {
    const line = `${new Date().toISOString()} ${level} ${message}`;
    // one of the two: with DEBUG=dbtap:* both would print the line on stderr
    if (this.stderr) process.stderr.write(`${line}\n`);
    else debug('%s %s', level, message);
    if (this.file && !this.fileBroken) {
      try {
        // the log names users, hosts and statements: created readable by the owner only
        appendFileSync(this.file, `${line}\n`, { mode: 0o600 });
      } catch (err) {
        this.fileBroken = true;
        process.stderr.write(`${new Date().toISOString()} error cannot write log file ${this.file}: ${(err as Error).message}\n`);
      }
    }
  }

  /** `info` line. */
  info(message: string): void {
    this.log('info', message);
  }

  /** `warn` line. */
  warn(message: string): void {
    this.log('warn', message);
  }

  /** `error` line. */
  error(message: string): void {
    this.log('error', message);
  }
}

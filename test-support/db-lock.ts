// Tests that switch a database's global logging on and off (MariaDB's
// general log, PostgreSQL's statement log) run in separate worker processes;
// this lock serialises them so one test's restore does not switch off the
// log another is still reading.
import { closeSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCK = join(tmpdir(), 'dbtap-db-log.lock');
const STALE_MS = 10 * 60_000;

/** Runs `fn` while holding the machine-wide database-log lock. */
export async function withDbLogLock<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        // a holder that died without releasing: take over after a while
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_MS) rmSync(LOCK, { force: true });
      } catch {
        // released meanwhile
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { force: true });
  }
}

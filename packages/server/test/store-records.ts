// The records of a SQLite store file, for tests and benchmarks (no test
// runner loaded here, so benchmarks can use it too).
import type { AuditEvent } from '@dbtap/core';
import { SqliteStore } from '../src/index.js';

/** Every record of a SQLite store file, oldest first. */
export async function readAll(dbFile: string): Promise<AuditEvent[]> {
  const store = new SqliteStore(dbFile);
  const out: AuditEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.search({ order: 'asc', limit: 5000, ...(cursor ? { cursor } : {}) });
    out.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  await store.close();
  return out;
}

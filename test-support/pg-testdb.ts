// Dropping a test database on the local PostgreSQL without killing
// connections that are still closing: `pool.end()` resolves once the
// terminate messages are sent, not when the backends are gone, and a forced
// drop would kill a late one, whose error then surfaces after the tests.
import pg from 'pg';

/** Waits (up to `waitMs`) until no client backend is attached to `dbName`, then drops it; returns what was still attached. */
export async function dropTestDatabase(admin: pg.ClientConfig, dbName: string, waitMs = 10_000): Promise<string[]> {
  const c = new pg.Client(admin);
  await c.connect();
  try {
    let left: string[] = [];
    for (const end = Date.now() + waitMs; ; ) {
      left = (await c.query(`SELECT pid, state, application_name FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`, [dbName])).rows.map(
        (r: { pid: number; state: string; application_name: string }) => `pid ${r.pid} (${r.application_name || 'no name'}, ${r.state})`,
      );
      if (left.length === 0 || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    return left;
  } finally {
    await c.end();
  }
}

/** Creates `dbName`; returns why it could not (no server, no rights), or undefined once it exists. */
export async function createTestDatabase(admin: pg.ClientConfig, dbName: string): Promise<string | undefined> {
  const c = new pg.Client({ ...admin, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

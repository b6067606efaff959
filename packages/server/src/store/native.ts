// The database drivers of the stores, loaded when a store is first made
// rather than when @dbtap/server is imported: a product that embeds the
// pipeline, the rules or the HTTP layer never loads better-sqlite3's native
// addon or pg, and an install whose addon failed to build still audits
// capture files.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import { DbtapError } from '@dbtap/core';
import { StoreErrorCodes } from './query.js';

const requireCjs = createRequire(import.meta.url);
const loaded = new Map<string, unknown>();

function load<T>(name: string, what: string): T {
  let mod = loaded.get(name);
  if (mod === undefined) {
    try {
      mod = requireCjs(name);
    } catch (err) {
      throw new DbtapError(StoreErrorCodes.STORE_FAILED, `${what} needs the npm package "${name}", which could not be loaded: ${(err as Error).message}`, { module: name }, { cause: err });
    }
    loaded.set(name, mod);
  }
  return mod as T;
}

/** better-sqlite3's `Database` class. */
export function sqliteDriver(): typeof BetterSqlite3 {
  return load<typeof BetterSqlite3>('better-sqlite3', 'the SQLite store');
}

/** The `pg` module. */
export function postgresDriver(): typeof pg {
  return load<typeof pg>('pg', 'the PostgreSQL store');
}

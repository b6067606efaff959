// The `store:` section of server.yaml: which store every command opens (the
// embedded SQLite file, or a PostgreSQL database), and opening it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { checkKeys, type ConfigFail } from '../validate.js';
import type { IntegrityOptions } from '../integrity/types.js';
import { postgresDriver } from './native.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { AuditStore } from './types.js';

/**
 * The `store` section of the server configuration: the embedded SQLite
 * file (the default, `<dataDir>/audit.db`) or a PostgreSQL database.
 */
export type StoreConfig =
  | {
      /** The embedded store. */
      type: 'sqlite';
      /** Database file; default `audit.db` in the data directory. */
      path?: string;
      /** `full` (default): every commit is fsynced; `normal`: survives a process crash, not a power cut. */
      synchronous?: 'full' | 'normal';
    }
  | {
      /** A PostgreSQL database. */
      type: 'postgres';
      /** `postgres://user@host:port/database`; a password is better given as `PGPASSWORD`. */
      url: string;
      /** Prefix of the table names (default `dbtap`). */
      prefix?: string;
      /** Record partitions: one per UTC `day` (default) or `month`. */
      partition?: 'day' | 'month';
    };

const SQLITE_KEYS = ['type', 'path', 'synchronous'] as const;
const POSTGRES_KEYS = ['type', 'url', 'prefix', 'partition'] as const;

/**
 * Checks the `store` section at `path` (`store`): unknown keys, a key of
 * the other store type, or a wrong value fail through `fail`. Absent means
 * the SQLite default.
 */
export function parseStoreConfig(value: unknown, path: string, fail: ConfigFail): StoreConfig {
  if (value === undefined || value === null) return { type: 'sqlite' };
  if (typeof value !== 'object' || Array.isArray(value)) return fail(path, 'a mapping');
  const o = value as Record<string, unknown>;
  const type = o.type ?? 'sqlite';
  const str = (k: string, want = 'a non-empty string'): string | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') fail(`${path}.${k}`, want);
    return v as string;
  };
  if (type === 'sqlite') {
    checkKeys(o, SQLITE_KEYS, path, fail);
    const cfg: StoreConfig = { type: 'sqlite' };
    const file = str('path');
    if (file !== undefined) cfg.path = file;
    const sync = str('synchronous');
    if (sync !== undefined) {
      if (sync !== 'full' && sync !== 'normal') fail(`${path}.synchronous`, 'one of full, normal');
      cfg.synchronous = sync as 'full' | 'normal';
    }
    return cfg;
  }
  if (type === 'postgres') {
    checkKeys(o, POSTGRES_KEYS, path, fail);
    // The URL may hold a password: it is never repeated in a message.
    const url = o.url;
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\/./.test(url)) fail(`${path}.url`, 'a postgres:// or postgresql:// URL');
    const cfg: StoreConfig = { type: 'postgres', url: url as string };
    const prefix = str('prefix');
    if (prefix !== undefined) {
      if (!/^[a-z_][a-z0-9_]{0,39}$/.test(prefix)) fail(`${path}.prefix`, 'lower-case letters, digits and _ (at most 40, not starting with a digit)');
      cfg.prefix = prefix;
    }
    const partition = str('partition');
    if (partition !== undefined) {
      if (partition !== 'day' && partition !== 'month') fail(`${path}.partition`, 'one of day, month');
      cfg.partition = partition as 'day' | 'month';
    }
    return cfg;
  }
  return fail(`${path}.type`, 'one of sqlite, postgres');
}

/** Where a store is, for logs and messages: the file, or the URL without its password. */
export function describeStore(cfg: StoreConfig, dataDir: string): string {
  if (cfg.type === 'sqlite') return sqlitePath(cfg, dataDir);
  let where: string;
  try {
    const u = new URL(cfg.url);
    if (u.password !== '') u.password = '***';
    u.search = '';
    where = u.toString();
  } catch {
    where = 'postgres://(unparsable URL)';
  }
  return `${where} (tables ${cfg.prefix ?? 'dbtap'}_*)`;
}

function sqlitePath(cfg: { path?: string }, dataDir: string): string {
  return cfg.path ?? join(dataDir, 'audit.db');
}

/** How {@link openStore} opens a store. */
export interface OpenStoreOptions {
  /** The data directory, where the SQLite file is by default. */
  dataDir: string;
  /** Tamper evidence: the key that signs the chain. */
  integrity?: IntegrityOptions;
  /**
   * Refuse to create a store: the SQLite file or the PostgreSQL tables must
   * exist (`report`, `verify`), else `DBTAP_E_IO`.
   */
  mustExist?: boolean;
  /** A SQLite store makes its appends in a thread of its own ({@link SqliteStoreOptions.writerThread}). */
  writerThread?: boolean;
}

/**
 * The SQLite file of a configuration when the store is SQLite and, with
 * `mustExist`, the file exists; `undefined` for a PostgreSQL store.
 */
export function configuredSqlitePath(cfg: StoreConfig, options: OpenStoreOptions): string | undefined {
  if (cfg.type !== 'sqlite') return undefined;
  const path = sqlitePath(cfg, options.dataDir);
  if (options.mustExist === true && !existsSync(path)) throw new DbtapError(ErrorCodes.IO, `no audit store at ${path} (give --data-dir or store.path)`, { path });
  return path;
}

/**
 * Opens the store a configuration names.
 *
 * @throws DbtapError `DBTAP_E_IO` when `mustExist` and there is no store,
 *   `DBTAP_E_STORE_FAILED` when it cannot be opened.
 */
export async function openStore(cfg: StoreConfig, options: OpenStoreOptions): Promise<AuditStore> {
  const integrity = options.integrity !== undefined ? { integrity: options.integrity } : {};
  if (cfg.type === 'sqlite') {
    const path = configuredSqlitePath(cfg, options)!;
    return new SqliteStore({ path, ...(cfg.synchronous !== undefined ? { synchronous: cfg.synchronous } : {}), ...integrity, ...(options.writerThread === true ? { writerThread: true } : {}) });
  }
  const prefix = cfg.prefix ?? 'dbtap';
  if (options.mustExist === true && !(await postgresTablesExist(cfg.url, prefix))) {
    throw new DbtapError(ErrorCodes.IO, `no audit store at ${describeStore(cfg, options.dataDir)}`, { prefix });
  }
  return PostgresStore.open({ connection: cfg.url, prefix, ...(cfg.partition !== undefined ? { partition: cfg.partition } : {}), ...integrity });
}

/** True when the database at `url` holds the records table of `prefix`. */
async function postgresTablesExist(url: string, prefix: string): Promise<boolean> {
  const client = new (postgresDriver().Client)({ connectionString: url });
  try {
    await client.connect();
    const r = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [`${prefix}_records`]);
    return r.rows[0]?.found === true;
  } catch (err) {
    throw new DbtapError(ErrorCodes.IO, `cannot reach the PostgreSQL store: ${(err as Error).message}`, { prefix }, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

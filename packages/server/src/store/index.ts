/**
 * Audit stores: the {@link AuditStore} interface, its query types, the
 * SQLite and PostgreSQL implementations, and the `store` section of the
 * server configuration that picks one.
 *
 * @module
 */
export * from './types.js';
export { StoreErrorCodes, parseTime } from './query.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { describeStore, openStore, parseStoreConfig, configuredSqlitePath, type OpenStoreOptions, type StoreConfig } from './config.js';

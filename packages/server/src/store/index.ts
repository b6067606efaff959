/**
 * Audit stores: the {@link AuditStore} interface, its query types, and the
 * SQLite and PostgreSQL implementations.
 *
 * @module
 */
export * from './types.js';
export { StoreErrorCodes, parseTime } from './query.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres.js';

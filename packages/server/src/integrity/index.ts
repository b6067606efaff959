/**
 * Tamper evidence: the hash chain over stored records, its verification,
 * and the settings that sign it.
 *
 * @module
 */
export * from './types.js';
export { IntegrityErrorCodes } from './chain.js';
export { verifySqliteFile } from './sqlite.js';
export type { IntegrityConfig } from './config.js';

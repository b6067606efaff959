/**
 * Tamper evidence: the hash chain over stored records, its verification,
 * and the settings that sign it.
 *
 * @module
 */
export * from './types.js';
export { IntegrityErrorCodes, chainKey, recordHash, type ChainKey } from './chain.js';
export { verifySqliteFile } from './sqlite.js';
export { parseIntegrityConfig, type IntegrityConfig } from './config.js';

/**
 * Database wire-protocol decoders for dbtap, the decoder plugin interface,
 * the registry of built-in decoders and protocol detection.
 *
 * @packageDocumentation
 */
export * from './plugin.js';
export * from './kit/index.js';
export * from './tls/index.js';
export * from './registry.js';
export * from './detect.js';
export * from './builtin.js';
export * from './postgres/index.js';
export * from './mysql/index.js';
export * from './tds/index.js';
export * from './drda/index.js';
export * from './oracle/index.js';
export * from './dameng/index.js';
export * from './cache/index.js';

/**
 * Database wire-protocol decoders for dbtap, the decoder plugin interface,
 * the registry and protocol detection.
 *
 * @packageDocumentation
 */
export * from './plugin.js';
export * from './registry.js';
export * from './postgres/index.js';
export * from './mysql/index.js';

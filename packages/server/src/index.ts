/**
 * The dbtap audit server: the pipeline that joins capture, reassembly,
 * protocol decoding and rules, offline audit of capture files, and the
 * `dbtap` command line.
 *
 * @packageDocumentation
 */
export * from './pipeline.js';
export * from './format.js';
export * from './audit.js';
export * from './config.js';
export * from './daemon.js';
export * from './store/index.js';
export * from './rules.js';
export * from './objects.js';
export * from './catalog.js';
export * from './http/index.js';
export * from './reports/index.js';
export * from './notify/index.js';
export * from './integrity/index.js';
export * from './masking/index.js';

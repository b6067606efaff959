export * from './stream.js';
export * from './table.js';

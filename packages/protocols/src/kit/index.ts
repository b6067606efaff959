// The protocol kit: what every protocol folder builds on (see docs/protocols.md).
export * from './outcome.js';
export * from './framer.js';
export * from './pairing.js';
export * from './bounded-map.js';
export * from './record.js';
export * from './session.js';
export * from './opaque.js';
export * from './session-state.js';
export * from './repeat.js';

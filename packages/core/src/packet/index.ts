export * from './types.js';
export { ipToString, parseIp } from './address.js';
export { decodePacket } from './decode.js';
export * from './tcp-options.js';
export * from './defrag.js';

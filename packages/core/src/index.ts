/**
 * The packet layer of dbtap: a bounded byte cursor, link/IP/TCP/UDP
 * decoding, IP defragmentation, pcap and pcapng files, the flow table, TCP
 * stream reassembly, the audit record types and charset decoding.
 *
 * It knows no database protocol.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './time.js';
export * from './bytes.js';
export * from './charset.js';
export * from './event.js';
export * from './packet/index.js';
export * from './pcap/index.js';
export * from './flow/index.js';

/**
 * The dbtap capture agent as a library: capture sources (live through
 * libpcap, pcap replay), the agent-to-server transport (client and the
 * receiving end a server embeds) and the agent configuration loader.
 *
 * @packageDocumentation
 */
export const version = '0.1.0';
export * from './errors.js';
export * from './transport/protocol.js';
export * from './transport/server.js';
export * from './transport/identity.js';
export * from './transport/client.js';
export * from './capture/source.js';
export * from './capture/live.js';
export * from './capture/replay.js';
export * from './config.js';
export * from './log.js';
export * from './daemon.js';
export * from './receive.js';
export * from './service.js';

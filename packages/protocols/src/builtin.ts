import { cache } from './cache/index.js';
import { dameng } from './dameng/index.js';
import { drda } from './drda/index.js';
import { mysql } from './mysql/index.js';
import { oracle } from './oracle/index.js';
import { postgres } from './postgres/index.js';
import { tds } from './tds/index.js';
import { ProtocolRegistry } from './registry.js';
import type { ProtocolDecoder } from './plugin.js';

/**
 * Every decoder dbtap ships, in detection order. Adding a protocol is one
 * line here (see `docs/protocols.md`).
 */
export const builtinDecoders: readonly ProtocolDecoder[] = Object.freeze([mysql, postgres, tds, oracle, drda, dameng, cache]);

/** A registry with every decoder dbtap ships, registered explicitly. */
export function createDefaultRegistry(): ProtocolRegistry {
  const registry = new ProtocolRegistry();
  for (const d of builtinDecoders) registry.register(d);
  return registry;
}

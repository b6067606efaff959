import { DbtapError, ErrorCodes } from '@dbtap/core';
import { Confidence, type ProtocolDecoder } from './plugin.js';

/**
 * The set of decoders a pipeline may use. Registration is explicit: importing
 * a decoder module has no side effects, so unused protocols tree-shake away.
 *
 * ```ts
 * const registry = new ProtocolRegistry().register(mysql).register(postgres);
 * ```
 */
export class ProtocolRegistry {
  private readonly byName = new Map<string, ProtocolDecoder>();
  private readonly byAlias = new Map<string, ProtocolDecoder>();
  private readonly byPort = new Map<number, ProtocolDecoder>();

  /** Adds a decoder. A second decoder with the same name is an error. */
  register(decoder: ProtocolDecoder): this {
    if (this.byName.has(decoder.name)) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `protocol '${decoder.name}' is already registered`);
    }
    this.byName.set(decoder.name, decoder);
    for (const a of decoder.aliases ?? []) if (!this.byAlias.has(a)) this.byAlias.set(a, decoder);
    for (const port of decoder.defaultPorts) {
      if (!this.byPort.has(port)) this.byPort.set(port, decoder);
    }
    return this;
  }

  /** The decoder registered under `name`, or whose aliases include it. */
  get(name: string): ProtocolDecoder | undefined {
    return this.byName.get(name) ?? this.byAlias.get(name);
  }

  /** The decoder whose default ports include `port` (first registered wins). */
  forPort(port: number): ProtocolDecoder | undefined {
    return this.byPort.get(port);
  }

  /** All decoders in registration order. */
  list(): ProtocolDecoder[] {
    return [...this.byName.values()];
  }

  /**
   * Picks the decoder that is most confident about the opening bytes of a
   * stream. A decoder whose default port matches `serverPort` wins ties.
   * Returns `undefined` when every decoder answers {@link Confidence.None}.
   */
  detect(firstClientBytes: Uint8Array, firstServerBytes?: Uint8Array, serverPort?: number): { decoder: ProtocolDecoder; confidence: Confidence } | undefined {
    let best: ProtocolDecoder | undefined;
    let bestScore = 0;
    for (const d of this.byName.values()) {
      const c = d.detect(firstClientBytes, firstServerBytes);
      if (c === Confidence.None) continue;
      // Port match breaks ties between equally confident decoders.
      const score = c * 2 + (serverPort !== undefined && d.defaultPorts.includes(serverPort) ? 1 : 0);
      if (score > bestScore) {
        best = d;
        bestScore = score;
      }
    }
    return best === undefined ? undefined : { decoder: best, confidence: (bestScore >> 1) as Confidence };
  }
}

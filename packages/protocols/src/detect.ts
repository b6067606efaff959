import type { Direction, Timestamp } from '@dbtap/core';
import { Confidence, type ProtocolDecoder } from './plugin.js';
import type { ProtocolRegistry } from './registry.js';

/** Limits on what a flow may hold while its protocol is being detected. */
export interface DetectionLimits {
  /** Bytes kept from the start of each direction for detection. */
  headBytes: number;
  /** Stream bytes buffered (both directions) before giving up. */
  maxPendingBytes: number;
  /** Chunks buffered before giving up. */
  maxPendingChunks: number;
}

/** Defaults for {@link DetectionLimits}. */
export const defaultDetectionLimits: Readonly<DetectionLimits> = Object.freeze({
  headBytes: 1024,
  maxPendingBytes: 256 * 1024,
  maxPendingChunks: 32,
});

/** One buffered stream event, replayed into the session once the protocol is known. */
export type PendingChunk =
  | { readonly kind: 'data'; readonly dir: Direction; readonly bytes: Uint8Array; readonly ts: Timestamp }
  | { readonly kind: 'gap'; readonly dir: Direction; readonly nbytes: number; readonly ts: Timestamp };

/** What detection concluded for a flow. */
export type DetectionOutcome =
  | { readonly state: 'pending' }
  | { readonly state: 'detected'; readonly decoder: ProtocolDecoder; readonly confidence: Confidence; readonly by: 'content' | 'port' }
  | { readonly state: 'undetected' };

/**
 * Chooses the protocol of one flow from its opening bytes, buffering the
 * stream (bounded) until it can decide. Content beats port: a decoder that
 * recognises the bytes with at least medium confidence wins; the decoder
 * configured for the server port is taken once both directions have spoken
 * (or the buffer is full) without a content match; otherwise the flow is
 * left undecoded and counted.
 */
export class FlowDetector {
  private readonly heads: [Uint8Array, Uint8Array];
  private readonly headLen: [number, number] = [0, 0];
  private readonly pending: PendingChunk[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly registry: ProtocolRegistry,
    private readonly serverPort: number,
    private readonly portDecoder: ProtocolDecoder | undefined,
    private readonly limits: DetectionLimits = defaultDetectionLimits,
  ) {
    this.heads = [new Uint8Array(limits.headBytes), new Uint8Array(limits.headBytes)];
  }

  /** Buffered chunks, in arrival order, to replay into the chosen session. */
  drain(): PendingChunk[] {
    const out = this.pending.splice(0);
    this.pendingBytes = 0;
    return out;
  }

  /** Records a gap (it is replayed too, so the session sees it). */
  gap(dir: Direction, nbytes: number, ts: Timestamp): DetectionOutcome {
    this.pending.push({ kind: 'gap', dir, nbytes, ts });
    return this.decide(false);
  }

  /** Adds stream bytes and tries to decide. `bytes` is copied: the caller's view is transient. */
  data(dir: Direction, bytes: Uint8Array, ts: Timestamp): DetectionOutcome {
    const copy = bytes.slice();
    this.pending.push({ kind: 'data', dir, bytes: copy, ts });
    this.pendingBytes += copy.length;
    const head = this.heads[dir];
    const have = this.headLen[dir];
    if (have < head.length) {
      const n = Math.min(head.length - have, copy.length);
      head.set(copy.subarray(0, n), have);
      this.headLen[dir] = have + n;
    }
    return this.decide(false);
  }

  /** Forces a decision (end of stream): port fallback or undetected. */
  finish(): DetectionOutcome {
    return this.decide(true);
  }

  private decide(final: boolean): DetectionOutcome {
    const client = this.heads[0].subarray(0, this.headLen[0]);
    const server = this.heads[1].subarray(0, this.headLen[1]);
    if (client.length > 0 || server.length > 0) {
      const hit = this.registry.detect(client, server.length > 0 ? server : undefined, this.serverPort);
      if (hit !== undefined && hit.confidence >= Confidence.Medium) {
        return { state: 'detected', decoder: hit.decoder, confidence: hit.confidence, by: 'content' };
      }
    }
    const full = this.pendingBytes >= this.limits.maxPendingBytes || this.pending.length >= this.limits.maxPendingChunks;
    const bothSpoke = client.length > 0 && server.length > 0;
    if (this.portDecoder !== undefined && (bothSpoke || full || final)) {
      // The port says what it should be; let the decoder resynchronise if the
      // opening bytes were not recognisable (mid-session pickup).
      return { state: 'detected', decoder: this.portDecoder, confidence: Confidence.Low, by: 'port' };
    }
    if (full || final) return { state: 'undetected' };
    return { state: 'pending' };
  }
}

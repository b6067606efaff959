// Runs recorded TDS conversations (responder taps) through the decoder.
import type { AuditEvent } from '@dbtap/core';
import { defaultSessionOptions, tds, type SessionOptions } from '@dbtap/protocols';
import type { TapChunk } from '../../../../test-support/tds-responder.js';

/** Records and the session of one conversation. */
export interface TdsRun {
  readonly events: AuditEvent[];
  readonly stats: { malformed: number; unmatchedRequests: number; unmatchedResponses: number; skippedBytes: number };
}

/** Feeds `chunks` into a fresh TDS session (client 127.0.0.1:50000, server port 1433), then closes it with FIN. */
export function runTds(chunks: readonly TapChunk[], options: Partial<SessionOptions> = {}, midStream = false): TdsRun {
  const events: AuditEvent[] = [];
  const s = tds.createSession({
    flowId: 'f',
    client: { ip: '127.0.0.1', port: 50000 },
    server: { ip: '127.0.0.1', port: 1433 },
    midStream,
    options: { ...defaultSessionOptions, maxRows: 5, ...options },
    emit: (e) => events.push(e),
  });
  let ts = 1_000_000;
  for (const [dir, bytes] of chunks) s.data(dir, bytes, (ts += 100));
  s.close('fin', ts + 100);
  return { events, stats: s.stats };
}

/** Every chunk of every conversation, as hex, for dumps in fixtures. */
export function hex(chunks: readonly TapChunk[]): string[] {
  return chunks.map(([d, b]) => `${d}:${Buffer.from(b).toString('hex')}`);
}

/** Chunks back from {@link hex} dumps. */
export function unhex(lines: readonly string[]): TapChunk[] {
  return lines.map((l) => [Number(l[0]) as 0 | 1, Uint8Array.from(Buffer.from(l.slice(2), 'hex'))]);
}

// Runs a capture through the end-to-end audit harness of @dbtap/server with
// the Oracle decoder alone, and keeps each connection's in-order chunks and
// the session's counters (for the conformance suite and the tshark
// accounting of TTC calls).
import type { AuditEvent, CloseReason, Direction, Timestamp } from '@dbtap/core';
import { oracle, ProtocolRegistry, type ProtocolDecoder, type ProtocolSession, type SessionContext } from '@dbtap/protocols';
import { auditCaptureFile, type AuditSummary } from '@dbtap/server';

/** One connection as the session saw it. */
export interface OracleFlow {
  readonly flowId: string;
  readonly clientPort: number;
  /** In-order chunks, copied, with their direction. */
  readonly chunks: [Direction, Uint8Array][];
  /** Gaps reported in the flow. */
  gaps: number;
  /** Where the gaps were: before chunk index, direction, bytes missing. */
  readonly gapAt: [number, Direction, number][];
  /** The session's protocol counters at close. */
  counters: Readonly<Record<string, number>>;
}

/** Records, pipeline counters and flows of one run. */
export interface OracleAuditResult {
  events: AuditEvent[];
  stats: AuditSummary;
  flows: OracleFlow[];
}

/** Server ports of the corpus captures. */
export const oraclePorts = [1521, 1522];

/** Audits a capture with only the Oracle decoder registered, recording every flow. */
export async function auditOracleCapture(path: string, maxRows = 3): Promise<OracleAuditResult> {
  const flows: OracleFlow[] = [];
  const recording: ProtocolDecoder = {
    ...oracle,
    createSession(ctx: SessionContext): ProtocolSession {
      const inner = oracle.createSession(ctx);
      const flow: OracleFlow = { flowId: ctx.flowId, clientPort: ctx.client.port, chunks: [], gaps: 0, gapAt: [], counters: {} };
      flows.push(flow);
      return {
        get stats() {
          return inner.stats;
        },
        data(dir: Direction, bytes: Uint8Array, ts: Timestamp) {
          flow.chunks.push([dir, bytes.slice()]);
          inner.data(dir, bytes, ts);
        },
        gap(dir: Direction, n: number, ts: Timestamp) {
          flow.gaps++;
          flow.gapAt.push([flow.chunks.length, dir, n]);
          inner.gap(dir, n, ts);
        },
        close(reason: CloseReason, ts: Timestamp) {
          inner.close(reason, ts);
          flow.counters = inner.counters?.() ?? {};
        },
        counters: () => inner.counters?.() ?? {},
      };
    },
  };
  const registry = new ProtocolRegistry().register(recording);
  const r = await auditCaptureFile(path, { registry, ports: new Map(oraclePorts.map((p) => [p, 'oracle'])), maxRows });
  return { events: r.events, stats: r.summary, flows };
}

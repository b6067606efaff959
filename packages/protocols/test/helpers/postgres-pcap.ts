// Runs a capture file (or captured frames) through the end-to-end audit
// harness of @dbtap/server (packet decoding, reassembly, detection among all
// shipped decoders) and collects the records.
import type { AuditEvent, Frame } from '@dbtap/core';
import type { SessionOptions } from '@dbtap/protocols';
import { auditCaptureFile, auditFrames, type AuditSummary } from '@dbtap/server';

/** Records and counters of one run. */
export interface PgAuditResult {
  events: AuditEvent[];
  stats: AuditSummary;
}

/** Options: server ports to treat as PostgreSQL, and session options. */
export interface PgAuditOptions {
  ports?: number[];
  session?: Partial<SessionOptions>;
}

function options(opts: PgAuditOptions): Parameters<typeof auditFrames>[1] {
  return {
    ...(opts.ports !== undefined ? { ports: new Map(opts.ports.map((p) => [p, 'postgres'])) } : {}),
    ...(opts.session !== undefined ? { session: opts.session } : {}),
  };
}

/** Audits every frame of a pcap/pcapng file. */
export async function auditPgCapture(path: string, opts: PgAuditOptions = {}): Promise<PgAuditResult> {
  const r = await auditCaptureFile(path, options(opts));
  return { events: r.events, stats: r.summary };
}

/** Audits frames already in memory (e.g. from a live capture). */
export function auditPgFrames(frames: Iterable<Frame>, opts: PgAuditOptions = {}): PgAuditResult {
  const r = auditFrames(frames, options(opts));
  return { events: r.events, stats: r.summary };
}

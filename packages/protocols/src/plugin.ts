import type { AuditEvent, CloseReason, Direction, Endpoint, Timestamp } from '@dbtap/core';
import type { SessionSnapshot } from './kit/session-state.js';

/**
 * How sure a decoder is that a stream speaks its protocol, from the first
 * bytes each way. Detection picks the highest; ties go to registration order.
 */
export const Confidence = {
  /** Certainly not this protocol. */
  None: 0,
  /** Could be, weakly (e.g. only the port matches). */
  Low: 1,
  /** The bytes parse as this protocol's opening message. */
  Medium: 2,
  /** The bytes carry this protocol's magic numbers or a unique handshake. */
  High: 3,
} as const;
/** A {@link Confidence} value. */
export type Confidence = (typeof Confidence)[keyof typeof Confidence];

/** Options that shape what sessions put into records. */
export interface SessionOptions {
  /** Keep up to this many result rows per statement as text (0 = none). */
  maxRows: number;
  /** Truncate SQL text longer than this many characters (marks the record truncated). */
  maxSqlLength: number;
  /** Largest protocol message a session will buffer; bigger ones are skipped and counted. */
  maxMessageBytes: number;
  /**
   * Text charset that overrides what the connection negotiates, for
   * databases whose clients send e.g. GBK while the session declares
   * another charset (set from the audit object).
   */
  charset?: string;
}

/** Defaults for {@link SessionOptions}. */
export const defaultSessionOptions: Readonly<SessionOptions> = Object.freeze({
  maxRows: 0,
  maxSqlLength: 1 << 20,
  maxMessageBytes: 64 << 20,
});

/** Per-session counters every decoder keeps; the pipeline sums them. */
export interface SessionStats {
  /** Messages decoded in both directions. */
  messages: number;
  /** Messages that did not parse (counted, skipped, resynchronised). */
  malformed: number;
  /** Requests that never got a response. */
  unmatchedRequests: number;
  /** Responses that had no request (e.g. mid-session pickup). */
  unmatchedResponses: number;
  /** Gaps reported by reassembly. */
  gaps: number;
  /** Bytes skipped while resynchronising after a gap or malformed input. */
  skippedBytes: number;
  /** Audit records emitted. */
  events: number;
}

/** Creates a zeroed {@link SessionStats}. */
export function newSessionStats(): SessionStats {
  return { messages: 0, malformed: 0, unmatchedRequests: 0, unmatchedResponses: 0, gaps: 0, skippedBytes: 0, events: 0 };
}

/** What a session knows about its connection, and where it sends records. */
export interface SessionContext {
  /** Stable id of the TCP connection. */
  readonly flowId: string;
  /** Client endpoint. */
  readonly client: Endpoint;
  /** Server (audited) endpoint. */
  readonly server: Endpoint;
  /** True when the capture did not see the connection open (no SYN). */
  readonly midStream: boolean;
  /** Record-shaping options. */
  readonly options: SessionOptions;
  /** Receives every record the session produces, in order. */
  emit(event: AuditEvent): void;
}

/** A per-connection protocol state machine. Never throws out of these methods. */
export interface ProtocolSession {
  /** In-order stream bytes in one direction. The view is only valid during the call. */
  data(dir: Direction, bytes: Uint8Array, ts: Timestamp): void;
  /** `nbytes` are missing in `dir`; resynchronise, never throw. */
  gap(dir: Direction, nbytes: number, ts: Timestamp): void;
  /** The connection ended; flush pending requests as records. */
  close(reason: CloseReason, ts: Timestamp): void;
  /** Counters for this session. */
  readonly stats: SessionStats;
  /**
   * Time passed (the pipeline calls it for idle flows): sessions with
   * timeouts (a login that never completes, a request that is never
   * answered) act here. Optional.
   */
  tick?(ts: Timestamp): void;
  /**
   * Protocol-specific counters beyond {@link SessionStats} (oversized
   * messages, resyncs, evicted prepared statements, ...), summed by the
   * pipeline per name. Optional.
   */
  counters?(): Readonly<Record<string, number>>;
  /**
   * The state later records of this connection depend on (identity,
   * prepared statements, negotiated charset and capabilities, requests
   * awaiting responses), for a server to keep with its ingest position;
   * `undefined` when there is none worth keeping (a login in progress, an
   * encrypted stream). See `kit/session-state.ts`. Optional.
   */
  snapshot?(): SessionSnapshot | undefined;
  /**
   * Continues from a {@link ProtocolSession.snapshot} of the same connection
   * taken by an earlier process; called on a fresh session (created
   * mid-stream) before any bytes. Returns false, changing nothing, when the
   * snapshot is not one it can use. Optional.
   */
  restore?(snapshot: SessionSnapshot): boolean;
}

/** A wire-protocol decoder plugin. */
export interface ProtocolDecoder {
  /** Short name, e.g. `mysql`, `postgres`. Also the `dbType` of its records. */
  readonly name: string;
  /** Ports the protocol usually listens on. */
  readonly defaultPorts: readonly number[];
  /**
   * The SQL dialect the rules use for this decoder's records (`mysql`,
   * `postgres`, `tsql`, `oracle`, `db2`). Absent: the rules choose by `dbType`.
   */
  readonly dialect?: string;
  /**
   * Other names of the database family, accepted wherever a protocol is
   * named (an audit object of type `kingbase` gets the `postgres` decoder).
   */
  readonly aliases?: readonly string[];
  /**
   * How likely the stream is this protocol, given the first bytes the client
   * sent and/or the first bytes the server sent (either may be empty: MySQL
   * servers speak first, PostgreSQL clients do).
   */
  detect(firstClientBytes: Uint8Array, firstServerBytes?: Uint8Array): Confidence;
  /** A new session for one connection. */
  createSession(ctx: SessionContext): ProtocolSession;
}

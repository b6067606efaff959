import type { Timestamp } from './time.js';

/**
 * Which way a chunk of stream data travelled. The server is the audited endpoint.
 * (A frozen object rather than a `const enum`, so that it survives
 * `isolatedModules` across package boundaries.)
 */
export const Direction = {
  /** Client to server (requests). */
  ToServer: 0,
  /** Server to client (responses). */
  ToClient: 1,
} as const;
/** `Direction.ToServer` (0) or `Direction.ToClient` (1). */
export type Direction = (typeof Direction)[keyof typeof Direction];

/** Why a TCP stream or protocol session ended. */
export type CloseReason =
  /** A FIN was seen in both directions (or one FIN and the peer went quiet). */
  | 'fin'
  /** A RST was seen. */
  | 'rst'
  /** No packet for longer than the idle timeout. */
  | 'timeout'
  /** Evicted to stay within the flow table's memory cap. */
  | 'evicted'
  /** The capture ended with the connection still open. */
  | 'end-of-capture'
  /** The decoder gave up on the stream (e.g. it turned encrypted). */
  | 'abandoned';

/** What an audit record describes. */
export type AuditEventKind =
  /** A login attempt (successful or not). */
  | 'login'
  /** One statement or command with its response. */
  | 'statement'
  /** The end of a database session. */
  | 'logout'
  /** An alert raised by a rule or a stateful detector (see {@link AlertInfo}). */
  | 'alert'
  /**
   * A TCP connection to an audited server whose content was not decoded
   * (unknown protocol, TLS or native encryption, undecodable): endpoints,
   * timing, bytes and packets each way, how it ended, and what was visible
   * in clear (see {@link TlsFacts}).
   */
  | 'connection';

/** What a TLS handshake shows in clear (TLS 1.3 encrypts the certificate). */
export interface TlsFacts {
  /** Highest version the client offered, e.g. `TLS 1.3` (from supported_versions when present). */
  offeredVersion?: string;
  /** Version the server chose. */
  version?: string;
  /** Server name the client asked for (SNI). */
  sni?: string;
  /** Protocols the client offered (ALPN). */
  alpn?: string[];
  /** Protocol the server chose (ALPN). */
  alpnChosen?: string;
  /** Cipher suite the server chose, as its IANA name where known, else `0x....`. */
  cipherSuite?: string;
  /** Cipher suites the client offered. */
  offeredCiphers?: number;
  /** Server certificate subject (TLS 1.2 and older send it in clear), e.g. `CN=db1.example.com, O=Example`. */
  certSubject?: string;
  /** Server certificate issuer. */
  certIssuer?: string;
  /** Certificate validity start, ISO 8601. */
  certNotBefore?: string;
  /** Certificate validity end, ISO 8601. */
  certNotAfter?: string;
  /** A TLS alert seen in clear (e.g. `handshake_failure`). */
  alert?: string;
}

/** Every record kind, in the order reports and the API list them. */
export const AUDIT_EVENT_KINDS: readonly AuditEventKind[] = Object.freeze(['login', 'statement', 'logout', 'alert', 'connection'] as const);

/** What an `alert` record carries besides the usual fields. */
export interface AlertInfo {
  /** Id of the rule or detector that raised it. */
  readonly ruleId: string;
  /** Human-readable rule name. */
  readonly name: string;
  /** Why it fired, in words (e.g. "12 failed logins from 10.0.0.7 in 60 s"). */
  readonly reason: string;
  /** The grouping values of a stateful detector (e.g. `{ clientIp: '10.0.0.7' }`). */
  readonly group?: Readonly<Record<string, string>>;
  /** The count or distinct count that crossed the threshold. */
  readonly value?: number;
  /** Ids of the records that contributed (bounded). */
  readonly eventIds?: readonly string[];
}

/** The statement classes of the audit record. */
export type StatementType = 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'ddl' | 'dcl' | 'tcl' | 'other';

/** Risk levels, lowest to highest. */
export type RiskLevel = 'none' | 'info' | 'low' | 'medium' | 'high';

/** Every {@link RiskLevel} in ascending order; a level's index is its rank (what stores keep). */
export const RISK_LEVELS: readonly RiskLevel[] = ['none', 'info', 'low', 'medium', 'high'];

const RISK_RANKS: Readonly<Record<RiskLevel, number>> = { none: 0, info: 1, low: 2, medium: 3, high: 4 };

/** Rank of a risk level, 0 (`none`) to 4 (`high`); a missing or unknown level counts as `none`. */
export function riskRank(risk: RiskLevel | undefined): number {
  return risk === undefined ? 0 : (RISK_RANKS[risk] ?? 0);
}

/** The risk level of a rank (see {@link riskRank}); ranks outside 0-4 are clamped. */
export function riskOfRank(rank: number): RiskLevel {
  return RISK_LEVELS[Math.max(0, Math.min(RISK_LEVELS.length - 1, Math.trunc(rank)))]!;
}

/** Orders two risk levels: negative when `a` is lower than `b`, 0 when equal, positive when higher. */
export function compareRisk(a: RiskLevel | undefined, b: RiskLevel | undefined): number {
  return riskRank(a) - riskRank(b);
}

/** Whether `risk` is a {@link RiskLevel} (for validating input). */
export function isRiskLevel(risk: unknown): risk is RiskLevel {
  return typeof risk === 'string' && Object.prototype.hasOwnProperty.call(RISK_RANKS, risk);
}

/** Outcome of a request. `unknown` when the response was not seen (gap, capture end). */
export type EventStatus = 'ok' | 'error' | 'unknown';

/** A bound parameter value as decoded from the wire. */
export type ParamValue = string | number | bigint | boolean | null | { readonly type: string; readonly hex: string } | { readonly type: string; readonly text: string };

/** A database object a statement touches. */
export interface ObjectRef {
  /** Schema or database, when the statement names one. */
  readonly schema?: string;
  /** Table, view, procedure... name. */
  readonly name: string;
  /** What the statement does to it: `read`, `write`, `create`, `drop`, `alter`, `grant`, ... */
  readonly op?: string;
}

/** An IP endpoint. */
export interface Endpoint {
  /** Address in its usual text form (dotted IPv4, RFC 5952 IPv6). */
  readonly ip: string;
  /** TCP port. */
  readonly port: number;
}

/**
 * One audit record: a login attempt, a statement with its response, or a
 * logout. Field names are stable API (see `docs/audit-record.md`); optional
 * fields are absent when the protocol does not carry them or the capture
 * did not show them.
 */
export interface AuditEvent {
  // ---- identity ----------------------------------------------------------
  /** Unique id of this record (flow id + sequence number within the flow). */
  id: string;
  /** Kind of record. */
  kind: AuditEventKind;
  /** Identifier of the TCP connection this record came from. */
  flowId: string;

  // ---- when --------------------------------------------------------------
  /** When the request (or login) was first seen. */
  ts: Timestamp;
  /** When the response was complete. */
  endTs?: Timestamp;
  /** `endTs - ts` in microseconds. */
  durationUs?: number;

  // ---- who / where -------------------------------------------------------
  /** Client endpoint. */
  client: Endpoint;
  /** Server (audited) endpoint. */
  server: Endpoint;
  /** Protocol / database family: `mysql`, `postgres`, `tds`, ... */
  dbType: string;
  /** Server product when it differs from the family, e.g. `mariadb`, `kingbase`. */
  dbProduct?: string;
  /** Server version string as the server announced it. */
  serverVersion?: string;
  /** Database user name. */
  user?: string;
  /** Current database / schema. */
  database?: string;
  /** Client program (e.g. MySQL `program_name`, PostgreSQL `application_name`). */
  clientProgram?: string;
  /** Client library / driver name and version, when announced. */
  clientLibrary?: string;
  /** Client host name, when the protocol carries it. */
  clientHost?: string;
  /** Operating-system user on the client, when the protocol carries it. */
  osUser?: string;
  /** Client process id, when the protocol carries it. */
  clientPid?: string;
  /** Server-side session / connection id. */
  sessionId?: string;
  /** True when the session is (or turned) encrypted. */
  tls?: boolean;
  /** Further connection attributes the client announced. */
  attributes?: Record<string, string>;

  // ---- what --------------------------------------------------------------
  /** Protocol command, e.g. `COM_QUERY`, `COM_STMT_EXECUTE`, `Query`, `Execute`. */
  command?: string;
  /** SQL text, decoded with the session charset. */
  sql?: string;
  /** Bound parameter values, in order. */
  params?: ParamValue[];
  /** Prepared statement id or name, when the statement was prepared. */
  statementId?: string;
  /** Statement class (filled by the rules package). */
  statementType?: StatementType;
  /** Leading verb(s), e.g. `SELECT`, `DROP TABLE`, `GRANT` (filled by the rules package). */
  verb?: string;
  /** Objects touched (filled by the rules package). */
  objects?: ObjectRef[];
  /** Normalised statement shape (filled by the rules package). */
  fingerprint?: string;

  // ---- result ------------------------------------------------------------
  /** Outcome. */
  status: EventStatus;
  /** Database error code (numeric for MySQL, text for others). */
  errorCode?: number | string;
  /** SQLSTATE of an error. */
  sqlState?: string;
  /** Error or notice message. */
  message?: string;
  /** Rows changed by DML. */
  affectedRows?: number;
  /** Rows in the result set(s). */
  rowsReturned?: number;
  /** Last generated id (MySQL OK packet). */
  lastInsertId?: number;
  /** Warnings count. */
  warnings?: number;
  /** Column names of the (first) result set. */
  columns?: string[];
  /** First rows of the result as text, when configured. */
  rows?: (string | null)[][];
  /** Request bytes on the wire (protocol payload, client to server). */
  bytesIn?: number;
  /** Response bytes on the wire (protocol payload, server to client). */
  bytesOut?: number;

  // ---- quality -----------------------------------------------------------
  /** Part of the request or response was not captured. */
  truncated?: boolean;
  /** Bytes were missing in the stream before this record. */
  gapBefore?: boolean;
  /** The capture started after the session began; login details are missing. */
  midSession?: boolean;

  // ---- verdict -----------------------------------------------------------
  /** Risk level assigned by the rules. */
  risk?: RiskLevel;
  /** Ids of the rules that matched. */
  ruleIds?: string[];
  /** Id of the audit object (monitored database) this record belongs to. */
  auditObjectId?: string;
  /** For `alert` records: which rule fired and why. */
  alert?: AlertInfo;

  // ---- connection records ---------------------------------------------------
  /** Packets from the client (`connection` records). */
  packetsIn?: number;
  /** Packets from the server (`connection` records). */
  packetsOut?: number;
  /** How the connection ended (`connection` records). */
  closeReason?: CloseReason;
  /** What the TLS handshake showed in clear. */
  tlsFacts?: TlsFacts;
}

/**
 * Stable error identities. Every error dbtap raises or reports carries one of
 * these string codes so that callers and log pipelines can match on it; the
 * human message may change between releases, the code never does.
 */
export const ErrorCodes = {
  /** A read would have gone past the end of a bounded buffer. */
  OUT_OF_BOUNDS: 'DBTAP_E_OUT_OF_BOUNDS',
  /** Bytes that cannot be what the format says they are. */
  MALFORMED: 'DBTAP_E_MALFORMED',
  /** The capture holds fewer bytes than the wire carried (snap length, cut file). */
  TRUNCATED: 'DBTAP_E_TRUNCATED',
  /** A capture file whose header is not pcap or pcapng. */
  BAD_CAPTURE_FORMAT: 'DBTAP_E_BAD_CAPTURE_FORMAT',
  /** A link-layer type dbtap does not decode. */
  UNSUPPORTED_LINKTYPE: 'DBTAP_E_UNSUPPORTED_LINKTYPE',
  /** A bounded buffer or table reached its limit; the excess was dropped and counted. */
  LIMIT_EXCEEDED: 'DBTAP_E_LIMIT_EXCEEDED',
  /** A charset name dbtap cannot decode. */
  UNKNOWN_CHARSET: 'DBTAP_E_UNKNOWN_CHARSET',
  /** A file could not be opened or read. */
  IO: 'DBTAP_E_IO',
  /** A configuration value or file is invalid. */
  CONFIG: 'DBTAP_E_CONFIG',
  /** Invalid argument passed to an API. */
  INVALID_ARGUMENT: 'DBTAP_E_INVALID_ARGUMENT',
} as const;

/** One of the stable codes in {@link ErrorCodes}, or a package-specific `DBTAP_E_*` code. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes] | `DBTAP_E_${string}`;

/** An error with a stable `code` and optional structured details. */
export class DbtapError extends Error {
  /** Stable machine-readable identity, e.g. `DBTAP_E_TRUNCATED`. */
  readonly code: ErrorCode;
  /** Structured context (file, offset, limit...) for logs and callers. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DbtapError';
    this.code = code;
    this.details = details;
  }
}

/** True when `err` is a {@link DbtapError}, optionally with the given code. */
export function isDbtapError(err: unknown, code?: ErrorCode): err is DbtapError {
  return err instanceof DbtapError && (code === undefined || err.code === code);
}

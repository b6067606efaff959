// Every error code of @dbtap/server, in one table. The parts of the server
// (store, HTTP API, access, notifications, integrity, reports) export views
// of it under their own names; codes of @dbtap/core (`ErrorCodes`: I/O,
// configuration, capture formats) are used as they are.

/** The `DBTAP_E_*` codes the server's errors carry, besides those of `@dbtap/core`. */
export const ServerErrorCodes = {
  /** A query parameter is missing, malformed or out of range. */
  BAD_QUERY: 'DBTAP_E_BAD_QUERY',
  /** A paging cursor is not one this store issued, or was issued for another order. */
  BAD_CURSOR: 'DBTAP_E_BAD_CURSOR',
  /** The store was closed. */
  STORE_CLOSED: 'DBTAP_E_STORE_CLOSED',
  /** A retention run is already in progress. */
  RETENTION_BUSY: 'DBTAP_E_RETENTION_BUSY',
  /** A record given to `append` lacks a required field. */
  BAD_RECORD: 'DBTAP_E_BAD_RECORD',
  /** The database behind the store failed. */
  STORE_FAILED: 'DBTAP_E_STORE_FAILED',
  /** The request is malformed: unknown or invalid parameter, bad body. */
  BAD_REQUEST: 'DBTAP_E_BAD_REQUEST',
  /** The request body is not valid JSON. */
  BAD_JSON: 'DBTAP_E_BAD_JSON',
  /** The request body is larger than the server accepts. */
  PAYLOAD_TOO_LARGE: 'DBTAP_E_PAYLOAD_TOO_LARGE',
  /** No such path, or no such item (session, alert). */
  NOT_FOUND: 'DBTAP_E_NOT_FOUND',
  /** A report's time span (asked for, or of the stored records) is longer than reports cover, or would need too many volume buckets. */
  REPORT_RANGE: 'DBTAP_E_REPORT_RANGE',
  /** `/api/reports/{kind}` with a kind the server does not produce. */
  UNKNOWN_REPORT: 'DBTAP_E_UNKNOWN_REPORT',
  /** The path exists but not for this method. */
  METHOD_NOT_ALLOWED: 'DBTAP_E_METHOD_NOT_ALLOWED',
  /** Anything unexpected; details are logged, not returned. */
  INTERNAL: 'DBTAP_E_INTERNAL',
  /** No token, or a token no user holds. */
  UNAUTHENTICATED: 'DBTAP_E_UNAUTHENTICATED',
  /** The user's role may not do this. */
  FORBIDDEN: 'DBTAP_E_FORBIDDEN',
  /** A TCP or TLS connection to a syslog receiver could not be made or was lost (TLS verification failures included). */
  NOTIFY_CONNECT: 'DBTAP_E_NOTIFY_CONNECT',
  /** Sending to a receiver failed (UDP send error, connection reset during a request). */
  NOTIFY_SEND: 'DBTAP_E_NOTIFY_SEND',
  /** A webhook answered with a status other than 2xx. */
  NOTIFY_HTTP_STATUS: 'DBTAP_E_NOTIFY_HTTP_STATUS',
  /** A webhook request or a connection attempt took longer than its timeout. */
  NOTIFY_TIMEOUT: 'DBTAP_E_NOTIFY_TIMEOUT',
  /** Appending to a file channel, or rotating it, failed. */
  NOTIFY_WRITE: 'DBTAP_E_NOTIFY_WRITE',
  /** The notifier was closed while a delivery was waiting; the notifications go to the spool. */
  NOTIFY_CLOSED: 'DBTAP_E_NOTIFY_CLOSED',
  /** The chain is signed and no key, or another key, was given; or a key is malformed. */
  INTEGRITY_KEY: 'DBTAP_E_INTEGRITY_KEY',
  /** The store holds no chain to verify (not a dbtap store, or written before tamper evidence existed and never opened for writing since). */
  INTEGRITY_NO_CHAIN: 'DBTAP_E_INTEGRITY_NO_CHAIN',
  /** A pipeline worker thread died or failed a batch; the batch is not acknowledged and the agent re-sends it. */
  WORKER_FAILED: 'DBTAP_E_WORKER_FAILED',
  /** A TLS certificate, key or CA file of the configuration cannot be read, is not PEM, or the key does not match the certificate. */
  TLS_FILE: 'DBTAP_E_TLS_FILE',
  /** The request's `Host` header names neither the API's listen address, localhost nor a configured `api.hosts` name (DNS rebinding). */
  BAD_HOST: 'DBTAP_E_BAD_HOST',
  /** A state-changing request whose `Origin` is another site than the API's own (cross-site request forgery). */
  CROSS_ORIGIN: 'DBTAP_E_CROSS_ORIGIN',
  /** A request body that is not declared `application/json`. */
  UNSUPPORTED_MEDIA_TYPE: 'DBTAP_E_UNSUPPORTED_MEDIA_TYPE',
} as const;

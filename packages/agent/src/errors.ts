/**
 * Error codes specific to the agent and its transport, in addition to the
 * shared codes of `@dbtap/core`. The strings are stable API.
 */
export const AgentErrorCodes = {
  /** The peer presented a missing or wrong shared token. */
  AUTH: 'DBTAP_E_AUTH',
  /** An agent's credential (its token or certificate) is not bound to the agent id its hello announces, or the shared token announced an id bound to a credential. */
  AGENT_IDENTITY: 'DBTAP_E_AGENT_IDENTITY',
  /** A batch sequence number jumped further past the last one processed for its agent instance than the server allows. */
  SEQ_JUMP: 'DBTAP_E_SEQ_JUMP',
  /** The peer sent bytes that are not a dbtap transport message, or a message out of place. */
  PROTOCOL: 'DBTAP_E_PROTOCOL',
  /** The peer speaks a transport version this side does not. */
  VERSION: 'DBTAP_E_VERSION',
  /** A transport message announced a length above the configured maximum. */
  FRAME_TOO_LARGE: 'DBTAP_E_FRAME_TOO_LARGE',
  /** Nothing arrived from the peer within the heartbeat dead interval. */
  HEARTBEAT_TIMEOUT: 'DBTAP_E_HEARTBEAT_TIMEOUT',
  /** No hello arrived in time after a connection was accepted. */
  HELLO_TIMEOUT: 'DBTAP_E_HELLO_TIMEOUT',
  /** A connection was refused because the listener holds as many connections as it allows, in total or from the peer's address. */
  CONNECTION_LIMIT: 'DBTAP_E_CONNECTION_LIMIT',
  /** A TCP or TLS connection to the server could not be made or was lost. */
  CONNECT: 'DBTAP_E_CONNECT',
  /** The server refused or failed a batch. */
  SERVER: 'DBTAP_E_SERVER',
  /** The capture device named does not exist. */
  UNKNOWN_DEVICE: 'DBTAP_E_UNKNOWN_DEVICE',
  /** libpcap rejected the BPF filter expression. */
  INVALID_FILTER: 'DBTAP_E_INVALID_FILTER',
  /** The process may not capture (needs root or CAP_NET_RAW + CAP_NET_ADMIN). */
  PERMISSION: 'DBTAP_E_PERMISSION',
  /** The capture device disappeared while capturing. */
  DEVICE_GONE: 'DBTAP_E_DEVICE_GONE',
  /** Live capture was asked for but no libpcap binding loads (the package's native one, or the optional npm `cap`). */
  NO_CAPTURE_BINDING: 'DBTAP_E_NO_CAPTURE_BINDING',
  /** Any other capture failure (libpcap message in the text). */
  CAPTURE: 'DBTAP_E_CAPTURE',
  /** The transport is stopped or was never started. */
  CLOSED: 'DBTAP_E_CLOSED',
} as const;

/** One of the codes of {@link AgentErrorCodes}. */
export type AgentErrorCode = (typeof AgentErrorCodes)[keyof typeof AgentErrorCodes];

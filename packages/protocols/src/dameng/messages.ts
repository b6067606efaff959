// Dameng (DM8) messages as the capture shows them. Every message, both ways,
// is a 64-byte header and a body:
//
//   offset  size  field                                   verified by
//   0       4     handle (u32le; 0 before a statement)    client bytes
//   4       2     command (u16le)                         client bytes
//   6       4     body length (u32le, header excluded)    client bytes, client parses replies by it
//   10      4     return code (i32le, replies: < 0 error)  client reports it as the error code
//   19      1     XOR of bytes 0..18                      client bytes; the client rejects a reply without it
//   24      4     rows affected (replies to 0x05)         client reports it as rowsAffected
//   20..63        command-specific flags (startup: 28 = login encryption requested, 29 = its kind,
//                 34/35 = 0x01 0x15, the comm protocol version 21 of the client's change log;
//                 SQL: 20 = auto-commit, 21 = execute directly rather than prepare)
//
// Command codes are those the dmdb client sent; the server is assumed to
// answer with the code of the request (the test listener does, and the
// client accepted it, but no DM server was available to confirm).

/** Size of every message header. */
export const HEADER_BYTES = 64;

/** Command codes (u16le at offset 4). */
export const enum Command {
  /** Client hello: client version, login encryption request. */
  Startup = 0xc8, // 200
  /** Login: user, password (clear unless encrypted), application, OS. */
  Login = 0x01,
  /** Allocates a statement handle before a statement. */
  AllocStmt = 0x03,
  /** Prepare / execute SQL text (NUL-terminated, session charset). */
  Sql = 0x05,
  /** Commit. */
  Commit = 0x08,
  /** Rollback (also sent by dmdb before it closes a connection). */
  Rollback = 0x09,
}

/** Names of the commands, for the record's `command` field. */
export const commandNames: Readonly<Record<number, string>> = Object.freeze({
  [Command.Startup]: 'STARTUP',
  [Command.Login]: 'LOGIN',
  [Command.AllocStmt]: 'ALLOC_STMT',
  [Command.Sql]: 'SQL',
  [Command.Commit]: 'COMMIT',
  [Command.Rollback]: 'ROLLBACK',
});

/** True for a command code the client was seen to send. */
export function knownCommand(cmd: number): boolean {
  return commandNames[cmd] !== undefined;
}

/** The fixed header fields of one message. */
export interface Header {
  readonly handle: number;
  readonly command: number;
  readonly bodyLength: number;
  /** Return code of a reply (negative: an error code). */
  readonly returnCode: number;
  /** Rows affected, from a reply to {@link Command.Sql}. */
  readonly rows: number;
}

/** Startup (0xc8) body: `u32le len | version | NUL | [u32le keyLen | key]` and 6 bytes of flags. */
export interface Startup {
  readonly kind: 'startup';
  /** Client / protocol version string, e.g. `7.6.0.0`. */
  readonly clientVersion: string;
  /** Header byte 28 set: the client asks for login encryption (and sends its key). */
  readonly encryptRequested: boolean;
  /** Length of the client's key (0 when none was sent). The key itself is never kept. */
  readonly keyLength: number;
  /** The comm protocol version (header byte 35). */
  readonly protocolVersion: number;
}

/**
 * Login (0x01) body: four `u32le len | bytes` strings (user, password,
 * application, OS name), then flags. With login encryption the user and
 * password are ciphertext: `user` is then undefined and `encrypted` true.
 * The password is skipped by length and never decoded.
 */
export interface Login {
  readonly kind: 'login';
  readonly user?: string;
  readonly appName?: string;
  readonly osName?: string;
  readonly encrypted: boolean;
}

/** SQL (0x05) body: the statement text, NUL-terminated. */
export interface Sql {
  readonly kind: 'sql';
  readonly text: string;
  /** Header byte 21: 1 = execute directly, 0 = prepare only (parameters are bound in a later message). */
  readonly direct: boolean;
  /** Header byte 20: the client's auto-commit setting. */
  readonly autoCommit: boolean;
}

/** Any other client message (allocate, commit, rollback, unknown codes). */
export interface Other {
  readonly kind: 'other';
}

/** A decoded client message. */
export type ClientMessage = Startup | Login | Sql | Other;

/** A decoded server reply. */
export interface Reply {
  readonly returnCode: number;
  readonly rows: number;
  /** Error text (body offset 12: `u32le len | text`), when the return code is negative. */
  readonly message?: string;
}

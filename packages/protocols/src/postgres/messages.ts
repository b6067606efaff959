// Typed PostgreSQL frontend/backend protocol 3.0 messages.
// Reference: PostgreSQL documentation, chapter "Frontend/Backend Protocol",
// section "Message Formats" (55.7 in the 15 manual).

/**
 * Message type bytes sent by the client (frontend). `Describe`/`Close`/`Execute`
 * share letters with backend messages; the direction disambiguates.
 */
export const enum FrontendType {
  Bind = 0x42, // 'B'
  Close = 0x43, // 'C'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyFail = 0x66, // 'f'
  Describe = 0x44, // 'D'
  Execute = 0x45, // 'E'
  Flush = 0x48, // 'H'
  FunctionCall = 0x46, // 'F'
  Parse = 0x50, // 'P'
  Password = 0x70, // 'p' (also SASLInitialResponse, SASLResponse, GSSResponse)
  Query = 0x51, // 'Q'
  Sync = 0x53, // 'S'
  Terminate = 0x58, // 'X'
}

/** Message type bytes sent by the server (backend). */
export const enum BackendType {
  Authentication = 0x52, // 'R'
  BackendKeyData = 0x4b, // 'K'
  BindComplete = 0x32, // '2'
  CloseComplete = 0x33, // '3'
  CommandComplete = 0x43, // 'C'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyInResponse = 0x47, // 'G'
  CopyOutResponse = 0x48, // 'H'
  CopyBothResponse = 0x57, // 'W'
  DataRow = 0x44, // 'D'
  EmptyQueryResponse = 0x49, // 'I'
  ErrorResponse = 0x45, // 'E'
  FunctionCallResponse = 0x56, // 'V'
  NegotiateProtocolVersion = 0x76, // 'v'
  NoData = 0x6e, // 'n'
  NoticeResponse = 0x4e, // 'N'
  NotificationResponse = 0x41, // 'A'
  ParameterDescription = 0x74, // 't'
  ParameterStatus = 0x53, // 'S'
  ParseComplete = 0x31, // '1'
  PortalSuspended = 0x73, // 's'
  ReadyForQuery = 0x5a, // 'Z'
  RowDescription = 0x54, // 'T'
}

/** The one byte a server answers an SSLRequest or GSSENCRequest with. */
export const enum Answer {
  /** SSL accepted: a TLS handshake follows. */
  Ssl = 0x53, // 'S'
  /** GSSAPI encryption accepted. */
  Gss = 0x47, // 'G'
  /** Refused: the client continues in plaintext (or gives up). */
  Refused = 0x4e, // 'N'
}

/** Codes in the second word of an untyped startup-phase packet. */
export const StartupCode = {
  /** Protocol 3.0: `3 << 16`. */
  Protocol3: 196608,
  /** CancelRequest: `1234 << 16 | 5678`. */
  Cancel: 80877102,
  /** SSLRequest: `1234 << 16 | 5679`. */
  Ssl: 80877103,
  /** GSSENCRequest: `1234 << 16 | 5680`. */
  GssEnc: 80877104,
  /** openGauss stop-query request: `1234 << 16 | 5681`. */
  GaussStop: 80877105,
} as const;

/** `Authentication*` request codes (the Int32 after 'R'). */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  Md5Password: 5,
  ScmCredential: 6,
  Gss: 7,
  GssContinue: 8,
  Sspi: 9,
  /** PostgreSQL: AuthenticationSASL. openGauss: sha256 (RFC 5802 style) password. */
  Sasl: 10,
  /** PostgreSQL: AuthenticationSASLContinue. openGauss: md5 over a sha256-stored password. */
  SaslContinue: 11,
  /** PostgreSQL: AuthenticationSASLFinal. */
  SaslFinal: 12,
  /** openGauss: SM3 password. */
  GaussSm3: 13,
  /** openGauss: IAM token. */
  GaussIam: 14,
} as const;

/** Untyped packets a client sends before the typed protocol starts. */
export type StartupPacket =
  | { readonly kind: 'startup'; readonly major: number; readonly minor: number; readonly params: ReadonlyMap<string, string> }
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  | { readonly kind: 'cancel'; readonly pid: number; readonly secret: string }
  | { readonly kind: 'gauss-stop'; readonly pid: number; readonly queryId: string };

/** A parameter (or column) value as it was on the wire: NULL or a byte view. */
export type RawValue = Uint8Array | null;

/** Frontend messages after the startup packet. */
export type FrontendMessage =
  | { readonly type: FrontendType.Query; readonly sql: Uint8Array }
  | { readonly type: FrontendType.Parse; readonly name: string; readonly sql: Uint8Array; readonly paramTypes: readonly number[] }
  | {
      readonly type: FrontendType.Bind;
      readonly portal: string;
      readonly statement: string;
      /** Format code per parameter (0 text, 1 binary), already expanded from the 0/1/n form. */
      readonly paramFormats: readonly number[];
      readonly values: readonly RawValue[];
      readonly resultFormats: readonly number[];
    }
  | { readonly type: FrontendType.Describe; readonly target: 'S' | 'P'; readonly name: string }
  | { readonly type: FrontendType.Execute; readonly portal: string; readonly maxRows: number }
  | { readonly type: FrontendType.Close; readonly target: 'S' | 'P'; readonly name: string }
  | { readonly type: FrontendType.Sync }
  | { readonly type: FrontendType.Flush }
  | { readonly type: FrontendType.Terminate }
  | { readonly type: FrontendType.FunctionCall; readonly oid: number; readonly argFormats: readonly number[]; readonly args: readonly RawValue[]; readonly resultFormat: number }
  | { readonly type: FrontendType.CopyData; readonly size: number }
  | { readonly type: FrontendType.CopyDone }
  | { readonly type: FrontendType.CopyFail; readonly message: string }
  | { readonly type: FrontendType.Password; readonly body: Uint8Array };

/** One column of a RowDescription. */
export interface FieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly column: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeMod: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

/** Fields of an ErrorResponse / NoticeResponse, keyed by their one-letter codes. */
export interface ErrorFields {
  /** 'S': localised severity (ERROR, FATAL, PANIC, WARNING, NOTICE, ...). */
  readonly severity?: string;
  /** 'V': non-localised severity (9.6+). */
  readonly severityEn?: string;
  /** 'C': SQLSTATE. */
  readonly code?: string;
  /** 'M': primary message. */
  readonly message?: string;
  /** 'D': detail. */
  readonly detail?: string;
  /** 'H': hint. */
  readonly hint?: string;
  /** 'P': cursor position in the query text. */
  readonly position?: string;
  /** Every field by its code letter, including the ones above. */
  readonly all: ReadonlyMap<string, string>;
}

/** Backend messages. */
export type BackendMessage =
  | { readonly type: BackendType.Authentication; readonly code: number; readonly data: Uint8Array }
  | { readonly type: BackendType.BackendKeyData; readonly pid: number; readonly secret: string }
  | { readonly type: BackendType.ParameterStatus; readonly name: string; readonly value: string }
  | { readonly type: BackendType.ReadyForQuery; readonly status: string }
  | { readonly type: BackendType.RowDescription; readonly fields: readonly FieldDescription[] }
  | { readonly type: BackendType.DataRow; readonly values: readonly RawValue[] }
  | { readonly type: BackendType.CommandComplete; readonly tag: string }
  | { readonly type: BackendType.EmptyQueryResponse }
  | { readonly type: BackendType.ErrorResponse; readonly fields: ErrorFields }
  | { readonly type: BackendType.NoticeResponse; readonly fields: ErrorFields }
  | { readonly type: BackendType.ParseComplete }
  | { readonly type: BackendType.BindComplete }
  | { readonly type: BackendType.CloseComplete }
  | { readonly type: BackendType.NoData }
  | { readonly type: BackendType.PortalSuspended }
  | { readonly type: BackendType.ParameterDescription; readonly types: readonly number[] }
  | { readonly type: BackendType.CopyInResponse | BackendType.CopyOutResponse | BackendType.CopyBothResponse; readonly format: number; readonly columnFormats: readonly number[] }
  | { readonly type: BackendType.CopyData; readonly size: number; readonly data: Uint8Array }
  | { readonly type: BackendType.CopyDone }
  | { readonly type: BackendType.NotificationResponse; readonly pid: number; readonly channel: string; readonly payload: string }
  | { readonly type: BackendType.FunctionCallResponse; readonly value: RawValue }
  | { readonly type: BackendType.NegotiateProtocolVersion; readonly minor: number; readonly unsupported: readonly string[] };

// Typed MySQL / MariaDB client/server protocol messages and wire constants.
// Spec: MySQL "Client/Server Protocol" (dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html)
// and MariaDB "Clients & Utilities / Server-Client Protocol" (mariadb.com/kb).
import type { ParamValue } from '@dbtap/core';

/** Command bytes (first payload byte of a request, sequence id 0). */
export const enum Command {
  Sleep = 0x00, // COM_SLEEP (server internal)
  Quit = 0x01, // COM_QUIT
  InitDb = 0x02, // COM_INIT_DB
  Query = 0x03, // COM_QUERY
  FieldList = 0x04, // COM_FIELD_LIST
  CreateDb = 0x05, // COM_CREATE_DB
  DropDb = 0x06, // COM_DROP_DB
  Refresh = 0x07, // COM_REFRESH
  Shutdown = 0x08, // COM_SHUTDOWN
  Statistics = 0x09, // COM_STATISTICS
  ProcessInfo = 0x0a, // COM_PROCESS_INFO
  Connect = 0x0b, // COM_CONNECT (server internal)
  ProcessKill = 0x0c, // COM_PROCESS_KILL
  Debug = 0x0d, // COM_DEBUG
  Ping = 0x0e, // COM_PING
  Time = 0x0f, // COM_TIME (server internal)
  DelayedInsert = 0x10, // COM_DELAYED_INSERT (server internal)
  ChangeUser = 0x11, // COM_CHANGE_USER
  BinlogDump = 0x12, // COM_BINLOG_DUMP
  TableDump = 0x13, // COM_TABLE_DUMP
  ConnectOut = 0x14, // COM_CONNECT_OUT
  RegisterSlave = 0x15, // COM_REGISTER_SLAVE
  StmtPrepare = 0x16, // COM_STMT_PREPARE
  StmtExecute = 0x17, // COM_STMT_EXECUTE
  StmtSendLongData = 0x18, // COM_STMT_SEND_LONG_DATA
  StmtClose = 0x19, // COM_STMT_CLOSE
  StmtReset = 0x1a, // COM_STMT_RESET
  SetOption = 0x1b, // COM_SET_OPTION
  StmtFetch = 0x1c, // COM_STMT_FETCH
  Daemon = 0x1d, // COM_DAEMON (server internal)
  BinlogDumpGtid = 0x1e, // COM_BINLOG_DUMP_GTID
  ResetConnection = 0x1f, // COM_RESET_CONNECTION
  Clone = 0x20, // COM_CLONE (MySQL 8.0.17+)
  StmtBulkExecute = 0xfa, // COM_STMT_BULK_EXECUTE (MariaDB 10.2+)
}

const commandNames: Record<number, string> = {
  0x00: 'COM_SLEEP',
  0x01: 'COM_QUIT',
  0x02: 'COM_INIT_DB',
  0x03: 'COM_QUERY',
  0x04: 'COM_FIELD_LIST',
  0x05: 'COM_CREATE_DB',
  0x06: 'COM_DROP_DB',
  0x07: 'COM_REFRESH',
  0x08: 'COM_SHUTDOWN',
  0x09: 'COM_STATISTICS',
  0x0a: 'COM_PROCESS_INFO',
  0x0b: 'COM_CONNECT',
  0x0c: 'COM_PROCESS_KILL',
  0x0d: 'COM_DEBUG',
  0x0e: 'COM_PING',
  0x0f: 'COM_TIME',
  0x10: 'COM_DELAYED_INSERT',
  0x11: 'COM_CHANGE_USER',
  0x12: 'COM_BINLOG_DUMP',
  0x13: 'COM_TABLE_DUMP',
  0x14: 'COM_CONNECT_OUT',
  0x15: 'COM_REGISTER_SLAVE',
  0x16: 'COM_STMT_PREPARE',
  0x17: 'COM_STMT_EXECUTE',
  0x18: 'COM_STMT_SEND_LONG_DATA',
  0x19: 'COM_STMT_CLOSE',
  0x1a: 'COM_STMT_RESET',
  0x1b: 'COM_SET_OPTION',
  0x1c: 'COM_STMT_FETCH',
  0x1d: 'COM_DAEMON',
  0x1e: 'COM_BINLOG_DUMP_GTID',
  0x1f: 'COM_RESET_CONNECTION',
  0x20: 'COM_CLONE',
  0xfa: 'COM_STMT_BULK_EXECUTE',
};

/** The `COM_*` name of a command byte, or `undefined` for bytes that are not commands. */
export function commandName(cmd: number): string | undefined {
  return commandNames[cmd];
}

/** Capability flags (protocol::CapabilityFlags). The upper 32 bits are MariaDB's extended flags. */
export const enum Cap {
  LongPassword = 0x1, // CLIENT_LONG_PASSWORD (MariaDB: CLIENT_MYSQL)
  FoundRows = 0x2,
  LongFlag = 0x4,
  ConnectWithDb = 0x8, // CLIENT_CONNECT_WITH_DB
  NoSchema = 0x10,
  Compress = 0x20, // CLIENT_COMPRESS
  Odbc = 0x40,
  LocalFiles = 0x80, // CLIENT_LOCAL_FILES
  IgnoreSpace = 0x100,
  Protocol41 = 0x200, // CLIENT_PROTOCOL_41
  Interactive = 0x400,
  Ssl = 0x800, // CLIENT_SSL
  IgnoreSigpipe = 0x1000,
  Transactions = 0x2000,
  Reserved = 0x4000,
  SecureConnection = 0x8000, // CLIENT_SECURE_CONNECTION (CLIENT_RESERVED2)
  MultiStatements = 0x10000,
  MultiResults = 0x20000,
  PsMultiResults = 0x40000,
  PluginAuth = 0x80000, // CLIENT_PLUGIN_AUTH
  ConnectAttrs = 0x100000, // CLIENT_CONNECT_ATTRS
  PluginAuthLenencData = 0x200000, // CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
  ExpiredPasswords = 0x400000,
  SessionTrack = 0x800000, // CLIENT_SESSION_TRACK
  DeprecateEof = 0x1000000, // CLIENT_DEPRECATE_EOF
  OptionalResultsetMetadata = 0x2000000, // CLIENT_OPTIONAL_RESULTSET_METADATA
  ZstdCompression = 0x4000000, // CLIENT_ZSTD_COMPRESSION_ALGORITHM
  QueryAttributes = 0x8000000, // CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+)
  MultiFactorAuth = 0x10000000,
}

/** MariaDB extended capabilities (bits 32..63, carried as a separate u32). */
export const enum MariaCap {
  Progress = 0x1, // MARIADB_CLIENT_PROGRESS
  ComMulti = 0x2,
  BulkOperations = 0x4, // MARIADB_CLIENT_STMT_BULK_OPERATIONS
  ExtendedMetadata = 0x8, // MARIADB_CLIENT_EXTENDED_METADATA
  CacheMetadata = 0x10, // MARIADB_CLIENT_CACHE_METADATA
}

/** Server status flags (SERVER_STATUS_*), in OK and EOF packets. */
export const enum Status {
  InTrans = 0x1,
  Autocommit = 0x2,
  MoreResultsExist = 0x8, // SERVER_MORE_RESULTS_EXISTS
  CursorExists = 0x40, // SERVER_STATUS_CURSOR_EXISTS
  LastRowSent = 0x80,
  SessionStateChanged = 0x4000, // SERVER_SESSION_STATE_CHANGED
}

/** Column / parameter types (enum_field_types). */
export const enum FieldType {
  Decimal = 0x00,
  Tiny = 0x01,
  Short = 0x02,
  Long = 0x03,
  Float = 0x04,
  Double = 0x05,
  Null = 0x06,
  Timestamp = 0x07,
  LongLong = 0x08,
  Int24 = 0x09,
  Date = 0x0a,
  Time = 0x0b,
  DateTime = 0x0c,
  Year = 0x0d,
  NewDate = 0x0e,
  VarChar = 0x0f,
  Bit = 0x10,
  Timestamp2 = 0x11,
  DateTime2 = 0x12,
  Time2 = 0x13,
  TypedArray = 0x14,
  Vector = 0xf2,
  Invalid = 0xf3,
  Bool = 0xf4,
  Json = 0xf5,
  NewDecimal = 0xf6,
  Enum = 0xf7,
  Set = 0xf8,
  TinyBlob = 0xf9,
  MediumBlob = 0xfa,
  LongBlob = 0xfb,
  Blob = 0xfc,
  VarString = 0xfd,
  String = 0xfe,
  Geometry = 0xff,
}

/** First payload bytes of server responses. */
export const enum Resp {
  Ok = 0x00, // OK_Packet
  AuthMoreData = 0x01, // AuthMoreData (only during authentication)
  LocalInfile = 0xfb, // LOCAL INFILE request (COM_QUERY response)
  Eof = 0xfe, // EOF_Packet, AuthSwitchRequest, or OK-as-terminator under CLIENT_DEPRECATE_EOF
  Err = 0xff, // ERR_Packet
}

/** Discriminants of the {@link ServerMessage} union (what a server packet is, given the state it arrives in). */
export const enum ServerKind {
  Greeting = 'greeting', // HandshakeV10: first payload byte 0x0a (protocol version 10)
  Ok = 'ok', // OK_Packet: 0x00, or 0xfe with >= 7 bytes as a result-set terminator
  Err = 'err', // ERR_Packet: 0xff
  Eof = 'eof', // EOF_Packet: 0xfe, fewer than 9 bytes
  ColumnCount = 'column-count', // lenenc column count (0x01..0xfa, 0xfc, 0xfd) starting a result set
  ColumnDef = 'column-def', // ColumnDefinition41: lenenc "def" (0x03 'd' 'e' 'f') first
  TextRow = 'text-row', // ProtocolText::ResultsetRow: lenenc strings, 0xfb = NULL
  BinaryRow = 'binary-row', // ProtocolBinary::ResultsetRow: 0x00 then the NULL bitmap
  PrepareOk = 'prepare-ok', // COM_STMT_PREPARE_OK: 0x00 and 12 bytes
  LocalInfile = 'local-infile', // LOCAL INFILE request: 0xfb then the file name
  AuthSwitch = 'auth-switch', // AuthSwitchRequest: 0xfe, plugin name, plugin data
  AuthMoreData = 'auth-more-data', // AuthMoreData: 0x01 then plugin data
}

/** Initial handshake (protocol::HandshakeV10), sent by the server first. */
export interface Greeting {
  readonly kind: ServerKind.Greeting;
  readonly protocolVersion: number;
  readonly serverVersion: string;
  readonly connectionId: number;
  /** Server capabilities (lower 32 bits). */
  readonly capabilities: number;
  /** MariaDB extended capabilities, 0 for MySQL. */
  readonly mariaCapabilities: number;
  readonly charset: number;
  readonly status: number;
  readonly authPlugin: string;
}

/** OK_Packet. */
export interface OkPacket {
  readonly kind: ServerKind.Ok;
  readonly affectedRows: number;
  readonly lastInsertId: number;
  readonly status: number;
  readonly warnings: number;
  readonly info?: string;
  /** New default schema from session state tracking (SESSION_TRACK_SCHEMA). */
  readonly schema?: string;
  /** System variables changed, from session state tracking (SESSION_TRACK_SYSTEM_VARIABLES). */
  readonly systemVariables?: Record<string, string>;
}

/** ERR_Packet. */
export interface ErrPacket {
  readonly kind: ServerKind.Err;
  readonly code: number;
  readonly sqlState?: string;
  readonly message: string;
}

/** EOF_Packet. */
export interface EofPacket {
  readonly kind: ServerKind.Eof;
  readonly warnings: number;
  readonly status: number;
}

/** The packet that starts a result set: how many column definitions follow. */
export interface ColumnCount {
  readonly kind: ServerKind.ColumnCount;
  readonly count: number;
  /** False when the server skips the column definitions (CLIENT_OPTIONAL_RESULTSET_METADATA, MariaDB metadata cache). */
  readonly metadataFollows: boolean;
}

/** Column definition (protocol::ColumnDefinition41), fields an auditor needs. */
export interface ColumnDef {
  readonly kind: ServerKind.ColumnDef;
  readonly schema: string;
  readonly table: string;
  readonly orgTable: string;
  readonly name: string;
  readonly charset: number;
  readonly type: number;
  readonly flags: number;
}

/** A text result row. */
export interface TextRow {
  readonly kind: ServerKind.TextRow;
  readonly values: readonly (string | null)[];
}

/** A binary result row (COM_STMT_EXECUTE / COM_STMT_FETCH), values as text. */
export interface BinaryRow {
  readonly kind: ServerKind.BinaryRow;
  readonly values: readonly (string | null)[];
}

/** COM_STMT_PREPARE_OK. */
export interface PrepareOk {
  readonly kind: ServerKind.PrepareOk;
  readonly statementId: number;
  readonly columns: number;
  readonly params: number;
  readonly warnings: number;
}

/** The server asks the client for a file (LOAD DATA LOCAL INFILE). */
export interface LocalInfileRequest {
  readonly kind: ServerKind.LocalInfile;
  readonly fileName: string;
}

/** The server asks the client to authenticate with another plugin (its challenge data is not kept). */
export interface AuthSwitchRequest {
  readonly kind: ServerKind.AuthSwitch;
  /** Plugin name; `mysql_old_password` for the pre-4.1 one-byte form. */
  readonly plugin: string;
}

/** Plugin-specific authentication data (e.g. caching_sha2_password fast-auth result); the data is not kept. */
export interface AuthMoreData {
  readonly kind: ServerKind.AuthMoreData;
  readonly length: number;
}

/** Every message a server sends, as the decoder functions of decoder.ts and values.ts return them. */
export type ServerMessage = Greeting | OkPacket | ErrPacket | EofPacket | ColumnCount | ColumnDef | TextRow | BinaryRow | PrepareOk | LocalInfileRequest | AuthSwitchRequest | AuthMoreData;

/** Client login (protocol::HandshakeResponse41 / 320), or an SSLRequest when `sslRequest`. Auth data is not kept. */
export interface LoginRequest {
  readonly capabilities: number;
  readonly mariaCapabilities: number;
  readonly maxPacket: number;
  readonly charset: number;
  /** True for the 32-byte SSLRequest that precedes a TLS handshake. */
  readonly sslRequest: boolean;
  readonly user?: string;
  readonly database?: string;
  readonly authPlugin?: string;
  /** Connection attributes (CLIENT_CONNECT_ATTRS), in wire order. */
  readonly attributes?: Record<string, string>;
}

/** COM_CHANGE_USER request body (auth data is not kept). */
export interface ChangeUser {
  readonly user: string;
  readonly database?: string;
  readonly charset?: number;
  readonly authPlugin?: string;
  readonly attributes?: Record<string, string>;
}

/** COM_QUERY body: the statement text (a view) and any query attributes. */
export interface QueryRequest {
  readonly sql: Uint8Array;
  readonly attributes?: Record<string, string>;
}

/** Decoded COM_STMT_EXECUTE body. */
export interface ExecuteRequest {
  readonly statementId: number;
  readonly flags: number;
  /** Bound parameters (the statement's own, in order). */
  readonly params: ParamValue[];
  /** Query attributes bound after the statement's parameters (MySQL 8.0.23+). */
  readonly attributes?: Record<string, string>;
  /** Parameter types now in force (new-params-bound updates them). */
  readonly types: readonly number[];
  /** True when the values could not all be read. */
  readonly incomplete: boolean;
}

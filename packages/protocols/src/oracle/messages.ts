// Oracle Net (TNS) packets and the TTC messages they carry.
//
// TNS packet header (8 bytes; Oracle Net Services, and Wireshark packet-tns.c):
//
//   0      2      4      5      6      8
//   | len  | pcks | type | flag | hcks | body ...
//
// From TNS version 315 (Oracle 12c) on, packets after ACCEPT carry a 32-bit
// length in bytes 0-3 instead of length + packet checksum.

/** TNS packet types (header byte 4). */
export const enum PacketType {
  Connect = 1, // 0x01
  Accept = 2, // 0x02
  Ack = 3, // 0x03
  Refuse = 4, // 0x04
  Redirect = 5, // 0x05
  Data = 6, // 0x06
  Null = 7, // 0x07
  Abort = 9, // 0x09
  Resend = 11, // 0x0b
  Marker = 12, // 0x0c
  Attention = 13, // 0x0d
  Control = 14, // 0x0e
  DataDescriptor = 15, // 0x0f
}

/** Highest packet type a TNS header may carry. */
export const maxPacketType = 15;

/** DATA packet flags (the u16 after the header). */
export const enum DataFlag {
  SendToken = 0x0001,
  RequestConfirmation = 0x0002,
  Confirmation = 0x0004,
  MoreData = 0x0020,
  Eof = 0x0040, // the peer closes the connection
  ImmediateConfirmation = 0x0080,
  RequestToSend = 0x0100,
  SendNtTrailer = 0x0200,
  EndOfRequest = 0x0800,
}

/** MARKER packet function (the third body byte). */
export const enum MarkerKind {
  Break = 1, // the call is interrupted (cancel, or an error on the way)
  Reset = 2, // both sides clear the line
}

/** TTC message types (first byte of a DATA payload, and of each message inside it). */
export const enum TtcType {
  Protocol = 0x01, // protocol negotiation (versions, platform, server charset)
  DataTypes = 0x02, // data type representation negotiation
  Function = 0x03, // a call: function code, sequence number, arguments
  Status = 0x04, // error / end of call: return code, row count, cursor, ORA- message
  RowHeader = 0x06,
  RowData = 0x07,
  Parameter = 0x08, // return parameters (key/value pairs of the auth calls, OVERSION text)
  FuncComplete = 0x09,
  IoVector = 0x0b,
  Describe = 0x10,
  Piggyback = 0x11, // a function sent ahead of the main call in the same packet
  ServerPiggyback = 0x17,
  Warning = 0x0f,
}

/** ANO (Advanced Networking Option) negotiation magic, the first four bytes of its DATA payload. */
export const anoMagic = 0xdeadbeef;

/** TTC function codes (Wireshark's tns.data_oci.id). */
export const enum Func {
  Open = 0x02, // open a cursor
  Parse = 0x03,
  Execute = 0x04, // re-execute of a parsed cursor (thin drivers)
  Fetch = 0x05, // OFETCH: more rows of an open cursor
  Close = 0x08, // OCLOSE
  Logoff = 0x09, // OLOGOFF
  Commit = 0x0e, // OCOMMIT
  Rollback = 0x0f, // OROLLBACK
  Cancel = 0x14,
  Version = 0x3b, // OVERSION
  Bundled = 0x3e, // bundled parse/execute (OCI 8 clients such as TOAD)
  All7 = 0x47, // OALL7
  LobOps = 0x60,
  All8 = 0x5e, // OALL8: parse / bind / execute / fetch in one call
  ExecuteFetch = 0x4e, // re-execute and fetch (thin drivers)
  OpenSession = 0x54,
  CloseAll = 0x69, // close cursors (piggy-backed)
  SessionSwitch = 0x6b, // piggy-backed
  Auth2 = 0x73, // O5LOGON / O3LOGON second phase: the password proof
  Auth1 = 0x76, // first phase: user and client facts, server answers with the session key
  ClientId = 0x87, // piggy-backed end-to-end attributes
  Ping = 0x93,
  KeyValue = 0x9a,
}

/** What a CONNECT (and its connect descriptor) says. */
export interface ConnectInfo {
  readonly version: number;
  readonly sdu: number;
  readonly descriptor: string;
  readonly service?: string;
  readonly sid?: string;
  readonly program?: string;
  readonly host?: string;
  readonly osUser?: string;
}

/** What an ACCEPT says. */
export interface AcceptInfo {
  readonly version: number;
  readonly sdu: number;
  readonly tdu: number;
}

/** What a REFUSE says. */
export interface RefuseInfo {
  readonly userReason: number;
  readonly systemReason: number;
  readonly text: string;
  /** The listener's error number (`ERR=` of the descriptor), e.g. 12514. */
  readonly err?: number;
}

/** An ORA- error or end-of-call status (TTC message 0x04), with what could be read of it. */
export interface CallStatus {
  /** Oracle error number (0 = success). */
  readonly errorNum: number;
  /** Rows processed so far by the cursor (DML: affected; queries: fetched). */
  readonly rowCount?: number;
  /** The cursor the call used (or opened). */
  readonly cursor?: number;
  /** Message text, e.g. `ORA-00942: table or view does not exist`. */
  readonly message?: string;
}

/** A client call found in one request (after any piggy-backed calls). */
export interface Call {
  readonly func: number;
  readonly seq: number;
  /** Offset of the call's arguments in the request payload. */
  readonly at: number;
  /** Piggy-backed function codes sent ahead of it. */
  readonly piggybacks: readonly number[];
}

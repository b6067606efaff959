// Typed TDS messages and wire constants: Microsoft SQL Server (TDS 7.0-7.4,
// TDS 8.0 detection) and Sybase ASE (TDS 5.0). Spec: [MS-TDS] (Tabular Data
// Stream Protocol), FreeTDS "TDS protocol documentation" (tds.html) for 5.0.
import type { ParamValue } from '@dbtap/core';

/** Packet types: byte 0 of the 8-byte packet header ([MS-TDS] 2.2.3.1.1). */
export const enum PacketType {
  SqlBatch = 0x01, // SQL batch (TDS 4.2 / 7.x), language text
  Login5 = 0x02, // TDS 4.2 / 5.0 login
  Rpc = 0x03, // remote procedure call (7.x)
  Tabular = 0x04, // any server response
  Attention = 0x06, // cancel the request in progress
  BulkLoad = 0x07, // bulk load data
  FedAuthToken = 0x08, // federated authentication token
  TransactionManager = 0x0e, // transaction manager request (7.2+)
  Normal5 = 0x0f, // TDS 5.0 token stream request (language, dbrpc, dynamic)
  Login7 = 0x10, // LOGIN7
  Sspi = 0x11, // SSPI / NTLM continuation
  PreLogin = 0x12, // PRELOGIN (also carries the TLS handshake)
  Smp = 0x53, // 'S': MARS session multiplexing header, not a TDS type
}

/** Status bits of the packet header. */
export const enum PacketStatus {
  Eom = 0x01, // last packet of the message
  Ignore = 0x02, // the client asks the server to ignore this message
  ResetConnection = 0x08,
  ResetConnectionSkipTran = 0x10,
}

/** SMP (MARS) header flags ([MC-SMP] 2.2.1). */
export const enum SmpFlag {
  Syn = 0x01,
  Ack = 0x02,
  Fin = 0x04,
  Data = 0x08,
}

/** PRELOGIN option tokens ([MS-TDS] 2.2.6.5). */
export const enum PreLoginOption {
  Version = 0x00,
  Encryption = 0x01,
  InstOpt = 0x02,
  ThreadId = 0x03,
  Mars = 0x04,
  TraceId = 0x05,
  FedAuthRequired = 0x06,
  NonceOpt = 0x07,
  Terminator = 0xff,
}

/** PRELOGIN ENCRYPTION values. */
export const enum Encrypt {
  Off = 0x00, // only the login is encrypted
  On = 0x01,
  NotSup = 0x02,
  Req = 0x03,
}

/** Token types of the TDS token streams, 7.x and 5.0 ([MS-TDS] 2.2.7, FreeTDS tds.html). */
export const enum Token {
  ParamFmt2 = 0x20, // 5.0, u32 length
  Language = 0x21, // 5.0, u32 length
  OrderBy2 = 0x22, // 5.0, u32 length
  RowFmt2 = 0x61, // 5.0, u32 length
  Dynamic2 = 0x62, // 5.0, u32 length
  Logout = 0x71, // 5.0, 1 byte
  TvpRow = 0x01, // inside a TVP value
  Offset = 0x78,
  ReturnStatus = 0x79,
  ColMetadata = 0x81, // 7.x (0x81 is CURDELETE in 5.0)
  AltMetadata = 0x88,
  TabName = 0xa4,
  ColInfo = 0xa5,
  Order = 0xa9,
  Error = 0xaa,
  Info = 0xab,
  ReturnValue = 0xac,
  LoginAck = 0xad,
  FeatureExtAck = 0xae,
  Row = 0xd1,
  NbcRow = 0xd2,
  AltRow = 0xd3,
  Params = 0xd7, // 5.0
  Capability = 0xe2, // 5.0
  EnvChange = 0xe3,
  SessionState = 0xe4, // 7.4, u32 length
  Eed = 0xe5, // 5.0 extended error
  DbRpc = 0xe6, // 5.0
  Dynamic = 0xe7, // 5.0
  ParamFmt = 0xec, // 5.0
  Sspi = 0xed,
  RowFmt = 0xee, // 5.0 (FEDAUTHINFO in 7.4, u32 length)
  Done = 0xfd,
  DoneProc = 0xfe,
  DoneInProc = 0xff,
}

/** DONE status bits ([MS-TDS] 2.2.7.6). */
export const enum DoneStatus {
  More = 0x01,
  Error = 0x02,
  InXact = 0x04,
  Count = 0x10,
  Attention = 0x20,
  SrvError = 0x100,
}

/** ENVCHANGE types ([MS-TDS] 2.2.7.9). */
export const enum EnvType {
  Database = 1,
  Language = 2,
  Charset = 3,
  PacketSize = 4,
  Collation = 7,
  BeginTran = 8,
  CommitTran = 9,
  RollbackTran = 10,
  EnlistDtc = 11,
  DefectTran = 12,
  TranEnded = 17,
  ResetAck = 18,
  Routing = 20,
}

/** Well-known procedure ids of RPC requests sent with NameLenProcID 0xFFFF ([MS-TDS] 2.2.6.6). */
export const procNames: readonly string[] = [
  '',
  'sp_cursor', // 1
  'sp_cursoropen', // 2
  'sp_cursorprepare', // 3
  'sp_cursorexecute', // 4
  'sp_cursorprepexec', // 5
  'sp_cursorunprepare', // 6
  'sp_cursorfetch', // 7
  'sp_cursoroption', // 8
  'sp_cursorclose', // 9
  'sp_executesql', // 10
  'sp_prepare', // 11
  'sp_execute', // 12
  'sp_prepexec', // 13
  'sp_prepexecrpc', // 14
  'sp_unprepare', // 15
];

/** TDS versions as LOGIN7 (little-endian) and LOGINACK (big-endian) carry them. */
export function tdsVersionName(v: number): string {
  switch (v >>> 0) {
    case 0x70000000:
      return '7.0';
    case 0x71000000:
    case 0x71000001:
      return '7.1';
    case 0x72090002:
      return '7.2';
    case 0x730a0003:
      return '7.3A';
    case 0x730b0003:
      return '7.3B';
    case 0x74000004:
      return '7.4';
    case 0x08000000:
      return '8.0';
    default:
      return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
  }
}

/** What PRELOGIN said (either direction). */
export interface PreLogin {
  readonly version?: string;
  readonly encryption?: number;
  readonly instance?: string;
  readonly threadId?: number;
  readonly mars?: boolean;
  readonly traceId?: string;
  readonly fedAuth?: boolean;
}

/** LOGIN7 ([MS-TDS] 2.2.6.4). The password is located but never read. */
export interface Login7 {
  readonly tdsVersion: number;
  readonly packetSize: number;
  readonly clientProgVer: number;
  readonly clientPid: number;
  readonly connectionId: number;
  readonly optionFlags1: number;
  readonly optionFlags2: number;
  readonly typeFlags: number;
  readonly optionFlags3: number;
  readonly hostName: string;
  readonly userName: string;
  readonly appName: string;
  readonly serverName: string;
  readonly library: string;
  readonly language: string;
  readonly database: string;
  /** Integrated (SSPI/Kerberos/NTLM) authentication: the user is in the SSPI blob, not in the record. */
  readonly sspi: boolean;
}

/** TDS 5.0 / 4.2 login record (FreeTDS tds.html "TDS 4.2 & 5.0 Login Packet"). */
export interface Login5 {
  readonly hostName: string;
  readonly userName: string;
  readonly hostProcess: string;
  readonly appName: string;
  readonly serverName: string;
  readonly library: string;
  readonly language: string;
  readonly charset: string;
  readonly packetSize: string;
  readonly tdsVersion: string;
}

/** One RPC parameter. */
export interface RpcParam {
  readonly name: string;
  readonly output: boolean;
  readonly type: string;
  readonly value: ParamValue;
}

/** One procedure call of an RPC request (a request may chain several). */
export interface RpcCall {
  readonly proc: string;
  readonly procId: number;
  readonly params: RpcParam[];
}

/** ERROR / INFO / EED. */
export interface ServerMessage {
  readonly number: number;
  readonly state: number;
  readonly severity: number;
  readonly message: string;
  readonly procedure: string;
  readonly line: number;
  readonly sqlState?: string;
}

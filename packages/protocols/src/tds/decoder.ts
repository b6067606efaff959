// Client messages of TDS: bytes (a joined message payload) -> typed messages.
// Each decoder reads with a bounded ByteReader and returns undefined when
// the payload cannot be the message ([MS-TDS] 2.2.6).
import { ByteReader, decodeText, type ParamValue } from '@dbtap/core';
import { PreLoginOption, procNames, type Login5, type Login7, type PreLogin, type RpcCall, type RpcParam } from './messages.js';
import { readTypeInfo, readValue, utf16, bVarchar } from './values.js';

/**
 * PRELOGIN option list ([MS-TDS] 2.2.6.5): (token u8, offset u16be, length
 * u16be)* 0xFF, then the option data at the offsets (from the payload start).
 */
export function decodePreLogin(p: Uint8Array): PreLogin | undefined {
  const out: { -readonly [K in keyof PreLogin]: PreLogin[K] } = {};
  let i = 0;
  let seen = 0;
  while (i < p.length && p[i] !== PreLoginOption.Terminator) {
    if (i + 5 > p.length) return undefined;
    const tok = p[i]!;
    const off = (p[i + 1]! << 8) | p[i + 2]!;
    const len = (p[i + 3]! << 8) | p[i + 4]!;
    if (off + len > p.length) return undefined;
    const v = p.subarray(off, off + len);
    switch (tok) {
      case PreLoginOption.Version:
        if (len >= 6) out.version = `${v[0]}.${v[1]}.${(v[2]! << 8) | v[3]!}.${(v[4]! << 8) | v[5]!}`;
        break;
      case PreLoginOption.Encryption:
        if (len >= 1) out.encryption = v[0]!;
        break;
      case PreLoginOption.InstOpt: {
        const z = v.indexOf(0);
        out.instance = decodeText(z >= 0 ? v.subarray(0, z) : v, 'latin1');
        break;
      }
      case PreLoginOption.ThreadId:
        if (len >= 4) out.threadId = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
        break;
      case PreLoginOption.Mars:
        if (len >= 1) out.mars = v[0] === 1;
        break;
      case PreLoginOption.TraceId:
        if (len >= 16) out.traceId = Buffer.from(v.subarray(0, 16)).toString('hex');
        break;
      case PreLoginOption.FedAuthRequired:
        if (len >= 1) out.fedAuth = v[0] === 1;
        break;
      default:
        break;
    }
    i += 5;
    if (++seen > 32) return undefined;
  }
  if (i >= p.length && seen === 0) return undefined;
  return out;
}

/** Text at (offset, chars) of LOGIN7's variable part. */
function loginText(p: Uint8Array, at: number): string {
  if (at + 4 > p.length) return '';
  const off = p[at]! | (p[at + 1]! << 8);
  const n = p[at + 2]! | (p[at + 3]! << 8);
  if (n === 0 || off + 2 * n > p.length) return '';
  return utf16(p.subarray(off, off + 2 * n));
}

/**
 * LOGIN7 ([MS-TDS] 2.2.6.4). Fixed part (36 bytes) then (offset u16, chars
 * u16) pairs from byte 36: HostName, UserName, Password, AppName,
 * ServerName, Extension, CltIntName, Language, Database, ClientID(6), SSPI.
 * The Password pair (byte 44) is skipped: its bytes are never read.
 */
export function decodeLogin7(p: Uint8Array): Login7 | undefined {
  if (p.length < 86) return undefined;
  const r = new ByteReader(p);
  const length = r.u32le();
  if (length < 86 || length > p.length + 8) return undefined;
  const tdsVersion = r.u32le();
  const packetSize = r.u32le();
  const clientProgVer = r.u32le();
  const clientPid = r.u32le();
  const connectionId = r.u32le();
  const optionFlags1 = r.u8();
  const optionFlags2 = r.u8();
  const typeFlags = r.u8();
  const optionFlags3 = r.u8();
  const sspiLen = p[80]! | (p[81]! << 8);
  return {
    tdsVersion,
    packetSize,
    clientProgVer,
    clientPid,
    connectionId,
    optionFlags1,
    optionFlags2,
    typeFlags,
    optionFlags3,
    hostName: loginText(p, 36),
    userName: loginText(p, 40),
    appName: loginText(p, 48),
    serverName: loginText(p, 52),
    library: loginText(p, 60),
    language: loginText(p, 64),
    database: loginText(p, 68),
    sspi: (optionFlags2 & 0x80) !== 0 || sspiLen > 0,
  };
}

/** A fixed-width field with its length byte after it (TDS 4.2/5.0 login). */
function field5(p: Uint8Array, at: number, width: number): string {
  if (at + width + 1 > p.length) return '';
  const n = Math.min(p[at + width]!, width);
  return decodeText(p.subarray(at, at + n), 'latin1');
}

/**
 * TDS 4.2 / 5.0 login record (offsets without the packet header; FreeTDS
 * tds.html). The password fields (62, 202) are never read.
 */
export function decodeLogin5(p: Uint8Array): Login5 | undefined {
  if (p.length < 563) return undefined;
  const host = p[30]!;
  const user = p[61]!;
  if (host > 30 || user > 30 || p[92]! > 30) return undefined;
  const tv = p.subarray(458, 462);
  return {
    hostName: field5(p, 0, 30),
    userName: field5(p, 31, 30),
    hostProcess: field5(p, 93, 30),
    appName: field5(p, 140, 30),
    serverName: field5(p, 171, 30),
    library: field5(p, 462, 10),
    language: field5(p, 480, 30),
    charset: field5(p, 525, 30),
    packetSize: field5(p, 557, 6),
    tdsVersion: `${tv[0]}.${tv[1]}`,
  };
}

/**
 * ALL_HEADERS ([MS-TDS] 2.2.5.3): u32 total length, then (u32 length, u16
 * type, data)*. Returns the offset after it (0 when absent: TDS 7.0/7.1) and
 * the transaction descriptor when present.
 */
export function skipAllHeaders(p: Uint8Array): { at: number; txn?: bigint; outstanding?: number } {
  if (p.length < 4) return { at: 0 };
  const total = (p[0]! | (p[1]! << 8) | (p[2]! << 16) | (p[3]! << 24)) >>> 0;
  if (total < 4 || total > p.length || total > 4096) return { at: 0 };
  let i = 4;
  let txn: bigint | undefined;
  let outstanding: number | undefined;
  while (i + 6 <= total) {
    const len = (p[i]! | (p[i + 1]! << 8) | (p[i + 2]! << 16) | (p[i + 3]! << 24)) >>> 0;
    const type = p[i + 4]! | (p[i + 5]! << 8);
    if (len < 6 || i + len > total || type < 1 || type > 3) return { at: 0 };
    if (type === 2 && len >= 18) {
      const v = new DataView(p.buffer, p.byteOffset + i + 6, 12);
      txn = v.getBigUint64(0, true);
      outstanding = v.getUint32(8, true);
    }
    i += len;
  }
  if (i !== total) return { at: 0 };
  return { at: total, ...(txn !== undefined ? { txn } : {}), ...(outstanding !== undefined ? { outstanding } : {}) };
}

/** SQL batch: ALL_HEADERS then UTF-16LE text. */
export function decodeSqlBatch(p: Uint8Array): string {
  const h = skipAllHeaders(p);
  return utf16(p.subarray(h.at));
}

/**
 * RPC request ([MS-TDS] 2.2.6.6): ALL_HEADERS, then calls separated by the
 * batch flag (0x80 in 7.0/7.1, 0xFF in 7.2+, 0xFE no-exec): NameLenProcID
 * (0xFFFF then a proc id), OptionFlags u16, parameters (B_VARCHAR name,
 * StatusFlags u8, TYPE_INFO, value). A call cut short keeps the parameters
 * read so far; `complete` says whether all of it was read.
 */
export function decodeRpc(p: Uint8Array, charset?: string, maxValueBytes = 1 << 16): { calls: RpcCall[]; complete: boolean } {
  const h = skipAllHeaders(p);
  const r = new ByteReader(p, h.at);
  const calls: RpcCall[] = [];
  while (r.remaining >= 4) {
    const nl = r.u16le();
    let proc: string;
    let procId = 0;
    if (nl === 0xffff) {
      procId = r.u16le();
      proc = procNames[procId] ?? `procid:${procId}`;
    } else {
      if (nl > 4096) return { calls, complete: false };
      proc = utf16(r.bytes(nl * 2));
    }
    r.u16le(); // option flags
    const params: RpcParam[] = [];
    calls.push({ proc, procId, params });
    while (r.remaining > 0 && r.ok) {
      const b = r.peek();
      if (b === 0x80 || b === 0xff || b === 0xfe) {
        r.u8();
        break;
      }
      const start = r.pos;
      const name = bVarchar(r);
      const status = r.u8();
      const t = readTypeInfo(r, charset);
      if (t === undefined || !r.ok) return { calls, complete: false };
      if (status & 0x08) {
        // fEncrypted (Always Encrypted): the value is ciphertext; not decoded.
        return { calls, complete: false };
      }
      const value: ParamValue = readValue(r, t, false, maxValueBytes);
      if (!r.ok) {
        r.pos = start;
        return { calls, complete: false };
      }
      params.push({ name, output: (status & 0x01) !== 0, type: t.name, value });
    }
    if (!r.ok) return { calls, complete: false };
  }
  return { calls, complete: r.ok && r.remaining === 0 };
}

/** Transaction manager request ([MS-TDS] 2.2.6.9) as a statement text. */
export function decodeTransactionManager(p: Uint8Array): string | undefined {
  const h = skipAllHeaders(p);
  const r = new ByteReader(p, h.at);
  const type = r.u16le();
  const named = (verb: string): string => {
    const name = r.remaining > 0 ? bVarchar(r) : '';
    return name !== '' ? `${verb} ${name}` : verb;
  };
  switch (type) {
    case 0:
      return 'TM_GET_DTC_ADDRESS';
    case 1:
      return 'TM_PROPAGATE_XACT';
    case 5: {
      r.u8(); // isolation level
      return named('BEGIN TRANSACTION');
    }
    case 6:
      return 'TM_PROMOTE_XACT';
    case 7:
      return named('COMMIT TRANSACTION');
    case 8:
      return named('ROLLBACK TRANSACTION');
    case 9:
      return named('SAVE TRANSACTION');
    default:
      return undefined;
  }
}

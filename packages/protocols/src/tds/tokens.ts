// Token streams of TDS responses (7.x and 5.0) and of TDS 5.0 requests,
// parsed as packets arrive: a response is never buffered whole, only a
// token that straddles two packets is carried over (bounded), so a result
// of any size costs the size of its largest row.
//
// Every token's length rule is known ([MS-TDS] 2.2.4.2; FreeTDS tds.html):
//   xx11xxxx fixed length 1/2/4/8 (bits 2-3)   DONE* is 12 bytes in 7.2+, 8 before
//   xx10xxxx u16 length (u32: 0x20 0x21 0x22 0x61 0x62 in 5.0, 0xE4 0xEE in 7.4)
//   xx01xxxx row data: as the last COLMETADATA / ROWFMT says
//   xx00xxxx COLMETADATA / ALTMETADATA, counted by columns
// RETURNVALUE (0xAC) and FEATUREEXTACK (0xAE) in 7.x are parsed field by field.
import { ByteReader, decodeText, toHex, type ParamValue } from '@dbtap/core';
import { Outcome } from '../kit/index.js';
import { DoneStatus, Token, type ServerMessage } from './messages.js';
import { LenKind, bVarchar, readTypeInfo, readValue, usVarchar, utf16, valueText, type TypeInfo } from './values.js';

/** Which token dialect a stream speaks. */
export const enum Dialect {
  Tds70, // 7.0 / 7.1: u16 user types, 8-byte DONE, u16 line numbers
  Tds72, // 7.2+
  Tds50, // Sybase 5.0
}

/** What a response told the session (besides the statement's own result). */
export interface ResponseHooks {
  loginAck(product: string, version: string, tdsVersion: number, ok: boolean): void;
  envChange(type: number, newValue: string, oldValue: string): void;
}

/** The result of one request, accumulated token by token. */
export class ResponseAcc {
  columns: string[] | undefined;
  rows: (string | null)[][] | undefined;
  rowCount = 0;
  rowsReturned = 0;
  affected = -1;
  error: ServerMessage | undefined;
  infos = 0;
  doneError = false;
  attention = false;
  final = false;
  returnStatus: number | undefined;
  returnValues: [name: string, value: ParamValue][] | undefined;
  /** A result set is open (COLMETADATA/ROWFMT since the last DONE). */
  inResult = false;
  truncated = false;
  /** TDS 5.0 DYNAMIC id (request or acknowledgement), type and statement text. */
  dynamicId: string | undefined;
  dynamicType = 0;
  dynamicSql: string | undefined;
  /** TDS 5.0 request tokens: LANGUAGE text, DBRPC name, LOGOUT. */
  language: string | undefined;
  rpcName: string | undefined;
  logout = false;
}

/** A column of a TDS 5.0 ROWFMT / PARAMFMT. */
interface Col5 {
  readonly name: string;
  readonly type: number;
  readonly size: number; // fixed size, or -1 (u8 length), -4 (u32 length), -5 (text pointer)
  readonly scale: number;
}

const fixed5: Record<number, number> = { 0x30: 1, 0x32: 1, 0x34: 2, 0x38: 4, 0xbf: 8, 0x3b: 4, 0x3e: 8, 0x3c: 8, 0x7a: 4, 0x3d: 8, 0x3a: 4, 0x31: 4, 0x33: 4, 0x41: 2, 0x42: 4, 0x43: 8, 0x1f: 0 };
const byteLen5 = new Set([0x2f, 0x27, 0x2d, 0x25, 0x26, 0x6d, 0x6e, 0x6f, 0x7b, 0x93, 0x44, 0x68, 0x24, 0x6a, 0x6c, 0x67]);

/** Token parsing state of one direction (column formats survive across messages). */
export class TokenParser {
  /** Column types of the current 7.x result set. */
  cols: TypeInfo[] = [];
  /** Column formats of the current 5.0 result set / parameters. */
  cols5: Col5[] = [];
  params5: Col5[] = [];
  private carry: Uint8Array = new Uint8Array(0);
  private carryLen = 0;
  private skipping = false;
  private readonly r = new ByteReader();

  constructor(
    public dialect: Dialect,
    private readonly maxRows: number,
    private readonly maxCarry: number,
    public charset: string,
    private readonly hooks: ResponseHooks,
  ) {}

  /** False until LOGIN7/LOGINACK said which TDS version the stream speaks (mid-session pickup). */
  versionKnown = false;

  /**
   * A mid-session stream of unknown version: is this DONE the 8-byte one of
   * TDS 7.0/7.1? (It is when exactly 8 bytes follow the token at the end of
   * the message, or another DONE starts 8 bytes on and not 12.)
   */
  private doneIs8(r: ByteReader): boolean {
    const left = r.end - r.pos;
    if (left === 4 + 4) return true;
    const isDone = (b: number): boolean => b === 0xfd || b === 0xfe || b === 0xff;
    if (left >= 4 + 4 + 1 && isDone(r.buf[r.pos + 8]!)) return left < 4 + 8 + 1 || !isDone(r.buf[r.pos + 12]!) || left === 4 + 4 + 1 + 8;
    return false;
  }

  /** Forgets a partial token (a new message, a gap). */
  reset(): void {
    this.carryLen = 0;
    this.skipping = false;
    if (this.carry.length > 1 << 20) this.carry = new Uint8Array(0);
  }

  /**
   * Parses the tokens of one packet payload into `acc`. `eom`: the last
   * packet of the message (a partial token left then is malformed or cut).
   * Returns false when the stream could not be parsed (the rest of the
   * message is skipped; `acc.truncated` set).
   */
  push(payload: Uint8Array, eom: boolean, acc: ResponseAcc): boolean {
    if (this.skipping) {
      if (eom) this.reset();
      return false;
    }
    let buf = payload;
    let start = 0;
    let end = payload.length;
    if (this.carryLen > 0) {
      const need = this.carryLen + payload.length;
      if (need > this.maxCarry) return this.giveUp(acc, eom);
      if (this.carry.length < need) {
        const g = new Uint8Array(Math.max(need, this.carry.length * 2));
        g.set(this.carry.subarray(0, this.carryLen));
        this.carry = g;
      }
      this.carry.set(payload, this.carryLen);
      buf = this.carry;
      end = need;
    }
    const r = this.r;
    while (start < end) {
      r.reset(buf, start, end);
      const res = this.token(r, acc);
      if (res === Outcome.Malformed) return this.giveUp(acc, eom);
      if (res === Outcome.More || r.overrun) break;
      start = r.pos;
    }
    const left = end - start;
    if (eom) {
      this.carryLen = 0;
      if (left > 0) {
        acc.truncated = true;
        return false;
      }
      return true;
    }
    if (left > this.maxCarry) return this.giveUp(acc, eom);
    if (buf === this.carry) {
      this.carry.copyWithin(0, start, end);
    } else {
      if (this.carry.length < left) this.carry = new Uint8Array(Math.max(left, 4096));
      this.carry.set(buf.subarray(start, end), 0);
    }
    this.carryLen = left;
    return true;
  }

  /** A packet with a hole: the rest of the message is not parsed. */
  abandon(acc: ResponseAcc, eom: boolean): void {
    this.giveUp(acc, eom);
  }

  private giveUp(acc: ResponseAcc, eom: boolean): false {
    acc.truncated = true;
    this.carryLen = 0;
    this.skipping = !eom;
    return false;
  }

  /** One token; Outcome.More when it is not all there. */
  private token(r: ByteReader, acc: ResponseAcc): number {
    const tok = r.u8();
    const d = this.dialect;
    switch (tok) {
      case Token.Done:
      case Token.DoneProc:
      case Token.DoneInProc: {
        if (d === Dialect.Tds72 && !this.versionKnown && this.doneIs8(r)) this.dialect = Dialect.Tds70;
        const status = r.u16le();
        r.u16le(); // current command / transaction state
        let count: number;
        if (this.dialect === Dialect.Tds72) {
          const lo = r.u32le();
          count = lo + r.u32le() * 2 ** 32;
        } else count = r.u32le();
        if (r.overrun) return Outcome.More;
        this.done(acc, tok, status, count);
        return 1;
      }
      case Token.ColMetadata:
        if (d === Dialect.Tds50) return this.skipU16(r); // CURDELETE
        return this.colMetadata(r, acc);
      case Token.Row:
        return d === Dialect.Tds50 ? this.row5(r, acc, this.cols5) : this.row(r, acc, false);
      case Token.NbcRow:
        return this.row(r, acc, true);
      case Token.ReturnStatus: {
        const v = r.i32le();
        if (r.overrun) return Outcome.More;
        acc.returnStatus = v;
        return 1;
      }
      case Token.ReturnValue:
        if (d === Dialect.Tds50) return this.skipU16(r);
        return this.returnValue(r, acc);
      case Token.Error:
      case Token.Info:
      case Token.Eed:
        return this.message(r, acc, tok);
      case Token.LoginAck:
        return this.loginAck(r);
      case Token.EnvChange:
        return this.envChange(r);
      case Token.FeatureExtAck:
        if (d === Dialect.Tds50) return this.skipU16(r);
        for (;;) {
          const id = r.u8();
          if (id === 0xff || r.overrun) break;
          r.skip(r.u32le());
        }
        return r.overrun ? Outcome.More : 1;
      case Token.RowFmt:
        if (d !== Dialect.Tds50) return this.skipU32(r); // FEDAUTHINFO
        return this.rowFmt(r, acc, false, false);
      case Token.RowFmt2:
        return this.rowFmt(r, acc, true, false);
      case Token.ParamFmt:
        return this.rowFmt(r, acc, false, true);
      case Token.ParamFmt2:
        return this.rowFmt(r, acc, true, true);
      case Token.Params:
        return this.row5(r, acc, this.params5, true);
      case Token.Dynamic:
      case Token.Dynamic2: {
        const len = tok === Token.Dynamic ? r.u16le() : r.u32le();
        const end = r.pos + len;
        if (end > r.end) return Outcome.More;
        acc.dynamicType = r.u8();
        r.u8(); // status
        acc.dynamicId = decodeText(r.bytes(r.u8()), 'latin1');
        if (r.pos < end) {
          const n = tok === Token.Dynamic ? r.u16le() : r.u32le();
          if (n > 0 && r.pos + n <= end) acc.dynamicSql = decodeText(r.bytes(n), this.charset);
        }
        r.pos = end;
        return 1;
      }
      case Token.Language: {
        const len = r.u32le();
        const end = r.pos + len;
        if (end > r.end) return len > this.maxCarry ? Outcome.Malformed : Outcome.More;
        r.u8(); // status (1: parameters follow)
        acc.language = decodeText(r.bytes(end - r.pos), this.charset);
        return 1;
      }
      case Token.DbRpc: {
        const len = r.u16le();
        const end = r.pos + len;
        if (end > r.end) return Outcome.More;
        acc.rpcName = decodeText(r.bytes(r.u8()), this.charset);
        r.pos = end;
        return 1;
      }
      case Token.Logout:
        r.u8();
        if (r.overrun) return Outcome.More;
        acc.logout = true;
        return 1;
      case Token.SessionState:
        return this.skipU32(r);
      case Token.AltMetadata:
      case Token.AltRow:
        return Outcome.Malformed; // COMPUTE BY results: not decoded, the rest is skipped
      case Token.Offset:
        r.skip(4);
        return r.overrun ? Outcome.More : 1;
      default:
        return this.generic(r, tok);
    }
  }

  private generic(r: ByteReader, tok: number): number {
    const cls = tok & 0x30;
    if (cls === 0x30) {
      r.skip(1 << ((tok >> 2) & 3));
      return r.overrun ? Outcome.More : 1;
    }
    if (cls === 0x20) {
      if (this.dialect === Dialect.Tds50 && (tok === 0x20 || tok === 0x21 || tok === 0x22 || tok === 0x61 || tok === 0x62)) return this.skipU32(r);
      return this.skipU16(r);
    }
    if (this.dialect === Dialect.Tds50 && tok >= 0x80 && tok <= 0x87) return this.skipU16(r); // cursor tokens
    return Outcome.Malformed;
  }

  private skipU16(r: ByteReader): number {
    const n = r.u16le();
    r.skip(n);
    return r.overrun ? Outcome.More : 1;
  }

  private skipU32(r: ByteReader): number {
    const n = r.u32le();
    if (n > this.maxCarry && r.remaining < n) return Outcome.Malformed;
    r.skip(n);
    return r.overrun ? Outcome.More : 1;
  }

  private done(acc: ResponseAcc, tok: number, status: number, count: number): void {
    if (status & (DoneStatus.Error | DoneStatus.SrvError)) acc.doneError = true;
    if (status & DoneStatus.Attention) acc.attention = true;
    if (status & DoneStatus.Count) {
      if (acc.inResult) acc.rowsReturned += count;
      else if (tok !== Token.DoneProc || acc.affected < 0) acc.affected = Math.max(0, acc.affected) + count;
    }
    acc.inResult = false;
    if (tok !== Token.DoneInProc && (status & DoneStatus.More) === 0) acc.final = true;
  }

  /** COLMETADATA ([MS-TDS] 2.2.7.4): u16 count (0xFFFF none), per column UserType, Flags, TYPE_INFO, [TableName], ColName. */
  private colMetadata(r: ByteReader, acc: ResponseAcc): number {
    const n = r.u16le();
    if (n === 0xffff) return r.overrun ? Outcome.More : 1;
    const cols: TypeInfo[] = [];
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      if (this.dialect === Dialect.Tds72) r.u32le();
      else r.u16le();
      r.u16le(); // flags
      const t = readTypeInfo(r, this.charset === 'utf-8' ? undefined : this.charset);
      if (r.overrun) return Outcome.More;
      if (t === undefined) return Outcome.Malformed;
      if (t.len === LenKind.Long) {
        if (this.dialect === Dialect.Tds72) {
          const parts = r.u8();
          for (let k = 0; k < parts; k++) usVarchar(r);
        } else usVarchar(r);
      }
      names.push(bVarchar(r));
      cols.push(t);
      if (r.overrun) return Outcome.More;
    }
    this.cols = cols;
    this.openResult(acc, names);
    return 1;
  }

  private openResult(acc: ResponseAcc, names: string[]): void {
    acc.inResult = true;
    if (acc.columns === undefined) {
      acc.columns = names;
      if (this.maxRows > 0) acc.rows = [];
    }
  }

  private row(r: ByteReader, acc: ResponseAcc, nbc: boolean): number {
    const cols = this.cols;
    const keep = acc.rows !== undefined && acc.rows.length < this.maxRows && acc.rowsReturned === 0 && acc.columns !== undefined && acc.columns.length === cols.length;
    const out: (string | null)[] | undefined = keep ? [] : undefined;
    let bitmap = 0;
    if (nbc) {
      bitmap = r.pos;
      r.skip((cols.length + 7) >> 3);
    }
    for (let i = 0; i < cols.length; i++) {
      if (nbc && (r.buf[bitmap + (i >> 3)]! & (1 << (i & 7))) !== 0) {
        out?.push(null);
        continue;
      }
      const v = readValue(r, cols[i]!, true, keep ? 4096 : 0);
      if (r.overrun) return Outcome.More;
      out?.push(valueText(v));
    }
    if (r.overrun) return Outcome.More;
    acc.rowCount++;
    if (out !== undefined) acc.rows!.push(out);
    return 1;
  }

  private returnValue(r: ByteReader, acc: ResponseAcc): number {
    r.u16le(); // ordinal
    const name = bVarchar(r);
    r.u8(); // status
    if (this.dialect === Dialect.Tds72) r.u32le();
    else r.u16le();
    r.u16le(); // flags
    const t = readTypeInfo(r);
    if (r.overrun) return Outcome.More;
    if (t === undefined) return Outcome.Malformed;
    const v = readValue(r, t, false, 4096);
    if (r.overrun) return Outcome.More;
    (acc.returnValues ??= []).push([name, v]);
    return 1;
  }

  /** ERROR / INFO ([MS-TDS] 2.2.7.10) and 5.0 EED. */
  private message(r: ByteReader, acc: ResponseAcc, tok: number): number {
    const len = r.u16le();
    const end = r.pos + len;
    if (end > r.end) return Outcome.More;
    const number = r.i32le();
    const state = r.u8();
    const severity = r.u8();
    let sqlState: string | undefined;
    const d = this.dialect;
    const text5 = (b: Uint8Array): string => decodeText(b, this.charset);
    if (tok === Token.Eed) {
      const sl = r.u8();
      sqlState = decodeText(r.bytes(sl), 'latin1');
      r.u8(); // status
      r.u16le(); // transaction state
    }
    const message = d === Dialect.Tds50 ? text5(r.bytes(r.u16le())) : usVarchar(r);
    if (d === Dialect.Tds50) {
      r.bytes(r.u8());
    } else bVarchar(r);
    const procedure = d === Dialect.Tds50 ? text5(r.bytes(r.u8())) : bVarchar(r);
    const line = d === Dialect.Tds72 ? r.u32le() : r.u16le();
    r.pos = end;
    const m: ServerMessage = { number, state, severity, message, procedure, line, ...(sqlState !== undefined && sqlState !== '' ? { sqlState } : {}) };
    // Severity 11 and above is an error; 10 and below informational ([MS-TDS] 2.2.7.10).
    const isError = tok === Token.Error || (tok === Token.Eed && severity > 10);
    if (isError && severity > 10) {
      if (acc.error === undefined) acc.error = m;
    } else acc.infos++;
    return 1;
  }

  /** LOGINACK: 7.x interface, TDS version (big-endian), product, version bytes; 5.0 status 5 ok / 6 failed. */
  private loginAck(r: ByteReader): number {
    const len = r.u16le();
    const end = r.pos + len;
    if (end > r.end) return Outcome.More;
    const iface = r.u8();
    const tdsVersion = r.u32be();
    const product = this.dialect === Dialect.Tds50 ? decodeText(r.bytes(r.u8()), 'latin1') : bVarchar(r);
    const v = r.bytes(4);
    r.pos = end;
    const version = this.dialect === Dialect.Tds50 ? `${v[0]}.${v[1]}.${v[2]}.${v[3]}` : `${v[0]}.${v[1]}.${((v[2]! << 8) | v[3]!).toString()}`;
    this.hooks.loginAck(product.replace(/\0+$/, ''), version, tdsVersion, this.dialect !== Dialect.Tds50 || iface === 5);
    return 1;
  }

  /** ENVCHANGE ([MS-TDS] 2.2.7.9): type, then new/old values whose shape depends on the type. */
  private envChange(r: ByteReader): number {
    const len = r.u16le();
    const end = r.pos + len;
    if (end > r.end) return Outcome.More;
    const type = r.u8();
    let nv = '';
    let ov = '';
    if (this.dialect === Dialect.Tds50) {
      nv = decodeText(r.bytes(r.u8()), 'latin1');
      ov = decodeText(r.bytes(r.u8()), 'latin1');
    } else if (type <= 6 || type === 13 || type === 19) {
      nv = bVarchar(r);
      ov = bVarchar(r);
    } else if (type === 7 || (type >= 8 && type <= 12) || type === 17) {
      nv = toHex(r.bytes(r.u8()));
      ov = toHex(r.bytes(r.u8()));
    }
    r.pos = end;
    if (!r.overrun) this.hooks.envChange(type, nv, ov);
    return 1;
  }

  /** 5.0 ROWFMT(2) / PARAMFMT(2): column formats. */
  private rowFmt(r: ByteReader, acc: ResponseAcc, wide: boolean, params: boolean): number {
    const len = wide ? r.u32le() : r.u16le();
    const end = r.pos + len;
    if (end > r.end) return Outcome.More;
    const n = r.u16le();
    const cols: Col5[] = [];
    const names: string[] = [];
    const str = (): string => decodeText(r.bytes(r.u8()), this.charset);
    for (let i = 0; i < n && !r.overrun; i++) {
      let name = str();
      if (wide) {
        str(); // catalog
        str(); // schema
        str(); // table
        const col = str();
        if (name === '') name = col;
        r.u32le(); // status
      } else r.u8();
      r.u32le(); // user type
      const type = r.u8();
      let size: number;
      let scale = 0;
      const fx = fixed5[type];
      if (fx !== undefined) size = fx;
      else if (byteLen5.has(type)) {
        r.u8();
        if (type === 0x6a || type === 0x6c) {
          r.u8();
          scale = r.u8();
        }
        size = -1;
      } else if (type === 0xaf || type === 0xe1) {
        r.u32le();
        size = -4;
      } else if (type === 0x23 || type === 0x22 || type === 0xae) {
        r.u32le();
        r.bytes(r.u16le());
        size = -5;
      } else return Outcome.Malformed;
      r.bytes(r.u8()); // locale
      cols.push({ name, type, size, scale });
      names.push(name);
    }
    if (r.overrun || r.pos > end) return Outcome.Malformed;
    r.pos = end;
    if (params) this.params5 = cols;
    else {
      this.cols5 = cols;
      this.openResult(acc, names);
    }
    return 1;
  }

  /** 5.0 ROW / PARAMS: values per the last format. */
  private row5(r: ByteReader, acc: ResponseAcc, cols: Col5[], params = false): number {
    const keep = !params && acc.rows !== undefined && acc.rows.length < this.maxRows && acc.rowsReturned === 0;
    const out: (string | null)[] = [];
    const values: ParamValue[] = [];
    for (const c of cols) {
      const v = this.value5(r, c);
      if (r.overrun) return Outcome.More;
      if (params) values.push(v);
      else out.push(valueText(v));
    }
    if (params) {
      this.lastParams = values;
      return 1;
    }
    acc.rowCount++;
    if (keep) acc.rows!.push(out);
    return 1;
  }

  /** Values of the last 5.0 PARAMS token (request side). */
  lastParams: ParamValue[] | undefined;

  private value5(r: ByteReader, c: Col5): ParamValue {
    let n = c.size;
    if (n === -1) n = r.u8();
    else if (n === -4) n = r.u32le();
    else if (n === -5) {
      const p = r.u8();
      if (p === 0) return null;
      r.skip(p + 8);
      n = r.u32le();
    } else if (n === 0) return null;
    if (c.size < 0 && n === 0) return c.type === 0x27 || c.type === 0x2f ? '' : null;
    const b = r.bytes(n);
    if (r.overrun) return null;
    const br = new ByteReader(b);
    switch (c.type) {
      case 0x2f:
      case 0x27:
      case 0xaf:
      case 0x23:
        return decodeText(b, this.charset);
      case 0x67:
      case 0xae:
        return utf16(b);
      case 0x30:
      case 0x34:
      case 0x38:
      case 0xbf:
      case 0x26:
        return n === 1 ? br.u8() : n === 2 ? br.i16le() : n === 4 ? br.i32le() : Number(br.i64le());
      case 0x41:
      case 0x42:
      case 0x43:
      case 0x44:
        return n === 2 ? br.u16le() : n === 4 ? br.u32le() : Number(br.u64le());
      case 0x32:
      case 0x68:
        return b[0] !== 0;
      case 0x3b:
      case 0x3e:
      case 0x6d:
        return n === 4 ? br.f32le() : br.f64le();
      case 0x6a:
      case 0x6c: {
        // Sybase numerics: sign byte (0 positive), big-endian magnitude.
        let v = 0n;
        for (let i = 1; i < b.length; i++) v = (v << 8n) | BigInt(b[i]!);
        const s = v.toString().padStart(c.scale + 1, '0');
        const body = c.scale > 0 ? `${s.slice(0, s.length - c.scale)}.${s.slice(s.length - c.scale)}` : s;
        return b[0] === 0 ? body : `-${body}`;
      }
      default:
        return { type: `0x${c.type.toString(16)}`, hex: toHex(b) };
    }
  }
}

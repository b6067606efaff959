// A small TDS server for live tests, written from [MS-TDS] and FreeTDS's
// protocol notes: it answers real clients (tedious, FreeTDS, pytds, jTDS)
// well enough for them to finish their exchanges, and taps every byte each
// way so the test can run them through the decoder. It is not a database:
//
//   PRELOGIN         -> PRELOGIN (ENCRYPT_NOT_SUP, MARS off)
//   LOGIN7           -> ENVCHANGE (database, collation, packet size) LOGINACK DONE,
//                       or ERROR 18456 + DONE(error) for a wrong password
//   TDS 5.0 login    -> LOGINACK(5) ENVCHANGE CAPABILITY DONE
//   SQL batch / RPC  -> COLMETADATA ROW ROW DONE for text containing "select",
//                       ERROR 208 for text containing "missing_table", else DONE(count 1);
//                       RPCs with an output handle get a RETURNVALUE
//   LANGUAGE (5.0)   -> ROWFMT ROW DONE / EED / DONE
//   Transaction mgr  -> ENVCHANGE begin/commit/rollback + DONE
//   Attention        -> DONE(ATTN)
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';

/** One recorded chunk: direction (0 client->server, 1 server->client) and bytes. */
export type TapChunk = readonly [0 | 1, Uint8Array];

/** A running responder. */
export interface TdsResponder {
  readonly port: number;
  /** Recorded chunks of each connection, in order (a connection per array). */
  readonly conversations: TapChunk[][];
  close(): Promise<void>;
}

/** Options of the responder. */
export interface ResponderOptions {
  /** The password every user must log in with. */
  readonly password: string;
  /** Database reported by ENVCHANGE after login (default: the one the client asked for, else "master"). */
  readonly database?: string;
  /** PRELOGIN ENCRYPTION answer: 'on' makes the client start TLS, which the responder does not speak (it only records). */
  readonly encryption?: 'on' | 'off' | 'not_sup';
  /** Key and certificate (PEM) for 'off': the login-only TLS handshake inside PRELOGIN packets ([MS-TDS] 3.3.5.3). */
  readonly tls?: { readonly key: string; readonly cert: string };
}

const enc16 = (s: string): Buffer => Buffer.from(s, 'utf16le');

function bVarchar(s: string): Buffer {
  return Buffer.concat([Buffer.from([s.length]), enc16(s)]);
}

function usVarchar(s: string): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(s.length);
  return Buffer.concat([b, enc16(s)]);
}

function packets(type: number, payload: Buffer, size = 4096): Buffer {
  const out: Buffer[] = [];
  let id = 1;
  for (let off = 0; off < payload.length || off === 0; ) {
    const n = Math.min(size - 8, payload.length - off);
    const h = Buffer.alloc(8);
    h[0] = type;
    h[1] = off + n >= payload.length ? 1 : 0;
    h.writeUInt16BE(n + 8, 2);
    h.writeUInt16BE(57, 4); // spid
    h[6] = id++ & 0xff;
    out.push(h, payload.subarray(off, off + n));
    off += n;
    if (n === 0) break;
  }
  return Buffer.concat(out);
}

function token(tok: number, body: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = tok;
  h.writeUInt16LE(body.length, 1);
  return Buffer.concat([h, body]);
}

function done(tok: number, status: number, count: number, short: boolean): Buffer {
  const b = Buffer.alloc(short ? 9 : 13);
  b[0] = tok;
  b.writeUInt16LE(status, 1);
  b.writeUInt16LE(0xc1, 3);
  if (short) b.writeUInt32LE(count, 5);
  else b.writeBigUInt64LE(BigInt(count), 5);
  return b;
}

function errorToken(number: number, state: number, cls: number, msg: string, v71 = false, proc = ''): Buffer {
  const head = Buffer.alloc(6);
  head.writeInt32LE(number, 0);
  head[4] = state;
  head[5] = cls;
  const line = Buffer.alloc(v71 ? 2 : 4);
  line[0] = 1;
  return token(0xaa, Buffer.concat([head, usVarchar(msg), bVarchar('responder'), bVarchar(proc), line]));
}

function envChange(type: number, nv: Buffer, ov: Buffer): Buffer {
  return token(0xe3, Buffer.concat([Buffer.from([type]), nv, ov]));
}

const COLLATION = Buffer.from([0x09, 0x04, 0xd0, 0x00, 0x34]);

/** COLMETADATA (id int, name nvarchar(50)) and two rows. */
function resultSet(v71: boolean): Buffer {
  const col = (type: Buffer, name: string): Buffer => Buffer.concat([Buffer.from(v71 ? [0, 0, 0x09, 0x00] : [0, 0, 0, 0, 0x09, 0x00]), type, bVarchar(name)]);
  const meta = Buffer.concat([Buffer.from([0x81, 2, 0]), col(Buffer.from([0x26, 4]), 'id'), col(Buffer.concat([Buffer.from([0xe7, 100, 0]), COLLATION]), 'name')]);
  const row = (id: number, name: string): Buffer => {
    const v = Buffer.alloc(5);
    v[0] = 4;
    v.writeInt32LE(id, 1);
    const s = enc16(name);
    const l = Buffer.alloc(2);
    l.writeUInt16LE(s.length);
    return Buffer.concat([Buffer.from([0xd1]), v, l, s]);
  };
  return Buffer.concat([meta, row(1, 'alice'), row(2, 'bob')]);
}

function loginResponse(database: string, v71: boolean): Buffer {
  const ack = Buffer.concat([Buffer.from([1]), Buffer.from(v71 ? [0x71, 0x00, 0x00, 0x01] : [0x74, 0x00, 0x00, 0x04]), bVarchar('Microsoft SQL Server'), Buffer.from([16, 0, 0x03, 0xe8])]);
  return Buffer.concat([
    envChange(1, bVarchar(database), bVarchar('master')),
    envChange(7, Buffer.concat([Buffer.from([5]), COLLATION]), Buffer.from([0])),
    envChange(2, bVarchar('us_english'), bVarchar('')),
    token(0xad, ack),
    envChange(4, bVarchar('4096'), bVarchar('4096')),
    done(0xfd, 0, 0, v71),
  ]);
}

/** LOGIN7 text field at the (offset, chars) pair at `at`. */
function loginField(p: Buffer, at: number): string {
  const off = p.readUInt16LE(at);
  const n = p.readUInt16LE(at + 2);
  return p.subarray(off, off + 2 * n).toString('utf16le');
}

/** The LOGIN7 password: each byte's nibbles swapped, then XOR 0xA5 ([MS-TDS] 2.2.6.4). */
function loginPassword(p: Buffer): string {
  const off = p.readUInt16LE(44);
  const n = p.readUInt16LE(46);
  const b = Buffer.from(p.subarray(off, off + 2 * n));
  for (let i = 0; i < b.length; i++) {
    const x = b[i]! ^ 0xa5;
    b[i] = ((x << 4) | (x >> 4)) & 0xff;
  }
  return b.toString('utf16le');
}

function sqlOfRpc(p: Buffer): { proc: string; text: string } {
  // Skip ALL_HEADERS, read the name; the statement text is found by looking for the UTF-16 keywords.
  let at = 0;
  const total = p.readUInt32LE(0);
  if (total >= 4 && total < p.length && total < 1024) at = total;
  const nl = p.readUInt16LE(at);
  let proc: string;
  if (nl === 0xffff) proc = `#${p.readUInt16LE(at + 2)}`;
  else proc = p.subarray(at + 2, at + 2 + 2 * nl).toString('utf16le');
  return { proc, text: p.toString('utf16le', at & 1 ? at + 1 : at).toLowerCase() + p.toString('utf16le', (at & 1) === 0 ? at + 1 : at).toLowerCase() };
}

class Conn {
  private buf = Buffer.alloc(0);
  private msg: Buffer[] = [];
  private msgType = -1;
  private tds5 = false;
  private handle = 0;
  private inTran = false;
  private readonly handles = new Map<number, boolean>();
  /** The client logged in with TDS 7.0/7.1: 8-byte DONE, u16 user types and line numbers. */
  private v71 = false;

  /** MARS was negotiated: after the login, SMP frames carry one TDS stream per session id. */
  private mars = false;
  private smpBuf = Buffer.alloc(0);
  private readonly smp = new Map<number, { conn: Conn; seq: number }>();

  constructor(
    private readonly write: (b: Buffer) => void,
    private readonly opts: ResponderOptions,
    private readonly tap?: TapChunk[],
  ) {}

  data(chunk: Buffer): void {
    this.tap?.push([0, Uint8Array.from(chunk)]);
    if (this.mars && (this.smpBuf.length > 0 || chunk[0] === 0x53)) {
      this.smpData(chunk);
      return;
    }
    this.tds(chunk);
  }

  /** SMP ([MC-SMP] 2.2): SYN opens a session, DATA carries its TDS packets, FIN closes it. */
  private smpData(chunk: Buffer): void {
    this.smpBuf = Buffer.concat([this.smpBuf, chunk]);
    while (this.smpBuf.length >= 16) {
      const len = this.smpBuf.readUInt32LE(4);
      if (this.smpBuf.length < len) return;
      const f = this.smpBuf.subarray(0, len);
      this.smpBuf = this.smpBuf.subarray(len);
      const flags = f[1]!;
      const sid = f.readUInt16LE(2);
      const clientSeq = f.readUInt32LE(8);
      const frame = (fl: number, payload: Buffer, seq: number): Buffer => {
        const h = Buffer.alloc(16);
        h[0] = 0x53;
        h[1] = fl;
        h.writeUInt16LE(sid, 2);
        h.writeUInt32LE(16 + payload.length, 4);
        h.writeUInt32LE(seq, 8);
        h.writeUInt32LE(clientSeq + 4, 12);
        return Buffer.concat([h, payload]);
      };
      if (flags & 0x01) {
        const s = { seq: 0, conn: undefined as unknown as Conn };
        s.conn = new Conn((b) => this.out(frame(0x08, b, ++s.seq)), this.opts);
        this.smp.set(sid, s);
      } else if (flags & 0x08) {
        this.smp.get(sid)?.conn.tds(Buffer.from(f.subarray(16)));
      } else if (flags & 0x04) {
        const s = this.smp.get(sid);
        this.smp.delete(sid);
        this.out(frame(0x04, Buffer.alloc(0), s?.seq ?? 0));
      }
    }
  }

  private out(b: Buffer): void {
    this.tap?.push([1, Uint8Array.from(b)]);
    this.write(b);
  }

  /** After answering ENCRYPT_ON, or on TLS from the first byte (TDS 8.0): record only. */
  private deaf = false;

  // Login-only TLS: handshake records travel in PRELOGIN packets, then the
  // LOGIN7 arrives as raw TLS records; everything after it is clear.
  private tls: 'none' | 'handshake' | 'login' = 'none';
  private tlsIn: Duplex | undefined;

  private startTls(creds: { key: string; cert: string }): void {
    const self = this;
    this.tls = 'handshake';
    const d = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (self.tls !== 'none') self.send(0x12, chunk);
        cb();
      },
    });
    this.tlsIn = d;
    const t = new TLSSocket(d as unknown as Socket, { isServer: true, key: creds.key, cert: creds.cert, maxVersion: 'TLSv1.2' });
    t.on('secure', () => {
      this.tls = 'login';
    });
    t.on('data', (clear: Buffer) => {
      this.tls = 'none';
      this.tds(clear);
    });
    t.on('error', () => {});
  }

  tds(chunk: Buffer): void {
    if (this.tls !== 'none') {
      // Handshake: unwrap PRELOGIN packets; login: raw TLS records.
      if (this.tls === 'login') this.tlsIn!.push(chunk);
      else {
        this.buf = Buffer.concat([this.buf, chunk]);
        if (this.buf[0]! >= 0x14 && this.buf[0]! <= 0x17 && this.buf[1] === 0x03) {
          // Raw records before 'secure' fired: the handshake is over on the client's side.
          this.tls = 'login';
          this.tlsIn!.push(this.buf);
          this.buf = Buffer.alloc(0);
          return;
        }
        while (this.buf.length >= 8 && this.buf.length >= this.buf.readUInt16BE(2)) {
          const len = this.buf.readUInt16BE(2);
          this.tlsIn!.push(Buffer.from(this.buf.subarray(8, len)));
          this.buf = this.buf.subarray(len);
        }
      }
      return;
    }
    if (this.deaf || (this.buf.length === 0 && this.msgType < 0 && chunk[0] === 0x16)) {
      this.deaf = true;
      return;
    }
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt16BE(2);
      if (len < 8 || this.buf.length < len) return;
      const pkt = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
      const type = pkt[0]!;
      if (this.msgType < 0 || (this.msgType === 0x02 && type === 0x0f)) {
        if (this.msgType < 0) this.msgType = type;
      }
      this.msg.push(pkt.subarray(8));
      if ((pkt[1]! & 1) !== 0) {
        const t = this.msgType;
        const payload = Buffer.concat(this.msg);
        this.msg = [];
        this.msgType = -1;
        this.message(t, payload);
      }
    }
  }

  private send(type: number, payload: Buffer): void {
    const b = packets(type, payload);
    if (this.tap !== undefined) this.out(b);
    else this.write(b);
  }

  private message(type: number, p: Buffer): void {
    switch (type) {
      case 0x12: {
        // VERSION, ENCRYPTION=NOT_SUP, INSTOPT, THREADID, MARS=0, terminator
        const opts = [
          [0, Buffer.from([16, 0, 0x03, 0xe8, 0, 0])],
          [1, Buffer.from([this.opts.encryption === 'on' ? 1 : this.opts.encryption === 'off' ? 0 : 2])],
          [2, Buffer.from([0])],
          [3, Buffer.alloc(0)],
          [4, Buffer.from([this.clientMars(p) ? 1 : 0])],
        ] as const;
        this.mars = this.clientMars(p);
        const head = Buffer.alloc(opts.length * 5 + 1);
        let off = head.length;
        const data: Buffer[] = [];
        opts.forEach(([tok, v], i) => {
          head[i * 5] = tok;
          head.writeUInt16BE(off, i * 5 + 1);
          head.writeUInt16BE(v.length, i * 5 + 3);
          off += v.length;
          data.push(v);
        });
        head[head.length - 1] = 0xff;
        this.send(0x04, Buffer.concat([head, ...data]));
        if (this.opts.encryption === 'on') this.deaf = true;
        if (this.opts.encryption === 'off' && this.opts.tls !== undefined) this.startTls(this.opts.tls);
        return;
      }
      case 0x10: {
        this.v71 = p.readUInt32LE(4) < 0x72000000;
        const user = loginField(p, 40);
        const db = loginField(p, 68);
        if (loginPassword(p) !== this.opts.password) {
          this.send(0x04, Buffer.concat([errorToken(18456, 1, 14, `Login failed for user '${user}'.`, this.v71), done(0xfd, 0x02, 0, this.v71)]));
          return;
        }
        this.send(0x04, loginResponse(this.opts.database ?? (db || 'master'), this.v71));
        return;
      }
      case 0x02:
        this.login5(p);
        return;
      case 0x01:
        if (!this.tds5 && p.toString('utf16le').toLowerCase().includes('waitfor')) return; // answered by the attention
        this.reply(this.tds5 ? p.toString('latin1').toLowerCase() : p.toString('utf16le').toLowerCase(), this.tds5 || this.v71);
        return;
      case 0x03: {
        const { proc, text } = sqlOfRpc(p);
        if (text.includes('waitfor')) return; // answered by the attention
        const wantsHandle = proc === '#11' || proc === '#13' || proc === 'sp_prepare' || proc === 'sp_prepexec';
        let out = Buffer.alloc(0);
        if (wantsHandle) {
          const v = Buffer.alloc(4);
          v.writeInt32LE(++this.handle);
          // RETURNVALUE: ordinal, name, status (output), user type, flags, INTN(4), value
          out = Buffer.concat([Buffer.from([0xac, 0, 0]), bVarchar('@handle'), Buffer.from(this.v71 ? [1, 0, 0, 0x09, 0x00, 0x26, 4, 4] : [1, 0, 0, 0, 0, 0x09, 0x00, 0x26, 4, 4]), v]);
        }
        let isSelect = proc !== '#11' && proc !== 'sp_prepare' && text.includes('select');
        if (wantsHandle) this.handles.set(this.handle, text.includes('select'));
        if (proc === '#12' || proc === 'sp_execute') {
          // The handle: the first INTN(4) value (type 0x26, max 4, length 4).
          const at = p.indexOf(Buffer.from([0x26, 4, 4]));
          if (at >= 0) isSelect = this.handles.get(p.readInt32LE(at + 3)) === true;
        }
        const missing = text.includes('missing_table');
        const v = this.v71;
        const body = missing ? Buffer.concat([errorToken(208, 1, 16, "Invalid object name 'missing_table'.", v), done(0xff, 0x02, 0, v)]) : isSelect ? Buffer.concat([resultSet(v), done(0xff, 0x10, 2, v)]) : done(0xff, 0x10, 1, v);
        const rs = Buffer.from([0x79, 0, 0, 0, 0]);
        this.send(0x04, Buffer.concat([wantsHandle ? out : Buffer.alloc(0), body, rs, wantsHandle ? Buffer.alloc(0) : Buffer.alloc(0), done(0xfe, missing ? 0x02 : 0, 0, v)]));
        return;
      }
      case 0x0e: {
        const kind = p.readUInt16LE(p.readUInt32LE(0));
        const desc = Buffer.from([8, 1, 0, 0, 0, 0, 0, 0, 0]);
        const env = kind === 5 ? envChange(8, desc, Buffer.from([0])) : kind === 7 ? envChange(9, Buffer.from([0]), desc) : envChange(10, Buffer.from([0]), desc);
        this.inTran = kind === 5;
        this.send(0x04, Buffer.concat([env, done(0xfd, 0, 0, this.v71)]));
        return;
      }
      case 0x06:
        // The cancelled request's response ends, then the acknowledgement: a DONE with ATTN in a message of its own.
        this.send(0x04, done(0xfd, 0x00, 0, this.tds5 || this.v71));
        this.send(0x04, done(0xfd, 0x20, 0, this.tds5 || this.v71));
        return;
      case 0x07:
        // Bulk load rows: counted by their ROW tokens' first byte is not reliable; the test loads 3.
        this.send(0x04, done(0xfd, 0x10, 3, this.v71));
        return;
      case 0x0f:
        this.language5(p);
        return;
      default:
        this.send(0x04, done(0xfd, 0, 0, this.tds5 || this.v71));
    }
  }

  /** The client's PRELOGIN MARS option. */
  private clientMars(p: Buffer): boolean {
    for (let i = 0; i + 5 <= p.length && p[i] !== 0xff; i += 5) if (p[i] === 4) return p[p.readUInt16BE(i + 1)] === 1;
    return false;
  }

  private reply(text: string, short: boolean): void {
    if (text.includes('missing_table')) {
      this.send(0x04, Buffer.concat([errorToken(208, 1, 16, "Invalid object name 'missing_table'.", short), done(0xfd, 0x02, 0, short)]));
    } else if (/\bselect\b/.test(text)) {
      this.send(0x04, Buffer.concat([resultSet(this.v71), done(0xfd, 0x10, 2, short)]));
    } else {
      this.send(0x04, done(0xfd, 0x10, text.startsWith('set') ? 0 : 1, short));
    }
    void this.inTran;
  }

  /** TDS 5.0 login: LOGINACK (status 5), ENVCHANGE database, CAPABILITY echo, DONE. */
  private login5(p: Buffer): void {
    this.tds5 = true;
    const user = p.subarray(31, 31 + p[61]!).toString('latin1');
    const pass = p.subarray(62, 62 + p[92]!).toString('latin1');
    if (pass !== this.opts.password) {
      const ack = Buffer.concat([Buffer.from([6, 5, 0, 0, 0]), Buffer.from([14]), Buffer.from('SQL Server\0\0\0\0', 'latin1'), Buffer.from([15, 0, 0, 0])]);
      this.send(0x04, Buffer.concat([this.eed(4002, 1, 14, `Login failed for user '${user}'.`), token(0xad, ack), done(0xfd, 0x02, 0, true)]));
      return;
    }
    const db = this.opts.database ?? 'master';
    const env = token(0xe3, Buffer.concat([Buffer.from([1, db.length]), Buffer.from(db, 'latin1'), Buffer.from([6]), Buffer.from('master', 'latin1')]));
    const ack = Buffer.concat([Buffer.from([5, 5, 0, 0, 0]), Buffer.from([10]), Buffer.from('sql server', 'latin1'), Buffer.from([15, 7, 0, 0])]);
    // CAPABILITY: the client's own token (at the end of its login) echoed back, as a server that supports all of it.
    let cap = Buffer.alloc(0);
    for (let i = 563; i + 3 <= p.length; i++) {
      if (p[i] === 0xe2 && i + 3 + p.readUInt16LE(i + 1) === p.length) {
        cap = Buffer.from(p.subarray(i));
        break;
      }
    }
    this.send(0x04, Buffer.concat([env, token(0xad, ack), cap, done(0xfd, 0, 0, true)]));
  }

  private eed(number: number, state: number, cls: number, msg: string): Buffer {
    const head = Buffer.alloc(6);
    head.writeInt32LE(number, 0);
    head[4] = state;
    head[5] = cls;
    const ml = Buffer.alloc(2);
    ml.writeUInt16LE(msg.length);
    return token(0xe5, Buffer.concat([head, Buffer.from([5]), Buffer.from('42S02', 'latin1'), Buffer.from([0, 0, 0]), ml, Buffer.from(msg, 'latin1'), Buffer.from([9]), Buffer.from('responder', 'latin1'), Buffer.from([0]), Buffer.from([1, 0])]));
  }

  /** TDS 5.0 token request: LANGUAGE text answered like a batch (a ROWFMT result for "select"). */
  private language5(p: Buffer): void {
    let text = '';
    if (p[0] === 0x21) text = p.subarray(5 + 1, 5 + p.readUInt32LE(1)).toString('latin1').toLowerCase();
    if (p[0] === 0x71) return;
    if (text.includes('missing_table')) {
      this.send(0x04, Buffer.concat([this.eed(208, 1, 16, 'missing_table not found.'), done(0xfd, 0x02, 0, true)]));
    } else if (text.includes('syscharsets')) {
      // The server charset, asked by jTDS after login.
      const body = Buffer.concat([Buffer.from([1, 0, 4]), Buffer.from('name', 'latin1'), Buffer.from([0x10, 0, 0, 0, 0, 0x27, 30, 0])]);
      this.send(0x04, Buffer.concat([token(0xee, body), Buffer.from([0xd1, 5]), Buffer.from('iso_1', 'latin1'), done(0xfd, 0x10, 1, true)]));
    } else if (/\bselect\b/.test(text)) {
      // ROWFMT: 2 columns: id INTN(4), name VARCHAR(30)
      const col = (name: string, type: Buffer): Buffer => Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1'), Buffer.from([0x10, 0, 0, 0, 0]), type, Buffer.from([0])]);
      const body = Buffer.concat([Buffer.from([2, 0]), col('id', Buffer.from([0x26, 4])), col('name', Buffer.from([0x27, 30]))]);
      const row = (id: number, name: string): Buffer => Buffer.concat([Buffer.from([0xd1, 4]), Buffer.from(Int32Array.of(id).buffer), Buffer.from([name.length]), Buffer.from(name, 'latin1')]);
      this.send(0x04, Buffer.concat([token(0xee, body), row(1, 'alice'), row(2, 'bob'), done(0xfd, 0x10, 2, true)]));
    } else {
      this.send(0x04, done(0xfd, 0x10, 1, true));
    }
  }
}

/** Starts a responder on 127.0.0.1 (an ephemeral port). */
export async function startTdsResponder(opts: ResponderOptions): Promise<TdsResponder> {
  const conversations: TapChunk[][] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    const tap: TapChunk[] = [];
    conversations.push(tap);
    sockets.add(sock);
    const c = new Conn((b) => sock.write(b), opts, tap);
    sock.on('data', (d) => {
      try {
        c.data(d);
      } catch {
        sock.destroy();
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    conversations,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// A small MySQL protocol client over a plain socket, for live tests that need
// commands the usual drivers never send (COM_STMT_SEND_LONG_DATA,
// COM_FIELD_LIST, COM_STMT_FETCH with a cursor, COM_RESET_CONNECTION,
// COM_STATISTICS, COM_SET_OPTION, COM_PROCESS_KILL, COM_STMT_BULK_EXECUTE).
// The server's side of the conversation is real; only the client is ours.
// It speaks just enough of the protocol for those tests: no TLS, no
// compression, mysql_native_password only; CLIENT_DEPRECATE_EOF and
// CLIENT_SESSION_TRACK on request.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** Capability flags the client asks for. */
const CAPS =
  0x1 | // CLIENT_LONG_PASSWORD
  0x8 | // CLIENT_CONNECT_WITH_DB
  0x200 | // CLIENT_PROTOCOL_41
  0x2000 | // CLIENT_TRANSACTIONS
  0x8000 | // CLIENT_SECURE_CONNECTION
  0x20000 | // CLIENT_MULTI_RESULTS
  0x40000 | // CLIENT_PS_MULTI_RESULTS
  0x80000 | // CLIENT_PLUGIN_AUTH
  0x100000; // CLIENT_CONNECT_ATTRS

/** What the server answered to one command. */
export interface RawResponse {
  /** Every response packet's payload, in order. */
  packets: Buffer[];
  /** The final OK, when the command ended with one. */
  ok?: { affectedRows: number; lastInsertId: number; status: number };
  /** The ERR that ended the command. */
  err?: { code: number; sqlState: string; message: string };
  /** COM_STMT_PREPARE_OK fields. */
  prepared?: { statementId: number; columns: number; params: number };
  /** Rows of every result set, as raw payloads. */
  rows: Buffer[];
}

/** How to read the answer to a command. */
export type ResponseShape = 'result' | 'prepare' | 'fieldList' | 'statistics' | 'cursor' | 'fetch' | 'none';

function lenenc(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
}

function lenencStr(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([lenenc(b.length), b]);
}

function readLenenc(b: Buffer, p: number): [number, number] {
  const f = b[p]!;
  if (f < 0xfb) return [f, p + 1];
  if (f === 0xfc) return [b.readUInt16LE(p + 1), p + 3];
  if (f === 0xfd) return [b.readUIntLE(p + 1, 3), p + 4];
  return [Number(b.readBigUInt64LE(p + 1)), p + 9];
}

/** mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))). */
export function nativePassword(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
  const p1 = sha1(Buffer.from(password, 'utf8'));
  const p2 = sha1(Buffer.concat([scramble, sha1(p1)]));
  for (let i = 0; i < p1.length; i++) p1[i]! ^= p2[i]!;
  return p1;
}

/** A connected, logged-in raw protocol client. */
export class RawClient {
  /** Server connection id from the greeting. */
  connectionId = 0;
  /** Local (client) TCP port. */
  localPort = 0;
  private readonly sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private closed = false;
  /** CLIENT_DEPRECATE_EOF was negotiated: OK packets end result sets, no EOF after column definitions. */
  private deprecateEof = false;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const end = (e?: Error): void => {
      this.closed = true;
      if (e) this.failure = e;
      this.wake?.();
    };
    sock.on('error', end);
    sock.on('close', () => end());
  }

  /** Connects and logs in with mysql_native_password. */
  static async connect(opts: { host?: string; port?: number; user: string; password: string; database?: string; program?: string; extraCaps?: number }): Promise<RawClient> {
    const sock = connect({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 3306 });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.setNoDelay(true);
    const c = new RawClient(sock);
    c.localPort = sock.localPort ?? 0;
    await c.login(opts);
    return c;
  }

  private async login(opts: { user: string; password: string; database?: string; program?: string; extraCaps?: number }): Promise<void> {
    const g = (await this.readPacket()).payload;
    if (g[0] === 0xff) throw new Error(`server refused: ${g.subarray(3).toString()}`);
    const verEnd = g.indexOf(0, 1);
    let p = verEnd + 1;
    this.connectionId = g.readUInt32LE(p);
    p += 4;
    const s1 = g.subarray(p, p + 8);
    p += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    const s2 = g.subarray(p, p + 12);
    const scramble = Buffer.concat([s1, s2]);
    const auth = nativePassword(opts.password, scramble);
    const attrs = Buffer.concat([lenencStr('_client_name'), lenencStr('dbtap-raw'), lenencStr('program_name'), lenencStr(opts.program ?? 'dbtap-live-raw')]);
    const caps = ((opts.database === undefined ? CAPS & ~0x8 : CAPS) | (opts.extraCaps ?? 0)) >>> 0;
    this.deprecateEof = (caps & 0x1000000) !== 0;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = 45; // utf8mb4_general_ci
    const body = Buffer.concat([
      head,
      Buffer.from(opts.user + '\0'),
      Buffer.from([auth.length]),
      auth,
      opts.database === undefined ? Buffer.alloc(0) : Buffer.from(opts.database + '\0'),
      Buffer.from('mysql_native_password\0'),
      lenenc(attrs.length),
      attrs,
    ]);
    this.send(1, body);
    for (;;) {
      const r = await this.readPacket();
      const f = r.payload[0];
      if (f === 0x00) return;
      if (f === 0xff) throw new Error(`login failed: ${r.payload.readUInt16LE(1)} ${r.payload.subarray(9).toString()}`);
      if (f === 0xfe) {
        // AuthSwitchRequest: plugin name, then the new scramble.
        const nul = r.payload.indexOf(0, 1);
        const plugin = r.payload.subarray(1, nul).toString();
        // For another plugin (MariaDB may pick one at random for an unknown user) send an answer the server refuses.
        this.send(r.seq + 1, plugin === 'mysql_native_password' ? nativePassword(opts.password, r.payload.subarray(nul + 1, nul + 21)) : Buffer.alloc(64));
      }
    }
  }

  /** Writes one packet (payload under 16 MiB). */
  send(seq: number, payload: Buffer): void {
    const h = Buffer.alloc(4);
    h.writeUIntLE(payload.length, 0, 3);
    h[3] = seq & 0xff;
    this.sock.write(Buffer.concat([h, payload]));
  }

  /** Reads one packet. */
  async readPacket(): Promise<{ seq: number; payload: Buffer }> {
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUIntLE(0, 3);
        if (this.buf.length >= 4 + len) {
          const payload = this.buf.subarray(4, 4 + len);
          const seq = this.buf[3]!;
          this.buf = this.buf.subarray(4 + len);
          return { seq, payload };
        }
      }
      if (this.closed) throw this.failure ?? new Error('connection closed');
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }

  /** Sends a command (sequence 0) and reads its answer in the given shape. */
  async command(payload: Buffer, shape: ResponseShape = 'result'): Promise<RawResponse> {
    this.send(0, payload);
    const res: RawResponse = { packets: [], rows: [] };
    if (shape === 'none') return res;
    const next = async (): Promise<Buffer> => {
      const p = (await this.readPacket()).payload;
      res.packets.push(p);
      return p;
    };
    // An EOF packet, or under CLIENT_DEPRECATE_EOF the OK packet (header 0xfe) that ends a result set.
    const isEof = (p: Buffer): boolean => p[0] === 0xfe && p.length < (this.deprecateEof ? 0xffffff : 9);
    const statusOf = (p: Buffer): number => {
      if (p.length < 9 && !this.deprecateEof) return p.readUInt16LE(3);
      const [, p1] = readLenenc(p, 1);
      const [, p2] = readLenenc(p, p1);
      return p.readUInt16LE(p2);
    };
    const fail = (p: Buffer): RawResponse => {
      res.err = { code: p.readUInt16LE(1), sqlState: p.subarray(4, 9).toString(), message: p.subarray(9).toString() };
      return res;
    };
    if (shape === 'statistics') {
      await next();
      return res;
    }
    if (shape === 'fieldList') {
      for (let p = await next(); ; p = await next()) {
        if (p[0] === 0xff) return fail(p);
        if (isEof(p)) return res;
      }
    }
    if (shape === 'prepare') {
      const p = await next();
      if (p[0] === 0xff) return fail(p);
      res.prepared = { statementId: p.readUInt32LE(1), columns: p.readUInt16LE(5), params: p.readUInt16LE(7) };
      const eof = this.deprecateEof ? 0 : 1;
      if (res.prepared.params > 0) for (let i = 0; i < res.prepared.params + eof; i++) await next();
      if (res.prepared.columns > 0) for (let i = 0; i < res.prepared.columns + eof; i++) await next();
      return res;
    }
    if (shape === 'fetch') {
      for (let p = await next(); ; p = await next()) {
        if (p[0] === 0xff) return fail(p);
        if (isEof(p)) return res;
        res.rows.push(p);
      }
    }
    for (;;) {
      const first = await next();
      if (first[0] === 0xff) return fail(first);
      let status: number;
      if (first[0] === 0xfe && first.length < 9) {
        // COM_SET_OPTION answers with an EOF packet.
        status = first.readUInt16LE(3);
      } else if (first[0] === 0x00) {
        const [affectedRows, p1] = readLenenc(first, 1);
        const [lastInsertId, p2] = readLenenc(first, p1);
        status = first.readUInt16LE(p2);
        res.ok = { affectedRows, lastInsertId, status };
      } else {
        const [cols] = readLenenc(first, 0);
        for (let i = 0; i < cols; i++) await next();
        if (!this.deprecateEof) {
          status = (await next()).readUInt16LE(3);
          if (shape === 'cursor' && status & 0x40) return res; // SERVER_STATUS_CURSOR_EXISTS: rows come by COM_STMT_FETCH
        } else if (shape === 'cursor') {
          await next(); // an OK packet (header 0xfe) with SERVER_STATUS_CURSOR_EXISTS ends the metadata
          return res;
        }
        for (let p = await next(); ; p = await next()) {
          if (p[0] === 0xff) return fail(p);
          if (isEof(p)) {
            status = statusOf(p);
            break;
          }
          res.rows.push(p);
        }
      }
      if ((status & 0x8) === 0) return res; // SERVER_MORE_RESULTS_EXISTS
    }
  }

  /** COM_QUIT and close. */
  async quit(): Promise<void> {
    if (!this.closed) this.send(0, Buffer.from([0x01]));
    await new Promise<void>((r) => {
      if (this.closed) r();
      else this.sock.once('close', () => r());
      this.sock.end();
    });
  }
}

/** Builders for the command payloads (first byte = command). */
export const cmd = {
  query: (sql: string): Buffer => Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]),
  initDb: (db: string): Buffer => Buffer.concat([Buffer.from([0x02]), Buffer.from(db, 'utf8')]),
  fieldList: (table: string, wildcard = ''): Buffer => Buffer.concat([Buffer.from([0x04]), Buffer.from(table + '\0' + wildcard, 'utf8')]),
  statistics: (): Buffer => Buffer.from([0x09]),
  processKill: (id: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 0x0c;
    b.writeUInt32LE(id, 1);
    return b;
  },
  ping: (): Buffer => Buffer.from([0x0e]),
  prepare: (sql: string): Buffer => Buffer.concat([Buffer.from([0x16]), Buffer.from(sql, 'utf8')]),
  sendLongData: (id: number, param: number, data: Buffer): Buffer => {
    const b = Buffer.alloc(7);
    b[0] = 0x18;
    b.writeUInt32LE(id, 1);
    b.writeUInt16LE(param, 5);
    return Buffer.concat([b, data]);
  },
  /**
   * COM_STMT_EXECUTE with new-params-bound types. `values` are the encoded
   * binary values of the non-NULL parameters that were not sent as long data.
   */
  execute: (id: number, flags: number, types: number[], nulls: boolean[], values: Buffer[]): Buffer => {
    const head = Buffer.alloc(10);
    head[0] = 0x17;
    head.writeUInt32LE(id, 1);
    head[5] = flags;
    head.writeUInt32LE(1, 6);
    if (types.length === 0) return head;
    const bitmap = Buffer.alloc((types.length + 7) >> 3);
    nulls.forEach((n, i) => {
      if (n) bitmap[i >> 3]! |= 1 << (i & 7);
    });
    const t = Buffer.alloc(types.length * 2);
    types.forEach((ty, i) => t.writeUInt16LE(ty, i * 2));
    return Buffer.concat([head, bitmap, Buffer.from([1]), t, ...values]);
  },
  fetch: (id: number, rows: number): Buffer => {
    const b = Buffer.alloc(9);
    b[0] = 0x1c;
    b.writeUInt32LE(id, 1);
    b.writeUInt32LE(rows, 5);
    return b;
  },
  close: (id: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 0x19;
    b.writeUInt32LE(id, 1);
    return b;
  },
  reset: (id: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 0x1a;
    b.writeUInt32LE(id, 1);
    return b;
  },
  setOption: (multiStatementsOn: boolean): Buffer => Buffer.from([0x1b, multiStatementsOn ? 0 : 1, 0]),
  resetConnection: (): Buffer => Buffer.from([0x1f]),
};

/** Binary-protocol value encoders for {@link cmd.execute}. */
export const bin = {
  long: (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return b;
  },
  longlong: (n: bigint): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(n);
    return b;
  },
  double: (n: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(n);
    return b;
  },
  str: (s: string | Buffer): Buffer => {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    return Buffer.concat([lenenc(b.length), b]);
  },
  date: (y: number, m: number, d: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 4;
    b.writeUInt16LE(y, 1);
    b[3] = m;
    b[4] = d;
    return b;
  },
  datetime: (y: number, mo: number, d: number, h: number, mi: number, s: number, us = 0): Buffer => {
    const b = Buffer.alloc(us ? 12 : 8);
    b[0] = us ? 11 : 7;
    b.writeUInt16LE(y, 1);
    b[3] = mo;
    b[4] = d;
    b[5] = h;
    b[6] = mi;
    b[7] = s;
    if (us) b.writeUInt32LE(us, 8);
    return b;
  },
  time: (neg: boolean, days: number, h: number, mi: number, s: number): Buffer => {
    const b = Buffer.alloc(9);
    b[0] = 8;
    b[1] = neg ? 1 : 0;
    b.writeUInt32LE(days, 2);
    b[6] = h;
    b[7] = mi;
    b[8] = s;
    return b;
  },
};

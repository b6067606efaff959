// A stand-in for a Dameng (DM8) server, for tests that run the dmdb client
// against it: it accepts connections on 127.0.0.1, records every byte each
// way, and answers each client message so the client proceeds. There is no
// DM server here: the replies are inferred from how the client behaves, not
// copied from a server.
//
//   reply = 64-byte header echoing the request's command, handle 0,
//           return code at 10 (i32le), rows affected at 24 (i32le),
//           XOR of bytes 0..18 at 19  +  body
//   body  = 256 zero bytes for success (the client reads the startup and
//           login replies at fixed offsets: an empty body makes it fail),
//           or for an error 12 zero bytes, u32le length, message text
//
// With these replies the client logs in (in clear: an all-zero startup reply
// offers no encryption key), runs statements and closes.
import { createServer, type Server, type Socket } from 'node:net';
import { Direction } from '@dbtap/core';

/** How the listener answers one SQL text. */
export interface SqlAnswer {
  /** Rows affected reported in the reply header. */
  readonly rows?: number;
  /** A negative return code makes the reply an error. */
  readonly code?: number;
  /** Error text bytes (already in the session charset). */
  readonly message?: Uint8Array;
}

/** One chunk as the listener read or wrote it. */
export type Chunk = readonly [Direction, Uint8Array];

const OK_BODY = new Uint8Array(256);

/** A reply header for `cmd` with `bodyLength`, return code and rows affected. */
export function replyHeader(cmd: number, bodyLength: number, code = 0, rows = 0): Uint8Array {
  const h = Buffer.alloc(64);
  h.writeUInt16LE(cmd, 4);
  h.writeUInt32LE(bodyLength, 6);
  h.writeInt32LE(code, 10);
  h.writeInt32LE(rows, 24);
  let x = 0;
  for (let i = 0; i < 19; i++) x ^= h[i]!;
  h[19] = x;
  return h;
}

/** The reply the listener sends to one client message. */
export function replyTo(message: Uint8Array, answers: ReadonlyMap<string, SqlAnswer>): Uint8Array {
  const cmd = message[4]! | (message[5]! << 8);
  let answer: SqlAnswer | undefined;
  if (cmd === 0x05) {
    const end = message.indexOf(0, 64);
    const sql = Buffer.from(message.subarray(64, end < 0 ? message.length : end)).toString('latin1');
    for (const [prefix, a] of answers) if (sql.startsWith(prefix)) answer = a;
  }
  if (answer?.code !== undefined && answer.code < 0) {
    const text = answer.message ?? new Uint8Array(0);
    const body = Buffer.alloc(16 + text.length);
    body.writeUInt32LE(text.length, 12);
    body.set(text, 16);
    return Buffer.concat([replyHeader(cmd, body.length, answer.code), body]);
  }
  return Buffer.concat([replyHeader(cmd, OK_BODY.length, 0, answer?.rows ?? 0), OK_BODY]);
}

/** The listener; see the module comment. */
export class DamengListener {
  /** Every chunk of every connection, in order (client chunks as read, replies as written). */
  readonly chunks: Chunk[] = [];
  /** Whole client messages, in order. */
  readonly messages: Uint8Array[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  /**
   * @param answers replies to SQL texts, keyed by a prefix of the text's bytes read as latin1
   * @param maxBytes most bytes recorded from clients before the connection is dropped
   */
  constructor(
    private readonly answers: ReadonlyMap<string, SqlAnswer> = new Map(),
    private readonly maxBytes = 1 << 20,
  ) {}

  /** Starts listening on 127.0.0.1 and resolves with the port. */
  async start(): Promise<number> {
    const server = createServer((s) => this.serve(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server === undefined ? r() : this.server.close(() => r())));
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    let buf = Buffer.alloc(0);
    let total = 0;
    s.on('data', (d: Buffer) => {
      total += d.length;
      if (total > this.maxBytes) return void s.destroy();
      this.chunks.push([Direction.ToServer, new Uint8Array(d)]);
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 64) {
        const len = buf.readUInt32LE(6);
        if (len > this.maxBytes) return void s.destroy();
        if (buf.length < 64 + len) break;
        const m = new Uint8Array(buf.subarray(0, 64 + len));
        buf = buf.subarray(64 + len);
        this.messages.push(m);
        const reply = replyTo(m, this.answers);
        this.chunks.push([Direction.ToClient, reply]);
        s.write(reply);
      }
    });
    s.on('error', () => s.destroy());
    s.on('close', () => this.sockets.delete(s));
  }
}

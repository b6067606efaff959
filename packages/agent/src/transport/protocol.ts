// The agent <-> server wire format.
//
// Every message is a 4-byte big-endian length followed by that many bytes of
// one MessagePack value (a map with a `t` type field):
//
//   +----------------+-------------------------------------------+
//   | length u32 BE  | msgpack map { t: 'hello' | 'batch' | ... } |
//   +----------------+-------------------------------------------+
//
// A batch carries its frames as one msgpack bin value holding packed records,
// so encoding is one copy per frame and decoding hands out views:
//
//   record: 0 ts f64 LE (µs) | 8 origLen u32 LE | 12 capLen u32 LE
//           | 16 linkType u16 LE | 18 interfaceId u16 LE | 20 data[capLen]
import { Packr, Unpackr } from 'msgpackr';
import { DbtapError, ErrorCodes, type Frame } from '@dbtap/core';
import { AgentErrorCodes } from '../errors.js';

/** Transport protocol version spoken by this release (sent in every hello). */
export const PROTOCOL_VERSION = 1;
/** Default server port for agents connecting over IPv4. */
export const DEFAULT_PORT_IPV4 = 9999;
/** Default server port for agents connecting over IPv6. */
export const DEFAULT_PORT_IPV6 = 9998;
/** Default upper bound of one transport message (length prefix excluded). */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 << 20;
/** Default upper bound of a message from a peer that has not yet been authenticated (a hello is a few hundred bytes). */
export const DEFAULT_MAX_HELLO_BYTES = 64 << 10;
/** Bytes of the per-frame record header inside a batch. */
export const RECORD_HEADER_BYTES = 20;
/** Bytes of the length prefix in front of every message. */
export const LENGTH_PREFIX_BYTES = 4;

/** First message on a connection, both directions: who is talking, and (from an agent) the token. */
export interface HelloMessage {
  readonly t: 'hello';
  /** Protocol version, {@link PROTOCOL_VERSION}. */
  readonly v: number;
  /** Agent side: the shared token. */
  readonly token?: string;
  /** Agent side: identity. */
  readonly agent?: AgentIdentity;
  /** Server side: the highest batch sequence number already processed for this agent instance (0 if none). */
  readonly lastSeq?: number;
  /** Server side: the server's heartbeat interval in ms. */
  readonly heartbeatMs?: number;
  /** Server side: the largest message the server accepts. */
  readonly maxMessageBytes?: number;
}

/** What an agent says about itself in its hello. */
export interface AgentIdentity {
  /** Configured agent id (defaults to the host name). */
  readonly id: string;
  /** Host name of the agent machine. */
  readonly hostname: string;
  /** Random id of this agent process; sequence numbers are unique per instance. */
  readonly instance: string;
  /** Agent software version. */
  readonly version: string;
}

/** A batch of captured frames with its sequence number. */
export interface BatchMessage {
  readonly t: 'batch';
  /** Sequence number, 1-based, increasing by one per batch within an agent instance. */
  readonly seq: number;
  /** Number of records in `frames`. */
  readonly n: number;
  /** Packed frame records (see the module comment). */
  readonly frames: Uint8Array;
}

/** Cumulative acknowledgement: every batch up to and including `seq` is processed. */
export interface AckMessage {
  readonly t: 'ack';
  readonly seq: number;
}

/** Keep-alive; either side sends it periodically. */
export interface HeartbeatMessage {
  readonly t: 'hb';
  /** Sender's clock, ms since the epoch. */
  readonly ts: number;
}

/** A fatal error; the sender closes the connection after it. */
export interface ErrorMessage {
  readonly t: 'error';
  /** Stable `DBTAP_E_*` code. */
  readonly code: string;
  readonly message: string;
}

/** Any transport message. */
export type TransportMessage = HelloMessage | BatchMessage | AckMessage | HeartbeatMessage | ErrorMessage;

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Encodes a non-batch message, length prefix included. */
export function encodeMessage(msg: HelloMessage | AckMessage | HeartbeatMessage | ErrorMessage): Buffer {
  const body = packr.pack(msg);
  const out = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, LENGTH_PREFIX_BYTES);
  return out;
}

// Constant part of a batch message, written by hand so the records are never
// copied into a msgpack output buffer:
//   de 00 04            map16, 4 entries
//   a1 't' a5 'batch'
//   a3 'seq' ce u32
//   a1 'n'   ce u32
//   a6 'frames' c6 u32  (bin32 header, the records follow)
const BATCH_HEAD = Buffer.from([
  0xde, 0x00, 0x04,
  0xa1, 0x74, 0xa5, 0x62, 0x61, 0x74, 0x63, 0x68,
  0xa3, 0x73, 0x65, 0x71, 0xce, 0, 0, 0, 0,
  0xa1, 0x6e, 0xce, 0, 0, 0, 0,
  0xa6, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x73, 0xc6, 0, 0, 0, 0,
]);
const SEQ_AT = 16;
const N_AT = 23;
const BIN_LEN_AT = 35;
/** Bytes a batch message adds around its records (length prefix included). */
export const BATCH_OVERHEAD_BYTES = LENGTH_PREFIX_BYTES + BATCH_HEAD.length;

/**
 * Encodes the head of a batch message (length prefix and everything before
 * the records); the records follow it on the wire unchanged.
 */
export function encodeBatchHead(seq: number, n: number, recordBytes: number): Buffer {
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `batch sequence number out of range: ${seq}`);
  }
  const out = Buffer.allocUnsafe(BATCH_OVERHEAD_BYTES);
  out.writeUInt32BE(BATCH_HEAD.length + recordBytes, 0);
  BATCH_HEAD.copy(out, LENGTH_PREFIX_BYTES);
  out.writeUInt32BE(seq, LENGTH_PREFIX_BYTES + SEQ_AT);
  out.writeUInt32BE(n, LENGTH_PREFIX_BYTES + N_AT);
  out.writeUInt32BE(recordBytes, LENGTH_PREFIX_BYTES + BIN_LEN_AT);
  return out;
}

/**
 * Packs frames into batch records in one preallocated buffer. A frame's
 * bytes are copied in, so the caller may reuse its buffer afterwards.
 */
export class BatchBuilder {
  /** Frames added. */
  count = 0;
  /** Bytes of records written. */
  bytes = 0;
  private buf: Buffer;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Bytes still free. */
  get free(): number {
    return this.buf.length - this.bytes;
  }

  /** Appends `frame`; false (nothing written) when it does not fit. */
  add(frame: Frame): boolean {
    const cap = frame.data.length;
    const need = RECORD_HEADER_BYTES + cap;
    if (need > this.buf.length - this.bytes) return false;
    const b = this.buf;
    const o = this.bytes;
    b.writeDoubleLE(frame.ts, o);
    b.writeUInt32LE(frame.origLen >>> 0, o + 8);
    b.writeUInt32LE(cap, o + 12);
    b.writeUInt16LE(frame.linkType & 0xffff, o + 16);
    b.writeUInt16LE((frame.interfaceId ?? 0) & 0xffff, o + 18);
    b.set(frame.data, o + RECORD_HEADER_BYTES);
    this.bytes = o + need;
    this.count++;
    return true;
  }

  /**
   * Appends `n` frames already packed as records (see
   * {@link decodeBatchFrames}); false (nothing written) when they do not fit.
   */
  addRecords(records: Uint8Array, n: number): boolean {
    if (records.length > this.buf.length - this.bytes) return false;
    this.buf.set(records, this.bytes);
    this.bytes += records.length;
    this.count += n;
    return true;
  }

  /**
   * Returns the records written so far. A buffer that is mostly empty is
   * copied to its exact size, so a queue of small batches does not pin a full
   * capacity buffer each; the builder must not be used afterwards.
   */
  seal(): Uint8Array {
    const used = this.buf.subarray(0, this.bytes);
    return this.bytes * 2 < this.buf.length ? Buffer.from(used) : used;
  }
}

/** Bytes one frame takes inside a batch. */
export function recordSize(frame: Frame): number {
  return RECORD_HEADER_BYTES + frame.data.length;
}

/**
 * Decodes the records of a batch into frames whose `data` are views into
 * `records` (which the transport never reuses, so they stay valid).
 */
export function decodeBatchFrames(records: Uint8Array, n: number): Frame[] | DbtapError {
  const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const frames: Frame[] = new Array(n);
  const buf = records.buffer;
  const base = records.byteOffset;
  let o = 0;
  for (let i = 0; i < n; i++) {
    if (o + RECORD_HEADER_BYTES > records.length) {
      return new DbtapError(AgentErrorCodes.PROTOCOL, `batch record ${i} header runs past the batch end`, { record: i, offset: o });
    }
    const ts = dv.getFloat64(o, true);
    const origLen = dv.getUint32(o + 8, true);
    const capLen = dv.getUint32(o + 12, true);
    const linkType = dv.getUint16(o + 16, true);
    const interfaceId = dv.getUint16(o + 18, true);
    const start = o + RECORD_HEADER_BYTES;
    if (capLen > records.length - start) {
      return new DbtapError(AgentErrorCodes.PROTOCOL, `batch record ${i} data (${capLen} bytes) runs past the batch end`, { record: i, offset: o });
    }
    // A plain Uint8Array view: Buffer#subarray costs about three times as much per frame.
    frames[i] = { ts, linkType, data: new Uint8Array(buf, base + start, capLen), origLen, interfaceId };
    o = start + capLen;
  }
  if (o !== records.length) {
    return new DbtapError(AgentErrorCodes.PROTOCOL, `batch holds ${records.length - o} bytes after its ${n} records`);
  }
  return frames;
}

/**
 * Cuts a byte stream into messages. Feed it socket chunks; it calls back with
 * each complete message body (a view when the message sits in one chunk, else
 * one copy) and returns an error once a length prefix exceeds the bound.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;

  /** @param maxMessageBytes The largest length prefix accepted; {@link MessageReader.limit} changes it later. */
  constructor(private maxMessageBytes: number) {}

  /** Changes the largest message accepted from the next length prefix on (e.g. once a peer is authenticated). */
  set limit(bytes: number) {
    this.maxMessageBytes = bytes;
  }

  /** Bytes held waiting for the rest of a message. */
  get pending(): number {
    return this.buffered;
  }

  /** Consumes `chunk`; calls `onMessage` per complete message. Returns an error to close the connection with. */
  push(chunk: Buffer, onMessage: (body: Buffer) => void): DbtapError | undefined {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < LENGTH_PREFIX_BYTES) return undefined;
        const len = this.peekLength();
        if (len > this.maxMessageBytes) {
          return new DbtapError(
            AgentErrorCodes.FRAME_TOO_LARGE,
            `message length ${len} exceeds the limit of ${this.maxMessageBytes} bytes (not a dbtap agent, or a misconfigured one)`,
            { length: len, limit: this.maxMessageBytes },
          );
        }
        this.need = len;
        this.take(LENGTH_PREFIX_BYTES);
      }
      if (this.buffered < this.need) return undefined;
      const body = this.take(this.need);
      this.need = -1;
      onMessage(body);
    }
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, Math.min(this.buffered, 4));
    return head.readUInt32BE(0);
  }

  // Removes `n` bytes from the front: a view when the first chunk holds them all.
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - o);
      c.copy(out, o, 0, k);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function isU32(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

function protocolError(message: string): DbtapError {
  return new DbtapError(AgentErrorCodes.PROTOCOL, message);
}

/**
 * Decodes and validates one message body. Anything that is not a well-formed
 * message of a known type comes back as a `DBTAP_E_PROTOCOL` error value.
 */
export function decodeMessage(body: Uint8Array): TransportMessage | DbtapError {
  let m: unknown;
  try {
    m = unpackr.unpack(body);
  } catch (err) {
    return protocolError(`message is not valid MessagePack: ${(err as Error).message}`);
  }
  if (!isObject(m)) return protocolError('message is not a map');
  switch (m.t) {
    case 'batch':
      if (!isU32(m.seq) || !isU32(m.n) || !(m.frames instanceof Uint8Array)) return protocolError('batch message lacks seq, n or frames');
      return m as unknown as BatchMessage;
    case 'ack':
      if (!isU32(m.seq)) return protocolError('ack message lacks seq');
      return m as unknown as AckMessage;
    case 'hb':
      if (typeof m.ts !== 'number') return protocolError('heartbeat message lacks ts');
      return m as unknown as HeartbeatMessage;
    case 'hello': {
      if (!isU32(m.v)) return protocolError('hello message lacks a version');
      if (m.token !== undefined && typeof m.token !== 'string') return protocolError('hello token is not a string');
      if (m.lastSeq !== undefined && !isU32(m.lastSeq)) return protocolError('hello lastSeq is not a sequence number');
      if (m.agent !== undefined) {
        const a = m.agent;
        if (!isObject(a) || typeof a.id !== 'string' || typeof a.instance !== 'string' || typeof a.hostname !== 'string' || typeof a.version !== 'string') {
          return protocolError('hello agent identity is incomplete');
        }
        if (a.id.length > 256 || a.instance.length > 256 || a.hostname.length > 256 || a.version.length > 64) {
          return protocolError('hello agent identity fields are too long');
        }
      }
      return m as unknown as HelloMessage;
    }
    case 'error':
      if (typeof m.code !== 'string' || typeof m.message !== 'string') return protocolError('error message lacks code or message');
      return m as unknown as ErrorMessage;
    default:
      return protocolError(`unknown message type ${JSON.stringify(typeof m.t === 'string' ? m.t.slice(0, 32) : m.t)}`);
  }
}

// Bytes -> Dameng messages. The header check (XOR byte + known command +
// sane length) is what detection and resynchronisation stand on; the body
// decoders read with one bounded cursor and never past the message.
import { ByteReader, decodeText } from '@dbtap/core';
import { Outcome, type Result } from '../kit/outcome.js';
import { Command, HEADER_BYTES, knownCommand, type ClientMessage, type Header, type Login, type Reply, type Startup } from './messages.js';

/**
 * Largest body length the header check accepts (1 GiB). Longer lengths are
 * taken as a broken header, not as a message to wait for: the framer's own
 * `maxMessageBytes` bounds what is buffered of plausible ones.
 */
export const MAX_BODY = 1 << 30;

/** Bytes of a header needed to check it (through the XOR byte). */
export const CHECK_BYTES = 20;

/** XOR of `b[at .. at+18]`, which byte 19 of every header carries. */
export function headerXor(b: Uint8Array, at: number): number {
  let x = 0;
  for (let i = at; i < at + 19; i++) x ^= b[i]!;
  return x;
}

/**
 * Whether a header starts at `b[at]` (`end` bounds the bytes): the body
 * length, or `Outcome.More` when fewer than {@link CHECK_BYTES} are there,
 * or `Outcome.Malformed`. A header is plausible when its XOR byte matches,
 * the command is one the client was seen to send (the high byte is 0) and
 * the body length is at most {@link MAX_BODY}.
 */
export function checkHeader(b: Uint8Array, at: number, end: number): Result<number> {
  if (end - at < CHECK_BYTES) return Outcome.More;
  if (b[at + 5] !== 0 || !knownCommand(b[at + 4]!)) return Outcome.Malformed;
  if (headerXor(b, at) !== b[at + 19]) return Outcome.Malformed;
  const len = (b[at + 6]! | (b[at + 7]! << 8) | (b[at + 8]! << 16) | (b[at + 9]! << 24)) >>> 0;
  return len <= MAX_BODY ? len : Outcome.Malformed;
}

/** The fixed fields of the header at `m[0]` (`m` holds at least {@link HEADER_BYTES}). */
export function decodeHeader(m: Uint8Array): Header {
  const r = new ByteReader(m, 0, HEADER_BYTES);
  const handle = r.u32le();
  const command = r.u16le();
  const bodyLength = r.u32le();
  const returnCode = r.i32le();
  r.skip(10);
  const rows = r.i32le();
  return { handle, command, bodyLength, returnCode, rows };
}

/** Most bytes a string field of startup/login may claim (longer: not this message). */
const MAX_FIELD = 4096;

/** `u32le len | bytes` as a view, or undefined when the length cannot be right. */
function lenString(r: ByteReader): Uint8Array | undefined {
  const n = r.u32le();
  if (!r.ok || n > MAX_FIELD || n > r.remaining) return undefined;
  return r.bytes(n);
}

/** True when every byte is printable ASCII (a version string, a user name in clear). */
function printableAscii(b: Uint8Array): boolean {
  if (b.length === 0) return false;
  for (let i = 0; i < b.length; i++) if (b[i]! < 0x20 || b[i]! > 0x7e) return false;
  return true;
}

/** True when the text decodes without replacement characters or control bytes. */
function cleanText(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return s.length > 0 && !/[\u0000-\u001f\ufffd]/.test(s);
}

/**
 * The startup body: `u32le len | version | NUL`, then with encryption
 * `u32le keyLen | key` (64 bytes from dmdb), then 6 bytes of flags.
 * Malformed when the version is not printable ASCII.
 */
export function decodeStartup(m: Uint8Array): Result<Startup> {
  const r = new ByteReader(m, HEADER_BYTES, m.length);
  const v = lenString(r);
  if (v === undefined || !printableAscii(v)) return Outcome.Malformed;
  const encryptRequested = m[28] === 1;
  let keyLength = 0;
  if (encryptRequested) {
    r.skip(1); // NUL
    keyLength = r.u32le();
    if (!r.ok || keyLength > MAX_FIELD) keyLength = 0;
  }
  return { kind: 'startup', clientVersion: String.fromCharCode(...v), encryptRequested, keyLength, protocolVersion: m[35]! };
}

/**
 * The login body. The password (second string) is skipped by its length and
 * never decoded. A user that is not clean text means the login was
 * encrypted: the user is then left out and `encrypted` set; the application
 * and OS names are still read when the lengths hold.
 */
export function decodeLogin(m: Uint8Array, charset: string): Result<Login> {
  const r = new ByteReader(m, HEADER_BYTES, m.length);
  const userBytes = lenString(r);
  if (userBytes === undefined) return Outcome.Malformed;
  const pwLen = r.u32le();
  if (!r.ok || pwLen > MAX_FIELD || pwLen > r.remaining) return { kind: 'login', encrypted: true };
  r.skip(pwLen);
  const user = decodeText(userBytes, charset);
  const encrypted = !cleanText(user);
  const app = lenString(r);
  const os = app === undefined ? undefined : lenString(r);
  const appName = app !== undefined && app.length > 0 ? decodeText(app, charset) : undefined;
  const osName = os !== undefined && os.length > 0 ? decodeText(os, charset) : undefined;
  return {
    kind: 'login',
    encrypted,
    ...(encrypted ? {} : { user }),
    ...(appName !== undefined && cleanText(appName) ? { appName } : {}),
    ...(osName !== undefined && cleanText(osName) ? { osName } : {}),
  };
}

/** A client message by its command. */
export function decodeClient(m: Uint8Array, command: number, charset: string): Result<ClientMessage> {
  switch (command) {
    case Command.Startup:
      return decodeStartup(m);
    case Command.Login:
      return decodeLogin(m, charset);
    case Command.Sql: {
      const r = new ByteReader(m, HEADER_BYTES, m.length);
      return { kind: 'sql', text: decodeText(r.cstring(), charset), direct: m[21] === 1, autoCommit: m[20] === 1 };
    }
    default:
      return { kind: 'other' };
  }
}

/**
 * A reply: the return code and rows from the header; with a negative code
 * the error text at body offset 12 (`u32le len | text`), the layout the dmdb
 * client reads (inferred from its behaviour, not from a server).
 */
export function decodeReply(m: Uint8Array, charset: string): Reply {
  const h = decodeHeader(m);
  if (h.returnCode >= 0) return { returnCode: h.returnCode, rows: h.rows };
  const r = new ByteReader(m, Math.min(m.length, HEADER_BYTES + 12), m.length);
  const text = lenString(r);
  const message = text !== undefined && text.length > 0 ? decodeText(text, charset) : undefined;
  return { returnCode: h.returnCode, rows: 0, ...(message !== undefined ? { message } : {}) };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The charset of a connection whose server did not say (the reply field
 * that carries it could not be identified without a server): `undefined`
 * while the text is ASCII, else `utf-8` when the bytes are valid UTF-8 and
 * `gb18030` (DM's default server charset) otherwise. GB18030 text of more
 * than a few characters is almost never valid UTF-8.
 */
export function guessCharset(text: Uint8Array): string | undefined {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return undefined;
  try {
    strictUtf8.decode(text);
    return 'utf-8';
  } catch {
    return 'gb18030';
  }
}

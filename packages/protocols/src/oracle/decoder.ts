// TNS packet bodies (bytes -> typed values). Layouts from Oracle Net's wire
// format as documented by Wireshark (packet-tns.c) and node-oracledb's thin
// driver (lib/thin/protocol/packet.js, messages/connect.js), checked against
// the corpus captures (see docs/oracle.md).
import { headerBytes } from './framer.js';
import type { AcceptInfo, ConnectInfo, RefuseInfo } from './messages.js';

function u16(b: Uint8Array, at: number): number {
  return at + 2 <= b.length ? (b[at]! << 8) | b[at + 1]! : 0;
}

function u32(b: Uint8Array, at: number): number {
  return at + 4 <= b.length ? ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0 : 0;
}

/** Bytes as latin1 text (descriptors and listener texts are ASCII). */
export function ascii(b: Uint8Array, from = 0, to = b.length): string {
  let s = '';
  for (let i = from; i < to; i += 4096) s += String.fromCharCode(...b.subarray(i, Math.min(to, i + 4096)));
  return s;
}

/**
 * The value of `(KEY=value)` in a connect descriptor, case-insensitive; the
 * first occurrence inside `within` (e.g. `CID`) when given.
 */
export function descriptorValue(desc: string, key: string, within?: string): string | undefined {
  let text = desc;
  if (within !== undefined) {
    const i = text.toUpperCase().indexOf(`(${within}=`);
    if (i < 0) return undefined;
    // The section runs to its matching parenthesis.
    let depth = 0;
    let j = i;
    for (; j < text.length; j++) {
      if (text[j] === '(') depth++;
      else if (text[j] === ')' && --depth === 0) break;
    }
    text = text.slice(i, j + 1);
  }
  const m = new RegExp(`\\(\\s*${key}\\s*=\\s*([^()]*?)\\s*\\)`, 'i').exec(text);
  return m === null || m[1] === '' ? undefined : m[1];
}

/**
 * CONNECT body:
 *
 *   8 version u16 | 10 compatible u16 | 12 service options u16 | 14 SDU u16 | 16 TDU u16
 *   18 NT characteristics u16 | 20 line turnaround u16 | 22 "1" in hardware order u16
 *   24 connect data length u16 | 26 connect data offset u16 | 28 max receivable u32 ...
 *
 * The connect data may not fit: then it follows in the next packet of the
 * client, and `pendingData` says how many bytes to expect.
 */
export function decodeConnect(p: Uint8Array): { info: ConnectInfo; pendingData: number } {
  const version = u16(p, 8);
  const sdu = u16(p, 14);
  const len = u16(p, 24);
  const off = u16(p, 26);
  let descriptor = '';
  let pendingData = 0;
  if (len > 0 && off >= headerBytes && off + len <= p.length) descriptor = ascii(p, off, off + len);
  else if (len > 0 && off >= p.length) pendingData = len;
  return { info: connectInfo(version, sdu, descriptor), pendingData };
}

/** The connect facts of a descriptor. */
export function connectInfo(version: number, sdu: number, descriptor: string): ConnectInfo {
  const info: { -readonly [K in keyof ConnectInfo]: ConnectInfo[K] } = { version, sdu, descriptor };
  const service = descriptorValue(descriptor, 'SERVICE_NAME');
  const sid = descriptorValue(descriptor, 'SID');
  const program = descriptorValue(descriptor, 'PROGRAM', 'CID');
  const host = descriptorValue(descriptor, 'HOST', 'CID');
  const osUser = descriptorValue(descriptor, 'USER', 'CID');
  if (service !== undefined) info.service = service;
  if (sid !== undefined) info.sid = sid;
  if (program !== undefined) info.program = program;
  if (host !== undefined) info.host = host;
  if (osUser !== undefined) info.osUser = osUser;
  return info;
}

/**
 * ACCEPT body:
 *
 *   8 version u16 | 10 service options u16 | 12 SDU u16 | 14 TDU u16 | 16 hardware order u16
 *   18 accept data length u16 | 20 data offset u16 | 22 flags0 u8 | 23 flags1 u8
 *   ... from version 315: 32 SDU u32 | 36 TDU u32
 */
export function decodeAccept(p: Uint8Array): AcceptInfo {
  const version = u16(p, 8);
  let sdu = u16(p, 12);
  let tdu = u16(p, 14);
  if (version >= 315 && p.length >= 40) {
    sdu = u32(p, 32);
    tdu = u32(p, 36);
  }
  return { version, sdu, tdu };
}

/** REFUSE body: 8 user reason u8 | 9 system reason u8 | 10 data length u16 | 12 data (a descriptor with ERR=). */
export function decodeRefuse(p: Uint8Array): RefuseInfo {
  const len = u16(p, 10);
  const text = ascii(p, Math.min(12, p.length), Math.min(p.length, 12 + len));
  const e = descriptorValue(text, 'ERR');
  const info: { -readonly [K in keyof RefuseInfo]: RefuseInfo[K] } = { userReason: p[8] ?? 0, systemReason: p[9] ?? 0, text };
  if (e !== undefined && /^\d+$/.test(e)) info.err = Number(e);
  return info;
}

/** REDIRECT body: 8 data length u16 | 10 data (the address to connect to instead). */
export function decodeRedirect(p: Uint8Array): string {
  const len = u16(p, 8);
  return ascii(p, Math.min(10, p.length), Math.min(p.length, 10 + len));
}

/** MARKER body: 8 marker type | 9 0 | 10 break (1) or reset (2). */
export function markerKind(p: Uint8Array): number {
  return p[10] ?? 0;
}

// Frame builders for tests: real header layouts, written byte by byte.
import { LinkType, parseIp, type Frame } from '@dbtap/core';

/** TCP segment description. */
export interface TcpSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags?: number;
  payload?: Uint8Array | string;
  options?: Uint8Array;
}

function bytes(p: Uint8Array | string | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array(0);
  return typeof p === 'string' ? new TextEncoder().encode(p) : p;
}

function ip(text: string): Uint8Array {
  const a = parseIp(text);
  if (!a) throw new Error(`bad address ${text}`);
  return a;
}

/** TCP header + payload. */
export function tcpSegment(s: TcpSpec): Uint8Array {
  const opts = s.options ?? new Uint8Array(0);
  const optLen = (opts.length + 3) & ~3;
  const payload = bytes(s.payload);
  const out = new Uint8Array(20 + optLen + payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, s.sport);
  v.setUint16(2, s.dport);
  v.setUint32(4, (s.seq ?? 1) >>> 0);
  v.setUint32(8, (s.ack ?? 0) >>> 0);
  out[12] = ((20 + optLen) / 4) << 4;
  out[13] = s.flags ?? 0x18;
  v.setUint16(14, 65535);
  out.set(opts, 20);
  out.set(payload, 20 + optLen);
  return out;
}

/** UDP header + payload. */
export function udpDatagram(sport: number, dport: number, payload: Uint8Array | string): Uint8Array {
  const p = bytes(payload);
  const out = new Uint8Array(8 + p.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, 8 + p.length);
  out.set(p, 8);
  return out;
}

/** IPv4 header (optionally with options and fragment fields) + payload. */
export function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, o: { id?: number; fragOffset?: number; more?: boolean; options?: Uint8Array; totalLength?: number } = {}): Uint8Array {
  const opts = o.options ?? new Uint8Array(0);
  const ihl = 20 + opts.length;
  const out = new Uint8Array(ihl + payload.length);
  const v = new DataView(out.buffer);
  out[0] = 0x40 | (ihl / 4);
  v.setUint16(2, o.totalLength ?? out.length);
  v.setUint16(4, o.id ?? 1);
  v.setUint16(6, ((o.more ? 1 : 0) << 13) | ((o.fragOffset ?? 0) / 8));
  out[8] = 64;
  out[9] = proto;
  out.set(ip(src), 12);
  out.set(ip(dst), 16);
  out.set(opts, 20);
  out.set(payload, ihl);
  return out;
}

/** IPv6 header + extension headers (given raw) + payload. */
export function ipv6(src: string, dst: string, next: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(40 + payload.length);
  const v = new DataView(out.buffer);
  out[0] = 0x60;
  v.setUint16(4, payload.length);
  out[6] = next;
  out[7] = 64;
  out.set(ip(src), 8);
  out.set(ip(dst), 24);
  out.set(payload, 40);
  return out;
}

/** An IPv6 extension header of `type`-agnostic layout: next header, length, padding to 8-byte units. */
export function ipv6Ext(next: number, body: Uint8Array, payload: Uint8Array): Uint8Array {
  const len = Math.ceil((2 + body.length) / 8) * 8;
  const out = new Uint8Array(len + payload.length);
  out[0] = next;
  out[1] = len / 8 - 1;
  out.set(body, 2);
  out.set(payload, len);
  return out;
}

/** IPv6 fragment header + fragment data. */
export function ipv6Frag(next: number, id: number, offset: number, more: boolean, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  const v = new DataView(out.buffer);
  out[0] = next;
  v.setUint16(2, offset | (more ? 1 : 0));
  v.setUint32(4, id);
  out.set(data, 8);
  return out;
}

/** Ethernet II frame around an IP packet, with optional VLAN tags (outermost first). */
export function ethernet(ipPacket: Uint8Array, vlans: number[] = [], pad = 0): Uint8Array {
  const version = ipPacket[0]! >> 4;
  const out = new Uint8Array(14 + vlans.length * 4 + ipPacket.length + pad);
  const v = new DataView(out.buffer);
  out.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0);
  let off = 12;
  vlans.forEach((id, i) => {
    v.setUint16(off, i === 0 && vlans.length > 1 ? 0x88a8 : 0x8100);
    v.setUint16(off + 2, id);
    off += 4;
  });
  v.setUint16(off, version === 6 ? 0x86dd : 0x0800);
  out.set(ipPacket, off + 2);
  return out;
}

/** Linux cooked v1 header around an IP packet. */
export function sll(ipPacket: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + ipPacket.length);
  const v = new DataView(out.buffer);
  v.setUint16(2, 772);
  v.setUint16(4, 6);
  v.setUint16(14, ipPacket[0]! >> 4 === 6 ? 0x86dd : 0x0800);
  out.set(ipPacket, 16);
  return out;
}

/** Linux cooked v2 header around an IP packet. */
export function sll2(ipPacket: Uint8Array): Uint8Array {
  const out = new Uint8Array(20 + ipPacket.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, ipPacket[0]! >> 4 === 6 ? 0x86dd : 0x0800);
  v.setUint32(4, 1);
  v.setUint16(8, 772);
  out.set(ipPacket, 20);
  return out;
}

/** BSD null header (host byte order, little endian here) around an IP packet. */
export function bsdNull(ipPacket: Uint8Array, family: number): Uint8Array {
  const out = new Uint8Array(4 + ipPacket.length);
  new DataView(out.buffer).setUint32(0, family, true);
  out.set(ipPacket, 4);
  return out;
}

/** A frame of link type `linkType`, optionally cut to `snap` bytes. */
export function frame(data: Uint8Array, linkType: number = LinkType.ETHERNET, ts = 1_700_000_000_000_000, snap?: number): Frame {
  const cut = snap !== undefined && snap < data.length ? data.subarray(0, snap) : data;
  return { ts, linkType, data: cut, origLen: data.length };
}

/** Ethernet/IPv4/TCP frame in one call. */
export function tcpFrame(s: TcpSpec, ts?: number): Frame {
  return frame(ethernet(ipv4(s.src, s.dst, 6, tcpSegment(s))), LinkType.ETHERNET, ts);
}

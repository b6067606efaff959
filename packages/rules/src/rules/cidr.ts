// CIDR matching for IPv4 and IPv6 text addresses (RFC 4632, RFC 4291 2.2/2.3).
// Addresses become four 32-bit words (IPv4 as ::ffff:a.b.c.d, RFC 4291
// 2.5.5.2), so one comparison routine serves both families.

function parseV4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || !/^\d+$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Parses an IPv4 or IPv6 address into four 32-bit words, or undefined. */
export function parseIp(s: string): Uint32Array | undefined {
  const out = new Uint32Array(4);
  if (s.indexOf(':') < 0) {
    const v = parseV4(s);
    if (v === undefined) return undefined;
    out[2] = 0xffff;
    out[3] = v;
    return out;
  }
  let addr = s;
  const pct = addr.indexOf('%'); // zone id
  if (pct >= 0) addr = addr.slice(0, pct);
  const words: number[] = [];
  let tail: number[] = [];
  const dbl = addr.indexOf('::');
  if (dbl !== addr.lastIndexOf('::')) return undefined;
  const toGroups = (part: string): number[] | undefined => {
    if (part.length === 0) return [];
    const g: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.indexOf('.') >= 0) {
        const v = parseV4(it);
        if (v === undefined) return undefined;
        g.push(v >>> 16, v & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
      g.push(parseInt(it, 16));
    }
    return g;
  };
  if (dbl >= 0) {
    const head = toGroups(addr.slice(0, dbl));
    const t = toGroups(addr.slice(dbl + 2));
    if (head === undefined || t === undefined || head.length + t.length > 7) return undefined;
    words.push(...head);
    tail = t;
    while (words.length + tail.length < 8) words.push(0);
    words.push(...tail);
  } else {
    const g = toGroups(addr);
    if (g === undefined || g.length !== 8) return undefined;
    words.push(...g);
  }
  for (let i = 0; i < 4; i++) out[i] = ((words[2 * i]! << 16) | words[2 * i + 1]!) >>> 0;
  return out;
}

/** A parsed CIDR block. */
export interface Cidr {
  readonly addr: Uint32Array;
  /** Prefix length over the 128-bit form. */
  readonly bits: number;
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a /32 or /128). */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  const ipText = slash >= 0 ? s.slice(0, slash) : s;
  const addr = parseIp(ipText);
  if (addr === undefined) return undefined;
  const v4 = ipText.indexOf(':') < 0;
  let bits = v4 ? 32 : 128;
  if (slash >= 0) {
    const b = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
    if (bits > (v4 ? 32 : 128)) return undefined;
  }
  return { addr, bits: v4 ? bits + 96 : bits };
}

/** True when `ip` (parsed) lies in `c`. */
export function cidrContains(c: Cidr, ip: Uint32Array): boolean {
  let bits = c.bits;
  for (let i = 0; i < 4 && bits > 0; i++) {
    const take = bits >= 32 ? 32 : bits;
    const mask = take === 32 ? 0xffffffff : (0xffffffff << (32 - take)) >>> 0;
    if (((ip[i]! & mask) >>> 0) !== ((c.addr[i]! & mask) >>> 0)) return false;
    bits -= take;
  }
  return true;
}

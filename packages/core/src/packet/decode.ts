import type { DecodedPacket, Frame, PacketStatus } from './types.js';
import { IpProto, LinkType } from './types.js';

const EMPTY = new Uint8Array(0);

// EtherTypes (IEEE 802.3 / IANA).
const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100; // 802.1Q
const ETH_QINQ = 0x88a8; // 802.1ad
const ETH_QINQ_OLD = 0x9100; // pre-standard QinQ
const MAX_VLAN_TAGS = 8;

/** Link types that some platforms write for raw IP (DLT_RAW's historical values). */
const LINKTYPE_RAW_BSD_A = 12;
const LINKTYPE_RAW_BSD_B = 14;

function newPacket(frame: Frame): DecodedPacket {
  return {
    ts: frame.ts,
    status: 'ok',
    vlans: [],
    ipVersion: 0,
    srcIp: EMPTY,
    dstIp: EMPTY,
    ipProto: -1,
    tcp: undefined,
    udp: undefined,
    payload: EMPTY,
    missingBytes: 0,
  };
}

function fail(pkt: DecodedPacket, status: PacketStatus): DecodedPacket {
  pkt.status = status;
  return pkt;
}

/**
 * Decodes one frame down to its transport payload: link layer (Ethernet II
 * with 802.1Q/QinQ tags, Linux SLL and SLL2, BSD null/loopback, raw IP),
 * IPv4 with options, IPv6 with extension headers, TCP and UDP. Every byte
 * field of the result is a view into `frame.data`.
 *
 * IP fragments come back with status `fragment` and their
 * {@link DecodedPacket.fragment} position; {@link PacketDecoder} reassembles
 * them. Never throws: problems are reported in {@link DecodedPacket.status}.
 */
export function decodePacket(frame: Frame): DecodedPacket {
  const pkt = newPacket(frame);
  const d = frame.data;
  let off = 0;
  let etherType = 0;
  switch (frame.linkType) {
    case LinkType.ETHERNET: {
      // dst(6) src(6) type(2), then 4-byte tags while the type is a VLAN TPID.
      if (d.length < 14) return fail(pkt, 'truncated');
      etherType = (d[12]! << 8) | d[13]!;
      off = 14;
      while (etherType === ETH_VLAN || etherType === ETH_QINQ || etherType === ETH_QINQ_OLD) {
        if (pkt.vlans.length >= MAX_VLAN_TAGS) return fail(pkt, 'malformed');
        if (d.length < off + 4) return fail(pkt, 'truncated');
        pkt.vlans.push(((d[off]! << 8) | d[off + 1]!) & 0x0fff);
        etherType = (d[off + 2]! << 8) | d[off + 3]!;
        off += 4;
      }
      break;
    }
    case LinkType.LINUX_SLL:
      // packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
      if (d.length < 16) return fail(pkt, 'truncated');
      etherType = (d[14]! << 8) | d[15]!;
      off = 16;
      break;
    case LinkType.LINUX_SLL2:
      // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8)
      if (d.length < 20) return fail(pkt, 'truncated');
      etherType = (d[0]! << 8) | d[1]!;
      off = 20;
      break;
    case LinkType.NULL:
    case LinkType.LOOP: {
      // 4-byte address family: host byte order for NULL, network order for LOOP.
      if (d.length < 4) return fail(pkt, 'truncated');
      let family: number;
      if (frame.linkType === LinkType.LOOP) family = ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
      else family = d[0] !== 0 || d[1] !== 0 ? d[0]! | (d[1]! << 8) : (d[2]! << 8) | d[3]!;
      off = 4;
      // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
      if (family === 2) etherType = ETH_IPV4;
      else if (family === 24 || family === 28 || family === 30 || family === 10) etherType = ETH_IPV6;
      else return fail(pkt, 'unsupported');
      break;
    }
    case LinkType.RAW:
    case LINKTYPE_RAW_BSD_A:
    case LINKTYPE_RAW_BSD_B:
      if (d.length < 1) return fail(pkt, 'truncated');
      etherType = d[0]! >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
      break;
    case LinkType.IPV4:
      etherType = ETH_IPV4;
      break;
    case LinkType.IPV6:
      etherType = ETH_IPV6;
      break;
    default:
      return fail(pkt, 'unsupported');
  }
  if (etherType === ETH_IPV4) return decodeIpv4(d, off, frame.origLen - frame.data.length, pkt);
  if (etherType === ETH_IPV6) return decodeIpv6(d, off, frame.origLen - frame.data.length, pkt);
  return fail(pkt, 'unsupported');
}

/**
 * IPv4 (RFC 791). `snapped` is how many bytes of the frame the capture
 * dropped (origLen - captured length).
 */
function decodeIpv4(d: Uint8Array, off: number, snapped: number, pkt: DecodedPacket): DecodedPacket {
  //  0      4      8              16     19              31
  // |ver|ihl| tos  |        total length                 |
  // |     identification     |flags|  fragment offset     |
  // |  ttl  | proto |      header checksum                |
  // |                 source address                      |
  // |               destination address                   |
  if (d.length < off + 20) return fail(pkt, 'truncated');
  const vihl = d[off]!;
  if (vihl >> 4 !== 4) return fail(pkt, 'malformed');
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20) return fail(pkt, 'malformed');
  if (d.length < off + ihl) return fail(pkt, 'truncated');
  let totalLen = (d[off + 2]! << 8) | d[off + 3]!;
  // A total length of 0 appears with TCP segmentation offload on the capturing host: trust the frame.
  if (totalLen === 0) totalLen = d.length - off + Math.max(0, snapped);
  if (totalLen < ihl) return fail(pkt, 'malformed');
  pkt.ipVersion = 4;
  pkt.srcIp = d.subarray(off + 12, off + 16);
  pkt.dstIp = d.subarray(off + 16, off + 20);
  const proto = d[off + 9]!;
  pkt.ipProto = proto;
  const id = (d[off + 4]! << 8) | d[off + 5]!;
  const flagsFrag = (d[off + 6]! << 8) | d[off + 7]!;
  const more = (flagsFrag & 0x2000) !== 0;
  const fragOffset = (flagsFrag & 0x1fff) * 8;
  const start = off + ihl;
  // Ethernet pads short frames: the IP total length, not the frame, says where data ends.
  const declaredEnd = off + totalLen;
  const end = Math.min(declaredEnd, d.length);
  const missing = declaredEnd - end;
  if (more || fragOffset > 0) {
    pkt.fragment = { id, offset: fragOffset, more, proto };
    pkt.payload = d.subarray(start, end);
    pkt.missingBytes = missing;
    pkt.status = missing > 0 ? 'truncated' : 'fragment';
    return pkt;
  }
  return decodeTransport(d, start, end, missing, proto, pkt);
}

/** IPv6 (RFC 8200) with its extension header chain. */
function decodeIpv6(d: Uint8Array, off: number, snapped: number, pkt: DecodedPacket): DecodedPacket {
  // |ver| traffic class |           flow label                   |
  // |       payload length        |  next header  |  hop limit   |
  // |                 source address (16)                        |
  // |               destination address (16)                     |
  if (d.length < off + 40) return fail(pkt, 'truncated');
  if (d[off]! >> 4 !== 6) return fail(pkt, 'malformed');
  let payloadLen = (d[off + 4]! << 8) | d[off + 5]!;
  // 0 means a jumbogram (RFC 2675) or an offloaded segment: trust the frame.
  if (payloadLen === 0) payloadLen = d.length - off - 40 + Math.max(0, snapped);
  pkt.ipVersion = 6;
  pkt.srcIp = d.subarray(off + 8, off + 24);
  pkt.dstIp = d.subarray(off + 24, off + 40);
  const declaredEnd = off + 40 + payloadLen;
  const end = Math.min(declaredEnd, d.length);
  const missing = declaredEnd - end;
  let next = d[off + 6]!;
  let p = off + 40;
  // Walk the extension headers (section 4), bounded by the header count.
  for (let hops = 0; hops < 16; hops++) {
    switch (next) {
      case IpProto.HOPOPTS:
      case IpProto.IPV6_ROUTE:
      case IpProto.IPV6_DSTOPTS: {
        if (end < p + 2) return truncatedOrMalformed(pkt, p + 2, declaredEnd);
        const len = (d[p + 1]! + 1) * 8;
        if (declaredEnd < p + len) return fail(pkt, 'malformed');
        if (end < p + len) return fail(pkt, 'truncated');
        next = d[p]!;
        p += len;
        continue;
      }
      case IpProto.AH: {
        // RFC 4302: length in 4-byte units minus 2.
        if (end < p + 2) return truncatedOrMalformed(pkt, p + 2, declaredEnd);
        const len = (d[p + 1]! + 2) * 4;
        if (declaredEnd < p + len) return fail(pkt, 'malformed');
        if (end < p + len) return fail(pkt, 'truncated');
        next = d[p]!;
        p += len;
        continue;
      }
      case IpProto.IPV6_FRAG: {
        // next(1) reserved(1) offset(13 bits) res(2) M(1) identification(4)
        if (end < p + 8) return truncatedOrMalformed(pkt, p + 8, declaredEnd);
        const offsetFlags = (d[p + 2]! << 8) | d[p + 3]!;
        const id = ((d[p + 4]! << 24) | (d[p + 5]! << 16) | (d[p + 6]! << 8) | d[p + 7]!) >>> 0;
        const fragOffset = offsetFlags & 0xfff8;
        const more = (offsetFlags & 1) !== 0;
        const proto = d[p]!;
        p += 8;
        if (fragOffset === 0 && !more) {
          // An atomic fragment (RFC 6946): process as an unfragmented packet.
          next = proto;
          continue;
        }
        pkt.ipProto = proto;
        pkt.fragment = { id, offset: fragOffset, more, proto };
        pkt.payload = d.subarray(p, end);
        pkt.missingBytes = missing;
        pkt.status = missing > 0 ? 'truncated' : 'fragment';
        return pkt;
      }
      default:
        pkt.ipProto = next;
        return decodeTransport(d, p, end, missing, next, pkt);
    }
  }
  return fail(pkt, 'malformed');
}

function truncatedOrMalformed(pkt: DecodedPacket, need: number, declaredEnd: number): DecodedPacket {
  return fail(pkt, need > declaredEnd ? 'malformed' : 'truncated');
}

/**
 * TCP (RFC 9293 section 3.1) or UDP (RFC 768) from `start` to `end` of `d`;
 * `missing` bytes of the IP payload were not captured.
 */
export function decodeTransport(d: Uint8Array, start: number, end: number, missing: number, proto: number, pkt: DecodedPacket): DecodedPacket {
  pkt.ipProto = proto;
  const avail = end - start;
  if (proto === IpProto.TCP) {
    if (avail < 20) return fail(pkt, avail + missing < 20 ? 'malformed' : 'truncated');
    const hlen = (d[start + 12]! >> 4) * 4;
    if (hlen < 20 || hlen > avail + missing) return fail(pkt, 'malformed');
    if (hlen > avail) return fail(pkt, 'truncated');
    pkt.tcp = {
      srcPort: (d[start]! << 8) | d[start + 1]!,
      dstPort: (d[start + 2]! << 8) | d[start + 3]!,
      seq: ((d[start + 4]! << 24) | (d[start + 5]! << 16) | (d[start + 6]! << 8) | d[start + 7]!) >>> 0,
      ack: ((d[start + 8]! << 24) | (d[start + 9]! << 16) | (d[start + 10]! << 8) | d[start + 11]!) >>> 0,
      flags: d[start + 13]!,
      window: (d[start + 14]! << 8) | d[start + 15]!,
      headerLength: hlen,
      options: d.subarray(start + 20, start + hlen),
    };
    pkt.payload = d.subarray(start + hlen, end);
    pkt.missingBytes = missing;
    pkt.status = missing > 0 ? 'truncated' : 'ok';
    return pkt;
  }
  if (proto === IpProto.UDP) {
    if (avail < 8) return fail(pkt, avail + missing < 8 ? 'malformed' : 'truncated');
    const length = (d[start + 4]! << 8) | d[start + 5]!;
    pkt.udp = { srcPort: (d[start]! << 8) | d[start + 1]!, dstPort: (d[start + 2]! << 8) | d[start + 3]!, length };
    // The UDP length bounds the datagram when it is consistent with the IP length.
    const udpEnd = length >= 8 && start + length <= end ? start + length : end;
    pkt.payload = d.subarray(start + 8, udpEnd);
    pkt.missingBytes = missing;
    pkt.status = missing > 0 ? 'truncated' : 'ok';
    return pkt;
  }
  // Another transport (ICMP, ESP, ...): the payload is what follows the IP headers.
  pkt.payload = d.subarray(start, end);
  pkt.missingBytes = missing;
  pkt.status = 'unsupported';
  return pkt;
}

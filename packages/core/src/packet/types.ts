import type { Timestamp } from '../time.js';

/**
 * Link-layer header types (LINKTYPE_* of the tcpdump.org registry), as found
 * in pcap global headers and pcapng interface description blocks.
 */
export const LinkType = {
  /** BSD loopback: 4-byte address family in host byte order. */
  NULL: 0,
  /** Ethernet II (and 802.3 with 802.1Q tags). */
  ETHERNET: 1,
  /** Raw IP, version from the first nibble. */
  RAW: 101,
  /** OpenBSD loopback: 4-byte address family in network byte order. */
  LOOP: 108,
  /** Linux cooked capture v1 (16-byte header). */
  LINUX_SLL: 113,
  /** Raw IPv4. */
  IPV4: 228,
  /** Raw IPv6. */
  IPV6: 229,
  /** Linux cooked capture v2 (20-byte header). */
  LINUX_SLL2: 276,
} as const;

/** One captured frame: what a capture file or live source hands over. */
export interface Frame {
  /** Capture timestamp. */
  ts: Timestamp;
  /** LINKTYPE_* of the bytes. */
  linkType: number;
  /** The captured bytes (possibly fewer than {@link Frame.origLen}). */
  data: Uint8Array;
  /** Length of the frame on the wire. */
  origLen: number;
  /** pcapng interface index (0 for pcap and live sources). */
  interfaceId?: number;
}

/** TCP header flag bits (RFC 9293 section 3.1). */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** IP protocol numbers used by dbtap. */
export const IpProto = {
  HOPOPTS: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  IPV6_ROUTE: 43,
  IPV6_FRAG: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  IPV6_NONXT: 59,
  IPV6_DSTOPTS: 60,
} as const;

/**
 * What {@link decodePacket} made of a frame. All byte fields
 * are views into the frame's buffer: valid only as long as the frame's bytes
 * are (a capture reader may reuse its buffer for the next frame).
 */
export interface DecodedPacket {
  /** Capture timestamp, copied from the frame. */
  ts: Timestamp;
  /** Outcome: `ok`, or why the packet could not (fully) be decoded. */
  status: PacketStatus;
  /** 802.1Q / QinQ VLAN ids, outermost first (empty when untagged). */
  vlans: number[];
  /** 4 or 6; 0 when the frame carried no IP packet. */
  ipVersion: 0 | 4 | 6;
  /** Source address: 4 or 16 bytes. */
  srcIp: Uint8Array;
  /** Destination address: 4 or 16 bytes. */
  dstIp: Uint8Array;
  /** Transport protocol number after IPv6 extension headers (see {@link IpProto}). */
  ipProto: number;
  /** TCP header, when `ipProto` is TCP and the header decoded. */
  tcp: TcpHeader | undefined;
  /** UDP header, when `ipProto` is UDP and the header decoded. */
  udp: UdpHeader | undefined;
  /** Transport payload (TCP/UDP data); for an unreassembled IP fragment, the fragment's data. */
  payload: Uint8Array;
  /**
   * Bytes of payload the wire carried but the capture did not (snap length);
   * 0 when the capture holds the whole packet.
   */
  missingBytes: number;
  /** For an IP fragment (status `fragment`): where it belongs in its datagram. */
  fragment?: FragmentInfo;
}

/** Position of an IP fragment in its datagram (RFC 791, RFC 8200 section 4.5). */
export interface FragmentInfo {
  /** Identification field (IPv4 16-bit, IPv6 32-bit). */
  id: number;
  /** Byte offset of this fragment's data in the datagram payload. */
  offset: number;
  /** More-fragments flag. */
  more: boolean;
  /** Protocol of the datagram's payload (IPv4 protocol, IPv6 fragment header's next header). */
  proto: number;
}

/**
 * The outcome of decoding one frame. `truncated` (the capture holds fewer
 * bytes than the headers announce) and `malformed` (the bytes contradict
 * themselves) are different facts and stay distinct.
 */
export type PacketStatus =
  /** Decoded down to the transport payload. */
  | 'ok'
  /** Headers decoded, payload cut short by the snap length (see {@link DecodedPacket.missingBytes}). */
  | 'truncated'
  /** A header is inconsistent (bad lengths, bad version...). */
  | 'malformed'
  /** A link type or EtherType dbtap does not decode (ARP, STP...). */
  | 'unsupported'
  /** An IP fragment awaiting the rest of its datagram. */
  | 'fragment';

/** Decoded TCP header fields (RFC 9293 section 3.1). */
export interface TcpHeader {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number (unsigned 32-bit). */
  seq: number;
  /** Acknowledgment number (unsigned 32-bit). */
  ack: number;
  /** Flag bits, see {@link TcpFlags}. */
  flags: number;
  /** Window field, unscaled. */
  window: number;
  /** Header length in bytes (data offset * 4). */
  headerLength: number;
  /** Option bytes, a view (parse with {@link parseTcpOptions}). */
  options: Uint8Array;
}

/** Decoded UDP header fields. */
export interface UdpHeader {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Length field (header + data). */
  length: number;
}

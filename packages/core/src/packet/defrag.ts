import type { Timestamp } from '../time.js';
import { decodePacket, decodeTransport } from './decode.js';
import type { DecodedPacket, Frame } from './types.js';

/** Bounds of IP fragment reassembly. */
export interface DefragOptions {
  /** Datagrams being reassembled at once; the oldest is dropped beyond this. */
  maxDatagrams: number;
  /** Fragment bytes held in all; the oldest datagrams are dropped beyond this. */
  maxBytes: number;
  /** A datagram not complete this long after its first fragment is dropped (µs). */
  timeoutUs: number;
}

/** Defaults for {@link DefragOptions}: 4096 datagrams, 16 MiB, 30 s (RFC 8200 uses 60 s; Linux 30 s). */
export const defaultDefragOptions: Readonly<DefragOptions> = Object.freeze({
  maxDatagrams: 4096,
  maxBytes: 16 << 20,
  timeoutUs: 30_000_000,
});

/** Counters of {@link PacketDecoder}. */
export interface PacketDecoderStats {
  /** Frames decoded. */
  frames: number;
  /** Frames by outcome. */
  ok: number;
  truncated: number;
  malformed: number;
  unsupported: number;
  /** Fragments received. */
  fragments: number;
  /** Datagrams reassembled from fragments. */
  reassembled: number;
  /** Datagrams dropped incomplete: timed out. */
  fragTimeouts: number;
  /** Datagrams dropped incomplete: memory or count bound. */
  fragEvictions: number;
  /** Fragments whose bytes overlapped earlier ones (first copy kept). */
  fragOverlaps: number;
}

interface Piece {
  offset: number;
  data: Uint8Array;
}

interface Datagram {
  firstTs: Timestamp;
  pieces: Piece[];
  bytes: number;
  /** Total payload length, known once the last fragment (more=false) arrived. */
  total: number;
  proto: number;
  template: DecodedPacket;
}

/** A copy of a packet's header fields that outlives its frame buffer. */
function detach(pkt: DecodedPacket): DecodedPacket {
  return { ...pkt, vlans: pkt.vlans.slice(), srcIp: pkt.srcIp.slice(), dstIp: pkt.dstIp.slice() };
}

/** Largest IPv4/IPv6 (non-jumbo) datagram payload. */
const MAX_DATAGRAM = 65535;

/**
 * Decodes frames ({@link decodePacket}) and reassembles IPv4 and IPv6
 * fragments, bounded in memory and time. A fragment returns a packet with
 * status `fragment`; the fragment that completes a datagram returns the whole
 * datagram decoded (its payload then lives in a new buffer, the only copy the
 * packet layer makes).
 */
export class PacketDecoder {
  /** Counters since construction. */
  readonly stats: PacketDecoderStats = {
    frames: 0, ok: 0, truncated: 0, malformed: 0, unsupported: 0,
    fragments: 0, reassembled: 0, fragTimeouts: 0, fragEvictions: 0, fragOverlaps: 0,
  };
  private readonly options: DefragOptions;
  // Map keeps insertion order: the first entry is the oldest datagram.
  private readonly datagrams = new Map<string, Datagram>();
  private heldBytes = 0;

  /** @param options Reassembly bounds (defaults: {@link defaultDefragOptions}). */
  constructor(options: Partial<DefragOptions> = {}) {
    this.options = { ...defaultDefragOptions, ...options };
  }

  /** Fragment bytes currently held. */
  get pendingBytes(): number {
    return this.heldBytes;
  }

  /** Decodes one frame, reassembling fragments. Never throws. */
  decode(frame: Frame): DecodedPacket {
    const st = this.stats;
    st.frames++;
    const pkt = decodePacket(frame);
    if (pkt.status === 'fragment') return this.fragment(pkt);
    if (pkt.status === 'ok') st.ok++;
    else if (pkt.status === 'truncated') st.truncated++;
    else if (pkt.status === 'malformed') st.malformed++;
    else st.unsupported++;
    return pkt;
  }

  /** Drops datagrams whose first fragment is older than the timeout at `now`. */
  expire(now: Timestamp): void {
    for (const [key, dg] of this.datagrams) {
      if (now - dg.firstTs <= this.options.timeoutUs) break;
      this.drop(key, dg);
      this.stats.fragTimeouts++;
    }
  }

  private fragment(pkt: DecodedPacket): DecodedPacket {
    const frag = pkt.fragment!;
    this.stats.fragments++;
    this.expire(pkt.ts);
    const key = `${pkt.ipVersion}|${pkt.srcIp.join('.')}|${pkt.dstIp.join('.')}|${frag.proto}|${frag.id}`;
    let dg = this.datagrams.get(key);
    if (frag.offset + pkt.payload.length > MAX_DATAGRAM) {
      pkt.status = 'malformed';
      this.stats.malformed++;
      return pkt;
    }
    if (!dg) {
      dg = { firstTs: pkt.ts, pieces: [], bytes: 0, total: -1, proto: frag.proto, template: detach(pkt) };
      this.datagrams.set(key, dg);
    } else if (frag.offset === 0) dg.template = detach(pkt);
    if (!frag.more) dg.total = frag.offset + pkt.payload.length;
    // Copy: the frame's buffer does not outlive this call.
    dg.pieces.push({ offset: frag.offset, data: pkt.payload.slice() });
    dg.bytes += pkt.payload.length;
    this.heldBytes += pkt.payload.length;
    this.enforceBounds(key);
    if (!this.datagrams.has(key) || dg.total < 0) return pkt;
    const whole = this.assemble(dg);
    if (!whole) return pkt;
    this.drop(key, dg);
    this.stats.reassembled++;
    const out = dg.template;
    out.ts = pkt.ts;
    out.fragment = undefined;
    decodeTransport(whole, 0, whole.length, 0, dg.proto, out);
    if (out.status === 'ok') this.stats.ok++;
    else if (out.status === 'malformed') this.stats.malformed++;
    else if (out.status === 'truncated') this.stats.truncated++;
    else this.stats.unsupported++;
    return out;
  }

  /** The datagram's payload when fragments cover 0..total without holes. */
  private assemble(dg: Datagram): Uint8Array | undefined {
    const pieces = dg.pieces.slice().sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const p of pieces) {
      if (p.offset > covered) return undefined;
      covered = Math.max(covered, p.offset + p.data.length);
    }
    if (covered < dg.total) return undefined;
    // Overlaps: the first-arrived copy of every byte wins (RFC 5722 says drop the
    // datagram for IPv6; an auditor prefers the bytes), and the overlap is counted.
    const out = new Uint8Array(dg.total);
    const written = new Uint8Array(dg.total);
    for (const p of dg.pieces) {
      const to = Math.min(dg.total, p.offset + p.data.length);
      let overlapped = false;
      for (let i = p.offset; i < to; i++) {
        if (written[i]) {
          overlapped = true;
          continue;
        }
        written[i] = 1;
        out[i] = p.data[i - p.offset]!;
      }
      if (overlapped) this.stats.fragOverlaps++;
    }
    return out;
  }

  private enforceBounds(current: string): void {
    const { maxDatagrams, maxBytes } = this.options;
    for (const [key, dg] of this.datagrams) {
      if (this.datagrams.size <= maxDatagrams && this.heldBytes <= maxBytes) break;
      if (key === current && this.datagrams.size === 1) {
        // A single datagram over the byte bound: drop it too.
        this.drop(key, dg);
        this.stats.fragEvictions++;
        break;
      }
      this.drop(key, dg);
      this.stats.fragEvictions++;
    }
  }

  private drop(key: string, dg: Datagram): void {
    this.datagrams.delete(key);
    this.heldBytes -= dg.bytes;
  }
}

// Reads what a TLS handshake shows in clear, from either side of a stream
// that is (or turned) TLS: the record layer (RFC 8446 section 5.1, RFC 5246
// section 6.2) on the kit framer, handshake messages reassembled across
// records (bounded), then ClientHello, ServerHello and, for TLS 1.2 and
// older, the server's Certificate. Once a side sends ChangeCipherSpec or
// application data, what follows is encrypted and that side is no longer read.
//
//   record:     u8 type | u16 version | u16 length | fragment
//   handshake:  u8 msg_type | u24 length | body
import { ByteReader, Direction, type TlsFacts } from '@dbtap/core';
import { Framer, type FrameFormat } from '../kit/framer.js';
import { Outcome } from '../kit/outcome.js';
import { alertName, cipherName, isGrease, versionName } from './names.js';
import { certificateFacts } from './x509.js';

const enum ContentType {
  ChangeCipherSpec = 20,
  Alert = 21,
  Handshake = 22,
  ApplicationData = 23,
}

const enum HandshakeType {
  ClientHello = 1,
  ServerHello = 2,
  Certificate = 11,
}

const enum Ext {
  ServerName = 0,
  Alpn = 16,
  SupportedVersions = 43,
}

/** Handshake bytes kept per side: a certificate chain fits; beyond it the side stops being read. */
const MAX_HANDSHAKE = 64 << 10;

const RECORD: FrameFormat = {
  headerBytes: 5,
  frameLength: (b, at) => {
    const t = b[at]!;
    if (t < 20 || t > 24 || b[at + 1] !== 3) return Outcome.Malformed;
    return 5 + ((b[at + 3]! << 8) | b[at + 4]!);
  },
};

/** True when `b` starts like a TLS record carrying a handshake (a ClientHello or ServerHello). */
export function looksLikeTls(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === ContentType.Handshake && b[1] === 3 && b[2]! <= 4;
}

class Side {
  readonly framer: Framer;
  hs = new Uint8Array(0);
  hsLen = 0;
  done = false;
  constructor(onRecord: (m: Uint8Array) => void) {
    this.framer = new Framer(RECORD, (m) => onRecord(m), { maxMessageBytes: (16 << 10) + 2048 + 5, resync: () => Outcome.Malformed });
  }
  stop(): void {
    this.done = true;
    this.framer.off();
    this.hs = new Uint8Array(0);
    this.hsLen = 0;
  }
}

/** Collects {@link TlsFacts} from both directions of a TLS stream. */
export class TlsObserver {
  /** What the handshake showed so far. */
  readonly facts: TlsFacts = {};
  /** True once a TLS record was seen. */
  seen = false;
  private readonly sides: [Side, Side];

  constructor() {
    this.sides = [new Side((m) => this.record(Direction.ToServer, m)), new Side((m) => this.record(Direction.ToClient, m))];
  }

  /** True when both sides are no longer read (encrypted, done or not TLS). */
  get finished(): boolean {
    return this.sides[0].done && this.sides[1].done;
  }

  /** In-order bytes of one side. */
  data(dir: Direction, bytes: Uint8Array): void {
    const side = this.sides[dir];
    if (side.done) return;
    side.framer.push(bytes);
    if (!side.framer.synced) side.stop(); // not (or no longer) TLS records
  }

  /** Bytes of one side were lost: its handshake can no longer be followed. */
  gap(dir: Direction): void {
    this.sides[dir].stop();
  }

  private record(dir: Direction, m: Uint8Array): void {
    this.seen = true;
    const side = this.sides[dir];
    const type = m[0]!;
    const body = m.subarray(5);
    if (type === ContentType.Handshake) return this.handshake(dir, side, body);
    if (type === ContentType.Alert && body.length >= 2) {
      this.facts.alert = alertName(body[1]!);
      return;
    }
    // ChangeCipherSpec or application data: the rest of this side is encrypted.
    side.stop();
  }

  private handshake(dir: Direction, side: Side, frag: Uint8Array): void {
    if (side.hsLen + frag.length > MAX_HANDSHAKE) return side.stop();
    if (side.hs.length < side.hsLen + frag.length) {
      const grown = new Uint8Array(Math.min(MAX_HANDSHAKE, Math.max(side.hsLen + frag.length, side.hs.length * 2, 1024)));
      grown.set(side.hs.subarray(0, side.hsLen));
      side.hs = grown;
    }
    side.hs.set(frag, side.hsLen);
    side.hsLen += frag.length;
    let p = 0;
    const b = side.hs;
    while (!side.done && side.hsLen - p >= 4) {
      const len = (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
      if (side.hsLen - p - 4 < len) break;
      this.message(dir, side, b[p]!, b.subarray(p + 4, p + 4 + len));
      p += 4 + len;
    }
    if (side.done) return;
    b.copyWithin(0, p, side.hsLen);
    side.hsLen -= p;
  }

  private message(dir: Direction, side: Side, type: number, body: Uint8Array): void {
    if (dir === Direction.ToServer && type === HandshakeType.ClientHello) {
      this.clientHello(body);
      side.stop(); // what the client sends next is key exchange or encrypted
    } else if (dir === Direction.ToClient && type === HandshakeType.ServerHello) {
      this.serverHello(body);
      if (this.facts.version === 'TLS 1.3') side.stop(); // everything after ServerHello is encrypted
    } else if (dir === Direction.ToClient && type === HandshakeType.Certificate) {
      this.certificate(body);
      side.stop();
    }
  }

  private clientHello(b: Uint8Array): void {
    const r = new ByteReader(b);
    const legacy = r.u16be();
    r.skip(32);
    r.skip(r.u8());
    const suites = r.u16be();
    this.facts.offeredCiphers = suites >> 1;
    r.skip(suites);
    r.skip(r.u8());
    let best = legacy;
    this.extensions(r, (type, e) => {
      if (type === Ext.ServerName) {
        e.u16be();
        while (e.remaining >= 3) {
          const kind = e.u8();
          const name = e.bytes(e.u16be());
          if (kind === 0) this.facts.sni = ascii(name);
        }
      } else if (type === Ext.Alpn) {
        e.u16be();
        const list: string[] = [];
        while (e.remaining >= 1) list.push(ascii(e.bytes(e.u8())));
        if (list.length > 0) this.facts.alpn = list;
      } else if (type === Ext.SupportedVersions) {
        const n = e.u8();
        for (let i = 0; i + 1 < n; i += 2) {
          const v = e.u16be();
          if (!isGrease(v) && v > best && v <= 0x0304) best = v;
        }
      }
    });
    if (r.ok) this.facts.offeredVersion = versionName(best);
  }

  private serverHello(b: Uint8Array): void {
    const r = new ByteReader(b);
    let version = r.u16be();
    r.skip(32);
    r.skip(r.u8());
    const suite = r.u16be();
    r.skip(1);
    this.extensions(r, (type, e) => {
      if (type === Ext.SupportedVersions) version = e.u16be();
      else if (type === Ext.Alpn) {
        e.u16be();
        this.facts.alpnChosen = ascii(e.bytes(e.u8()));
      }
    });
    if (!r.ok) return;
    this.facts.version = versionName(version);
    this.facts.cipherSuite = cipherName(suite);
  }

  private certificate(b: Uint8Array): void {
    // TLS 1.2: u24 list length, then u24 length + DER per certificate; the first is the server's.
    const r = new ByteReader(b);
    r.skip(3);
    const len = r.u24be();
    const der = r.bytes(len);
    if (!r.ok) return;
    const c = certificateFacts(der);
    if (c === undefined) return;
    if (c.subject !== undefined) this.facts.certSubject = c.subject;
    if (c.issuer !== undefined) this.facts.certIssuer = c.issuer;
    if (c.notBefore !== undefined) this.facts.certNotBefore = c.notBefore;
    if (c.notAfter !== undefined) this.facts.certNotAfter = c.notAfter;
  }

  private extensions(r: ByteReader, each: (type: number, ext: ByteReader) => void): void {
    if (r.remaining < 2) return;
    const end = Math.min(r.remaining, r.u16be());
    const all = new ByteReader(r.bytes(end));
    while (all.remaining >= 4) {
      const type = all.u16be();
      const e = new ByteReader(all.bytes(all.u16be()));
      if (!all.ok) return;
      each(type, e);
    }
  }
}

function ascii(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length && i < 255; i++) s += String.fromCharCode(b[i]!);
  return s;
}

// DSS framing on the kit Framer. A DSS is at most 32,767 bytes on the wire;
// a bigger one is cut into segments, the high bit of each length saying
// that a continuation follows (DRDA Vol. 1, "DSS continuation"):
//
//   | 7F FF D0 fmt corr | 32,761 payload bytes |      first segment, length 0x7FFF | 0x8000
//   | 7F FF | 32,765 payload bytes |                    continuation, more follow
//   | 01 2C | 298 payload bytes |                       last continuation (high bit clear)
//
// The Framer cuts segments (6-byte DSS headers, then 2-byte continuation
// headers while the high bit is set); DssAssembler joins a DSS's segments
// into one payload (a view when it came in one segment, one copy otherwise,
// bounded by maxMessageBytes) and hands on whole DSSs.
import { Framer, FrameFlag, type FrameFormat } from '../kit/framer.js';
import { Outcome } from '../kit/outcome.js';
import { checkDss, parseDdms } from './decoder.js';
import type { Dss } from './messages.js';

/** The first segment of a DSS: 6 header bytes, magic 0xD0. */
export const dssFormat: FrameFormat = {
  headerBytes: 6,
  frameLength(b, at) {
    if (b[at + 2] !== 0xd0) return Outcome.Malformed;
    const type = b[at + 3]! & 0x0f;
    if ((b[at + 3]! & 0x80) !== 0 || type < 1 || type > 5) return Outcome.Malformed;
    const len = ((b[at]! << 8) | b[at + 1]!) & 0x7fff;
    return len >= 10 ? len : Outcome.Malformed;
  },
};

/** A continuation segment: a 2-byte length (high bit: more follow). */
export const continuationFormat: FrameFormat = {
  headerBytes: 2,
  frameLength(b, at) {
    const len = ((b[at]! << 8) | b[at + 1]!) & 0x7fff;
    return len > 2 ? len : Outcome.Malformed;
  },
};

/** Receives each reassembled DSS. */
export type DssSink = (dss: Dss) => void;

/** One direction: segments -> DSSs. */
export class DssAssembler {
  readonly framer: Framer;
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  private wire = 0;
  private truncated = false;
  private head = { fmt: 0, corr: 0 };

  /**
   * @param sink receives each DSS
   * @param maxBytes largest DSS payload kept (the rest is dropped, the DSS marked truncated)
   * @param midStream the capture did not see the connection start: scan for the first DSS
   */
  constructor(
    private readonly sink: DssSink,
    private readonly maxBytes: number,
    midStream: boolean,
  ) {
    this.framer = new Framer(dssFormat, (m, w, f) => this.segment(m, w, f), {
      maxMessageBytes: 0x8000,
      resync: (b, at, end) => {
        const r = checkDss(b, at, end);
        if (r > 0) {
          this.reset();
          this.framer.format = dssFormat;
        }
        return r;
      },
      startSynced: !midStream,
    });
  }

  /** Drops a DSS being assembled (sync was lost). */
  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.wire = 0;
    this.truncated = false;
    this.framer.format = dssFormat;
  }

  /** In-order bytes. */
  push(bytes: Uint8Array): void {
    this.framer.push(bytes);
  }

  /** Missing bytes: a hole inside a segment keeps sync (the DSS is marked truncated); otherwise scan. */
  gap(nbytes: number): void {
    const synced = this.framer.gap(nbytes);
    if (!synced) this.reset();
  }

  private segment(m: Uint8Array, wire: number, flags: number): void {
    const first = this.framer.format === dssFormat;
    const more = (m[0]! & 0x80) !== 0;
    if ((flags & FrameFlag.Truncated) !== 0) this.truncated = true;
    const payload = m.subarray(first ? 6 : 2);
    if (first) {
      this.head = { fmt: m[3]!, corr: (m[4]! << 8) | m[5]! };
      this.parts = [];
      this.partBytes = 0;
      this.wire = 0;
    }
    this.wire += wire;
    if (!more && first) {
      // The usual case: one segment, handed on as a view.
      this.deliver(payload);
      return;
    }
    if (this.partBytes + payload.length <= this.maxBytes) {
      this.parts.push(payload.slice());
      this.partBytes += payload.length;
    } else {
      this.truncated = true;
    }
    if (more) {
      this.framer.format = continuationFormat;
      return;
    }
    const all = new Uint8Array(this.partBytes);
    let o = 0;
    for (const p of this.parts) {
      all.set(p, o);
      o += p.length;
    }
    this.parts = [];
    this.partBytes = 0;
    this.framer.format = dssFormat;
    this.deliver(all);
  }

  private deliver(payload: Uint8Array): void {
    const { fmt, corr } = this.head;
    const dss: Dss = { type: fmt & 0x0f, flags: fmt & 0x70, corr, objects: parseDdms(payload), wireBytes: this.wire, truncated: this.truncated };
    this.truncated = false;
    this.wire = 0;
    this.sink(dss);
  }
}

// The three ways a PostgreSQL stream announces its messages (protocol 3.0,
// "Message Formats"), as kit FrameFormats, and the plausibility check the
// kit's Framer scans with after a gap or at a mid-stream pickup.
//
//   typed message          startup-phase packet       SSL/GSS answer
//   +------+-----------+   +-----------+----------+   +------+
//   | type | Int32 len |   | Int32 len | body ... |   | 'S'  |  one byte, no length
//   +------+-----------+   +-----------+----------+   +------+
//   len counts itself and the body, never the type byte.
//
// The client starts with the untyped format. The server starts with the
// answer format: its first byte is either the answer to an SSLRequest (which
// a capture may have lost) or the first byte of a typed message, which the
// session re-frames. The session switches a framer's format from inside its
// sink (after the StartupMessage, and around an SSLRequest / GSSENCRequest).
import { Framer, Outcome, type FrameFormat, type FrameSink } from '../kit/index.js';
import { checkStartup, checkTyped, MAX_STARTUP_PACKET, STARTUP_HEADER, TYPED_HEADER, u32At } from './decoder.js';

/** Type byte + Int32 length; the length counts itself and the body. */
export const typedFormat: FrameFormat = {
  headerBytes: TYPED_HEADER,
  frameLength(buf: Uint8Array, at: number): number {
    const len = u32At(buf, at + 1);
    return len < 4 ? Outcome.Malformed : len + 1;
  },
};

/**
 * Untyped Int32 length + body: StartupMessage, SSLRequest, GSSENCRequest,
 * CancelRequest. Bounded as the server bounds it (8..MAX_STARTUP_PACKET).
 */
export const startupFormat: FrameFormat = {
  headerBytes: STARTUP_HEADER,
  frameLength(buf: Uint8Array, at: number): number {
    const len = u32At(buf, at);
    return len < 8 || len > MAX_STARTUP_PACKET ? Outcome.Malformed : len;
  },
};

/**
 * The one byte a server answers an SSLRequest / GSSENCRequest with: 'S' or
 * 'G' (encryption follows), 'N' (refused). Every byte is delivered alone; a
 * server that answers with a typed message instead (one that does not know
 * the request) is handled by the session, which re-frames that byte.
 */
export const answerFormat: FrameFormat = {
  headerBytes: 1,
  frameLength: () => 1,
};

/**
 * The resynchronisation check of one direction: a boundary is accepted where
 * a whole, well-formed message starts and the one after it is plausible too
 * (or the data ends there), and framing resumes there with the typed format.
 * While {@link PgResync.startupFirst} is set (a client stream scanned from
 * its first byte), offset 0 may also hold a startup-phase packet; accepting
 * one switches the framer to the startup format.
 */
export class PgResync {
  /** Offset 0 of the scan may be a startup packet (cleared when it is judged). */
  startupFirst: boolean;
  /** The framer whose format an accepted startup packet switches. */
  framer: Framer | undefined;
  /** The check, bound for {@link Framer}. */
  readonly check = (buf: Uint8Array, at: number, end: number): number => this.accept(buf, at, end);

  /**
   * @param toServer true for the client-to-server direction (frontend messages)
   * @param startupFirst see {@link PgResync.startupFirst}
   */
  constructor(
    readonly toServer: boolean,
    startupFirst: boolean,
  ) {
    this.startupFirst = startupFirst;
    this.framer = undefined;
  }

  private accept(buf: Uint8Array, at: number, end: number): number {
    if (this.startupFirst && at === 0) {
      const s = checkStartup(buf, at, end);
      if (s === Outcome.More) return s;
      this.startupFirst = false;
      if (s > 0) {
        if (this.framer !== undefined) this.framer.format = startupFormat;
        return s;
      }
    }
    const t = checkTyped(buf, at, end, this.toServer);
    if (t <= 0) return t;
    const next = at + t;
    if (next !== end && checkTyped(buf, next, end, this.toServer) === Outcome.Malformed) return Outcome.Malformed;
    this.startupFirst = false;
    // Framing resumes here with the typed format, whatever was expected before sync was lost
    // (a startup packet or an SSL answer): with any other format the same offset would fail again.
    if (this.framer !== undefined) this.framer.format = typedFormat;
    return t;
  }
}

/**
 * A kit {@link Framer} for one direction of a PostgreSQL stream.
 *
 * @param toServer client-to-server direction (starts with the startup format) or server-to-client (the answer format)
 * @param sink receives every message, header included
 * @param maxMessageBytes largest message delivered whole
 * @param midStream the capture did not see the connection open: scan from the first byte
 */
export function pgFramer(toServer: boolean, sink: FrameSink, maxMessageBytes: number, midStream: boolean): Framer {
  const resync = new PgResync(toServer, midStream && toServer);
  const first = midStream ? typedFormat : toServer ? startupFormat : answerFormat;
  const framer = new Framer(first, sink, { maxMessageBytes, resync: resync.check, startSynced: !midStream });
  resync.framer = framer;
  return framer;
}

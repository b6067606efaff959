import { closeSync, fstatSync, readSync } from 'node:fs';
import { DbtapError, ErrorCodes } from '../errors.js';

/** Default size of the reusable read buffer. */
export const DEFAULT_BUFFER_SIZE = 1 << 20;
/** Default bound on one pcap record or pcapng block. */
export const DEFAULT_MAX_BLOCK_SIZE = 64 << 20;

// Something to Atomics.wait on: a short sleep while a pipe has nothing to read.
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * A window of bytes over a file (or an in-memory buffer), read through one
 * reusable buffer.
 *
 * `buf[pos, end)` holds the bytes not yet consumed; `base` is the file
 * offset of `buf[0]`. {@link ByteSource.ensure} makes `n` bytes available at
 * `pos`, moving the unconsumed tail to the front and reading more from the
 * file; views handed out earlier are overwritten by that move, which is why
 * a frame's data is valid only until the next frame is read.
 *
 * The buffer grows only when a single block is bigger than it, to at most
 * the bytes the file still holds (so a bogus length in a cut file allocates
 * nothing); callers check the block bound before asking.
 *
 * A pipe or socket (`tcpdump -w - | dbtap audit -`) is read as a stream: as
 * far as it goes, with no size known in advance, so a block is bounded only
 * by the callers' block bound.
 */
export class ByteSource {
  buf: Uint8Array;
  view: DataView;
  pos: number;
  end: number;
  base: number;
  private fd: number;
  private filePos: number;
  private fileSize: number;
  private readonly path: string | undefined;
  private readonly stream: boolean;

  constructor(buf: Uint8Array, fd: number, path: string | undefined) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
    this.base = 0;
    this.fd = fd;
    this.path = path;
    this.filePos = 0;
    if (fd < 0) {
      // In memory: the whole input is already in the window.
      this.end = buf.length;
      this.fileSize = buf.length;
      this.stream = false;
    } else {
      this.end = 0;
      const st = fstatSync(fd);
      this.stream = !st.isFile() && !st.isBlockDevice();
      this.fileSize = this.stream ? Number.POSITIVE_INFINITY : st.size;
    }
  }

  /** File offset of `pos`. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Bytes available at `pos` without reading. */
  get available(): number {
    return this.end - this.pos;
  }

  /**
   * Makes `n` bytes available at `pos`. Returns false when the file ends
   * first; `available` then says how many there are. Throws only for an
   * operating-system read error (`DBTAP_E_IO`).
   */
  ensure(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    if (this.fd < 0) return false;
    return this.fill(n);
  }

  private fill(n: number): boolean {
    let remaining = this.fileSize - this.filePos;
    if (this.end - this.pos + remaining < n) {
      // The file may have grown since it was opened (a capture still being written).
      this.fileSize = this.statSize();
      remaining = this.fileSize - this.filePos;
    }
    const have = this.end - this.pos;
    // Never grow past what the file can still supply.
    const want = Math.min(n, have + remaining);
    if (this.buf.length - this.pos < want) {
      if (this.buf.length >= want) {
        this.buf.copyWithin(0, this.pos, this.end);
      } else {
        const bigger = new Uint8Array(Math.max(want, Math.min(this.buf.length * 2, n)));
        bigger.set(this.buf.subarray(this.pos, this.end));
        this.buf = bigger;
        this.view = new DataView(bigger.buffer);
      }
      this.base += this.pos;
      this.end = have;
      this.pos = 0;
    }
    while (this.end - this.pos < n && this.end < this.buf.length) {
      let got: number;
      try {
        // a pipe has no position to read at
        got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.stream ? null : this.filePos);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // a non-blocking pipe with nothing in it yet: wait a little, then read again
          Atomics.wait(PAUSE, 0, 0, 5);
          continue;
        }
        throw new DbtapError(ErrorCodes.IO, `cannot read capture file ${this.path ?? ''}: ${(err as Error).message}`, { path: this.path, offset: this.filePos }, { cause: err });
      }
      if (got === 0) break;
      this.end += got;
      this.filePos += got;
    }
    return this.end - this.pos >= n;
  }

  private statSize(): number {
    try {
      return fstatSync(this.fd).size;
    } catch (err) {
      throw new DbtapError(ErrorCodes.IO, `cannot stat capture file ${this.path ?? ''}: ${(err as Error).message}`, { path: this.path }, { cause: err });
    }
  }

  /** Releases the file descriptor. */
  close(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      this.end = this.pos; // nothing more to read
      try {
        closeSync(fd);
      } catch {
        // already closed: nothing to release
      }
    }
  }
}

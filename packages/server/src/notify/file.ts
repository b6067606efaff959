import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { toNdjson } from '../format.js';
import type { FileChannelConfig } from './config.js';
import { noticePayload, type Notice } from './notice.js';
import { asDbtapError, NotifyErrorCodes, renderEach, type DeliveryResult, type Sink } from './sink.js';

/**
 * The file channel: one JSON object per line (NDJSON), appended. Before a
 * write would take the file past `maxBytes`, it is rotated: `path.N-1` ->
 * `path.N`, ..., `path` -> `path.1`, and a new `path` is started; the oldest
 * beyond `keep` is deleted. A single line longer than `maxBytes` still goes
 * whole into a file of its own.
 */
export class FileSink implements Sink {
  readonly maxBatch = 500;
  private fh: FileHandle | undefined;
  private size = 0;

  constructor(
    private readonly cfg: FileChannelConfig,
    private readonly hostname: string,
  ) {}

  async deliver(batch: readonly Notice[]): Promise<DeliveryResult> {
    const r = renderEach(batch, (n) => Buffer.from(`${toNdjson(noticePayload(n, this.hostname))}\n`, 'utf8'));
    let written = 0;
    try {
      await this.ensureOpen();
      let chunk: Buffer[] = [];
      let chunkBytes = 0;
      for (const line of r.ok) {
        if (this.size + chunkBytes + line.length > this.cfg.maxBytes && this.size + chunkBytes > 0) {
          await this.write(chunk);
          written += chunk.length;
          chunk = [];
          chunkBytes = 0;
          await this.rotate();
        }
        chunk.push(line);
        chunkBytes += line.length;
      }
      await this.write(chunk);
      written += chunk.length;
      if (this.cfg.fsync) await this.fh!.sync();
      return r.error ? { sent: written, failed: r.bad, error: r.error } : { sent: written, failed: 0 };
    } catch (err) {
      // Reopen on the next batch: the file may have been moved or its disk freed.
      await this.closeHandle();
      return { sent: written, failed: batch.length - written, error: asDbtapError(err, NotifyErrorCodes.WRITE, `${this.cfg.path}: write failed`) };
    }
  }

  private async ensureOpen(): Promise<void> {
    if (this.fh) return;
    await mkdir(dirname(this.cfg.path), { recursive: true });
    this.fh = await open(this.cfg.path, 'a', 0o640);
    this.size = (await this.fh.stat()).size;
  }

  private async write(chunk: Buffer[]): Promise<void> {
    if (chunk.length === 0) return;
    const data = chunk.length === 1 ? chunk[0]! : Buffer.concat(chunk);
    await this.fh!.write(data);
    this.size += data.length;
  }

  private async rotate(): Promise<void> {
    await this.closeHandle();
    const p = this.cfg.path;
    if (this.cfg.keep === 0) {
      await rm(p, { force: true });
    } else {
      await rm(`${p}.${this.cfg.keep}`, { force: true });
      for (let i = this.cfg.keep - 1; i >= 1; i--) {
        await rename(`${p}.${i}`, `${p}.${i + 1}`).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      await rename(p, `${p}.1`);
    }
    await this.ensureOpen();
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.size = 0;
    await fh?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.closeHandle();
  }
}

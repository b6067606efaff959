import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { DbtapError, ErrorCodes, formatTimestamp } from '@dbtap/core';

/**
 * Writes NDJSON lines into `<dir>/<name>` gzip-compressed, durably: the data
 * goes to a temporary file that is fsynced and then renamed, and the
 * directory is fsynced, so once this resolves the export survives a crash
 * and a half-written export is never left under the final name.
 *
 * `batches` yields arrays of lines (without newlines); the caller pulls them
 * from the store in bounded chunks.
 */
export async function writeNdjsonGz(dir: string, name: string, batches: AsyncIterable<readonly string[]>): Promise<string> {
  const finalPath = join(dir, name);
  const tmpPath = `${finalPath}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    const gzip = createGzip({ level: 6 });
    const out = createWriteStream(tmpPath, { flags: 'wx' });
    const done = new Promise<void>((resolve, reject) => {
      out.on('finish', resolve);
      out.on('error', reject);
      gzip.on('error', reject);
    });
    gzip.pipe(out);
    for await (const lines of batches) {
      if (lines.length === 0) continue;
      if (!gzip.write(`${lines.join('\n')}\n`)) await once(gzip, 'drain');
    }
    gzip.end();
    await done;
    const fh = await open(tmpPath, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmpPath, finalPath);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    return finalPath;
  } catch (err) {
    await rm(tmpPath, { force: true }).catch(() => undefined);
    throw new DbtapError(ErrorCodes.IO, `retention export to ${finalPath} failed: ${(err as Error).message}`, { path: finalPath }, { cause: err });
  }
}

/** File name of a retention export: the time span it covers and a run stamp, safe on every file system. */
export function exportFileName(prefix: string, oldest: number, newest: number, runAt: number): string {
  const stamp = (ts: number): string => formatTimestamp(ts).replace(/[-:]/g, '').replace('.', '_');
  return `${prefix}-${stamp(oldest)}-${stamp(newest)}-run${stamp(runAt)}.ndjson.gz`;
}

// Frames of capture files, copied out of the reader's buffers.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture, type Frame } from '@dbtap/core';

// Not from corpus.ts: that module loads ava, and benchmarks use these helpers outside it.
const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** Every frame of a capture file, each with its own copy of the bytes (the reader reuses its buffer). */
export function captureFrames(path: string): Frame[] {
  const r = openCapture(path);
  const out: Frame[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) out.push({ ...f, data: f.data.slice() });
  r.close();
  return out;
}

/** Every frame of `examples/captures/<name>` (default the MariaDB session), each with its own copy of the bytes. */
export function exampleFrames(name = 'mariadb-session.pcap'): Frame[] {
  return captureFrames(join(repoRoot, 'examples/captures', name));
}

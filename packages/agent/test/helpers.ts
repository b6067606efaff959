// Shared helpers for the agent tests: numbered frames and waiting for a condition.
import type { Frame } from '@dbtap/core';

/** A frame whose first four bytes carry `id` (big-endian), padded to `size` bytes with a pattern. */
export function numberedFrame(id: number, size = 60): Frame {
  const data = new Uint8Array(Math.max(4, size));
  new DataView(data.buffer).setUint32(0, id);
  for (let i = 4; i < data.length; i++) data[i] = (id + i) & 0xff;
  return { ts: 1_700_000_000_000_000 + id, linkType: 1, data, origLen: data.length + (id % 3), interfaceId: 0 };
}

/** The id written by {@link numberedFrame}. */
export function frameId(f: Frame): number {
  return new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength).getUint32(0);
}

export { waitFor } from '../../../test-support/process.js';

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

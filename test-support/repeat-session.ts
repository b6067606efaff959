// Many connections of real traffic from one small capture: the example
// MariaDB session (Ethernet, IPv4 without options, server port 3306)
// repeated with fresh client ports and shifted times, for load tests and
// benchmarks.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame } from '@dbtap/core';
import { captureFrames } from './frames.js';

// Not from corpus.ts: that module loads ava, and benchmarks run outside it.
const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..');

const port = (d: Uint8Array, at: number): number => (d[at]! << 8) | d[at + 1]!;
// Ethernet (14) + IPv4 (20): source port at 34, destination port at 36.
const clientPort = (d: Uint8Array): number => (port(d, 34) === 3306 ? port(d, 36) : port(d, 34));

/**
 * `copies` copies of examples/captures/mariadb-session.pcap. Copy i of the
 * capture's n-th connection gets client port `firstPort + i * connections + n`
 * (wrapping below 65536) and its times shifted by `i * spacingUs`.
 */
export function repeatMariadbSession(copies: number, firstPort: number, spacingUs: number): Frame[] {
  const base = captureFrames(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  const ports = [...new Set(base.map((f) => clientPort(f.data)))];
  const out: Frame[] = [];
  for (let i = 0; i < copies; i++) {
    for (const f of base) {
      const data = f.data.slice();
      const p = firstPort + ((i * ports.length + ports.indexOf(clientPort(data))) % (65536 - firstPort));
      const at = port(data, 34) === 3306 ? 36 : 34;
      data[at] = p >> 8;
      data[at + 1] = p & 0xff;
      out.push({ ...f, data, ts: f.ts + i * spacingUs });
    }
  }
  return out;
}

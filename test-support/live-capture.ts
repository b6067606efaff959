// Live capture on the loopback device for end-to-end tests: frames captured
// with libpcap (npm `cap`) while real clients talk to the local databases.
import cap from 'cap';
import type { Frame } from '@dbtap/core';

const linkTypes: Record<string, number> = { ETHERNET: 1, NULL: 0, RAW: 101, LINUX_SLL: 113, LINUX_SLL2: 276 };

/** A running capture; {@link LiveCapture.stop} returns every frame seen. */
export interface LiveCapture {
  /** Stops capturing once no new frame arrived for a while, and returns the frames, in capture order. */
  stop(): Promise<Frame[]>;
}

// `cap`'s close() stops a capture but frees nothing; if the garbage collector
// later frees a closed Cap the process can crash. Every Cap made here stays
// referenced for the life of the process.
const keepAlive: unknown[] = [];
// Loopback frames reach 65,549 bytes (MTU 65,536 plus link header): a smaller buffer cuts them.
const SNAP = 262_144;
/** How long the capture must bring no new frame before {@link LiveCapture.stop} closes it. */
const QUIET_MS = 300;
let captureAllowed: boolean | undefined;

/** True when this process may capture on `lo` (root or CAP_NET_RAW). */
export function canCapture(): boolean {
  if (captureAllowed !== undefined) return captureAllowed;
  const c = new cap.Cap();
  keepAlive.push(c);
  try {
    c.open('lo', 'tcp port 1', 1 << 20, Buffer.alloc(SNAP));
    c.close();
    captureAllowed = true;
  } catch {
    captureAllowed = false;
  }
  return captureAllowed;
}

/**
 * Starts capturing on `lo` with a BPF `filter`. libpcap hands `cap` no
 * timestamps, so frames are stamped with the wall clock at delivery
 * (microseconds, monotonic within the capture).
 */
export function startLiveCapture(filter: string, device = 'lo'): LiveCapture {
  const c = new cap.Cap();
  keepAlive.push(c);
  const buffer = Buffer.alloc(SNAP);
  const link = c.open(device, filter, 32 << 20, buffer) as string;
  c.setMinBytes?.(0);
  const linkType = linkTypes[link] ?? 1;
  const frames: Frame[] = [];
  const base = Date.now() * 1000;
  const t0 = process.hrtime.bigint();
  c.on('packet', (nbytes: number) => {
    const ts = base + Number((process.hrtime.bigint() - t0) / 1000n);
    frames.push({ ts, linkType, data: Uint8Array.from(buffer.subarray(0, nbytes)), origLen: nbytes, interfaceId: 0 });
  });
  return {
    async stop() {
      // Frames the kernel holds are read only in libuv's poll phase. A plain
      // 300 ms timer could fire before any poll phase ran (when other tests in
      // the process kept the event loop busy for longer), closing the capture
      // with every frame still unread. Each wait below ends on setImmediate,
      // which runs after a poll phase, and the capture closes only after
      // QUIET_MS in which such polls brought no new frame.
      let seen = -1;
      let quietSince = Date.now();
      for (;;) {
        await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setImmediate(r));
        if (frames.length !== seen) {
          seen = frames.length;
          quietSince = Date.now();
        } else if (Date.now() - quietSince >= QUIET_MS) break;
      }
      c.close();
      return frames;
    },
  };
}

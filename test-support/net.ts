// A TCP port on 127.0.0.1 that was free a moment ago, for daemons a test starts.
import { createServer } from 'node:net';

/** Binds port 0, reads the port the kernel chose, and releases it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

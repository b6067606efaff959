// TCP traffic on lo for capture tests and benchmarks: a generator process
// with a sink server and one client writing `size`-byte messages with Nagle
// off (about one segment each) at `rate` writes/s (0 = flat out). It runs in
// its own process, so its CPU is not the capturer's and it keeps sending
// while the capturing process is stalled.
import { spawn } from 'node:child_process';

const GENERATOR = String.raw`
const net = require('net');
const [port, rate, size, seconds] = process.argv.slice(1).map(Number);
const sink = net.createServer((s) => { s.on('data', () => {}); s.on('error', () => {}); });
sink.listen(port, '127.0.0.1', () => {
  const c = net.connect(port, '127.0.0.1', () => {
    c.setNoDelay(true);
    const buf = Buffer.alloc(size, 0x61);
    const end = Date.now() + seconds * 1000;
    let sent = 0;
    const t0 = Date.now();
    const tick = () => {
      if (Date.now() >= end) { c.end(() => { sink.close(); process.send && process.send({ sent }); }); return; }
      if (rate === 0) {
        for (let i = 0; i < 200 && c.writableLength < (1 << 20); i++) { c.write(buf); sent++; }
        setImmediate(tick);
      } else {
        const due = Math.floor(((Date.now() - t0) / 1000) * rate);
        while (sent < due) { c.write(buf); sent++; }
        setTimeout(tick, 2);
      }
    };
    tick();
  });
});
`;

/** A free-looking TCP port for generated traffic (40000-59999). */
export function trafficPort(): number {
  return 40000 + Math.floor(Math.random() * 20000);
}

/**
 * Sends `size`-byte writes to 127.0.0.1:`port` at `rate` per second (0 = as
 * fast as possible) for `seconds`, and resolves to the number of writes once
 * the client has closed its side.
 */
export function generateTcpTraffic(port: number, rate: number, size: number, seconds: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', GENERATOR, String(port), String(rate), String(size), String(seconds)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.on('message', (m: { sent: number }) => resolve(m.sent));
    child.on('exit', (code) => reject(new Error(`traffic generator exited with code ${code} before reporting`)));
  });
}

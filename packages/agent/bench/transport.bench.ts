// Agent benchmark: packets/s and MB/s from capture to acknowledged delivery
// on lo, and the agent's CPU share (this process + its capture process) per
// 10,000 packets/s. The receiver and the traffic generator run in separate
// processes so their CPU is not counted. One JSON line per case.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveCaptureSource, TransportClient, type CaptureSource } from '@dbtap/agent';
import type { Frame } from '@dbtap/core';

const here = dirname(fileURLToPath(import.meta.url));
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

function childCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS; // utime, stime
  } catch {
    return 0;
  }
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'agent', ...o })}\n`);
}

async function startReceiver(): Promise<{ child: ChildProcess; port: number; count(): Promise<{ frames: number; bytes: number }> }> {
  const child = fork(join(here, 'receiver.ts'), { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((r) => child.once('message', (m: { port: number }) => r(m.port)));
  return {
    child,
    port,
    count: () => new Promise((r) => (child.once('message', (m: { frames: number; bytes: number }) => r(m)), child.send({ cmd: 'count' }))),
  };
}

// Traffic generator: a TCP sink and a client writing `size`-byte messages
// with Nagle off (about one segment each) at `rate` writes/s (0 = flat out).
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
      if (Date.now() >= end) { c.end(); sink.close(); process.send && process.send({ sent }); return; }
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

function generate(port: number, rate: number, size: number, seconds: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', GENERATOR, String(port), String(rate), String(size), String(seconds)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((r) => child.on('message', (m: { sent: number }) => r(m.sent)));
}

interface CaseResult {
  packets: number;
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  dropped: number;
}

async function captureCase(name: string, rate: number, size: number, seconds: number, withTransport: boolean): Promise<CaseResult> {
  const rx = withTransport ? await startReceiver() : undefined;
  const trafficPort = 40000 + Math.floor(Math.random() * 20000);
  const src: CaptureSource & { pid?: number } = new LiveCaptureSource({ device: 'lo', filter: `tcp port ${trafficPort}`, bufferSize: 64 << 20 });
  const client = rx ? new TransportClient({ host: '127.0.0.1', port: rx.port }).start() : undefined;
  let captured = 0;
  let capturedBytes = 0;
  // As the daemon does: a live capture's packed records go into the queue whole.
  if (client) (src as LiveCaptureSource).on('records', (r, n) => void client.sendRecords(r, n));
  else
    src.on('frame', (f: Frame) => {
      captured++;
      capturedBytes += f.data.length;
    });
  await src.start();
  if (client) await new Promise<void>((r) => (client.connected ? r() : client.once('connect', () => r())));
  const pid = (src as LiveCaptureSource).pid;
  const cpu0 = process.cpuUsage();
  const child0 = childCpuSeconds(pid);
  const t0 = performance.now();
  await generate(trafficPort, rate, size, seconds);
  if (client) await client.drain(30_000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const captureProcessSeconds = childCpuSeconds(pid) - child0;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6 + captureProcessSeconds;
  await src.stop();
  let delivered = client ? 0 : captured;
  let deliveredBytes = client ? 0 : capturedBytes;
  let dropped = 0;
  if (client && rx) {
    const s = await client.stop();
    dropped = s.droppedPackets;
    const c = await rx.count();
    delivered = c.frames;
    deliveredBytes = c.bytes;
    rx.child.send({ cmd: 'exit' });
  }
  const r = { packets: delivered, bytes: deliveredBytes, seconds: wall, cpuSeconds, dropped };
  const pps = r.packets / r.seconds;
  const cpuPct = (100 * r.cpuSeconds) / r.seconds;
  emit({
    case: name,
    packets: r.packets,
    seconds: +r.seconds.toFixed(3),
    pps: Math.round(pps),
    mbps: +(r.bytes / r.seconds / 1e6).toFixed(2),
    agentCpuPctOfCore: +cpuPct.toFixed(2),
    captureProcessCpuPctOfCore: +((100 * captureProcessSeconds) / r.seconds).toFixed(2),
    cpuPctPer10kPps: +((cpuPct * 10_000) / Math.max(pps, 1)).toFixed(2),
    dropped: r.dropped,
    sourceDrops: src.stats().sourceDrops,
  });
  return r;
}

async function syntheticCase(frames: number, size: number): Promise<void> {
  const rx = await startReceiver();
  const client = new TransportClient({ host: '127.0.0.1', port: rx.port, queueMaxPackets: frames + 1, queueMaxBytes: 2 ** 31 }).start();
  await new Promise<void>((r) => client.once('connect', () => r()));
  const data = new Uint8Array(size).fill(7);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    client.send({ ts: i, linkType: 1, data, origLen: size });
    if ((i & 4095) === 4095) await new Promise((r) => setImmediate(r));
  }
  await client.drain(60_000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const c = await rx.count();
  emit({
    case: `transport-only-${size}B`,
    packets: c.frames,
    seconds: +wall.toFixed(3),
    pps: Math.round(c.frames / wall),
    mbps: +(c.bytes / wall / 1e6).toFixed(2),
    senderCpuPctOfCore: +((100 * (cpu.user + cpu.system)) / 1e6 / wall).toFixed(2),
  });
  await client.stop();
  rx.child.send({ cmd: 'exit' });
}

await syntheticCase(300_000, 200);
await syntheticCase(50_000, 1400);
// Baseline (capture only) and the full path at about 10,000 packets/s, then flat out.
await captureCase('capture-only-about-10kpps', 11000, 100, 3, false);
await captureCase('capture-to-ack-about-10kpps', 11000, 100, 3, true);
await captureCase('capture-to-ack-max', 0, 100, 3, true);
process.exit(0);

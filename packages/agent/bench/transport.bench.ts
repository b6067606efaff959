// Agent benchmark: packets/s and MB/s from capture to acknowledged delivery
// on lo, and the agent's CPU share (this process + its capture process) per
// 10,000 packets/s. The receiver and the traffic generator run in separate
// processes so their CPU is not counted. One JSON line per case.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveCaptureSource, TransportClient, type CaptureSource } from '@dbtap/agent';
import type { Frame } from '@dbtap/core';
import { generateTcpTraffic, trafficPort } from '../../../test-support/tcp-traffic.js';
import { cpuSeconds as processCpuSeconds } from '../../../test-support/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
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

interface CaseResult {
  packets: number;
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  dropped: number;
}

async function captureCase(name: string, rate: number, size: number, seconds: number, withTransport: boolean): Promise<CaseResult> {
  const rx = withTransport ? await startReceiver() : undefined;
  const port = trafficPort();
  const src: CaptureSource & { pid?: number } = new LiveCaptureSource({ device: 'lo', filter: `tcp port ${port}`, bufferSize: 64 << 20 });
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
  const child0 = processCpuSeconds(pid);
  const t0 = performance.now();
  await generateTcpTraffic(port, rate, size, seconds);
  if (client) await client.drain(30_000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const captureProcessSeconds = processCpuSeconds(pid) - child0;
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
    // the kernel's counters (pcap_stats); null when the binding cannot read them
    kernelReceived: src.stats().kernelReceived ?? null,
    kernelDrops: src.stats().kernelDrops ?? null,
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

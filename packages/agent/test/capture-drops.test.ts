// Loss in the kernel's capture ring is counted, from the kernel's own
// counters (pcap_stats through the native binding), and matches what the
// capture missed; at a moderate rate nothing is lost.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from '@dbtap/core';
import cap from 'cap';
import { AgentDaemon, AgentLogger, LiveCaptureSource, TransportServer, agentMetrics, listCaptureDevices, loadAgentConfig, readAgentStatus } from '@dbtap/agent';
import { canCapture } from '../../../test-support/live-capture.js';
import { generateTcpTraffic, trafficPort } from '../../../test-support/tcp-traffic.js';

const live = canCapture();
const native = new LiveCaptureSource({ device: 'lo' }).kernelCounters;
const why = !live ? 'this process may not capture on lo (needs root or CAP_NET_RAW)' : !native ? 'the native capture binding is not built (needs libpcap-dev)' : '';
if (why) console.log(`skipping kernel drop counter tests: ${why}`);
const kernelTest = why ? test.skip : test.serial;
const liveTest = live ? test.serial : test.skip;

/** Byte ranges of the client-to-server payload seen in `frames` (Ethernet/IPv4/TCP on lo), relative to the client's SYN. */
function clientPayload(frames: Frame[], port: number): { covered: number; holes: number; largestSegment: number } {
  let isn: number | undefined;
  const ranges: Array<[number, number]> = [];
  let largestSegment = 0;
  for (const f of frames) {
    const d = Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength);
    if (d.readUInt16BE(12) !== 0x0800) continue;
    const ip = 14;
    const tcp = ip + (d[ip]! & 0x0f) * 4;
    if (d.readUInt16BE(tcp + 2) !== port) continue; // server-to-client
    const seq = d.readUInt32BE(tcp + 4);
    const flags = d[tcp + 13]!;
    if (flags & 0x02) isn = seq; // SYN
    const len = d.readUInt16BE(ip + 2) - (tcp - ip) - (d[tcp + 12]! >> 4) * 4;
    if (len <= 0) continue;
    if (isn === undefined) throw new Error('data before the SYN was captured');
    const from = (seq - isn - 1) >>> 0;
    ranges.push([from, from + len]);
    largestSegment = Math.max(largestSegment, len);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let holes = 0;
  let end = 0;
  for (const [a, b] of ranges) {
    if (a > end) holes++;
    if (b > end) covered += b - Math.max(a, end);
    end = Math.max(end, b);
  }
  return { covered, holes, largestSegment };
}

function capture(src: LiveCaptureSource): Frame[] {
  const frames: Frame[] = [];
  src.on('frame', (f) => frames.push({ ...f, data: f.data.slice() }));
  return frames;
}

kernelTest('a stalled consumer makes the kernel drop, and the reported drops are exactly what the capture missed', async (t) => {
  const port = trafficPort();
  // A 1 MiB ring, and the capture process stops reading it once 64 KiB wait for this process.
  const src = new LiveCaptureSource({ device: 'lo', filter: `tcp port ${port}`, bufferSize: 1 << 20, maxPendingBytes: 64 << 10, pollMs: 10 });
  const frames = capture(src);
  const drops: number[] = [];
  src.on('drops', (delta) => drops.push(delta.kernelDrops));
  await src.start();
  const sending = generateTcpTraffic(port, 10_000, 100, 3);
  await new Promise((r) => setTimeout(r, 500));
  // Stall this process (the consumer) for 1.5 s while the generator keeps sending.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
  const sent = await sending;
  await src.stop();
  const s = src.stats();
  t.log(`sent ${sent} writes; kernel received ${s.kernelReceived}, dropped ${s.kernelDrops}; delivered ${s.frames}`);
  t.true(s.kernelDrops! > 0, 'the kernel dropped');
  // Every frame that passed the filter was either delivered or dropped by the kernel.
  t.is(s.kernelReceived! - s.frames, s.kernelDrops!);
  t.is(s.frames, frames.length);
  t.is(s.sourceDrops, 0);
  t.is(s.interfaceDrops, 0);
  // The loss shows in the stream: payload is missing, and no more segments than the kernel dropped.
  const p = clientPayload(frames, port);
  const missing = sent * 100 - p.covered;
  t.log(`client payload: ${p.covered} of ${sent * 100} bytes, ${p.holes} holes`);
  t.true(missing > 0 && p.holes > 0);
  t.true(Math.ceil(missing / p.largestSegment) <= s.kernelDrops!);
  t.true(p.holes <= s.kernelDrops!);
  // ... and was announced while it happened.
  t.true(drops.length > 0);
  t.is(
    drops.reduce((a, b) => a + b, 0),
    s.kernelDrops!,
  );
});

kernelTest('at a moderate rate the kernel drops nothing and every byte is captured', async (t) => {
  const port = trafficPort();
  const src = new LiveCaptureSource({ device: 'lo', filter: `tcp port ${port}` });
  const frames = capture(src);
  await src.start();
  const sent = await generateTcpTraffic(port, 2000, 100, 2);
  await src.stop();
  const s = src.stats();
  t.is(s.kernelDrops, 0);
  t.is(s.kernelReceived, s.frames);
  t.is(s.frames, frames.length);
  const p = clientPayload(frames, port);
  t.is(p.holes, 0);
  t.is(p.covered, sent * 100);
  // kernel timestamps: microseconds of the wall clock, never going back
  t.true(Math.abs(frames[0]!.ts / 1000 - Date.now()) < 60_000);
  t.true(frames.every((f, i) => i === 0 || f.ts >= frames[i - 1]!.ts));
});

kernelTest('the daemon reports kernel drops in its status, its log and its metrics', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-agent-drops-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let received = 0;
  const server = new TransportServer({ onBatch: (_a, f) => void (received += f.length) });
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const port = trafficPort();
  // The smallest ring, read once a second: a burst overflows it between reads.
  const conf = join(dir, 'agent.conf');
  writeFileSync(
    conf,
    `receive_device=lo\npacket_filter=tcp port ${port}\nbuffer_size=64KiB\npoll_ms=1000\ndst_ip=127.0.0.1\ndst_port=${addr!.port}\nagent_id=drops\nstatus_socket=${join(dir, 'agent.sock')}\n`,
  );
  const { config } = loadAgentConfig(conf);
  t.is(config.source.kind === 'live' && config.source.bufferSize, 65536);
  const logFile = join(dir, 'agent.log');
  const daemon = new AgentDaemon(config, { logger: new AgentLogger(logFile) });
  await daemon.start();
  await generateTcpTraffic(port, 0, 100, 1);
  await new Promise((r) => setTimeout(r, 1500)); // a stats report after the burst
  const st = await readAgentStatus(join(dir, 'agent.sock'));
  t.true(st.source.kernelCounters);
  t.true(st.source.kernelDrops! > 0, JSON.stringify(st.source));
  t.true(st.source.kernelReceived! >= st.source.frames + st.source.kernelDrops!);
  const metrics = agentMetrics(st);
  t.regex(metrics, new RegExp(`^dbtap_agent_capture_kernel_dropped_total\\{agent="drops",source="lo"\\} ${st.source.kernelDrops}$`, 'm'));
  t.regex(metrics, /^# TYPE dbtap_agent_capture_kernel_dropped_total counter$/m);
  t.regex(metrics, /^dbtap_agent_capture_kernel_counters\{[^}]*\} 1$/m);
  await daemon.stop(5000);
  const log = readFileSync(logFile, 'utf8');
  t.regex(log, / warn capture on lo lost packets: \d+ in the kernel ring \(raise buffer_size\)/);
  const last = /capture on lo stopped: (\d+) frames delivered, (\d+) received by the kernel, (\d+) dropped in the kernel ring/.exec(log);
  t.truthy(last, log);
  t.is(Number(last![2]) - Number(last![1]), Number(last![3]));
  t.is(received, Number(last![1]));
});

liveTest('through cap the daemon says the kernel drop counters are unknown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-agent-nokernel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = new TransportServer({ onBatch: () => {} });
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const conf = join(dir, 'agent.conf');
  writeFileSync(conf, `receive_device=lo\npacket_filter=tcp port 1\ncapture_binding=cap\ndst_ip=127.0.0.1\ndst_port=${addr!.port}\nstatus_socket=${join(dir, 'agent.sock')}\n`);
  const logFile = join(dir, 'agent.log');
  const daemon = new AgentDaemon(loadAgentConfig(conf).config, { logger: new AgentLogger(logFile) });
  await daemon.start();
  const st = await readAgentStatus(join(dir, 'agent.sock'));
  await daemon.stop(2000);
  t.false(st.source.kernelCounters);
  t.false('kernelDrops' in st.source, 'unknown, not zero');
  t.regex(agentMetrics(st), /^dbtap_agent_capture_kernel_counters\{[^}]*\} 0$/m);
  const log = readFileSync(logFile, 'utf8');
  t.regex(log, / warn capture started on lo; kernel drop counters unknown/);
  t.regex(log, /capture on lo stopped: 0 frames delivered, kernel drops unknown/);
});

test('metrics leave out kernel counters that are unknown', (t) => {
  const source = { frames: 5, bytes: 300, truncated: 0, kernelReceived: undefined, kernelDrops: undefined, interfaceDrops: undefined, sourceDrops: 0 };
  const transport = { connected: false, enqueuedPackets: 0, enqueuedBytes: 0, ackedPackets: 0, ackedBatches: 0, droppedPackets: 0, droppedBytes: 0, queuedPackets: 0, queuedBytes: 0, sentBatches: 0, resentBatches: 0, connects: 0, disconnects: 0, lastError: undefined };
  const m = agentMetrics({
    agentId: 'a"b',
    instance: 'i',
    pid: 1,
    startedAt: '',
    uptimeSec: 3,
    server: 'x:1',
    connected: false,
    source: { ...source, kind: 'live', name: 'eth0', running: true, lastError: undefined, kernelCounters: false },
    transport,
  });
  t.regex(m, /^dbtap_agent_capture_kernel_counters\{agent="a\\"b",source="eth0"\} 0$/m);
  t.regex(m, /^dbtap_agent_capture_frames_total\{[^}]*\} 5$/m);
  t.notRegex(m, /kernel_dropped|kernel_received|interface_dropped/);
});

liveTest('through cap the kernel counters are unknown, not zero', async (t) => {
  const port = trafficPort();
  const src = new LiveCaptureSource({ device: 'lo', filter: `tcp port ${port}`, binding: 'cap' });
  t.false(src.kernelCounters);
  const frames = capture(src);
  await src.start();
  const sent = await generateTcpTraffic(port, 500, 100, 1);
  await src.stop();
  const s = src.stats();
  t.true(sent > 0 && frames.length > 0);
  t.is(s.kernelDrops, undefined);
  t.is(s.kernelReceived, undefined);
  t.is(s.interfaceDrops, undefined);
});

kernelTest('the native binding lists the devices cap lists, with their addresses', (t) => {
  const fromCap = cap.Cap.deviceList().map((d) => ({ name: d.name, addresses: d.addresses.map((a) => a.addr).filter((a): a is string => typeof a === 'string') }));
  t.deepEqual(
    listCaptureDevices().map((d) => ({ name: d.name, addresses: d.addresses })),
    fromCap,
  );
  t.true(listCaptureDevices().some((d) => d.name === 'lo' && d.addresses.includes('127.0.0.1')));
});

test('bad binding and poll options are refused', (t) => {
  t.throws(() => new LiveCaptureSource({ device: 'lo', pollMs: 0 }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  t.throws(() => new LiveCaptureSource({ device: 'lo', pollMs: 1.5 }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  t.throws(() => new LiveCaptureSource({ device: 'lo', binding: 'pf_ring' as 'cap' }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
});

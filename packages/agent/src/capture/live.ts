// Live capture through libpcap (`cap`), run in a child process (see
// worker-source.ts for why) that streams packed frame records back.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { EventEmitter } from 'eventemitter3';
import createDebug from 'debug';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { AgentErrorCodes } from '../errors.js';
import { MAX_CAPTURE_BUFFER, MIN_CAPTURE_BUFFER } from '../config.js';
import { MessageReader, decodeBatchFrames, RECORD_HEADER_BYTES } from '../transport/protocol.js';
import type { CaptureSource, CaptureSourceEvents, CaptureSourceStats } from './source.js';
import { CAPTURE_WORKER_SOURCE } from './worker-source.js';

const debug = createDebug('dbtap:agent:capture');

/** Options of {@link LiveCaptureSource}. */
export interface LiveCaptureOptions {
  /** Interface name, e.g. `eth0`, `lo` or `any`. */
  device: string;
  /** BPF filter, e.g. `tcp port 3306 or tcp port 5432`; empty for everything. */
  filter?: string;
  /** Bytes kept of each frame (at most 65535, the binding's libpcap snap length). Default 65535. */
  snapLen?: number;
  /** Kernel capture buffer (the packet ring) in bytes, 64 KiB to 2 GiB - 1. Default 32 MiB. */
  bufferSize?: number;
  /**
   * Frames captured but not yet read by this process, in bytes, before the
   * capture process stops reading the kernel ring (with the native binding:
   * the kernel then drops and counts) or drops and counts itself (with
   * `cap`). Default 64 MiB.
   */
  maxPendingBytes?: number;
  /**
   * libpcap binding: `native` (the package's own, which reads the kernel's
   * drop counters and hands over packets in batches), `cap` (the npm
   * package; kernel drops unknown) or `auto` (default: native when built).
   */
  binding?: 'auto' | 'native' | 'cap';
  /**
   * With the native binding: how often the kernel ring is read, and
   * libpcap's block timeout, in ms; a frame reaches listeners at most about
   * twice this after it was captured. Default 40 (at 10,000 packets/s the
   * capture's CPU share was 5.3% of a core at 10 ms, 3.1% at 25 ms and 2.7%
   * at 40 ms: fewer wake-ups, larger batches).
   */
  pollMs?: number;
  /** How long `stop()` waits for frames still in the kernel ring, in ms. Default 100. */
  drainMs?: number;
}

/** A network device as libpcap lists it. */
export interface CaptureDevice {
  /** Name to capture on. */
  name: string;
  /** Description, when libpcap has one. */
  description: string | undefined;
  /** Addresses assigned to it. */
  addresses: string[];
}

const requireCjs = createRequire(import.meta.url);

// The native binding, built by native/build.mjs at install time when
// libpcap's headers exist. This module runs from dist/ (bundled) or from
// src/capture/ and lib/capture/ (tests, tsc output).
const NATIVE_BINDING = ['../native/build/Release/dbtap_pcap.node', '../../native/build/Release/dbtap_pcap.node'];
let nativePath: string | null | undefined;
/** Path of the package's native libpcap binding, or undefined when it was not built. */
export function nativeCaptureBinding(): string | undefined {
  if (nativePath === undefined) {
    nativePath = null;
    for (const rel of NATIVE_BINDING) {
      const p = fileURLToPath(new URL(rel, import.meta.url));
      if (!existsSync(p)) continue;
      try {
        // Loaded here once so a binding built for another node ABI falls back to `cap`
        // instead of failing in the capture process.
        requireCjs(p);
        nativePath = p;
      } catch (err) {
        debug('native capture binding %s does not load: %s', p, (err as Error).message);
      }
      break;
    }
  }
  return nativePath ?? undefined;
}

let capModule: typeof import('cap').default | undefined;
function loadCap(): typeof import('cap').default {
  if (capModule === undefined) {
    try {
      capModule = requireCjs('cap') as typeof import('cap').default;
    } catch (err) {
      // `cap` is an optional dependency: it compiles against libpcap's headers,
      // which a user of the transport or of pcap replay alone does not need.
      throw new DbtapError(
        AgentErrorCodes.NO_CAPTURE_BINDING,
        `live capture needs a libpcap binding: this package's native one (built at install time when libpcap's headers are installed: install libpcap-dev, then npm rebuild @dbtap/agent) or the optional npm package "cap" (npm install cap), and neither could be loaded: ${(err as Error).message}`,
        undefined,
        { cause: err },
      );
    }
  }
  return capModule;
}

/** Lists capture devices (libpcap `pcap_findalldevs`), through the native binding when it is built, else `cap`. */
export function listCaptureDevices(): CaptureDevice[] {
  const native = nativeCaptureBinding();
  if (native !== undefined) return (requireCjs(native) as { devices(): CaptureDevice[] }).devices();
  return loadCap()
    .Cap.deviceList()
    .map((d) => ({ name: d.name, description: d.description, addresses: d.addresses.map((a) => a.addr).filter((a): a is string => typeof a === 'string') }));
}

/** Advice printed with permission errors. */
export const PERMISSION_ADVICE =
  'capturing needs root, or CAP_NET_RAW and CAP_NET_ADMIN on the node binary: setcap cap_net_raw,cap_net_admin=eip "$(readlink -f "$(command -v node)")"';

/**
 * Captures live traffic on one device with a BPF filter. libpcap runs in a
 * child process, so a device that disappears (which aborts the binding) ends
 * the capture with a `DBTAP_E_DEVICE_GONE` error instead of the agent.
 *
 * With the package's native binding (see {@link LiveCaptureOptions.binding})
 * frames carry the kernel's timestamps and wire lengths, arrive in batches,
 * and {@link LiveCaptureSource.stats} reports the kernel's own counters
 * (`pcap_stats`). Through `cap`, which hands over no timestamps, frames are
 * stamped with the wall clock (µs) when the capture process receives them,
 * and the kernel's counters are `undefined` (unknown).
 */
export class LiveCaptureSource extends EventEmitter<CaptureSourceEvents> implements CaptureSource {
  /** The device. */
  readonly name: string;
  /** LINKTYPE_* of the device, known once started. */
  linkType: number | undefined;
  private readonly o: Required<LiveCaptureOptions>;
  private readonly addonPath: string | undefined;
  private child: ChildProcess | undefined;
  private stopping = false;
  private workerStats = { seen: 0, drops: 0, truncated: 0, kernel: undefined as { ps_recv: number; ps_drop: number; ps_ifdrop: number } | undefined };
  private reported = { kernelDrops: 0, interfaceDrops: 0, sourceDrops: 0 };
  private readonly counters = { frames: 0, bytes: 0, truncated: 0 };
  private exited: Promise<void> | undefined;

  constructor(options: LiveCaptureOptions) {
    super();
    if (!options || typeof options.device !== 'string' || options.device.length === 0) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'a capture device name is required');
    }
    const snapLen = options.snapLen ?? 65535;
    if (!Number.isInteger(snapLen) || snapLen < 64 || snapLen > 65535) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `snap length must be an integer between 64 and 65535, got ${options.snapLen}`);
    }
    const bufferSize = options.bufferSize ?? 32 << 20;
    if (!Number.isInteger(bufferSize) || bufferSize < MIN_CAPTURE_BUFFER || bufferSize > MAX_CAPTURE_BUFFER) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `capture buffer size must be an integer from ${MIN_CAPTURE_BUFFER} to ${MAX_CAPTURE_BUFFER} bytes, got ${options.bufferSize}`);
    }
    const pollMs = options.pollMs ?? 40;
    if (!Number.isInteger(pollMs) || pollMs < 1 || pollMs > 1000) {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `capture poll interval must be an integer between 1 and 1000 ms, got ${options.pollMs}`);
    }
    const binding = options.binding ?? 'auto';
    if (binding !== 'auto' && binding !== 'native' && binding !== 'cap') {
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `capture binding must be "auto", "native" or "cap", got ${JSON.stringify(options.binding)}`);
    }
    this.addonPath = binding === 'cap' ? undefined : nativeCaptureBinding();
    if (binding === 'native' && this.addonPath === undefined) {
      throw new DbtapError(
        AgentErrorCodes.NO_CAPTURE_BINDING,
        'the native capture binding is not built (it needs libpcap\'s headers, e.g. libpcap-dev, when the package is installed: then run npm rebuild @dbtap/agent)',
      );
    }
    this.name = options.device;
    this.o = {
      binding,
      pollMs,
      device: options.device,
      filter: options.filter ?? '',
      snapLen,
      bufferSize,
      maxPendingBytes: options.maxPendingBytes ?? 64 << 20,
      drainMs: options.drainMs ?? 100,
    };
  }

  /** True when the kernel's own counters are read (the native binding is in use). */
  get kernelCounters(): boolean {
    return this.addonPath !== undefined;
  }

  /** Process id of the capture process (for CPU accounting), while running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Opens the device. Rejects with `DBTAP_E_UNKNOWN_DEVICE` (listing the
   * devices that exist), `DBTAP_E_INVALID_FILTER` (libpcap's message),
   * `DBTAP_E_PERMISSION` or `DBTAP_E_CAPTURE`.
   */
  async start(): Promise<void> {
    if (this.child) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'capture already started');
    const devices = listCaptureDevices();
    if (!devices.some((d) => d.name === this.o.device)) {
      throw new DbtapError(AgentErrorCodes.UNKNOWN_DEVICE, `capture device "${this.o.device}" does not exist; devices: ${devices.map((d) => d.name).join(', ') || '(none)'}`, {
        device: this.o.device,
        devices: devices.map((d) => d.name),
      });
    }
    const args = JSON.stringify({
      capPath: this.addonPath === undefined ? (loadCap(), requireCjs.resolve('cap')) : null,
      addonPath: this.addonPath ?? null,
      pollMs: this.o.pollMs,
      device: this.o.device,
      filter: this.o.filter,
      snapLen: this.o.snapLen,
      bufferSize: this.o.bufferSize,
      maxPendingBytes: this.o.maxPendingBytes,
      blockBytes: 256 << 10,
      statsMs: 1000,
      flushMs: 5,
      drainMs: this.o.drainMs,
    });
    const child = spawn(process.execPath, ['-e', CAPTURE_WORKER_SOURCE, args], { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    this.child = child;
    const stderr: string[] = [];
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      for (const line of s.split('\n')) if (line.trim()) (stderr.push(line), debug('capture process: %s', line));
      if (stderr.length > 50) stderr.splice(0, stderr.length - 50);
    });
    child.stdin!.on('error', () => {});
    const reader = new MessageReader(1 << 30);
    let settle: ((err?: DbtapError) => void) | undefined;
    const started = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        settle = undefined;
        if (err) reject(err);
        else resolve();
      };
    });
    (child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
      reader.push(chunk, (body) => this.onMessage(body, (e) => settle?.(e)));
    });
    this.exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        const wasStopping = this.stopping;
        this.child = undefined;
        debug('capture process exited: code %s signal %s', code, signal);
        if (settle) {
          settle(new DbtapError(AgentErrorCodes.CAPTURE, `capture process exited before opening ${this.o.device} (${signal ?? `code ${code}`}): ${stderr.join(' ')}`));
        } else if (!wasStopping) {
          const gone = !listCaptureDevices().some((d) => d.name === this.o.device);
          const err = gone
            ? new DbtapError(AgentErrorCodes.DEVICE_GONE, `capture device "${this.o.device}" disappeared while capturing`, { device: this.o.device })
            : new DbtapError(AgentErrorCodes.CAPTURE, `capture on "${this.o.device}" stopped unexpectedly (${signal ?? `exit code ${code}`})`, { device: this.o.device, signal, code });
          this.emit('error', err);
        }
        this.emit('end');
        resolve();
      });
    });
    child.on('error', (err) => settle?.(new DbtapError(AgentErrorCodes.CAPTURE, `capture process could not start: ${err.message}`, undefined, { cause: err })));
    await started;
  }

  private onMessage(body: Buffer, settle: (err?: DbtapError) => void): void {
    const kind = body[0];
    const payload = body.subarray(1);
    if (kind === 3) {
      this.emitRecords(payload);
      return;
    }
    let info: Record<string, unknown>;
    try {
      info = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    if (kind === 1) {
      this.linkType = info.linkType as number;
      debug('capturing on %s (%s) filter %j', this.o.device, info.linkName, this.o.filter);
      settle();
    } else if (kind === 2) {
      settle(this.classify(String(info.stage), String(info.message)));
    } else if (kind === 4) {
      this.workerStats = info as typeof this.workerStats;
      this.reportDrops();
    }
  }

  private classify(stage: string, message: string): DbtapError {
    const d = { device: this.o.device, filter: this.o.filter, libpcap: message };
    if (stage === 'filter') return new DbtapError(AgentErrorCodes.INVALID_FILTER, `invalid capture filter "${this.o.filter}": ${message}`, d);
    if (/permitted|permission|EPERM|EACCES/i.test(message)) {
      return new DbtapError(AgentErrorCodes.PERMISSION, `no permission to capture on "${this.o.device}" (${message}); ${PERMISSION_ADVICE}`, d);
    }
    if (/no such device/i.test(message)) {
      return new DbtapError(AgentErrorCodes.UNKNOWN_DEVICE, `capture device "${this.o.device}" does not exist (${message})`, d);
    }
    return new DbtapError(AgentErrorCodes.CAPTURE, `cannot capture on "${this.o.device}": ${message}`, d);
  }

  private emitRecords(records: Buffer): void {
    // One pass for the count and the counters; frames are only built when
    // someone listens for them (a transport client takes the records whole).
    const c = this.counters;
    let n = 0;
    let o = 0;
    while (o + RECORD_HEADER_BYTES <= records.length) {
      const orig = records.readUInt32LE(o + 8);
      const cap = records.readUInt32LE(o + 12);
      c.bytes += cap;
      if (orig > cap) c.truncated++;
      o += RECORD_HEADER_BYTES + cap;
      n++;
    }
    if (o !== records.length) {
      debug('bad block from the capture process (%d of %d bytes parsed)', o, records.length);
      return;
    }
    c.frames += n;
    if (this.listenerCount('records') > 0) this.emit('records', records, n);
    if (this.listenerCount('frame') === 0) return;
    const frames = decodeBatchFrames(records, n);
    if (frames instanceof DbtapError) return;
    for (let i = 0; i < frames.length; i++) this.emit('frame', frames[i]!);
  }

  // Emits `drops` when a drop counter went up since the last report.
  private reportDrops(): void {
    const s = this.stats();
    const r = this.reported;
    const now = { kernelDrops: s.kernelDrops ?? 0, interfaceDrops: s.interfaceDrops ?? 0, sourceDrops: s.sourceDrops };
    if (now.kernelDrops > r.kernelDrops || now.interfaceDrops > r.interfaceDrops || now.sourceDrops > r.sourceDrops) {
      const delta = { kernelDrops: now.kernelDrops - r.kernelDrops, interfaceDrops: now.interfaceDrops - r.interfaceDrops, sourceDrops: now.sourceDrops - r.sourceDrops };
      this.reported = now;
      this.emit('drops', delta, s);
    }
  }

  /** Stops the capture after frames still in the kernel ring were delivered. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.stopping) return this.exited;
    this.stopping = true;
    child.stdin!.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }

  /**
   * A snapshot of the counters. The kernel's (`pcap_stats`, refreshed every
   * second and when the capture stops) are `undefined` through `cap`, which
   * does not expose them.
   */
  stats(): CaptureSourceStats {
    const k = this.workerStats.kernel;
    return {
      frames: this.counters.frames,
      kernelReceived: k?.ps_recv,
      bytes: this.counters.bytes,
      truncated: this.counters.truncated,
      kernelDrops: k?.ps_drop,
      interfaceDrops: k?.ps_ifdrop,
      sourceDrops: this.workerStats.drops,
    };
  }
}

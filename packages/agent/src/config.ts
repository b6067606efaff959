// Agent configuration: the classic key=value agent.conf (+ queue.conf) of
// existing deployments, a richer JSON/YAML form, and environment overrides.
// Problems accumulate as diagnostics with file:line and are reported together.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { DEFAULT_PORT_IPV4, DEFAULT_PORT_IPV6 } from './transport/protocol.js';
import type { OverflowPolicy } from './transport/client.js';

/** Where frames come from. */
export type AgentSourceConfig =
  | {
      /** Live capture on a device. */
      kind: 'live';
      /** Device name (`receive_device`). */
      device: string;
      /** BPF filter (`packet_filter`). */
      filter: string;
      /** Snap length in bytes. */
      snapLen: number;
      /**
       * Kernel capture buffer (the packet ring) in bytes (`buffer_size`,
       * `capture.bufferSize`): 64 KiB to 2 GiB - 1, default 32 MiB. A ring
       * that overflows drops packets; the kernel counts them (see
       * {@link CaptureSourceStats.kernelDrops}).
       */
      bufferSize: number;
      /**
       * How often the ring is read, in ms (`poll_ms`, `capture.pollMs`):
       * 1..1000, default 40. Frames wait in the ring up to about twice this.
       */
      pollMs: number;
      /**
       * libpcap binding (`capture_binding`, `capture.binding`): `auto`
       * (default: the native one when built), `native` or `cap`.
       */
      binding: 'auto' | 'native' | 'cap';
    }
  | {
      /** Replay of a capture file. */
      kind: 'replay';
      /** The pcap/pcapng file. */
      path: string;
      /** `fast` or `recorded`. */
      pace: 'fast' | 'recorded';
      /** Speed factor for `recorded`. */
      speed: number;
    };

/** TLS settings of the agent; certificate fields are file paths. */
export interface AgentTlsConfig {
  /** CA bundle that signed the server certificate (default: system CAs). */
  ca?: string;
  /** Client certificate, when the server requires one. */
  cert?: string;
  /** Client private key. */
  key?: string;
  /** Name to verify the server certificate against (default: the host). */
  servername?: string;
  /** Verify the server certificate; default true. */
  rejectUnauthorized?: boolean;
}

/** A complete, validated agent configuration. */
export interface AgentConfig {
  /** Agent id reported to the server; undefined means the host name. */
  agentId: string | undefined;
  /** The frame source. */
  source: AgentSourceConfig;
  /** The audit server. */
  server: {
    /** Host or address (`dst_ip`). */
    host: string;
    /** Port; 9999 (IPv4) / 9998 (IPv6) by default. */
    port: number;
    /** Shared token. */
    token: string | undefined;
    /** TLS, when enabled. */
    tls: AgentTlsConfig | undefined;
    /** Interface whose address outgoing connections use (`send_device`). */
    sendDevice: string | undefined;
  };
  /** Batching. */
  batch: { maxPackets: number; maxBytes: number; maxDelayMs: number };
  /** The bounded queue (`CACHE_NUM_MAX`, `CACHE_SIZE`). */
  queue: { maxPackets: number; maxBytes: number; overflow: OverflowPolicy };
  /** Reconnect backoff. */
  reconnect: { minMs: number; maxMs: number; jitter: number };
  /** Heartbeat interval and dead interval in ms. */
  heartbeat: { intervalMs: number; deadAfterMs: number };
  /** Log file (in addition to `debug` output); undefined: none. */
  logFile: string | undefined;
  /** Unix socket where `dbtap-agent status` reads live counters. */
  statusSocket: string;
}

/** What {@link loadAgentConfig} returns. */
export interface LoadedAgentConfig {
  /** The configuration. */
  config: AgentConfig;
  /** Files read, in order. */
  files: string[];
  /** Non-fatal findings (unknown keys...), as `file:line: text`. */
  warnings: string[];
}

/** Smallest kernel capture buffer accepted, in bytes (64 KiB). */
export const MIN_CAPTURE_BUFFER = 1 << 16;
/** Largest kernel capture buffer accepted, in bytes (libpcap takes an `int`). */
export const MAX_CAPTURE_BUFFER = 2 ** 31 - 1;

/** Default status socket path. */
export function defaultStatusSocket(): string {
  return process.getuid?.() === 0 ? '/run/dbtap-agent.sock' : join(tmpdir(), 'dbtap-agent.sock');
}

/** Defaults of every setting that has one. */
export function defaultAgentConfig(): AgentConfig {
  return {
    agentId: undefined,
    source: { kind: 'live', device: '', filter: '', snapLen: 65535, bufferSize: 32 << 20, pollMs: 40, binding: 'auto' },
    server: { host: '', port: 0, token: undefined, tls: undefined, sendDevice: undefined },
    batch: { maxPackets: 1000, maxBytes: 1 << 20, maxDelayMs: 50 },
    queue: { maxPackets: 200_000, maxBytes: 256 << 20, overflow: 'drop-newest' },
    reconnect: { minMs: 250, maxMs: 30_000, jitter: 0.5 },
    heartbeat: { intervalMs: 5000, deadAfterMs: 15_000 },
    logFile: undefined,
    statusSocket: defaultStatusSocket(),
  };
}

const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 };

/**
 * Parses a byte size: a number with an optional unit (`512k`, `64MiB`, `1G`).
 * A bare number means `bareUnit` bytes each (1 for JSON/YAML; 1 MiB for the
 * classic `CACHE_SIZE`). Returns undefined when it is not a size.
 */
export function parseByteSize(v: unknown, bareUnit = 1): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? Math.floor(v * bareUnit) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const mult = unit === '' ? bareUnit : UNITS[unit];
  if (mult === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * mult);
  return n > 0 ? n : undefined;
}

// Collects problems with their location.
class Diagnostics {
  errors: string[] = [];
  warnings: string[] = [];
  error(where: string, msg: string): void {
    this.errors.push(`${where}: ${msg}`);
  }
  warn(where: string, msg: string): void {
    this.warnings.push(`${where}: ${msg}`);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new DbtapError(ErrorCodes.CONFIG, `cannot read configuration file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path }, { cause: err });
  }
}

/** Parses `key=value` lines (`#`/`;` comments, optional quotes) into entries with line numbers. */
export function parseKeyValue(text: string): Array<{ key: string; value: string; line: number }> {
  const out: Array<{ key: string; value: string; line: number }> = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#') || raw.startsWith(';')) continue;
    const eq = raw.indexOf('=');
    if (eq <= 0) {
      out.push({ key: '', value: raw, line: i + 1 });
      continue;
    }
    let value = raw.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0]) value = value.slice(1, -1);
    out.push({ key: raw.slice(0, eq).trim(), value, line: i + 1 });
  }
  return out;
}

function int(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Splits `host`, `host:port`, `[v6]:port` or a bare IPv6 address. */
export function parseHostPort(s: string): { host: string; port: number | undefined } | undefined {
  const t = s.trim();
  if (t === '') return undefined;
  if (isIPv6(t)) return { host: t, port: undefined };
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (v6) return isIPv6(v6[1]!) ? { host: v6[1]!, port: v6[2] ? Number(v6[2]) : undefined } : undefined;
  const m = /^([^:\s]+)(?::(\d+))?$/.exec(t);
  if (!m) return undefined;
  const port = m[2] ? Number(m[2]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: m[1]!, port };
}

// --- classic ---------------------------------------------------------------

function applyClassic(cfg: AgentConfig, path: string, d: Diagnostics, files: string[]): void {
  const text = readText(path);
  files.push(path);
  let queueConf: string | undefined;
  const tls: AgentTlsConfig = {};
  for (const { key, value, line } of parseKeyValue(text)) {
    const at = `${path}:${line}`;
    const live = cfg.source.kind === 'live' ? cfg.source : undefined;
    switch (key.toLowerCase()) {
      case '':
        d.error(at, `expected key=value, got ${JSON.stringify(value.slice(0, 40))}`);
        break;
      case 'receive_device':
        if (live) live.device = value;
        break;
      case 'packet_filter':
        if (live) live.filter = value;
        break;
      case 'snap_len':
      case 'poll_ms':
      case 'buffer_size': {
        const k = key.toLowerCase();
        const n = k === 'buffer_size' ? parseByteSize(value) : int(value);
        if (n === undefined) d.error(at, `${key} must be a positive number, got ${JSON.stringify(value)}`);
        else if (live) live[k === 'snap_len' ? 'snapLen' : k === 'poll_ms' ? 'pollMs' : 'bufferSize'] = n;
        break;
      }
      case 'capture_binding':
        if (value !== 'auto' && value !== 'native' && value !== 'cap') d.error(at, `capture_binding must be auto, native or cap, got ${JSON.stringify(value)}`);
        else if (live) live.binding = value;
        break;
      case 'replay_file':
        cfg.source = { kind: 'replay', path: value, pace: 'fast', speed: 1 };
        break;
      case 'send_device':
        cfg.server.sendDevice = value || undefined;
        break;
      case 'dst_ip': {
        const hp = parseHostPort(value);
        if (!hp) d.error(at, `dst_ip must be an address or host[:port], got ${JSON.stringify(value)}`);
        else {
          cfg.server.host = hp.host;
          if (hp.port) cfg.server.port = hp.port;
        }
        break;
      }
      case 'dst_port': {
        const n = int(value);
        if (n === undefined || n > 65535) d.error(at, `dst_port must be a port number, got ${JSON.stringify(value)}`);
        else cfg.server.port = n;
        break;
      }
      case 'token':
        cfg.server.token = value || undefined;
        break;
      case 'agent_id':
        cfg.agentId = value || undefined;
        break;
      case 'log_file':
        cfg.logFile = value || undefined;
        break;
      case 'status_socket':
        cfg.statusSocket = value;
        break;
      case 'queue_conf':
        queueConf = resolve(dirname(path), value);
        break;
      case 'tls_ca':
        tls.ca = resolve(dirname(path), value);
        break;
      case 'tls_cert':
        tls.cert = resolve(dirname(path), value);
        break;
      case 'tls_key':
        tls.key = resolve(dirname(path), value);
        break;
      case 'tls':
        if (/^(1|yes|true|on)$/i.test(value)) cfg.server.tls ??= {};
        break;
      default:
        d.warn(at, `unknown key ${JSON.stringify(key)} ignored`);
    }
  }
  if (Object.keys(tls).length > 0) cfg.server.tls = { ...(cfg.server.tls ?? {}), ...tls };
  const q = queueConf ?? join(dirname(path), 'queue.conf');
  if (queueConf !== undefined || existsSync(q)) applyQueueConf(cfg, q, d, files);
}

function applyQueueConf(cfg: AgentConfig, path: string, d: Diagnostics, files: string[]): void {
  const text = readText(path);
  files.push(path);
  for (const { key, value, line } of parseKeyValue(text)) {
    const at = `${path}:${line}`;
    switch (key.toUpperCase()) {
      case 'CACHE_NUM_MAX': {
        const n = int(value);
        if (n === undefined) d.error(at, `CACHE_NUM_MAX must be a positive packet count, got ${JSON.stringify(value)}`);
        else cfg.queue.maxPackets = n;
        break;
      }
      case 'CACHE_SIZE': {
        // A bare number is megabytes, as in the classic file; units are accepted too.
        const n = parseByteSize(value, 1 << 20);
        if (n === undefined) d.error(at, `CACHE_SIZE must be a size (MB, or with a unit such as 512M), got ${JSON.stringify(value)}`);
        else cfg.queue.maxBytes = n;
        break;
      }
      case 'OVERFLOW_POLICY':
      case 'OVERFLOW':
        if (value !== 'drop-newest' && value !== 'drop-oldest') d.error(at, `overflow policy must be drop-newest or drop-oldest, got ${JSON.stringify(value)}`);
        else cfg.queue.overflow = value;
        break;
      case '':
        d.error(at, `expected KEY=value, got ${JSON.stringify(value.slice(0, 40))}`);
        break;
      default:
        d.warn(at, `unknown key ${JSON.stringify(key)} ignored`);
    }
  }
}

// --- JSON / YAML --------------------------------------------------------------

type Where = (path: Array<string | number>) => string;

function applyStructured(cfg: AgentConfig, path: string, d: Diagnostics, files: string[]): void {
  const text = readText(path);
  files.push(path);
  let data: unknown;
  let where: Where = (p) => `${path}: ${p.join('.')}`;
  if (extname(path).toLowerCase() === '.json') {
    try {
      data = JSON.parse(text);
    } catch (err) {
      d.error(path, `not valid JSON: ${(err as Error).message}`);
      return;
    }
  } else {
    const lc = new LineCounter();
    const doc: Document = parseDocument(text, { lineCounter: lc, prettyErrors: false });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lc.linePos(e.pos[0]);
        d.error(`${path}:${pos.line}:${pos.col}`, e.message.split('\n')[0]!);
      }
      return;
    }
    data = doc.toJS();
    where = (p) => {
      const node = doc.getIn(p, true) as { range?: [number, number, number] } | undefined;
      if (node?.range) {
        const pos = lc.linePos(node.range[0]);
        return `${path}:${pos.line}:${pos.col}: ${p.join('.')}`;
      }
      return `${path}: ${p.join('.')}`;
    };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    d.error(path, 'the configuration must be a map of settings');
    return;
  }
  applyObject(cfg, data as Record<string, unknown>, d, where, dirname(path));
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function applyObject(cfg: AgentConfig, o: Record<string, unknown>, d: Diagnostics, where: Where, base: string): void {
  const known = new Set(['agentId', 'capture', 'replay', 'server', 'batch', 'queue', 'reconnect', 'heartbeat', 'logFile', 'statusSocket']);
  for (const k of Object.keys(o)) if (!known.has(k)) d.warn(where([k]), `unknown setting ${JSON.stringify(k)} ignored`);
  const str = (p: Array<string | number>, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      d.error(where(p), `must be a string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const num = (p: Array<string | number>, v: unknown, parse: (x: unknown) => number | undefined = int): number | undefined => {
    if (v === undefined) return undefined;
    const n = parse(v);
    if (n === undefined) d.error(where(p), `must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const section = (name: string): Record<string, unknown> | undefined => {
    const v = o[name];
    if (v === undefined) return undefined;
    const s = obj(v);
    if (!s) d.error(where([name]), 'must be a map');
    return s;
  };
  if (o.agentId !== undefined) cfg.agentId = str(['agentId'], o.agentId);
  if (o.logFile !== undefined) cfg.logFile = str(['logFile'], o.logFile);
  if (o.statusSocket !== undefined) cfg.statusSocket = str(['statusSocket'], o.statusSocket) ?? cfg.statusSocket;
  const cap = section('capture');
  if (cap) {
    const live = cfg.source.kind === 'live' ? cfg.source : (cfg.source = defaultAgentConfig().source as Extract<AgentSourceConfig, { kind: 'live' }>);
    if (live.kind === 'live') {
      live.device = str(['capture', 'device'], cap.device) ?? live.device;
      live.filter = str(['capture', 'filter'], cap.filter) ?? live.filter;
      live.snapLen = num(['capture', 'snapLen'], cap.snapLen) ?? live.snapLen;
      live.bufferSize = num(['capture', 'bufferSize'], cap.bufferSize, (x) => parseByteSize(x)) ?? live.bufferSize;
      live.pollMs = num(['capture', 'pollMs'], cap.pollMs) ?? live.pollMs;
      const binding = str(['capture', 'binding'], cap.binding);
      if (binding === 'auto' || binding === 'native' || binding === 'cap') live.binding = binding;
      else if (binding !== undefined) d.error(where(['capture', 'binding']), `must be auto, native or cap, got ${JSON.stringify(binding)}`);
    }
  }
  const rep = section('replay');
  if (rep) {
    const p = str(['replay', 'path'], rep.path);
    const pace = rep.pace ?? 'fast';
    if (pace !== 'fast' && pace !== 'recorded') d.error(where(['replay', 'pace']), `must be "fast" or "recorded", got ${JSON.stringify(pace)}`);
    if (p === undefined) d.error(where(['replay']), 'needs a path');
    else cfg.source = { kind: 'replay', path: resolve(base, p), pace: pace === 'recorded' ? 'recorded' : 'fast', speed: num(['replay', 'speed'], rep.speed, (x) => (typeof x === 'number' && x > 0 ? x : undefined)) ?? 1 };
  }
  const srv = section('server');
  if (srv) {
    const host = str(['server', 'host'], srv.host);
    if (host !== undefined) {
      const hp = parseHostPort(host);
      if (!hp) d.error(where(['server', 'host']), `not a host or address: ${JSON.stringify(host)}`);
      else {
        cfg.server.host = hp.host;
        if (hp.port) cfg.server.port = hp.port;
      }
    }
    const port = num(['server', 'port'], srv.port);
    if (port !== undefined) {
      if (port > 65535) d.error(where(['server', 'port']), `not a port number: ${port}`);
      else cfg.server.port = port;
    }
    if (srv.token !== undefined) cfg.server.token = str(['server', 'token'], srv.token);
    if (srv.sendDevice !== undefined) cfg.server.sendDevice = str(['server', 'sendDevice'], srv.sendDevice);
    if (srv.tls !== undefined && srv.tls !== false) {
      const t = srv.tls === true ? {} : obj(srv.tls);
      if (!t) d.error(where(['server', 'tls']), 'must be true or a map (ca, cert, key, servername, rejectUnauthorized)');
      else {
        const tls: AgentTlsConfig = {};
        for (const k of ['ca', 'cert', 'key'] as const) {
          const v = str(['server', 'tls', k], t[k]);
          if (v !== undefined) tls[k] = resolve(base, v);
        }
        const sn = str(['server', 'tls', 'servername'], t.servername);
        if (sn !== undefined) tls.servername = sn;
        if (t.rejectUnauthorized !== undefined) {
          if (typeof t.rejectUnauthorized !== 'boolean') d.error(where(['server', 'tls', 'rejectUnauthorized']), 'must be true or false');
          else tls.rejectUnauthorized = t.rejectUnauthorized;
        }
        cfg.server.tls = tls;
      }
    }
  }
  const batch = section('batch');
  if (batch) {
    cfg.batch.maxPackets = num(['batch', 'maxPackets'], batch.maxPackets) ?? cfg.batch.maxPackets;
    cfg.batch.maxBytes = num(['batch', 'maxBytes'], batch.maxBytes, (x) => parseByteSize(x)) ?? cfg.batch.maxBytes;
    cfg.batch.maxDelayMs = num(['batch', 'maxDelayMs'], batch.maxDelayMs) ?? cfg.batch.maxDelayMs;
  }
  const queue = section('queue');
  if (queue) {
    cfg.queue.maxPackets = num(['queue', 'maxPackets'], queue.maxPackets) ?? cfg.queue.maxPackets;
    cfg.queue.maxBytes = num(['queue', 'maxBytes'], queue.maxBytes, (x) => parseByteSize(x)) ?? cfg.queue.maxBytes;
    if (queue.overflow !== undefined) {
      if (queue.overflow !== 'drop-newest' && queue.overflow !== 'drop-oldest') d.error(where(['queue', 'overflow']), `must be drop-newest or drop-oldest, got ${JSON.stringify(queue.overflow)}`);
      else cfg.queue.overflow = queue.overflow;
    }
  }
  const rc = section('reconnect');
  if (rc) {
    cfg.reconnect.minMs = num(['reconnect', 'minMs'], rc.minMs) ?? cfg.reconnect.minMs;
    cfg.reconnect.maxMs = num(['reconnect', 'maxMs'], rc.maxMs) ?? cfg.reconnect.maxMs;
    if (rc.jitter !== undefined) {
      if (typeof rc.jitter !== 'number' || rc.jitter < 0 || rc.jitter > 1) d.error(where(['reconnect', 'jitter']), 'must be a number from 0 to 1');
      else cfg.reconnect.jitter = rc.jitter;
    }
  }
  const hb = section('heartbeat');
  if (hb) {
    cfg.heartbeat.intervalMs = num(['heartbeat', 'intervalMs'], hb.intervalMs) ?? cfg.heartbeat.intervalMs;
    cfg.heartbeat.deadAfterMs = num(['heartbeat', 'deadAfterMs'], hb.deadAfterMs) ?? cfg.heartbeat.intervalMs * 3;
  }
}

// --- environment ----------------------------------------------------------------

/** Environment variables that override the file, and what they set. */
export const AGENT_ENV_OVERRIDES = {
  DBTAP_AGENT_DEVICE: 'capture device',
  DBTAP_AGENT_FILTER: 'BPF filter',
  DBTAP_AGENT_SERVER: 'server host[:port]',
  DBTAP_AGENT_TOKEN: 'shared token',
  DBTAP_AGENT_ID: 'agent id',
  DBTAP_AGENT_QUEUE_PACKETS: 'queue bound in packets',
  DBTAP_AGENT_QUEUE_BYTES: 'queue bound in bytes (units accepted)',
  DBTAP_AGENT_OVERFLOW: 'overflow policy',
  DBTAP_AGENT_LOG_FILE: 'log file',
  DBTAP_AGENT_STATUS_SOCKET: 'status socket path',
} as const;

function applyEnv(cfg: AgentConfig, env: NodeJS.ProcessEnv, d: Diagnostics): void {
  const e = (k: keyof typeof AGENT_ENV_OVERRIDES) => {
    const v = env[k];
    return v === undefined || v === '' ? undefined : v;
  };
  const live = cfg.source.kind === 'live' ? cfg.source : undefined;
  const dev = e('DBTAP_AGENT_DEVICE');
  if (dev !== undefined) {
    if (live) live.device = dev;
    else cfg.source = { ...(defaultAgentConfig().source as Extract<AgentSourceConfig, { kind: 'live' }>), device: dev };
  }
  const filter = e('DBTAP_AGENT_FILTER');
  if (filter !== undefined && cfg.source.kind === 'live') cfg.source.filter = filter;
  const server = e('DBTAP_AGENT_SERVER');
  if (server !== undefined) {
    const hp = parseHostPort(server);
    if (!hp) d.error('DBTAP_AGENT_SERVER', `not host[:port]: ${JSON.stringify(server)}`);
    else {
      cfg.server.host = hp.host;
      if (hp.port) cfg.server.port = hp.port;
    }
  }
  const token = e('DBTAP_AGENT_TOKEN');
  if (token !== undefined) cfg.server.token = token;
  const id = e('DBTAP_AGENT_ID');
  if (id !== undefined) cfg.agentId = id;
  const qp = e('DBTAP_AGENT_QUEUE_PACKETS');
  if (qp !== undefined) {
    const n = int(qp);
    if (n === undefined) d.error('DBTAP_AGENT_QUEUE_PACKETS', `not a positive count: ${JSON.stringify(qp)}`);
    else cfg.queue.maxPackets = n;
  }
  const qb = e('DBTAP_AGENT_QUEUE_BYTES');
  if (qb !== undefined) {
    const n = parseByteSize(qb);
    if (n === undefined) d.error('DBTAP_AGENT_QUEUE_BYTES', `not a size: ${JSON.stringify(qb)}`);
    else cfg.queue.maxBytes = n;
  }
  const ov = e('DBTAP_AGENT_OVERFLOW');
  if (ov !== undefined) {
    if (ov !== 'drop-newest' && ov !== 'drop-oldest') d.error('DBTAP_AGENT_OVERFLOW', `must be drop-newest or drop-oldest, got ${JSON.stringify(ov)}`);
    else cfg.queue.overflow = ov;
  }
  const lf = e('DBTAP_AGENT_LOG_FILE');
  if (lf !== undefined) cfg.logFile = lf;
  const ss = e('DBTAP_AGENT_STATUS_SOCKET');
  if (ss !== undefined) cfg.statusSocket = ss;
}

/** Shared tokens shorter than this are refused (agent and server configuration): a short secret can be guessed over the network. */
export const MIN_AGENT_TOKEN_LENGTH = 16;

/**
 * Loads an agent configuration. `.json`, `.yaml` and `.yml` files use the
 * structured form; anything else is read as the classic key=value
 * `agent.conf` (`receive_device`, `send_device`, `packet_filter`, `dst_ip`...),
 * together with the `queue.conf` beside it (`CACHE_NUM_MAX`, `CACHE_SIZE`)
 * when present. Environment variables ({@link AGENT_ENV_OVERRIDES}) win over
 * files. All problems are reported at once in one `DBTAP_E_CONFIG` error
 * whose `details.diagnostics` lists them as `file:line: text`.
 */
export function loadAgentConfig(path: string | undefined, options: { env?: NodeJS.ProcessEnv } = {}): LoadedAgentConfig {
  const cfg = defaultAgentConfig();
  const d = new Diagnostics();
  const files: string[] = [];
  if (path !== undefined) {
    const ext = extname(path).toLowerCase();
    if (ext === '.json' || ext === '.yaml' || ext === '.yml') applyStructured(cfg, path, d, files);
    else applyClassic(cfg, path, d, files);
  }
  applyEnv(cfg, options.env ?? process.env, d);
  const origin = files[0] ?? 'environment';
  if (cfg.source.kind === 'live' && cfg.source.device === '') d.error(origin, 'no capture device (receive_device, capture.device or DBTAP_AGENT_DEVICE)');
  if (cfg.server.host === '') d.error(origin, 'no server address (dst_ip, server.host or DBTAP_AGENT_SERVER)');
  if (cfg.server.port === 0) cfg.server.port = isIPv6(cfg.server.host) ? DEFAULT_PORT_IPV6 : DEFAULT_PORT_IPV4;
  if (cfg.source.kind === 'live' && (cfg.source.snapLen < 64 || cfg.source.snapLen > 65535)) d.error(origin, `snap length must be 64..65535, got ${cfg.source.snapLen}`);
  if (cfg.source.kind === 'live' && (cfg.source.bufferSize < MIN_CAPTURE_BUFFER || cfg.source.bufferSize > MAX_CAPTURE_BUFFER)) {
    d.error(origin, `capture buffer size must be 64KiB..2GiB-1 (${MIN_CAPTURE_BUFFER}..${MAX_CAPTURE_BUFFER} bytes), got ${cfg.source.bufferSize}`);
  }
  if (cfg.source.kind === 'live' && (cfg.source.pollMs < 1 || cfg.source.pollMs > 1000)) d.error(origin, `capture poll interval must be 1..1000 ms, got ${cfg.source.pollMs}`);
  if (cfg.server.token !== undefined && cfg.server.token.length < MIN_AGENT_TOKEN_LENGTH) {
    const fromEnv = (options.env ?? process.env).DBTAP_AGENT_TOKEN !== undefined && (options.env ?? process.env).DBTAP_AGENT_TOKEN !== '';
    d.error(fromEnv ? 'DBTAP_AGENT_TOKEN' : origin, `the token must be at least ${MIN_AGENT_TOKEN_LENGTH} characters (the server refuses shorter ones too)`);
  }
  if (cfg.reconnect.minMs > cfg.reconnect.maxMs) d.error(origin, `reconnect.minMs (${cfg.reconnect.minMs}) exceeds reconnect.maxMs (${cfg.reconnect.maxMs})`);
  if (d.errors.length > 0) {
    throw new DbtapError(ErrorCodes.CONFIG, `invalid agent configuration:\n  ${d.errors.join('\n  ')}`, { diagnostics: d.errors, files });
  }
  return { config: cfg, files, warnings: d.warnings };
}

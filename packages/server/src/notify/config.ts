import { resolve as resolvePath } from 'node:path';
import { RISK_LEVELS, type RiskLevel } from '@dbtap/core';
import { checkKeys, configFail, type ConfigFail } from '../validate.js';

/** How a syslog channel renders a notification. */
export type SyslogFormat =
  /** RFC 5424 with the record fields as structured data. */
  | 'rfc5424'
  /** ArcSight Common Event Format (CEF:0) carried as the syslog MSG. */
  | 'cef';

/** The network transport of a syslog channel. */
export type SyslogTransportKind =
  /** One message per datagram (RFC 5426). */
  | 'udp'
  /** A TCP stream (RFC 6587). */
  | 'tcp'
  /** TLS over TCP (RFC 5425). */
  | 'tls';

/** Exponential backoff between attempts: `initialMs * 2^n`, at most `maxMs`, less a random jitter. */
export interface BackoffConfig {
  /** Delay before the first retry, in milliseconds. */
  initialMs: number;
  /** Longest delay, in milliseconds. */
  maxMs: number;
  /**
   * Fraction (0 to 1) of each delay that is random: the wait is
   * `delay * (1 - jitter * random())`. 1 is "full jitter", 0 none.
   */
  jitter: number;
}

/** A token bucket: `perSecond` tokens a second, at most `burst` saved up. */
export interface RateLimitConfig {
  /** Sustained notifications per second (may be fractional: 0.5 is one every 2 s). */
  perSecond: number;
  /** Largest burst delivered at once after a quiet period (at least 1). */
  burst: number;
}

/**
 * TLS client settings. `ca`, `cert` and `key` hold either PEM text or the
 * path of a PEM file (read when the channel is created).
 */
export interface TlsClientConfig {
  /** CA certificate(s) that sign the receiver's certificate; the system CAs when absent. */
  ca?: string;
  /** Client certificate, for receivers that require one. */
  cert?: string;
  /** Private key of the client certificate. */
  key?: string;
  /** Name to verify the receiver's certificate against (and send as SNI); default the host. */
  servername?: string;
  /** Verify the receiver's certificate. Default true; false is for tests only. */
  rejectUnauthorized: boolean;
}

/** Settings every channel has. */
export interface ChannelCommonConfig {
  /** Unique channel name (labels in `/metrics`, spool file names). Default `<type>-<index>`. */
  name: string;
  /** Lowest risk level delivered. Default `medium`. A record without a risk level counts as `none`. */
  minRisk: RiskLevel;
  /** Deliver ordinary records (not only alerts) whose risk is at least `minRisk`. Default false. */
  records: boolean;
  /** Token-bucket limit; absent means no limit. */
  rateLimit?: RateLimitConfig;
  /** Most notifications waiting for delivery; beyond it new ones are dropped and counted. Default 10000. */
  queueSize: number;
}

/** A syslog receiver. */
export interface SyslogChannelConfig extends ChannelCommonConfig {
  /** Channel type. */
  type: 'syslog';
  /** Message format. Default `rfc5424`. */
  format: SyslogFormat;
  /** Transport. Default `udp`. */
  transport: SyslogTransportKind;
  /** Receiver host name or address. */
  host: string;
  /** Receiver port. Default 514 (UDP, TCP) or 6514 (TLS). */
  port: number;
  /** Syslog facility code (0-23). Default 16 (`local0`). */
  facility: number;
  /** HOSTNAME field; default this machine's host name. */
  hostname?: string;
  /** APP-NAME field. Default `dbtap`. */
  appName: string;
  /** SD-ID of the structured-data element (`name@PEN`). Default `dbtap@32473`. */
  sdId: string;
  /** Stream framing (TCP, TLS): RFC 6587 octet counting (default) or a line feed after each message. */
  framing: 'octet-counting' | 'lf';
  /** The syslog header in front of a CEF message: RFC 5424 (default) or the BSD (RFC 3164) form. */
  cefHeader: 'rfc5424' | 'rfc3164';
  /** Largest message in bytes; long fields are shortened to fit. Default 2048 (UDP) or 8192 (TCP, TLS). */
  maxMessageBytes: number;
  /** TLS settings (transport `tls` only). */
  tls?: TlsClientConfig;
  /** Wait between reconnection attempts (TCP, TLS). Default 500 ms to 30 s, jitter 0.5. */
  reconnect: BackoffConfig;
  /** Give up a connection attempt after this long. Default 10000 ms. */
  connectTimeoutMs: number;
}

/** An HTTP(S) endpoint that receives JSON POSTs. */
export interface WebhookChannelConfig extends ChannelCommonConfig {
  /** Channel type. */
  type: 'webhook';
  /** `http://` or `https://` URL. */
  url: string;
  /** Extra request headers (e.g. `Authorization`). */
  headers: Record<string, string>;
  /** Time allowed for one request, connection included. Default 10000 ms. */
  timeoutMs: number;
  /** Retries after the first attempt before a notification counts as failed. Default 5. */
  retries: number;
  /** Wait between attempts. Default 1 s to 60 s, jitter 0.5. */
  backoff: BackoffConfig;
  /** Longest `Retry-After` honoured; longer values are cut to it. Default 300000 ms. */
  maxRetryAfterMs: number;
  /** Notifications per request: 1 (default) posts one JSON object, more posts a JSON array. */
  batchSize: number;
  /** TLS settings for `https://` URLs. */
  tls?: TlsClientConfig;
}

/** NDJSON lines appended to a local file. */
export interface FileChannelConfig extends ChannelCommonConfig {
  /** Channel type. */
  type: 'file';
  /** File path (its directory is created when missing). */
  path: string;
  /** Rotate before the file would grow past this many bytes. Default 100 MiB. */
  maxBytes: number;
  /** Rotated files kept (`path.1` newest ... `path.N`). Default 5. */
  keep: number;
  /** fsync after each batch. Default false. */
  fsync: boolean;
}

/** One notification channel, as {@link parseNotificationConfig} returns it. */
export type ChannelConfig = SyslogChannelConfig | WebhookChannelConfig | FileChannelConfig;

/** Syslog facility names (RFC 5424 table 1, with the usual BSD names). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  security: 13,
  console: 14,
  clock: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** Options of {@link parseNotificationConfig}. */
export interface NotificationConfigOptions {
  /** The key path of the document inside its source, used in error messages. Default `notifications`. */
  path?: string;
  /**
   * Directory that relative file names (`path` of file channels, TLS
   * `ca`/`cert`/`key` files) are resolved against, usually the directory of
   * the configuration file. Without it they stay relative to the working
   * directory.
   */
  baseDir?: string;
}

type Obj = Record<string, unknown>;

class Checker {
  readonly fail: ConfigFail;

  constructor(
    readonly source: string,
    readonly baseDir: string | undefined,
  ) {
    this.fail = configFail(source);
  }

  /** A file name, resolved against the base directory when relative. */
  file(path: string, v: unknown): string {
    const s = this.str(path, v);
    return this.baseDir === undefined ? s : resolvePath(this.baseDir, s);
  }


  mapping(path: string, v: unknown, known: readonly string[]): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'a mapping');
    checkKeys(v, known, path, this.fail);
    return v as Obj;
  }

  str(path: string, v: unknown): string {
    if (typeof v !== 'string' || v === '') this.fail(path, 'a non-empty string');
    return v;
  }

  bool(path: string, v: unknown, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(path, 'true or false');
    return v;
  }

  int(path: string, v: unknown, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) this.fail(path, `an integer from ${min} to ${max}`);
    return v as number;
  }

  num(path: string, v: unknown, dflt: number, min: number, max: number, minExclusive = false): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (minExclusive && v === min)) {
      this.fail(path, `a number ${minExclusive ? 'above' : 'from'} ${min}${max === Infinity ? '' : ` to ${max}`}`);
    }
    return v;
  }

  oneOf<T extends string>(path: string, v: unknown, options: readonly T[], dflt: T): T {
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) this.fail(path, `one of ${options.join(', ')}`);
    return v as T;
  }

  /** A byte size: a number, or a string such as `512k`, `10MB`, `1GiB` (powers of 1024). */
  size(path: string, v: unknown, dflt: number): number {
    if (v === undefined) return dflt;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return v;
    if (typeof v === 'string') {
      const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i.exec(v);
      if (m) {
        const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
        const n = Math.floor(Number(m[1]) * mult);
        if (n >= 1) return n;
      }
    }
    return this.fail(path, 'a size in bytes (a positive integer, or e.g. "512k", "10MiB", "1G")');
  }

  backoff(path: string, v: unknown, dflt: BackoffConfig): BackoffConfig {
    if (v === undefined) return { ...dflt };
    const o = this.mapping(path, v, ['initialMs', 'maxMs', 'jitter']);
    const initialMs = this.int(`${path}.initialMs`, o.initialMs, dflt.initialMs, 1);
    const maxMs = this.int(`${path}.maxMs`, o.maxMs, Math.max(dflt.maxMs, initialMs), 1);
    if (maxMs < initialMs) this.fail(`${path}.maxMs`, `at least initialMs (${initialMs})`);
    return { initialMs, maxMs, jitter: this.num(`${path}.jitter`, o.jitter, dflt.jitter, 0, 1) };
  }

  tls(path: string, v: unknown): TlsClientConfig {
    const o = this.mapping(path, v, ['ca', 'cert', 'key', 'servername', 'rejectUnauthorized']);
    const out: TlsClientConfig = { rejectUnauthorized: this.bool(`${path}.rejectUnauthorized`, o.rejectUnauthorized, true) };
    // PEM text is kept as it is; anything else names a file.
    const pemOrFile = (k: 'ca' | 'cert' | 'key'): string => {
      const s = this.str(`${path}.${k}`, o[k]);
      return s.includes('-----BEGIN') ? s : this.file(`${path}.${k}`, s);
    };
    if (o.ca !== undefined) out.ca = pemOrFile('ca');
    if (o.cert !== undefined) out.cert = pemOrFile('cert');
    if (o.key !== undefined) out.key = pemOrFile('key');
    if (o.servername !== undefined) out.servername = this.str(`${path}.servername`, o.servername);
    if ((out.cert === undefined) !== (out.key === undefined)) this.fail(out.cert === undefined ? `${path}.cert` : `${path}.key`, 'given together with ' + (out.cert === undefined ? 'key' : 'cert'));
    return out;
  }

  /** Printable US-ASCII without spaces (RFC 5424 PRINTUSASCII), 1 to `max` characters. */
  printable(path: string, v: unknown, max: number): string {
    const s = this.str(path, v);
    if (s.length > max || !/^[\x21-\x7e]+$/.test(s)) this.fail(path, `1 to ${max} printable ASCII characters without spaces`);
    return s;
  }
}

const COMMON_KEYS = ['name', 'type', 'minRisk', 'records', 'rateLimit', 'queueSize'] as const;
const SYSLOG_KEYS = [...COMMON_KEYS, 'format', 'transport', 'host', 'port', 'facility', 'hostname', 'appName', 'sdId', 'framing', 'cefHeader', 'maxMessageBytes', 'tls', 'reconnect', 'connectTimeoutMs'];
const WEBHOOK_KEYS = [...COMMON_KEYS, 'url', 'headers', 'timeoutMs', 'retries', 'backoff', 'maxRetryAfterMs', 'batchSize', 'tls'];
const FILE_KEYS = [...COMMON_KEYS, 'path', 'maxBytes', 'keep', 'fsync'];

/** RFC 5424 SD-NAME: 1 to 32 printable ASCII characters except `=`, space, `]` and `"`. */
const SD_NAME = /^[\x21-\x7e]{1,32}$/;

/**
 * Validates the notification channels of a configuration document (the
 * value under `notifications:` in `server.yaml`, a list of channels) and
 * fills every default. Any problem throws `DBTAP_E_CONFIG` whose message
 * names `source` and the path of the bad key, e.g.
 * `server.yaml: notifications[1].rateLimit.burst must be an integer from 1 to ...`.
 *
 * @param doc The parsed YAML/JSON value (a list of channel mappings; `null` or absent means none).
 * @param source The file name (or other origin) reported in errors.
 * @param options Where `doc` sits in the source, and the directory relative paths are resolved against.
 */
export function parseNotificationConfig(doc: unknown, source: string, options: NotificationConfigOptions = {}): ChannelConfig[] {
  const path = options.path ?? 'notifications';
  const c: Checker = new Checker(source, options.baseDir);
  if (doc === undefined || doc === null) return [];
  if (!Array.isArray(doc)) c.fail(path, 'a list of channels');
  const out: ChannelConfig[] = [];
  const names = new Set<string>();
  doc.forEach((raw: unknown, i: number) => {
    const p = `${path}[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) c.fail(p, 'a mapping');
    const type = c.oneOf(`${p}.type`, (raw as Obj).type ?? '', ['syslog', 'webhook', 'file'] as const, 'syslog');
    const o = c.mapping(p, raw, type === 'syslog' ? SYSLOG_KEYS : type === 'webhook' ? WEBHOOK_KEYS : FILE_KEYS);
    const name = o.name === undefined ? `${type}-${i}` : c.str(`${p}.name`, o.name);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) c.fail(`${p}.name`, '1 to 64 characters of A-Z a-z 0-9 _ . -');
    if (names.has(name)) c.fail(`${p}.name`, `unique ('${name}' is used by an earlier channel)`);
    names.add(name);
    const common: ChannelCommonConfig = {
      name,
      minRisk: c.oneOf(`${p}.minRisk`, o.minRisk, RISK_LEVELS, 'medium'),
      records: c.bool(`${p}.records`, o.records, false),
      queueSize: c.int(`${p}.queueSize`, o.queueSize, 10_000, 1, 10_000_000),
    };
    if (o.rateLimit !== undefined) {
      const r = c.mapping(`${p}.rateLimit`, o.rateLimit, ['perSecond', 'burst']);
      if (r.perSecond === undefined) c.fail(`${p}.rateLimit.perSecond`, 'given (notifications per second)');
      const perSecond = c.num(`${p}.rateLimit.perSecond`, r.perSecond, 1, 0, 1e6, true);
      common.rateLimit = { perSecond, burst: c.int(`${p}.rateLimit.burst`, r.burst, Math.max(1, Math.ceil(perSecond)), 1, 1e6) };
    }
    if (type === 'syslog') out.push(parseSyslog(c, p, o, common));
    else if (type === 'webhook') out.push(parseWebhook(c, p, o, common));
    else out.push(parseFile(c, p, o, common));
  });
  return out;
}

function parseSyslog(c: Checker, p: string, o: Obj, common: ChannelCommonConfig): SyslogChannelConfig {
  const transport = c.oneOf(`${p}.transport`, o.transport, ['udp', 'tcp', 'tls'] as const, 'udp');
  let facility = 16;
  if (typeof o.facility === 'string') {
    const f = SYSLOG_FACILITIES[o.facility.toLowerCase()];
    if (f === undefined) c.fail(`${p}.facility`, `a facility name (${Object.keys(SYSLOG_FACILITIES).join(', ')}) or a number from 0 to 23`);
    facility = f;
  } else facility = c.int(`${p}.facility`, o.facility, 16, 0, 23);
  const sdId = o.sdId === undefined ? 'dbtap@32473' : c.str(`${p}.sdId`, o.sdId);
  // RFC 5424 section 6.3.2: an SD-ID without '@' is reserved for IANA-registered names.
  if (!SD_NAME.test(sdId) || /[= \]"]/.test(sdId) || !/^[^@]+@\d+(\.\d+)*$/.test(sdId)) {
    c.fail(`${p}.sdId`, 'an SD-ID of the form name@enterprise-number (at most 32 characters, no = ] " or space)');
  }
  const cfg: SyslogChannelConfig = {
    ...common,
    type: 'syslog',
    format: c.oneOf(`${p}.format`, o.format, ['rfc5424', 'cef'] as const, 'rfc5424'),
    transport,
    host: c.str(`${p}.host`, o.host),
    port: c.int(`${p}.port`, o.port, transport === 'tls' ? 6514 : 514, 1, 65535),
    facility,
    appName: o.appName === undefined ? 'dbtap' : c.printable(`${p}.appName`, o.appName, 48),
    sdId,
    framing: c.oneOf(`${p}.framing`, o.framing, ['octet-counting', 'lf'] as const, 'octet-counting'),
    cefHeader: c.oneOf(`${p}.cefHeader`, o.cefHeader, ['rfc5424', 'rfc3164'] as const, 'rfc5424'),
    // RFC 5426 section 3.2: receivers SHOULD take 2048-byte datagrams; the IPv4 UDP payload limit is 65507.
    maxMessageBytes: c.int(`${p}.maxMessageBytes`, o.maxMessageBytes, transport === 'udp' ? 2048 : 8192, 480, transport === 'udp' ? 65507 : 16 * 1024 * 1024),
    reconnect: c.backoff(`${p}.reconnect`, o.reconnect, { initialMs: 500, maxMs: 30_000, jitter: 0.5 }),
    connectTimeoutMs: c.int(`${p}.connectTimeoutMs`, o.connectTimeoutMs, 10_000, 1),
  };
  if (o.hostname !== undefined) cfg.hostname = c.printable(`${p}.hostname`, o.hostname, 255);
  if (o.tls !== undefined) {
    if (transport !== 'tls') c.fail(`${p}.tls`, 'absent unless transport is tls');
    cfg.tls = c.tls(`${p}.tls`, o.tls);
  }
  if (o.framing !== undefined && transport === 'udp') c.fail(`${p}.framing`, 'absent for transport udp (one message per datagram)');
  if (o.cefHeader !== undefined && cfg.format !== 'cef') c.fail(`${p}.cefHeader`, 'absent unless format is cef');
  return cfg;
}

function parseWebhook(c: Checker, p: string, o: Obj, common: ChannelCommonConfig): WebhookChannelConfig {
  const urlText = c.str(`${p}.url`, o.url);
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    return c.fail(`${p}.url`, `an absolute http:// or https:// URL, not '${urlText}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') c.fail(`${p}.url`, `an http:// or https:// URL, not ${url.protocol}`);
  const headers: Record<string, string> = {};
  if (o.headers !== undefined) {
    if (o.headers === null || typeof o.headers !== 'object' || Array.isArray(o.headers)) c.fail(`${p}.headers`, 'a mapping of header names to values');
    for (const [k, v] of Object.entries(o.headers as Obj)) {
      // RFC 9110 section 5.1: a field name is a token.
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) c.fail(`${p}.headers.${k}`, 'named by an HTTP token (letters, digits, !#$%&\'*+.^_`|~-)');
      if (/^(content-length|content-type|host|transfer-encoding|connection)$/i.test(k)) c.fail(`${p}.headers.${k}`, 'absent (dbtap sets this header itself)');
      if (typeof v !== 'string' && typeof v !== 'number') c.fail(`${p}.headers.${k}`, 'a string');
      const s = String(v);
      if (/[\r\n\0]/.test(s)) c.fail(`${p}.headers.${k}`, 'a value without line breaks or NUL');
      headers[k] = s;
    }
  }
  const cfg: WebhookChannelConfig = {
    ...common,
    type: 'webhook',
    url: url.href,
    headers,
    timeoutMs: c.int(`${p}.timeoutMs`, o.timeoutMs, 10_000, 1),
    retries: c.int(`${p}.retries`, o.retries, 5, 0, 1000),
    backoff: c.backoff(`${p}.backoff`, o.backoff, { initialMs: 1000, maxMs: 60_000, jitter: 0.5 }),
    maxRetryAfterMs: c.int(`${p}.maxRetryAfterMs`, o.maxRetryAfterMs, 300_000, 0),
    batchSize: c.int(`${p}.batchSize`, o.batchSize, 1, 1, 10_000),
  };
  if (o.tls !== undefined) {
    if (url.protocol !== 'https:') c.fail(`${p}.tls`, 'absent unless the url is https://');
    cfg.tls = c.tls(`${p}.tls`, o.tls);
  }
  return cfg;
}

function parseFile(c: Checker, p: string, o: Obj, common: ChannelCommonConfig): FileChannelConfig {
  return {
    ...common,
    type: 'file',
    path: c.file(`${p}.path`, o.path),
    maxBytes: c.size(`${p}.maxBytes`, o.maxBytes, 100 * 1024 * 1024),
    keep: c.int(`${p}.keep`, o.keep, 5, 0, 1000),
    fsync: c.bool(`${p}.fsync`, o.fsync, false),
  };
}

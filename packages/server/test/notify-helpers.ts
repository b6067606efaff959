// Helpers for the notification tests: records to notify, a CEF parser that
// knows nothing of the formatter, a private rsyslogd, waiting.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import type { AuditEvent, RiskLevel } from '@dbtap/core';

const T0 = 1_717_000_000_000_000; // 2024-05-29T16:26:40Z in microseconds

/** A statement record with a verdict. */
export function record(n: number, risk: RiskLevel | undefined, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: `f${n}:1`,
    kind: 'statement',
    flowId: `f${n}`,
    ts: T0 + n * 1000 + 123,
    endTs: T0 + n * 1000 + 2123,
    durationUs: 2000,
    client: { ip: '10.0.0.7', port: 50_000 + n },
    server: { ip: '10.0.0.1', port: 3306 },
    dbType: 'mysql',
    user: 'app',
    database: 'shop',
    clientProgram: 'mysql',
    command: 'COM_QUERY',
    sql: `SELECT * FROM customers WHERE id = ${n}`,
    statementType: 'select',
    verb: 'SELECT',
    objects: [{ schema: 'shop', name: 'customers', op: 'read' }],
    status: 'ok',
    rowsReturned: 1,
    ...(risk !== undefined ? { risk } : {}),
    ruleIds: risk && risk !== 'none' ? ['sensitive-read'] : [],
    ...extra,
  };
}

/** An alert record raised by a rule on record `n`. */
export function alert(n: number, risk: RiskLevel, extra: Partial<AuditEvent> = {}): AuditEvent {
  const r = record(n, risk);
  return {
    ...r,
    id: `${r.id}:alert:bulk-export`,
    kind: 'alert',
    ruleIds: ['bulk-export'],
    alert: { ruleId: 'bulk-export', name: 'Bulk export', reason: `${n} rows read from shop.customers`, value: n, group: { clientIp: '10.0.0.7' } },
    ...extra,
  };
}

/** Resolves when `cond()` is true; rejects naming `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function unescapeCef(s: string, header: boolean): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const n = s[++i]!;
    if (!header && n === 'n') out += '\n';
    else if (!header && n === 'r') out += '\r';
    else out += n;
  }
  return out;
}

/**
 * Parses `CEF:0|vendor|product|version|signature|name|severity|extensions`
 * the way a CEF consumer does: header fields end at an unescaped `|`; an
 * extension key is the word before an unescaped `=`, its value runs to the
 * space before the next key.
 */
export function parseCef(text: string): { header: string[]; ext: Record<string, string> } {
  if (!text.startsWith('CEF:')) throw new Error(`not CEF: ${text.slice(0, 40)}`);
  const header: string[] = [];
  let i = 0;
  let start = 0;
  while (header.length < 7) {
    if (i >= text.length) throw new Error('CEF header has fewer than 7 fields');
    if (text[i] === '\\') i += 2;
    else if (text[i] === '|') {
      header.push(unescapeCef(text.slice(start, i), true));
      start = ++i;
    } else i++;
  }
  const ext = text.slice(start);
  const eqs: number[] = [];
  for (let j = 0; j < ext.length; j++) {
    if (ext[j] === '\\') j++;
    else if (ext[j] === '=') eqs.push(j);
  }
  const keys = eqs.map((p) => {
    const ks = ext.lastIndexOf(' ', p) + 1;
    const key = ext.slice(ks, p);
    if (!/^[A-Za-z0-9_]+$/.test(key)) throw new Error(`bad CEF key '${key}' at ${p}`);
    return { key, ks, p };
  });
  const out: Record<string, string> = {};
  keys.forEach((k, idx) => {
    const end = idx + 1 < keys.length ? keys[idx + 1]!.ks - 1 : ext.length;
    out[k.key] = unescapeCef(ext.slice(k.p + 1, end), false);
  });
  return { header, ext: out };
}

/** Octet-counted frames (RFC 6587 section 3.4.1) of a TCP byte stream, and the bytes left over. */
export function splitOctetCounted(buf: Buffer): { messages: string[]; rest: Buffer } {
  const messages: string[] = [];
  let off = 0;
  for (;;) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(buf.subarray(off, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0) throw new Error(`bad octet count at ${off}`);
    if (sp + 1 + len > buf.length) break;
    messages.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
    off = sp + 1 + len;
  }
  return { messages, rest: buf.subarray(off) };
}

/** A free loopback port for TCP (`tcp`) or UDP (`udp`). */
export async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const p = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  }
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const p = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return p;
}

export const RSYSLOGD = '/usr/sbin/rsyslogd';

/** The rsyslog module directory of this machine, if it can be found. */
function rsyslogModuleDir(): string | undefined {
  for (const d of ['/usr/lib/x86_64-linux-gnu/rsyslog', '/usr/lib/aarch64-linux-gnu/rsyslog', '/usr/lib/rsyslog', '/usr/lib64/rsyslog']) {
    if (existsSync(join(d, 'imtcp.so'))) return d;
  }
  return undefined;
}

/** True when rsyslog's GnuTLS network stream driver (Debian package rsyslog-gnutls) is installed. */
export function hasRsyslogTls(): boolean {
  const d = rsyslogModuleDir();
  return d !== undefined && existsSync(join(d, 'lmnsd_gtls.so'));
}

/** One message as rsyslog parsed it (see the template in {@link startRsyslog}). */
export interface ReceivedMessage {
  /** Which input received it (`udp`, `tcp`, `tls`, `mtls`). */
  input: string;
  /** The message as received, framing removed. */
  raw: string;
  pri: string;
  timestamp: string;
  hostname: string;
  app: string;
  procid: string;
  msgid: string;
  msg: string;
  /** Structured data as mmpstrucdata parsed it: `{ sdId: { name: value } }`. */
  sd: Record<string, Record<string, string>> | undefined;
}

/** A private rsyslogd on loopback that writes every message it receives, parsed, as a JSON line. */
export interface Rsyslog {
  ports: { udp: number; tcp: number; tls?: number; mtls?: number };
  /** Messages received so far. */
  messages(): ReceivedMessage[];
  stop(): Promise<void>;
}

/**
 * Starts `rsyslogd -n` with a private configuration in `dir`: imudp and
 * imtcp on free loopback ports and, when `tls` is given, two imtcp inputs
 * with the gtls driver (`tls`: server authentication only; `mtls`: the
 * client must present a certificate signed by the CA). mmpstrucdata parses
 * the structured data, so SD escaping is checked by rsyslog's own parser.
 */
export async function startRsyslog(dir: string, tls?: { ca: string; cert: string; key: string }): Promise<Rsyslog> {
  const ports: Rsyslog['ports'] = { udp: await freePort('udp'), tcp: await freePort('tcp') };
  if (tls) {
    ports.tls = await freePort('tcp');
    ports.mtls = await freePort('tcp');
  }
  const out = join(dir, 'received.ndjson');
  const field = (name: string, prop: string, extra = ''): string => `constant(value="\\"${name}\\":\\"") property(name="${prop}" format="json"${extra}) constant(value="\\",")`;
  const conf = [
    `global(workDirectory="${dir}" maxMessageSize="64k" parser.escapeControlCharactersOnReceive="off"${
      tls ? ` defaultNetstreamDriverCAFile="${tls.ca}" defaultNetstreamDriverCertFile="${tls.cert}" defaultNetstreamDriverKeyFile="${tls.key}"` : ''
    })`,
    'module(load="imudp")',
    'module(load="imtcp" maxSessions="50")',
    'module(load="mmpstrucdata")',
    `input(type="imudp" name="udp" address="127.0.0.1" port="${ports.udp}" ruleset="out")`,
    `input(type="imtcp" name="tcp" address="127.0.0.1" port="${ports.tcp}" ruleset="out")`,
    ...(tls
      ? [
          `input(type="imtcp" name="tls" address="127.0.0.1" port="${ports.tls}" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`,
          `input(type="imtcp" name="mtls" address="127.0.0.1" port="${ports.mtls}" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")`,
        ]
      : []),
    'template(name="parsed" type="list") {',
    '  constant(value="{")',
    `  ${field('input', 'inputname')}`,
    `  ${field('raw', 'rawmsg')}`,
    `  ${field('pri', 'pri')}`,
    `  ${field('timestamp', 'timereported', ' dateFormat="rfc3339"')}`,
    `  ${field('hostname', 'hostname')}`,
    `  ${field('app', 'app-name')}`,
    `  ${field('procid', 'procid')}`,
    `  ${field('msgid', 'msgid')}`,
    `  ${field('msg', 'msg')}`,
    '  constant(value="\\"parsed\\":") property(name="$!") constant(value="}\\n")',
    '}',
    'ruleset(name="out") {',
    '  set $!seen = "1";',
    '  action(type="mmpstrucdata" sd_name.lowercase="off")',
    `  action(type="omfile" file="${out}" template="parsed")`,
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'rsyslog.conf'), conf);
  const child: ChildProcess = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));

  const messages = (): ReceivedMessage[] => {
    if (!existsSync(out)) return [];
    // rsyslog may be mid-write: only lines that end in a line feed are complete.
    const lines = readFileSync(out, 'utf8').split('\n');
    lines.pop();
    return lines
      .filter((l) => l !== '')
      .map((l) => {
        const j = JSON.parse(l) as Omit<ReceivedMessage, 'sd'> & { parsed: { 'rfc5424-sd'?: ReceivedMessage['sd'] } };
        const { parsed, ...rest } = j;
        return { ...rest, sd: parsed['rfc5424-sd'] };
      });
  };
  const stop = async (): Promise<void> => {
    if (exited) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };

  try {
    // Ready when every TCP input accepts and a UDP probe has come through.
    for (const p of [ports.tcp, ports.tls, ports.mtls]) {
      if (p === undefined) continue;
      await waitForProbe(() => exited || tcpOpen.has(p), `rsyslogd listening on ${p}`, 10_000, () => probeTcp(p));
    }
    const probe = createSocket('udp4');
    try {
      let sent = 0;
      await waitForProbe(
        () => exited || messages().some((m) => m.msgid === 'probe'),
        'a UDP probe through rsyslogd',
        10_000,
        () => {
          if (sent++ % 10 === 0) probe.send('<14>1 - - test - probe - ready', ports.udp, '127.0.0.1');
        },
      );
    } finally {
      probe.close();
    }
    if (exited) throw new Error(`rsyslogd exited: ${stderr}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, messages: () => messages().filter((m) => m.msgid !== 'probe'), stop };
}

const tcpOpen = new Set<number>();
function probeTcp(port: number): void {
  const s = connect(port, '127.0.0.1');
  s.on('connect', () => {
    tcpOpen.add(port);
    s.destroy();
  });
  s.on('error', () => s.destroy());
}

async function waitForProbe(cond: () => boolean, what: string, timeoutMs: number, each: () => void): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    each();
    await new Promise((r) => setTimeout(r, 50));
  }
}

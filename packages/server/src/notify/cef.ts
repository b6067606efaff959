import type { RiskLevel } from '@dbtap/core';
import { alertText, describeNotice, objectList, suppressedCount, type Notice } from './notice.js';
import { rfc3164Header, rfc5424Header, msgIdOf, riskOf, severityOfRisk, tsOf } from './rfc5424.js';
import { clip, fitMessage } from './text.js';

/** CEF severity (0-10) of a risk level: high 8, medium 5, low 3, info 1, none 0. */
export function cefSeverity(risk: RiskLevel | undefined): number {
  switch (risk) {
    case 'high':
      return 8;
    case 'medium':
      return 5;
    case 'low':
      return 3;
    case 'info':
      return 1;
    default:
      return 0;
  }
}

/**
 * Escapes a CEF header field: `\` and `|` get a backslash. A header field
 * may not span lines, so line breaks become spaces.
 */
export function escapeCefHeader(s: string): string {
  return s.replace(/[\\|]/g, '\\$&').replace(/\r\n|[\r\n]/g, ' ');
}

/**
 * Escapes a CEF extension value: `\` and `=` get a backslash, a line break
 * is written `\n` (CR `\r`). `|` needs no escape in extensions.
 */
export function escapeCefValue(s: string): string {
  return s.replace(/[\\=]/g, '\\$&').replace(/\r\n|\n/g, '\\n').replace(/\r/g, '\\r');
}

/** One extension: key, value, the spec's length limit (characters), whether it is free text that may be shortened to fit. */
type Ext = readonly [key: string, value: string, limit: number, shrinkable: boolean];

function add(out: Ext[], key: string, v: string | number | undefined | null, limit = 1023, shrinkable = false): void {
  if (v === undefined || v === null || v === '') return;
  out.push([key, String(v), limit, shrinkable]);
}

function label(out: Ext[], key: string, name: string, v: string | number | undefined, limit = 4000, shrinkable = false): void {
  if (v === undefined || v === '') return;
  add(out, key, v, limit, shrinkable);
  add(out, `${key}Label`, name);
}

/**
 * The CEF extension fields of a notice, in a fixed order (see
 * `docs/notifications.md` for the table). Limits are those of the ArcSight
 * CEF field dictionary (e.g. `msg` 1023, `act` 63, `cs1`..`cs6` 4000).
 */
export function cefExtensions(n: Notice, deviceHost: string): Ext[] {
  const out: Ext[] = [];
  add(out, 'rt', Math.floor(tsOf(n) / 1000));
  add(out, 'dvchost', deviceHost, 100);
  if (n.type === 'suppressed') {
    add(out, 'cat', 'suppressed');
    add(out, 'cnt', suppressedCount(n));
    add(out, 'start', Math.floor(n.from / 1000));
    add(out, 'end', Math.floor(n.to / 1000));
    add(out, 'msg', describeNotice(n), 1023, true);
    label(out, 'cs3', 'Channel', n.channel);
    return out;
  }
  const e = n.event;
  if (e.endTs !== undefined) add(out, 'end', Math.floor(e.endTs / 1000));
  add(out, 'cat', e.kind);
  add(out, 'src', e.client.ip);
  add(out, 'spt', e.client.port);
  add(out, 'shost', e.clientHost, 1023, true);
  add(out, 'dst', e.server.ip);
  add(out, 'dpt', e.server.port);
  add(out, 'proto', 'TCP', 31);
  add(out, 'app', e.dbType, 31);
  // The database account acts on the destination; the client's OS user is the source user.
  add(out, 'duser', e.user, 1023, true);
  add(out, 'suser', e.osUser, 1023, true);
  add(out, 'act', e.verb ?? e.command, 63, true);
  add(out, 'outcome', e.status === 'ok' ? 'success' : e.status === 'error' ? 'failure' : undefined, 63);
  if (e.alert?.value !== undefined) add(out, 'cnt', e.alert.value);
  add(out, 'msg', e.alert ? alertText(e.alert) : describeNotice(n), 1023, true);
  label(out, 'cs1', 'SQL', e.sql, 4000, true);
  label(out, 'cs2', 'Database', e.database, 4000, true);
  label(out, 'cs3', 'Rule IDs', e.ruleIds?.join(','), 4000, true);
  label(out, 'cs4', 'Objects', e.objects && e.objects.length > 0 ? objectList(e) : undefined, 4000, true);
  label(out, 'cs5', 'Client Program', e.clientProgram, 4000, true);
  label(out, 'cs6', 'Record ID', e.id);
  label(out, 'cn1', 'Rows Returned', e.rowsReturned);
  label(out, 'cn2', 'Affected Rows', e.affectedRows);
  label(out, 'cn3', 'Duration us', e.durationUs);
  label(out, 'flexString1', 'Audit Object', e.auditObjectId, 1023);
  if (e.status === 'error') {
    label(out, 'flexString2', 'Error', [e.errorCode, e.sqlState, e.message].filter((x) => x !== undefined && x !== '').join(' '), 1023, true);
  }
  return out;
}

/** Length limits of the header fields, by position (version and severity are ours and short). */
const HEADER_LIMITS = [Infinity, 63, 63, 63, 1023, 512, Infinity];

/** What every CEF message of a channel shares. */
export interface CefOptions {
  /** Device Vendor. */
  vendor: string;
  /** Device Product. */
  product: string;
  /** Device Version. */
  version: string;
  /** Host name for `dvchost` and the syslog header. */
  hostname: string;
  /** Syslog header form in front of the CEF text; `none` gives bare CEF (for files and tests). */
  header: 'rfc5424' | 'rfc3164' | 'none';
  /** Syslog facility. */
  facility: number;
  /** APP-NAME of an RFC 5424 header. */
  appName: string;
  /** PROCID of an RFC 5424 header. */
  procId: string;
  /** Largest message in bytes (header included). */
  maxMessageBytes: number;
}

/**
 * A notice as a CEF:0 record behind a syslog header:
 *
 * ```
 * CEF:0|Vendor|Product|Version|Signature ID|Name|Severity|key=value key=value ...
 * ```
 *
 * The Signature ID is the alert's rule id (a record's first matched rule,
 * else `dbtap.<kind>`; `dbtap.suppressed` for a rate-limit summary).
 */
export function formatCef(n: Notice, o: CefOptions): string {
  const risk = riskOf(n);
  let signature: string;
  let name: string;
  if (n.type === 'suppressed') {
    signature = 'dbtap.suppressed';
    name = describeNotice(n);
  } else if (n.event.alert) {
    signature = n.event.alert.ruleId;
    name = n.event.alert.name;
  } else {
    const e = n.event;
    signature = e.ruleIds?.[0] ?? `dbtap.${e.kind}`;
    name = `${risk} risk ${e.kind === 'statement' ? (e.verb ?? e.statementType ?? 'statement') : e.kind}`;
  }
  let prefix = '';
  if (o.header === 'rfc5424') {
    // No structured data: the CEF text is the MSG, without a BOM (CEF parsers look for "CEF:" at its start).
    prefix = `${rfc5424Header({ facility: o.facility, severity: severityOfRisk(risk), ts: tsOf(n), hostname: o.hostname, appName: o.appName, procId: o.procId, msgId: msgIdOf(n) })} - `;
  } else if (o.header === 'rfc3164') {
    prefix = `${rfc3164Header({ facility: o.facility, severity: severityOfRisk(risk), ts: tsOf(n), hostname: o.hostname })} `;
  }
  const head = ['CEF:0', o.vendor, o.product, o.version, signature, name, String(cefSeverity(risk))];
  const exts = cefExtensions(n, o.hostname);
  return fitMessage((cap) => {
    // Header fields: Device Vendor/Product/Version 63, Signature ID 1023, Name 512 characters.
    const h = head.map((f, i) => (i === 0 || i === 6 ? f : escapeCefHeader(clip(f, i === 5 ? Math.min(512, cap) : HEADER_LIMITS[i]!))));
    const parts: string[] = [];
    for (const [key, value, limit, shrinkable] of exts) parts.push(`${key}=${escapeCefValue(clip(value, shrinkable ? Math.min(limit, cap) : limit))}`);
    return `${prefix}${h.join('|')}|${parts.join(' ')}`;
  }, o.maxMessageBytes);
}

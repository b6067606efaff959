import { formatTimestamp, type AuditEvent, type RiskLevel, type Timestamp } from '@dbtap/core';
import { describeNotice, objectList, suppressedCount, type Notice } from './notice.js';
import { clip, fitMessage } from './text.js';

/** Syslog severities (RFC 5424 section 6.2.1, table 2). */
export const SyslogSeverity = {
  /** 0: system is unusable. */
  Emergency: 0,
  /** 1: action must be taken immediately. */
  Alert: 1,
  /** 2: critical conditions. */
  Critical: 2,
  /** 3: error conditions. */
  Error: 3,
  /** 4: warning conditions. */
  Warning: 4,
  /** 5: normal but significant condition. */
  Notice: 5,
  /** 6: informational messages. */
  Informational: 6,
  /** 7: debug-level messages. */
  Debug: 7,
} as const;

/** The syslog severity of a risk level: high 2 (critical), medium 4 (warning), low 5 (notice), info and none 6 (informational). */
export function severityOfRisk(risk: RiskLevel | undefined): number {
  switch (risk) {
    case 'high':
      return SyslogSeverity.Critical;
    case 'medium':
      return SyslogSeverity.Warning;
    case 'low':
      return SyslogSeverity.Notice;
    default:
      return SyslogSeverity.Informational;
  }
}

/** The fields of a syslog header. */
export interface SyslogHeaderFields {
  /** Facility code, 0-23. */
  facility: number;
  /** Severity, 0-7. */
  severity: number;
  /** TIMESTAMP; `undefined` writes the NILVALUE `-`. */
  ts: Timestamp | undefined;
  /** HOSTNAME (at most 255 printable ASCII characters). */
  hostname: string;
  /** APP-NAME (at most 48). */
  appName: string;
  /** PROCID (at most 128). */
  procId: string;
  /** MSGID (at most 32). */
  msgId: string;
}

/**
 * A header field as RFC 5424 section 6 wants it: printable US-ASCII
 * (33-126) only, at most `max` characters, `-` when empty.
 */
function headerField(s: string, max: number): string {
  const clean = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID` (RFC 5424 section 6.2), without a trailing space. */
export function rfc5424Header(h: SyslogHeaderFields): string {
  // Section 6.2.1: PRI = facility * 8 + severity.
  const pri = h.facility * 8 + h.severity;
  // Section 6.2.3: RFC 3339 with at most 6 fractional digits; formatTimestamp gives UTC with microseconds.
  const ts = h.ts === undefined ? '-' : formatTimestamp(h.ts);
  return `<${pri}>1 ${ts} ${headerField(h.hostname, 255)} ${headerField(h.appName, 48)} ${headerField(h.procId, 128)} ${headerField(h.msgId, 32)}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * `<PRI>Mmm dd hh:mm:ss HOSTNAME` (RFC 3164 section 4.1.2), the header many
 * CEF receivers expect. The BSD timestamp has no year and no zone; it is
 * written in this machine's local time, as that RFC describes.
 */
export function rfc3164Header(h: Pick<SyslogHeaderFields, 'facility' | 'severity' | 'ts' | 'hostname'>): string {
  const d = new Date(h.ts === undefined ? Date.now() : Math.floor(h.ts / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `<${h.facility * 8 + h.severity}>${stamp} ${headerField(h.hostname, 255)}`;
}

/**
 * Escapes a PARAM-VALUE (RFC 5424 section 6.3.3): `"`, `\` and `]` get a
 * backslash; everything else, line breaks included, is carried as UTF-8.
 */
export function escapeSdValue(s: string): string {
  return s.replace(/["\\\]]/g, '\\$&');
}

/** One SD-PARAM: name, value, and whether the value is free text that may be shortened to fit the message size. */
export type SdParam = readonly [name: string, value: string, shrinkable?: boolean];

function push(out: SdParam[], name: string, v: string | number | boolean | undefined | null, shrinkable = false): void {
  if (v === undefined || v === null || v === '') return;
  out.push([name, typeof v === 'boolean' ? (v ? 'true' : 'false') : String(v), shrinkable]);
}

/**
 * The SD-PARAMs of a notice, in a fixed order (see `docs/notifications.md`
 * for the table). Absent fields are left out rather than sent empty.
 */
export function sdParams(n: Notice): SdParam[] {
  const out: SdParam[] = [];
  if (n.type === 'suppressed') {
    push(out, 'kind', 'suppressed');
    push(out, 'channel', n.channel);
    push(out, 'count', suppressedCount(n));
    push(out, 'alerts', n.alerts);
    push(out, 'records', n.records);
    push(out, 'maxRisk', n.maxRisk);
    push(out, 'since', formatTimestamp(n.from));
    return out;
  }
  const e: AuditEvent = n.event;
  push(out, 'eventId', e.id);
  push(out, 'kind', e.kind);
  push(out, 'risk', e.risk ?? 'none');
  push(out, 'ruleIds', e.ruleIds?.join(','));
  if (e.alert) {
    push(out, 'ruleId', e.alert.ruleId);
    push(out, 'alertName', e.alert.name, true);
    push(out, 'reason', e.alert.reason, true);
    push(out, 'value', e.alert.value);
    if (e.alert.group) push(out, 'group', Object.entries(e.alert.group).map(([k, v]) => `${k}=${v}`).join(','), true);
  }
  push(out, 'flowId', e.flowId);
  push(out, 'auditObject', e.auditObjectId);
  push(out, 'dbType', e.dbType);
  push(out, 'dbProduct', e.dbProduct);
  push(out, 'clientIp', e.client.ip);
  push(out, 'clientPort', e.client.port);
  push(out, 'serverIp', e.server.ip);
  push(out, 'serverPort', e.server.port);
  push(out, 'user', e.user, true);
  push(out, 'database', e.database, true);
  push(out, 'clientProgram', e.clientProgram, true);
  push(out, 'clientHost', e.clientHost, true);
  push(out, 'osUser', e.osUser, true);
  push(out, 'sessionId', e.sessionId);
  push(out, 'tls', e.tls);
  push(out, 'command', e.command);
  push(out, 'statementType', e.statementType);
  push(out, 'verb', e.verb, true);
  push(out, 'objects', e.objects && e.objects.length > 0 ? objectList(e) : undefined, true);
  push(out, 'status', e.status);
  push(out, 'errorCode', e.errorCode);
  push(out, 'sqlState', e.sqlState);
  push(out, 'errorMessage', e.status === 'error' ? e.message : undefined, true);
  push(out, 'affectedRows', e.affectedRows);
  push(out, 'rowsReturned', e.rowsReturned);
  push(out, 'durationUs', e.durationUs);
  if (e.truncated) push(out, 'truncated', true);
  push(out, 'sql', e.sql, true);
  return out;
}

/** What every RFC 5424 message of a channel shares. */
export interface Rfc5424Options {
  /** Facility code. */
  facility: number;
  /** HOSTNAME. */
  hostname: string;
  /** APP-NAME. */
  appName: string;
  /** PROCID. */
  procId: string;
  /** SD-ID of the element holding the record fields. */
  sdId: string;
  /** Largest message in bytes. */
  maxMessageBytes: number;
}

/** MSGID of a notice: the record kind (`alert`, `login`, `statement`, `logout`) or `suppressed`. */
export function msgIdOf(n: Notice): string {
  return n.type === 'suppressed' ? 'suppressed' : n.event.kind;
}

/** Timestamp of a notice: the record's time, or when the last suppressed one came. */
export function tsOf(n: Notice): Timestamp {
  return n.type === 'suppressed' ? n.to : n.event.ts;
}

/** Risk of a notice. */
export function riskOf(n: Notice): RiskLevel {
  return n.type === 'suppressed' ? n.maxRisk : (n.event.risk ?? 'none');
}

/**
 * A notice as one RFC 5424 message:
 *
 * ```
 * <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID name="value" ...] MSG
 * ```
 *
 * MSG is the one-line summary; it starts with a BOM only when it holds
 * non-ASCII text (section 6.4). When the message would exceed
 * `maxMessageBytes`, free-text values (SQL, reason, names) are shortened.
 */
export function formatRfc5424(n: Notice, o: Rfc5424Options): string {
  const header = rfc5424Header({
    facility: o.facility,
    severity: severityOfRisk(riskOf(n)),
    ts: tsOf(n),
    hostname: o.hostname,
    appName: o.appName,
    procId: o.procId,
    msgId: msgIdOf(n),
  });
  const params = sdParams(n);
  const summary = describeNotice(n);
  return fitMessage((cap) => {
    let sd = `[${o.sdId}`;
    for (const [name, value, shrinkable] of params) sd += ` ${name}="${escapeSdValue(shrinkable ? clip(value, cap) : value)}"`;
    sd += ']';
    const msg = clip(summary, cap);
    // Section 6.4: UTF-8 text in MSG starts with a BOM; pure ASCII is valid MSG-ANY without one.
    const bom = /[^\x00-\x7f]/.test(msg) ? '\uFEFF' : '';
    return `${header} ${sd} ${bom}${msg}`;
  }, o.maxMessageBytes);
}

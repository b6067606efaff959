import { formatTimestamp, type AuditEvent, type RiskLevel, type Timestamp } from '@dbtap/core';

/** One thing a channel delivers: an alert or risky record, or the count of notifications a rate limit held back. */
export type Notice = EventNotice | SuppressedNotice;

/** An alert, or a record whose risk reached the channel's minimum. */
export interface EventNotice {
  /** Discriminant. */
  readonly type: 'event';
  /** The record (an `alert` record, or a login/statement/logout with its verdict). */
  readonly event: AuditEvent;
}

/** "N alerts suppressed": what a channel's rate limit held back since the last notification it let through. */
export interface SuppressedNotice {
  /** Discriminant. */
  readonly type: 'suppressed';
  /** The channel whose limit applied. */
  readonly channel: string;
  /** Alerts suppressed. */
  readonly alerts: number;
  /** Ordinary records suppressed. */
  readonly records: number;
  /** Highest risk among the suppressed notifications. */
  readonly maxRisk: RiskLevel;
  /** When the first was suppressed. */
  readonly from: Timestamp;
  /** When the last was suppressed. */
  readonly to: Timestamp;
}

/** The JSON body of a webhook notification and one line of a file channel. */
export interface NotificationPayload {
  /** `alert`, `record` or `suppressed`. */
  type: 'alert' | 'record' | 'suppressed';
  /** Time of the record (or of the last suppressed one), ISO-8601 UTC with microseconds. */
  time: string;
  /** Host name of the dbtap server that sent it. */
  host: string;
  /** Risk level (for `suppressed`, the highest one suppressed). */
  risk: RiskLevel;
  /** One line for people: alert name and reason, what a record did, or how many were suppressed. */
  summary: string;
  /** The full audit record (`alert` and `record` only). */
  event?: AuditEvent;
  /** Counts and period (`suppressed` only). */
  suppressed?: { channel: string; alerts: number; records: number; since: string };
}

/** A `suppressed` notice's total. */
export function suppressedCount(n: SuppressedNotice): number {
  return n.alerts + n.records;
}

/** The one-line human summary of a notice (syslog MSG, CEF `msg`, JSON `summary`). */
export function describeNotice(n: Notice): string {
  if (n.type === 'suppressed') {
    const total = suppressedCount(n);
    const what = n.records === 0 ? 'alerts' : n.alerts === 0 ? 'records' : `notifications (${n.alerts} alerts, ${n.records} records)`;
    return `${total} ${total === 1 ? what.replace(/s$/, '') : what} suppressed by the rate limit of channel ${n.channel}`;
  }
  const e = n.event;
  if (e.kind === 'alert' && e.alert) return alertText(e.alert);
  const who = `${e.user ?? '?'}@${e.client.ip}`;
  const what = e.kind === 'statement' ? (e.verb ?? e.statementType?.toUpperCase() ?? e.command ?? 'statement') : e.kind;
  const target = e.objects && e.objects.length > 0 ? ` ${objectList(e)}` : '';
  const result = e.status === 'error' ? ` failed${e.errorCode !== undefined ? ` (${e.errorCode})` : ''}` : '';
  return `${e.risk ?? 'none'} risk: ${what}${target} by ${who} on ${e.dbType} ${e.server.ip}:${e.server.port}${result}`;
}

/** `schema.name` of each object, comma-separated. */
export function objectList(e: AuditEvent): string {
  return (e.objects ?? []).map((o) => (o.schema ? `${o.schema}.${o.name}` : o.name)).join(',');
}

/** The JSON shape of a notice for webhooks and files. */
export function noticePayload(n: Notice, host: string): NotificationPayload {
  if (n.type === 'suppressed') {
    return {
      type: 'suppressed',
      time: formatTimestamp(n.to),
      host,
      risk: n.maxRisk,
      summary: describeNotice(n),
      suppressed: { channel: n.channel, alerts: n.alerts, records: n.records, since: formatTimestamp(n.from) },
    };
  }
  const e = n.event;
  return { type: e.kind === 'alert' ? 'alert' : 'record', time: formatTimestamp(e.ts), host, risk: e.risk ?? 'none', summary: describeNotice(n), event: e };
}

/** `name: reason` of an alert, without repeating the name when the reason already starts with it (as the rule engine writes them). */
export function alertText(alert: { readonly name: string; readonly reason: string }): string {
  return alert.reason === alert.name || alert.reason.startsWith(`${alert.name}: `) ? alert.reason : `${alert.name}: ${alert.reason}`;
}

import { formatTimestamp, type AuditEvent } from '@dbtap/core';

/** JSON.stringify replacer: bigints as decimal strings, byte arrays as hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex');
  return value;
}

/** One record as a single NDJSON line (no trailing newline). */
export function toNdjson(record: object): string {
  return JSON.stringify(record, jsonReplacer);
}

const tableColumns = ['time', 'kind', 'client', 'user@database', 'status', 'ms', 'rows', 'risk', 'sql / detail'] as const;

/** The header line of the table format. */
export function tableHeader(): string {
  return tableColumns.join('\t');
}

/** `undecoded tls: TLS 1.2 TLS_ECDHE_..., sni db1, 12 kB in / 40 kB out, fin` */
function connectionDetail(e: AuditEvent): string {
  const t = e.tlsFacts;
  const tls = t === undefined ? '' : [t.version ?? t.offeredVersion, t.cipherSuite, t.sni !== undefined ? `sni ${t.sni}` : undefined, t.alert].filter((x) => x !== undefined).join(' ');
  return `undecoded ${e.attributes?.undecoded ?? ''}${tls ? `: ${tls}` : ''}, ${e.bytesIn ?? 0} B in / ${e.bytesOut ?? 0} B out, ${e.closeReason ?? ''}`;
}

/** One record as a tab-separated table row for people reading a terminal. */
export function toTableRow(e: AuditEvent, sqlWidth = 120): string {
  const who = `${e.user ?? '?'}@${e.database ?? ''}`;
  const status = e.status === 'error' ? `error ${e.errorCode ?? ''}${e.sqlState ? `/${e.sqlState}` : ''}`.trim() : e.status;
  const ms = e.durationUs !== undefined ? (e.durationUs / 1000).toFixed(3) : '';
  const rows = e.rowsReturned ?? e.affectedRows ?? '';
  let detail = e.sql ?? e.command ?? '';
  if (e.kind === 'login') detail = `login ${e.clientProgram ?? ''} ${e.message ?? ''}`.trim();
  else if (e.kind === 'connection') detail = connectionDetail(e);
  detail = detail.replace(/\s+/g, ' ');
  if (detail.length > sqlWidth) detail = `${detail.slice(0, sqlWidth - 1)}…`;
  return [formatTimestamp(e.ts), e.kind, `${e.client.ip}:${e.client.port}`, who, status, ms, String(rows), e.risk ?? '', detail].join('\t');
}

import { formatTimestamp, type AuditEvent } from '@dbtap/core';

/** JSON.stringify replacer: bigints as decimal strings, byte arrays as hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex');
  return value;
}

// A JSON.stringify replacer is a JS call for every key of every record: it
// was 27% of `dbtap audit` (node --cpu-prof, self time), native
// JSON.stringify without one is 2.3x faster on sysbench records. Records
// hold bigints (bound parameters) and byte arrays only rarely, so toNdjson
// first walks the record (no strings built) for a value the replacer would
// change, and only a record with one goes through the replacer. Either way
// the text is JSON.stringify(record, jsonReplacer), byte for byte.

/** Nesting deeper than this is left to the replacer path (which also reports cycles). */
const MAX_PLAIN_DEPTH = 32;

/** True when JSON.stringify gives `value` the same text with and without {@link jsonReplacer}. */
function replacerFree(value: unknown, depth: number): boolean {
  if (typeof value === 'bigint') return false;
  if (typeof value !== 'object' || value === null) return true;
  // toJSON's result, typed arrays and DataViews are what the replacer may change
  if (depth > MAX_PLAIN_DEPTH || ArrayBuffer.isView(value) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!replacerFree(value[i], depth + 1)) return false;
    return true;
  }
  const record = value as Record<string, unknown>;
  for (const k in record) if (!replacerFree(record[k], depth + 1)) return false;
  return true;
}

/**
 * One record as a single NDJSON line (no trailing newline): the text of
 * `JSON.stringify(record, jsonReplacer)` (bigints as decimal strings, byte
 * arrays as hex), made without the replacer when the record needs none.
 */
export function toNdjson(record: object): string {
  return replacerFree(record, 0) ? JSON.stringify(record) : JSON.stringify(record, jsonReplacer);
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

// Fields a condition can read. Every audit-record field is here under its
// record name (docs/audit-record.md), plus derived fields under `sql.*` and
// `time.*`, and `attributes.<key>`.
import type { AuditEvent } from '@dbtap/core';
import type { EvalContext } from './context.js';

/** Value kinds of fields. */
export type FieldKind = 'string' | 'number' | 'boolean' | 'strings' | 'scalar';

/** @internal A field: its kind and how to read it. */
export interface FieldDef {
  readonly kind: FieldKind;
  readonly description: string;
  readonly get: (c: EvalContext) => unknown;
}

let slots = 0;

/** A list-valued field computed once per event however many rules read it (in a numbered slot of the context). */
function memo(_key: string, description: string, compute: (c: EvalContext) => unknown): FieldDef {
  const slot = slots++;
  return { kind: 'strings', description, get: (c) => c.cached(slot, compute) };
}

function ev<K extends keyof AuditEvent>(k: K, kind: FieldKind, description: string): FieldDef {
  return { kind, description, get: (c) => c.event[k] };
}

const FIELDS: Record<string, FieldDef> = {
  id: ev('id', 'string', 'record id'),
  kind: ev('kind', 'string', 'login | statement | logout | connection'),
  flowId: ev('flowId', 'string', 'TCP connection id'),
  ts: ev('ts', 'number', 'request time, µs since the epoch'),
  endTs: ev('endTs', 'number', 'response time, µs since the epoch'),
  durationUs: ev('durationUs', 'number', 'response time minus request time, µs'),
  durationMs: { kind: 'number', description: 'durationUs / 1000', get: (c) => (c.event.durationUs === undefined ? undefined : c.event.durationUs / 1000) },
  'client.ip': { kind: 'string', description: 'client address', get: (c) => c.event.client?.ip },
  'client.port': { kind: 'number', description: 'client port', get: (c) => c.event.client?.port },
  'server.ip': { kind: 'string', description: 'server address', get: (c) => c.event.server?.ip },
  'server.port': { kind: 'number', description: 'server port', get: (c) => c.event.server?.port },
  dbType: ev('dbType', 'string', 'protocol family'),
  dbProduct: ev('dbProduct', 'string', 'server product'),
  serverVersion: ev('serverVersion', 'string', 'server version string'),
  user: ev('user', 'string', 'database user'),
  database: ev('database', 'string', 'current database / schema'),
  clientProgram: ev('clientProgram', 'string', 'client program name'),
  clientLibrary: ev('clientLibrary', 'string', 'client driver'),
  clientHost: ev('clientHost', 'string', 'client host name'),
  osUser: ev('osUser', 'string', 'OS user on the client'),
  clientPid: ev('clientPid', 'string', 'client process id'),
  sessionId: ev('sessionId', 'string', 'server session id'),
  tls: ev('tls', 'boolean', 'encrypted session'),
  command: ev('command', 'string', 'protocol command'),
  sql: ev('sql', 'string', 'statement text'),
  params: { kind: 'strings', description: 'bound parameter values as text', get: (c) => c.event.params?.map((p) => (p === null ? 'NULL' : typeof p === 'object' ? ('text' in p ? p.text : p.hex) : String(p))) },
  statementId: ev('statementId', 'string', 'prepared statement id'),
  statementType: ev('statementType', 'string', 'select | insert | update | delete | merge | ddl | dcl | tcl | other'),
  verb: ev('verb', 'string', 'leading verb(s), upper case'),
  fingerprint: ev('fingerprint', 'string', 'normalised statement'),
  'objects.name': memo('objects.name', 'names of the objects touched', (c) => c.event.objects?.map((o) => o.name)),
  'objects.schema': memo('objects.schema', 'schemas of the objects touched (where named)', (c) => c.event.objects?.filter((o) => o.schema !== undefined).map((o) => o.schema!)),
  'objects.qualified': memo('objects.qualified', 'schema.name of the objects touched (name alone when no schema is named)', (c) => c.event.objects?.map((o) => (o.schema === undefined ? o.name : `${o.schema}.${o.name}`))),
  'objects.op': memo('objects.op', 'operations on the objects: read, insert, update, delete, create, drop, ...', (c) => c.event.objects?.map((o) => o.op ?? '')),
  status: ev('status', 'string', 'ok | error | unknown'),
  errorCode: ev('errorCode', 'scalar', 'database error code'),
  sqlState: ev('sqlState', 'string', 'SQLSTATE'),
  message: ev('message', 'string', 'error message'),
  affectedRows: ev('affectedRows', 'number', 'rows changed'),
  rowsReturned: ev('rowsReturned', 'number', 'rows returned'),
  lastInsertId: ev('lastInsertId', 'number', 'generated id'),
  warnings: ev('warnings', 'number', 'warning count'),
  columns: ev('columns', 'strings', 'result column names'),
  bytesIn: ev('bytesIn', 'number', 'request bytes'),
  bytesOut: ev('bytesOut', 'number', 'response bytes'),
  truncated: ev('truncated', 'boolean', 'part of the exchange was not captured'),
  gapBefore: ev('gapBefore', 'boolean', 'bytes missing before this record'),
  midSession: ev('midSession', 'boolean', 'capture began mid-session'),
  risk: ev('risk', 'string', 'risk level assigned so far'),
  ruleIds: ev('ruleIds', 'strings', 'rules matched so far'),
  auditObjectId: ev('auditObjectId', 'string', 'audit object id'),
  packetsIn: ev('packetsIn', 'number', 'packets from the client (connection records)'),
  packetsOut: ev('packetsOut', 'number', 'packets from the server (connection records)'),
  closeReason: ev('closeReason', 'string', 'fin | rst | timeout | evicted | end-of-capture | abandoned (connection records)'),
  undecoded: { kind: 'string', description: 'why a connection was not decoded: tls, unknown-protocol, ... (connection records)', get: (c) => c.event.attributes?.undecoded },
  'tls.version': { kind: 'string', description: 'TLS version the server chose, e.g. TLS 1.2', get: (c) => c.event.tlsFacts?.version },
  'tls.offeredVersion': { kind: 'string', description: 'highest TLS version the client offered', get: (c) => c.event.tlsFacts?.offeredVersion },
  'tls.sni': { kind: 'string', description: 'server name the client asked for', get: (c) => c.event.tlsFacts?.sni },
  'tls.cipherSuite': { kind: 'string', description: 'cipher suite the server chose', get: (c) => c.event.tlsFacts?.cipherSuite },
  'tls.certSubject': { kind: 'string', description: 'server certificate subject (TLS 1.2 and older)', get: (c) => c.event.tlsFacts?.certSubject },
  'tls.certIssuer': { kind: 'string', description: 'server certificate issuer', get: (c) => c.event.tlsFacts?.certIssuer },
  'tls.certNotAfter': { kind: 'string', description: 'server certificate expiry, ISO 8601', get: (c) => c.event.tlsFacts?.certNotAfter },
  // ---- derived from the SQL text ----
  'sql.hasWhere': { kind: 'boolean', description: 'the primary statement has a top-level WHERE', get: (c) => c.getAnalysis()?.hasWhere },
  'sql.unfilteredWrite': {
    kind: 'boolean',
    description: 'some UPDATE or DELETE statement of the text has no WHERE',
    get: (c) => {
      const a = c.getAnalysis();
      if (a === undefined) return undefined;
      for (const s of a.statements) if ((s.type === 'update' || s.type === 'delete') && !s.hasWhere) return true;
      return false;
    },
  },
  'sql.statementCount': { kind: 'number', description: 'statements in the text', get: (c) => c.getAnalysis()?.statements.length },
  'sql.verbs': memo('sql.verbs', 'verbs of every statement of the text', (c) => c.getAnalysis()?.statements.map((s) => s.verb)),
  'sql.types': memo('sql.types', 'classes of every statement of the text', (c) => c.getAnalysis()?.statements.map((s) => s.type)),
  'sql.injection': { kind: 'boolean', description: 'the SQL-injection detector flags the text', get: (c) => c.getSqli()?.injection },
  'sql.injectionReasons': { kind: 'strings', description: 'reasons the injection detector found', get: (c) => c.getSqli()?.reasons },
  'sql.injectionScore': { kind: 'number', description: 'injection score in [0, 1]', get: (c) => c.getSqli()?.score },
  'sql.length': { kind: 'number', description: 'length of the SQL text', get: (c) => c.event.sql?.length },
  // ---- time ----
  time: { kind: 'number', description: 'minutes since local midnight (use with `within "HH:MM-HH:MM"`)', get: (c) => c.getMinuteOfDay() },
  'time.hour': { kind: 'number', description: 'local hour 0-23', get: (c) => Math.floor(c.getMinuteOfDay() / 60) },
  'time.weekday': { kind: 'string', description: 'local day of week: mon tue wed thu fri sat sun', get: (c) => c.getWeekday() },
};

/** @internal Looks a field up; `attributes.<key>` is generated. */
export function fieldDef(name: string): FieldDef | undefined {
  const f = FIELDS[name];
  if (f !== undefined) return f;
  if (name.startsWith('attributes.') && name.length > 11) {
    const key = name.slice(11);
    return { kind: 'string', description: `connection attribute ${key}`, get: (c) => c.event.attributes?.[key] };
  }
  return undefined;
}

/** Names, kinds and meanings of the fields conditions can use (for documentation and tooling). */
export function ruleFields(): { name: string; kind: FieldKind; description: string }[] {
  return Object.entries(FIELDS).map(([name, f]) => ({ name, kind: f.kind, description: f.description }));
}

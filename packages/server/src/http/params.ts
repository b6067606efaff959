import { AUDIT_EVENT_KINDS, RISK_LEVELS, DbtapError } from '@dbtap/core';
import { HttpErrorCodes } from './providers.js';

/**
 * One query parameter of an endpoint. The same table drives parsing and the
 * OpenAPI document, so the two cannot disagree.
 */
export interface ParamSpec {
  name: string;
  type: 'string' | 'integer' | 'boolean' | 'time' | 'enum' | 'enum-list';
  values?: readonly string[];
  description: string;
  min?: number;
  max?: number;
}

const time = (name: string, description: string): ParamSpec => ({ name, type: 'time', description });
const order: ParamSpec = { name: 'order', type: 'enum', values: ['asc', 'desc'], description: 'Sort by time, oldest (`asc`) or newest (`desc`, default) first.' };
const limit: ParamSpec = { name: 'limit', type: 'integer', min: 1, max: 10_000, description: 'Page size (default 100).' };
const cursor: ParamSpec = { name: 'cursor', type: 'string', description: 'The `nextCursor` of the previous page (same `order`).' };
const from = time('from', 'Oldest time included: ISO 8601 date-time (UTC when no offset) or microseconds since the epoch.');
const to = time('to', 'Newest time excluded: ISO 8601 date-time or microseconds since the epoch.');
const minRisk: ParamSpec = { name: 'minRisk', type: 'enum', values: RISK_LEVELS, description: 'Minimum risk level.' };
const auditObjectId: ParamSpec = { name: 'auditObjectId', type: 'string', description: 'Audit object (monitored database) id.' };
const user: ParamSpec = { name: 'user', type: 'string', description: 'Database user (exact).' };
const clientIp: ParamSpec = { name: 'clientIp', type: 'string', description: 'Client IP address (exact).' };
const program: ParamSpec = { name: 'program', type: 'string', description: 'Client program (exact).' };
const dbType: ParamSpec = { name: 'dbType', type: 'string', description: 'Protocol family, e.g. `mysql`.' };

/** Parameters of `GET /api/records`. */
export const recordParams: readonly ParamSpec[] = [
  from, to,
  { name: 'kind', type: 'enum-list', values: AUDIT_EVENT_KINDS, description: 'Record kinds, comma-separated.' },
  auditObjectId, user, clientIp, program, dbType,
  { name: 'statementType', type: 'enum-list', values: ['select', 'insert', 'update', 'delete', 'merge', 'ddl', 'dcl', 'tcl', 'other'], description: 'Statement classes, comma-separated.' },
  { name: 'object', type: 'string', description: 'Object touched, `name` or `schema.name`, case-insensitive.' },
  minRisk,
  { name: 'ruleId', type: 'string', description: 'Id of a rule the record matched (or that raised the alert).' },
  { name: 'status', type: 'enum', values: ['ok', 'error', 'unknown'], description: 'Outcome.' },
  { name: 'flowId', type: 'string', description: 'Session (TCP connection) id.' },
  { name: 'text', type: 'string', description: 'Full-text search on the SQL: whitespace-separated terms, all required; each matches as a phrase of words; a trailing `*` makes a prefix.' },
  order,
  { ...limit, max: 10_000_000, description: 'Page size for JSON (1 to 10000, default 100); for `csv`/`ndjson` the most records to export (default all).' },
  cursor,
  { name: 'format', type: 'enum', values: ['json', 'csv', 'ndjson'], description: '`json` (default): one page; `csv` or `ndjson`: every matching record as a download.' },
];

/** Parameters of `GET /api/sessions`. */
export const sessionParams: readonly ParamSpec[] = [
  { ...from, description: 'Sessions that ended at or after this time (ISO 8601 or µs).' },
  { ...to, description: 'Sessions that started before this time (ISO 8601 or µs).' },
  user, clientIp, program, auditObjectId, dbType,
  { ...minRisk, description: "Minimum of the session's highest record risk." },
  { name: 'hasErrors', type: 'boolean', description: 'Only sessions with (`true`) or without (`false`) failed requests.' },
  order, limit, cursor,
];

/** Parameters of `GET /api/alerts`. */
export const alertParams: readonly ParamSpec[] = [
  from, to,
  { name: 'ruleId', type: 'string', description: 'Rule or detector id.' },
  minRisk, auditObjectId,
  { name: 'acknowledged', type: 'boolean', description: 'Only acknowledged (`true`) or open (`false`) alerts.' },
  order, limit, cursor,
];

/** Parameters of `GET /api/reports/summary`. */
export const summaryParams: readonly ParamSpec[] = [
  from, to, auditObjectId,
  { name: 'top', type: 'integer', min: 1, max: 1000, description: 'Entries per breakdown (default 20).' },
];

/** Parameters of `GET /api/reports/{kind}` for the kinds `server`, `source`, `compliance` and `statements`. */
export const reportParams: readonly ParamSpec[] = [
  from, to,
  { name: 'object', type: 'string', description: 'Only this audit object (monitored database) id.' },
  { ...auditObjectId, description: 'Same as `object`.' },
  { name: 'format', type: 'enum', values: ['json', 'csv', 'html'], description: '`json` (default), `csv` (tables one after another, first column `section`), or `html` (one self-contained page with SVG charts).' },
  { name: 'top', type: 'integer', min: 1, max: 1000, description: 'Rows per table and records per list (default 20).' },
  { name: 'bucket', type: 'string', description: 'Volume-over-time bucket (server report): a number with unit `s`, `m`, `h` or `d`, e.g. `15m`; chosen from the range when absent.' },
  { name: 'minRisk', type: 'enum', values: RISK_LEVELS, description: 'Lowest risk counted as a risky operation (compliance report; default `medium` or the server setting).' },
  { name: 'timeZone', type: 'string', description: 'IANA time zone of the working hours (compliance report), e.g. `Europe/Berlin`.' },
  { name: 'workHours', type: 'string', description: 'Working hours `HH:MM-HH:MM` (compliance report; default 08:00-18:00 or the server setting).' },
  { name: 'workDays', type: 'string', description: 'Working days, e.g. `mon-fri` or `1-5` (0 = Sunday).' },
  { name: 'sensitive', type: 'string', description: 'Sensitive tables, comma-separated `name` or `schema.name` (compliance report; replaces the server setting).' },
];

function bad(parameter: string, message: string): DbtapError {
  return new DbtapError(HttpErrorCodes.BAD_REQUEST, `${parameter}: ${message}`, { parameter });
}

/**
 * Turns URL query parameters into a typed query object per `specs`.
 * Unknown or repeated parameters are refused, so a typo never silently
 * widens a search.
 */
export function parseParams(search: URLSearchParams, specs: readonly ParamSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const [name, raw] of search) {
    const spec = specs.find((s) => s.name === name);
    if (spec === undefined) throw bad(name, `unknown parameter (allowed: ${specs.map((s) => s.name).join(', ')})`);
    if (seen.has(name)) throw bad(name, 'given more than once');
    seen.add(name);
    if (raw === '') continue;
    switch (spec.type) {
      case 'string':
      case 'time':
        out[name] = raw;
        break;
      case 'integer': {
        if (!/^\d{1,9}$/.test(raw)) throw bad(name, 'expected an integer');
        const n = Number(raw);
        if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) throw bad(name, `expected an integer from ${spec.min} to ${spec.max}`);
        out[name] = n;
        break;
      }
      case 'boolean':
        if (raw !== 'true' && raw !== 'false') throw bad(name, 'expected true or false');
        out[name] = raw === 'true';
        break;
      case 'enum':
        if (!spec.values!.includes(raw)) throw bad(name, `expected one of ${spec.values!.join(', ')}`);
        out[name] = raw;
        break;
      case 'enum-list': {
        const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
        for (const item of items) if (!spec.values!.includes(item)) throw bad(name, `expected a comma-separated list of ${spec.values!.join(', ')}, got ${JSON.stringify(item)}`);
        out[name] = items;
        break;
      }
    }
  }
  return out;
}

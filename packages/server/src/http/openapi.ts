import { RISK_LEVELS } from '../store/query.js';
import { alertParams, recordParams, sessionParams, summaryParams, type ParamSpec } from './params.js';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const str: Json = { type: 'string' };
const int: Json = { type: 'integer' };
const num: Json = { type: 'number' };
const bool: Json = { type: 'boolean' };
const us = (description: string): Json => ({ type: 'number', description: `${description} (microseconds since the Unix epoch)` });
const enumOf = (values: readonly string[]): Json => ({ type: 'string', enum: [...values] });
const obj = (properties: Json, required: string[] = [], extra: Json = {}): Json => ({ type: 'object', properties, required, ...extra });
const risk = enumOf(RISK_LEVELS);
const status = enumOf(['ok', 'error', 'unknown']);

function paramSchema(p: ParamSpec): Json {
  switch (p.type) {
    case 'string':
      return str;
    case 'time':
      return { oneOf: [{ type: 'string', format: 'date-time' }, { type: 'string', pattern: '^[0-9]+$' }] };
    case 'integer':
      return { type: 'integer', minimum: p.min, maximum: p.max };
    case 'boolean':
      return bool;
    case 'enum':
      return enumOf(p.values!);
    case 'enum-list':
      return { type: 'array', items: enumOf(p.values!) };
  }
}

function params(specs: readonly ParamSpec[]): Json[] {
  return specs.map((p) => {
    const out: Json = { name: p.name, in: 'query', required: false, description: p.description, schema: paramSchema(p) };
    if (p.type === 'enum-list') { out.style = 'form'; out.explode = false; }
    return out;
  });
}

const errorResponses = (...codes: number[]): Json => {
  const text: Record<number, string> = { 400: 'Invalid parameter or body', 404: 'Not found', 413: 'Body too large', 500: 'Internal error' };
  return Object.fromEntries(codes.map((c) => [String(c), { description: text[c], content: { 'application/json': { schema: ref('Error') } } }]));
};
const ok = (description: string, schema: Json): Json => ({ '200': { description, content: { 'application/json': { schema } } } });
const jsonBody = (schema: Json): Json => ({ required: true, content: { 'application/json': { schema } } });
const pathId = (name: string, description: string): Json => ({ name, in: 'path', required: true, description, schema: str });

const schemas: Json = {
  Error: obj({ error: obj({ code: { type: 'string', description: 'Stable `DBTAP_E_*` code' }, message: str, parameter: { type: 'string', description: 'The offending parameter or field, when one is to blame' } }, ['code', 'message']) }, ['error']),
  Endpoint: obj({ ip: str, port: int }, ['ip', 'port']),
  ObjectRef: obj({ schema: str, name: str, op: str }, ['name']),
  AlertInfo: obj({ ruleId: str, name: str, reason: str, group: { type: 'object', additionalProperties: str }, value: num, eventIds: { type: 'array', items: str } }, ['ruleId', 'name', 'reason']),
  AuditEvent: obj(
    {
      id: str, kind: enumOf(['login', 'statement', 'logout', 'alert']), flowId: str,
      ts: us('Request first seen'), endTs: us('Response complete'), durationUs: num,
      client: ref('Endpoint'), server: ref('Endpoint'), dbType: str, dbProduct: str, serverVersion: str, user: str, database: str,
      clientProgram: str, clientLibrary: str, clientHost: str, osUser: str, clientPid: str, sessionId: str, tls: bool,
      attributes: { type: 'object', additionalProperties: str },
      command: str, sql: str, params: { type: 'array', items: {} }, statementId: str,
      statementType: enumOf(['select', 'insert', 'update', 'delete', 'merge', 'ddl', 'dcl', 'tcl', 'other']), verb: str,
      objects: { type: 'array', items: ref('ObjectRef') }, fingerprint: str,
      status, errorCode: { type: ['integer', 'string'] }, sqlState: str, message: str, affectedRows: int, rowsReturned: int,
      lastInsertId: int, warnings: int, columns: { type: 'array', items: str }, rows: { type: 'array', items: { type: 'array', items: { type: ['string', 'null'] } } },
      bytesIn: int, bytesOut: int, truncated: bool, gapBefore: bool, midSession: bool,
      risk, ruleIds: { type: 'array', items: str }, auditObjectId: str, alert: ref('AlertInfo'),
    },
    ['id', 'kind', 'flowId', 'ts', 'client', 'server', 'dbType', 'status'],
    { description: 'One audit record; field meanings in docs/audit-record.md.' },
  ),
  RecordPage: obj({ records: { type: 'array', items: ref('AuditEvent') }, nextCursor: str }, ['records']),
  SessionSummary: obj(
    {
      id: { type: 'string', description: 'The flowId of its records' }, sessionId: str, start: us('First record'), end: us('Last record ended'),
      client: ref('Endpoint'), server: ref('Endpoint'), dbType: str, dbProduct: str, user: str, database: str, clientProgram: str, auditObjectId: str,
      login: status, ended: bool, records: int, statements: int, errors: int, maxRisk: risk,
    },
    ['id', 'start', 'end', 'client', 'server', 'dbType', 'ended', 'records', 'statements', 'errors', 'maxRisk'],
  ),
  SessionPage: obj({ sessions: { type: 'array', items: ref('SessionSummary') }, nextCursor: str }, ['sessions']),
  TimelineEntry: obj({ record: ref('AuditEvent'), offsetUs: { type: 'number', description: 'From session start to this record' }, idleUs: { type: 'number', description: 'Client idle time before this record' } }, ['record', 'offsetUs', 'idleUs']),
  SessionTimeline: obj({ session: ref('SessionSummary'), entries: { type: 'array', items: ref('TimelineEntry') } }, ['session', 'entries']),
  Acknowledgement: obj({ by: str, at: us('When') }, ['by', 'at']),
  StoredAlert: obj({ record: ref('AuditEvent'), acknowledged: ref('Acknowledgement') }, ['record']),
  AlertPage: obj({ alerts: { type: 'array', items: ref('StoredAlert') }, nextCursor: str }, ['alerts']),
  AckRequest: obj({ by: { type: 'string', minLength: 1, maxLength: 256 } }, ['by']),
  AckResponse: obj({ id: str, acknowledged: ref('Acknowledgement') }, ['id', 'acknowledged']),
  AuditObject: obj(
    {
      id: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' }, name: str, enabled: bool, dbType: str, version: str,
      addresses: { type: 'array', items: str, description: 'IPv4/IPv6 addresses or CIDR blocks; absent: any address' },
      ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, minItems: 1 },
      host: { type: 'string', description: 'Input shorthand for a one-entry addresses list' },
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Input shorthand for a one-entry ports list' },
      ruleGroup: str, charset: str, department: str, owner: str, related: { type: 'array', items: str }, notes: str,
    },
    ['id', 'dbType'], { additionalProperties: false },
  ),
  AuditObjectList: obj({ objects: { type: 'array', items: ref('AuditObject') } }, ['objects']),
  RuleGroup: obj(
    { id: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' }, name: str, enabled: bool, ruleIds: { type: 'array', items: str }, risk, description: str },
    ['id', 'enabled'], { additionalProperties: false },
  ),
  RuleGroupList: obj({ ruleGroups: { type: 'array', items: ref('RuleGroup') } }, ['ruleGroups']),
  CountEntry: obj({ key: str, count: int }, ['key', 'count']),
  SummaryReport: obj(
    {
      from: num, to: num, total: int,
      byKind: { type: 'array', items: ref('CountEntry') }, byStatementType: { type: 'array', items: ref('CountEntry') },
      byUser: { type: 'array', items: ref('CountEntry') }, byObject: { type: 'array', items: ref('CountEntry') },
      byStatus: { type: 'array', items: ref('CountEntry') }, byRisk: { type: 'array', items: ref('CountEntry') },
    },
    ['total', 'byKind', 'byStatementType', 'byUser', 'byObject', 'byStatus', 'byRisk'],
  ),
  StoreStats: obj({ records: int, sessions: int, alerts: int, unacknowledgedAlerts: int, bytes: int, oldest: num, newest: num }, ['records', 'sessions', 'alerts', 'unacknowledgedAlerts', 'bytes']),
};

/** The OpenAPI 3.1 document of the API, served at `/api/openapi.json`. */
export function openApiDocument(version = '0.1.0'): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'dbtap audit API',
      version,
      description: 'Search and export audit records, browse and replay sessions, triage alerts, manage audit objects and rule groups. Times are ISO 8601 or microseconds since the Unix epoch; pages are chained with opaque cursors.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    paths: {
      '/api/records': {
        get: {
          operationId: 'searchRecords', summary: 'Search audit records; export them as CSV or NDJSON', parameters: params(recordParams),
          responses: {
            '200': {
              description: 'A page of records (json), or every match (csv, ndjson)',
              content: { 'application/json': { schema: ref('RecordPage') }, 'text/csv': { schema: str }, 'application/x-ndjson': { schema: str } },
            },
            ...errorResponses(400),
          },
        },
      },
      '/api/sessions': { get: { operationId: 'listSessions', summary: 'List sessions overlapping a time range', parameters: params(sessionParams), responses: { ...ok('A page of sessions', ref('SessionPage')), ...errorResponses(400) } } },
      '/api/sessions/{id}': {
        get: { operationId: 'getSession', summary: 'One session with its records in order and replay timings', parameters: [pathId('id', 'Session id (flowId)')], responses: { ...ok('The session', ref('SessionTimeline')), ...errorResponses(404) } },
      },
      '/api/alerts': { get: { operationId: 'listAlerts', summary: 'List alerts with their acknowledgement', parameters: params(alertParams), responses: { ...ok('A page of alerts', ref('AlertPage')), ...errorResponses(400) } } },
      '/api/alerts/{id}/ack': {
        post: {
          operationId: 'acknowledgeAlert', summary: 'Acknowledge an alert (idempotent: the first acknowledgement stays)', parameters: [pathId('id', 'Alert record id')],
          requestBody: jsonBody(ref('AckRequest')), responses: { ...ok('Acknowledged', ref('AckResponse')), ...errorResponses(400, 404, 413) },
        },
      },
      '/api/objects': {
        get: { operationId: 'listObjects', summary: 'Audit objects (monitored databases)', responses: ok('The list', ref('AuditObjectList')) },
        put: { operationId: 'replaceObjects', summary: 'Replace the audit objects', requestBody: jsonBody(ref('AuditObjectList')), responses: { ...ok('The stored list', ref('AuditObjectList')), ...errorResponses(400, 413) } },
      },
      '/api/rule-groups': {
        get: { operationId: 'listRuleGroups', summary: 'Rule groups', responses: ok('The list', ref('RuleGroupList')) },
        put: { operationId: 'replaceRuleGroups', summary: 'Replace the rule groups', requestBody: jsonBody(ref('RuleGroupList')), responses: { ...ok('The stored list', ref('RuleGroupList')), ...errorResponses(400, 413) } },
      },
      '/api/reports/{kind}': {
        get: {
          operationId: 'getReport', summary: 'A report; kind `summary` counts records by kind, statement type, user, object, status and risk over a range',
          parameters: [{ ...pathId('kind', 'Report kind'), schema: enumOf(['summary']) }, ...params(summaryParams)],
          responses: { ...ok('The report', ref('SummaryReport')), ...errorResponses(400, 404) },
        },
      },
      '/api/stats': { get: { operationId: 'getStats', summary: 'Store-wide counters', responses: ok('Counters', ref('StoreStats')) } },
      '/api/system-log': {
        get: {
          operationId: 'getSystemLog', summary: 'Administrative actions and refused requests, newest last (auditor role)',
          parameters: [{ name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 100000 } }],
          responses: {
            ...ok('Entries', obj({ entries: { type: 'array', items: obj({ ts: str, actor: str, role: str, action: str, remote: str, ok: bool, detail: { type: 'object' } }, ['ts', 'actor', 'action', 'ok']) } }, ['entries'])),
            ...errorResponses(400),
          },
        },
      },
      '/api/openapi.json': { get: { operationId: 'getOpenApi', summary: 'This document', responses: ok('OpenAPI 3.1 document', { type: 'object' }) } },
      '/healthz': { get: { operationId: 'health', summary: 'Liveness', responses: ok('Alive', obj({ status: { const: 'ok' } }, ['status'])) } },
      '/metrics': {
        get: { operationId: 'metrics', summary: 'Counters in the Prometheus text format', responses: { '200': { description: 'Prometheus exposition format 0.0.4', content: { 'text/plain': { schema: str } } } } },
      },
    },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API token of a user with one role (sysadmin, secadmin, auditor); required when the server has api.users' } } },
    security: [{ bearer: [] }],
  };
}

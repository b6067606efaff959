import { AUDIT_EVENT_KINDS, RISK_LEVELS } from '@dbtap/core';
import { alertParams, recordParams, reportParams, sessionParams, type ParamSpec } from './params.js';

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
  const text: Record<number, string> = {
    400: 'Invalid parameter or body', 403: 'Host not this server, or a cross-site request', 404: 'Not found', 413: 'Body too large', 415: 'Body not sent as application/json', 500: 'Internal error',
  };
  return Object.fromEntries(codes.map((c) => [String(c), { description: text[c], content: { 'application/json': { schema: ref('Error') } } }]));
};
const ok = (description: string, schema: Json): Json => ({ '200': { description, content: { 'application/json': { schema } } } });
const jsonBody = (schema: Json): Json => ({ required: true, content: { 'application/json': { schema } } });
const pathId = (name: string, description: string): Json => ({ name, in: 'path', required: true, description, schema: str });

// Schemas of the report kinds (see docs/reports.md); field meanings match the TypeScript types in src/reports/types.ts.
const arr = (items: Json): Json => ({ type: 'array', items });
const reportHeader = (kind: string): Json => ({
  kind: { const: kind }, generatedAt: us('When the report was made'), from: us('Range start'), to: us('Range end (exclusive)'),
  firstTs: us('Oldest record covered'), lastTs: us('Newest record covered'), auditObjectId: str,
});
const reportEvent = obj(
  {
    id: str, kind: enumOf(AUDIT_EVENT_KINDS), ts: us('Request seen'), durationUs: num, auditObjectId: str, user: str, clientIp: str, program: str,
    database: str, statementType: str, verb: str, fingerprint: str, sql: { type: 'string', description: 'Cut to 2000 characters' }, objects: arr(str), status,
    errorCode: str, message: str, risk, ruleIds: arr(str),
  },
  ['id', 'kind', 'ts', 'clientIp', 'status'],
);
const statementStat = obj(
  {
    fingerprint: str, statementType: str, verb: str, sample: { type: 'string', description: 'SQL of the slowest execution' },
    count: int, errors: int, timed: int, totalUs: num, avgUs: num, minUs: num, p95Us: { type: 'number', description: '95th percentile, nearest rank' }, maxUs: num,
    timeShare: { type: 'number', description: 'Share of the total response time, 0 to 1' }, rowsReturned: num, affectedRows: num, sessions: int,
    firstTs: us('First execution'), lastTs: us('Last execution'),
  },
  ['fingerprint', 'count', 'errors', 'timed', 'totalUs', 'timeShare', 'rowsReturned', 'affectedRows', 'sessions'],
);
const sourceStat = obj(
  { key: str, sessions: int, logins: int, failedLogins: int, statements: int, errors: int, totalUs: num, maxRisk: risk, firstTs: us('First record'), lastTs: us('Last record') },
  ['key', 'sessions', 'logins', 'failedLogins', 'statements', 'errors', 'totalUs', 'maxRisk'],
);
const reportSchemas: Json = {
  ReportEvent: reportEvent,
  StatementStat: statementStat,
  StatementsReport: obj(
    {
      ...reportHeader('statements'),
      totals: obj({ statements: int, fingerprints: int, errors: int, timed: int, totalUs: num, p95Us: num, rowsReturned: num, affectedRows: num }, ['statements', 'fingerprints', 'errors', 'timed', 'totalUs', 'rowsReturned', 'affectedRows']),
      fingerprints: arr(ref('StatementStat')),
    },
    ['kind', 'generatedAt', 'totals', 'fingerprints'],
    { description: 'Statement statistics per fingerprint, largest total response time first' },
  ),
  ServerReport: obj(
    {
      ...reportHeader('server'), bucketUs: { type: 'integer', description: 'Width of a volume bucket, µs' },
      objects: arr(obj(
        {
          auditObjectId: str,
          totals: obj({ records: int, sessions: int, logins: int, failedLogins: int, statements: int, errors: int, totalUs: num, alerts: int }, ['records', 'sessions', 'logins', 'failedLogins', 'statements', 'errors', 'totalUs', 'alerts']),
          volume: arr(obj({ ts: us('Bucket start'), statements: int, errors: int, logins: int, failedLogins: int }, ['ts', 'statements', 'errors', 'logins', 'failedLogins'])),
          topFingerprints: arr(ref('StatementStat')),
          errors: arr(obj({ code: str, count: int, message: str, fingerprint: str, lastTs: us('Latest') }, ['code', 'count'])),
          slowest: arr(ref('ReportEvent')),
          objects: arr(obj({ object: str, count: int, errors: int, byType: { type: 'object', additionalProperties: int }, lastTs: us('Last access') }, ['object', 'count', 'errors', 'byType'])),
        },
        ['auditObjectId', 'totals', 'volume', 'topFingerprints', 'errors', 'slowest', 'objects'],
      )),
    },
    ['kind', 'generatedAt', 'bucketUs', 'objects'],
    { description: 'Server analysis per audit object' },
  ),
  SourceReport: obj(
    {
      ...reportHeader('source'), clientIps: arr(sourceStat), users: arr(sourceStat), programs: arr(sourceStat),
      combinations: arr(obj({ clientIp: str, user: str, program: str, records: int, sessions: int, errors: int, lastTs: us('Last record') }, ['clientIp', 'user', 'program', 'records', 'sessions', 'errors'])),
    },
    ['kind', 'generatedAt', 'clientIps', 'users', 'programs', 'combinations'],
    { description: 'Source analysis per client address, user and program' },
  ),
  ComplianceReport: obj(
    {
      ...reportHeader('compliance'),
      settings: obj(
        {
          minRisk: risk, sensitiveTables: arr(str),
          workingHours: obj({ timeZone: str, start: str, end: str, days: arr({ type: 'integer', minimum: 0, maximum: 6 }) }, ['timeZone', 'start', 'end', 'days']),
        },
        ['minRisk', 'workingHours', 'sensitiveTables'],
      ),
      sections: arr(obj(
        {
          id: enumOf(['riskyOperations', 'privilegeChanges', 'accountChanges', 'failedLogins', 'offHours', 'sensitiveAccess']), title: str, description: str,
          count: int, errors: int, sessions: int,
          breakdowns: arr(obj({ by: str, entries: arr(obj({ key: str, count: int, errors: int }, ['key', 'count', 'errors'])) }, ['by', 'entries'])),
          events: arr(ref('ReportEvent')),
        },
        ['id', 'title', 'description', 'count', 'errors', 'sessions', 'breakdowns', 'events'],
      )),
    },
    ['kind', 'generatedAt', 'settings', 'sections'],
    { description: 'Compliance findings' },
  ),
};

const schemas: Json = {
  Error: obj({ error: obj({ code: { type: 'string', description: 'Stable `DBTAP_E_*` code' }, message: str, parameter: { type: 'string', description: 'The offending parameter or field, when one is to blame' } }, ['code', 'message']) }, ['error']),
  Endpoint: obj({ ip: str, port: int }, ['ip', 'port']),
  ObjectRef: obj({ schema: str, name: str, op: str }, ['name']),
  AlertInfo: obj({ ruleId: str, name: str, reason: str, group: { type: 'object', additionalProperties: str }, value: num, eventIds: { type: 'array', items: str } }, ['ruleId', 'name', 'reason']),
  AuditEvent: obj(
    {
      id: str, kind: enumOf(AUDIT_EVENT_KINDS), flowId: str,
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
  ...reportSchemas,
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
          requestBody: jsonBody(ref('AckRequest')), responses: { ...ok('Acknowledged', ref('AckResponse')), ...errorResponses(400, 404, 403, 413, 415) },
        },
      },
      '/api/objects': {
        get: { operationId: 'listObjects', summary: 'Audit objects (monitored databases)', responses: ok('The list', ref('AuditObjectList')) },
        put: { operationId: 'replaceObjects', summary: 'Replace the audit objects', requestBody: jsonBody(ref('AuditObjectList')), responses: { ...ok('The stored list', ref('AuditObjectList')), ...errorResponses(400, 403, 413, 415) } },
      },
      '/api/rule-groups': {
        get: { operationId: 'listRuleGroups', summary: 'Rule groups', responses: ok('The list', ref('RuleGroupList')) },
        put: { operationId: 'replaceRuleGroups', summary: 'Replace the rule groups', requestBody: jsonBody(ref('RuleGroupList')), responses: { ...ok('The stored list', ref('RuleGroupList')), ...errorResponses(400, 403, 413, 415) } },
      },
      '/api/reports/{kind}': {
        get: {
          operationId: 'getReport',
          summary: 'A report over a time range, as JSON, CSV or a self-contained HTML page',
          description:
            '`summary` counts records by kind, statement type, user, object, status and risk (parameters from, to, auditObjectId, top; JSON only). ' +
            '`server`: per audit object, volume over time, top fingerprints, errors, slowest statements, objects touched. ' +
            '`source`: activity per client address, user and program. ' +
            '`compliance`: risky operations, privilege and account changes, failed logins, off-hours access, sensitive-table access. ' +
            '`statements`: statistics per fingerprint (count, errors, total/avg/p95/max time, rows), largest total time first.',
          parameters: [{ ...pathId('kind', 'Report kind'), schema: enumOf(['summary', 'server', 'source', 'compliance', 'statements']) }, ...params(reportParams)],
          responses: {
            '200': {
              description: 'The report',
              content: {
                'application/json': { schema: { oneOf: [ref('SummaryReport'), ref('ServerReport'), ref('SourceReport'), ref('ComplianceReport'), ref('StatementsReport')] } },
                'text/csv': { schema: str },
                'text/html': { schema: str },
              },
            },
            ...errorResponses(400, 404),
          },
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

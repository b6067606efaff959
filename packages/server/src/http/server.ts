import { AccessControl, AccessErrorCodes, SystemLog, type Caller } from './access.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { once } from 'node:events';
import { DbtapError, ErrorCodes, formatTimestamp, isDbtapError, type AuditEvent } from '@dbtap/core';
import { jsonReplacer, toNdjson } from '../format.js';
import { StoreErrorCodes } from '../store/query.js';
import type { AlertQuery, AuditStore, RecordQuery, SessionQuery, SummaryQuery } from '../store/types.js';
import { Histogram } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { alertParams, parseParams, recordParams, reportParams, sessionParams, summaryParams } from './params.js';
import { buildReport, REPORT_KINDS, renderReport, reportOptionsFromText, type ReportFormat, type ReportKind, type ReportOptions } from '../reports/index.js';
import {
  HttpErrorCodes,
  MemoryListProvider,
  parseAuditObjects,
  parseRuleGroups,
  type AuditObjectDef,
  type ObjectProvider,
  type RuleGroupDef,
  type RuleGroupProvider,
} from './providers.js';

/** One figure for `/metrics`. */
export interface MetricSample {
  /** Metric name; characters outside `[a-zA-Z0-9_:]` become `_`. */
  name: string;
  /** `# HELP` text. */
  help?: string;
  /** `# TYPE`; `untyped` when absent. */
  type?: 'counter' | 'gauge' | 'histogram';
  /** The family a histogram's `_bucket`, `_sum` and `_count` samples belong to: the name of its `# HELP` and `# TYPE` lines. */
  family?: string;
  /** The value. */
  value: number;
  /** Label names and values. */
  labels?: Readonly<Record<string, string>>;
}

/**
 * Supplies the daemon's counters for `/metrics` at each scrape: a list of
 * samples, or a plain `{ name: value }` object (exported as untyped).
 */
export type MetricsSource = () =>
  | readonly MetricSample[]
  | Readonly<Record<string, number>>
  | Promise<readonly MetricSample[] | Readonly<Record<string, number>>>;

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  /** The audit store searched and exported. */
  store: AuditStore;
  /** Audit objects behind `/api/objects`; an in-memory list when absent. */
  objects?: ObjectProvider;
  /** Rule groups behind `/api/rule-groups`; an in-memory list when absent. */
  ruleGroups?: RuleGroupProvider;
  /** Counters for `/metrics`, besides the API's own request counters. */
  metrics?: MetricsSource;
  /** Largest request body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Called with unexpected errors (answered as 500 without details). */
  onError?: (err: unknown, req: IncomingMessage) => void;
  /** Version reported in the OpenAPI document. */
  version?: string;
  /** Records fetched per store query while streaming a CSV/NDJSON export (default 1000). */
  exportPageSize?: number;
  /** Users and roles; without it (or with no users) the API is open to every caller. */
  access?: AccessControl;
  /** Where administrative actions and refused requests are written; read back by `/api/system-log`. */
  systemLog?: SystemLog;
  /**
   * Defaults of `/api/reports/{kind}` (working hours, sensitive tables,
   * risky level, rows per table); query parameters override them.
   */
  reports?: ReportOptions;
  /**
   * Serve HTTPS with these options (e.g. from `listenerTlsOptions`); plain
   * HTTP is then not answered at all.
   */
  tls?: TlsOptions;
  /**
   * Names (or addresses) clients may put in the `Host` header besides
   * `localhost` and the address the connection arrived on. The header is
   * checked when access control is off or when this list is given, so a web
   * page whose name was re-bound to 127.0.0.1 cannot read or change the
   * API (DNS rebinding).
   */
  hosts?: readonly string[];
}

/** The host name of a `Host` header (`[::1]:8080` -> `::1`), lower case, without a trailing dot. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']')) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

/** Methods that change state; a browser may send them cross-site without asking (a CORS "simple request"). */
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Refuses what a browser could be made to send on another site's behalf:
 * a `Host` naming a server other than this one (DNS rebinding; checked when
 * `checkHost`), and on state-changing methods an `Origin` (or
 * `Sec-Fetch-Site`) of another site (cross-site request forgery).
 */
function checkBrowserRequest(req: IncomingMessage, checkHost: boolean, hosts: ReadonlySet<string>): void {
  const host = req.headers.host;
  if (checkHost && host !== undefined) {
    const name = hostName(host);
    const local = req.socket.localAddress;
    const localName = local === undefined ? undefined : local.startsWith('::ffff:') && isIP(local.slice(7)) === 4 ? local.slice(7) : local;
    if (name !== 'localhost' && name !== localName && !hosts.has(name)) {
      throw new DbtapError(HttpErrorCodes.BAD_HOST, `Host ${JSON.stringify(host)} is not this server (allowed: localhost, ${localName ?? 'the listen address'}${hosts.size > 0 ? `, ${[...hosts].join(', ')}` : ''}; add names to api.hosts)`);
    }
  }
  if (!STATE_CHANGING.has(req.method ?? '')) return;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let same = false;
    try {
      same = host !== undefined && new URL(origin).host === host.toLowerCase();
    } catch {
      // 'null' (sandboxed pages, redirects) and garbage are another site
    }
    if (!same) throw new DbtapError(HttpErrorCodes.CROSS_ORIGIN, `Origin ${JSON.stringify(origin)} is not this server: cross-site ${req.method} refused`);
  } else if (req.headers['sec-fetch-site'] === 'cross-site') {
    throw new DbtapError(HttpErrorCodes.CROSS_ORIGIN, `cross-site ${req.method} refused (Sec-Fetch-Site: cross-site)`);
  }
}

type Handler = (ctx: RequestContext) => Promise<void>;

interface Route {
  /** Path template, also the `route` label of the request counter. */
  template: string;
  pattern: RegExp;
  methods: Partial<Record<string, Handler>>;
}

interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
  caller: Caller;
}

const csvColumns: [string, (e: AuditEvent) => unknown][] = [
  ['id', (e) => e.id],
  ['kind', (e) => e.kind],
  ['time', (e) => formatTimestamp(e.ts)],
  ['endTime', (e) => (e.endTs === undefined ? undefined : formatTimestamp(e.endTs))],
  ['durationUs', (e) => e.durationUs],
  ['flowId', (e) => e.flowId],
  ['auditObjectId', (e) => e.auditObjectId],
  ['dbType', (e) => e.dbType],
  ['clientIp', (e) => e.client?.ip],
  ['clientPort', (e) => e.client?.port],
  ['serverIp', (e) => e.server?.ip],
  ['serverPort', (e) => e.server?.port],
  ['user', (e) => e.user],
  ['database', (e) => e.database],
  ['clientProgram', (e) => e.clientProgram],
  ['statementType', (e) => e.statementType],
  ['verb', (e) => e.verb],
  ['objects', (e) => e.objects?.map((o) => (o.schema ? `${o.schema}.${o.name}` : o.name)).join(';')],
  ['status', (e) => e.status],
  ['errorCode', (e) => e.errorCode],
  ['sqlState', (e) => e.sqlState],
  ['message', (e) => e.message],
  ['affectedRows', (e) => e.affectedRows],
  ['rowsReturned', (e) => e.rowsReturned],
  ['risk', (e) => e.risk],
  ['ruleIds', (e) => e.ruleIds?.join(';')],
  ['sql', (e) => e.sql ?? e.alert?.reason],
];

/**
 * One CSV cell (RFC 4180). Text that a spreadsheet would run as a formula
 * (leading `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`, the usual
 * defence against CSV injection; the NDJSON export is the lossless one.
 */
export function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV header line of the records export. */
export function csvHeader(): string {
  return csvColumns.map(([name]) => name).join(',');
}

/** One record as a CSV line of the records export. */
export function toCsvRow(e: AuditEvent): string {
  return csvColumns.map(([, get]) => csvCell(get(e))).join(',');
}

function metricName(name: string): string {
  const n = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

function labelText(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${metricName(k).replace(/:/g, '_')}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Renders samples in the Prometheus text exposition format 0.0.4. */
export function prometheusText(samples: readonly MetricSample[]): string {
  const byName = new Map<string, MetricSample[]>();
  for (const s of samples) {
    const name = metricName(s.family ?? s.name);
    let l = byName.get(name);
    if (l === undefined) byName.set(name, (l = []));
    l.push(s);
  }
  let out = '';
  for (const [name, list] of byName) {
    const head = list[0]!;
    if (head.help !== undefined) out += `# HELP ${name} ${head.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`;
    out += `# TYPE ${name} ${head.type ?? 'untyped'}\n`;
    for (const s of list) out += `${metricName(s.name)}${labelText(s.labels)} ${numberText(s.value)}\n`;
  }
  return out;
}

function statusOf(err: unknown): number {
  if (!isDbtapError(err)) return 500;
  switch (err.code) {
    case HttpErrorCodes.BAD_REQUEST:
    case HttpErrorCodes.BAD_JSON:
    case StoreErrorCodes.BAD_QUERY:
    case StoreErrorCodes.REPORT_RANGE:
    case StoreErrorCodes.BAD_CURSOR:
    case StoreErrorCodes.BAD_RECORD:
    case ErrorCodes.INVALID_ARGUMENT:
    case ErrorCodes.CONFIG:
      return 400;
    case AccessErrorCodes.UNAUTHENTICATED:
      return 401;
    case AccessErrorCodes.FORBIDDEN:
    case HttpErrorCodes.BAD_HOST:
    case HttpErrorCodes.CROSS_ORIGIN:
      return 403;
    case HttpErrorCodes.NOT_FOUND:
    case HttpErrorCodes.UNKNOWN_REPORT:
      return 404;
    case HttpErrorCodes.METHOD_NOT_ALLOWED:
      return 405;
    case StoreErrorCodes.RETENTION_BUSY:
      return 409;
    case HttpErrorCodes.PAYLOAD_TOO_LARGE:
      return 413;
    case HttpErrorCodes.UNSUPPORTED_MEDIA_TYPE:
      return 415;
    case StoreErrorCodes.STORE_CLOSED:
      return 503;
    default:
      return 500;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, jsonReplacer);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function notFound(what: string): DbtapError {
  return new DbtapError(HttpErrorCodes.NOT_FOUND, what);
}

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  // a browser posts text/plain (and form types) cross-site without a preflight; application/json it may not
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new DbtapError(HttpErrorCodes.UNSUPPORTED_MEDIA_TYPE, `body: Content-Type must be application/json${type === '' ? ' (none given)' : `, not ${type}`}`);
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new DbtapError(HttpErrorCodes.PAYLOAD_TOO_LARGE, `body larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new DbtapError(HttpErrorCodes.PAYLOAD_TOO_LARGE, `body larger than ${max} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new DbtapError(HttpErrorCodes.BAD_JSON, 'body: expected a JSON document, got nothing');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DbtapError(HttpErrorCodes.BAD_JSON, `body: not valid JSON: ${(err as Error).message}`);
  }
}

/** Writes a chunk honouring back-pressure; false when the client went away. */
async function write(res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    await Promise.race([once(res, 'drain'), once(res, 'close')]);
  }
  return !res.destroyed;
}

/**
 * Creates the HTTP API (node:http, JSON) over an {@link AuditStore}. The
 * server is returned unbound; the caller listens it (dbtap binds
 * 127.0.0.1:8080 by default). With `tls` it is an HTTPS server. Without
 * `access` users anyone who reaches it may call it: bind it to loopback.
 * Requests naming another `Host` (when access control is off), state-changing
 * requests from another `Origin`, and bodies that are not
 * `application/json` are refused.
 *
 * Paths: `/api/records`, `/api/sessions`, `/api/sessions/{id}`,
 * `/api/alerts`, `POST /api/alerts/{id}/ack`, `/api/objects`,
 * `/api/rule-groups`, `/api/reports/{kind}`, `/api/stats`,
 * `/api/openapi.json`, `/healthz`, `/metrics`. Errors are JSON
 * `{ error: { code, message, parameter? } }` with a stable `DBTAP_E_*` code.
 */
export function createApiServer(options: ApiServerOptions): Server {
  const store = options.store;
  if (store === undefined || store === null) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, 'createApiServer: store missing');
  const objects: ObjectProvider = options.objects ?? new MemoryListProvider<AuditObjectDef>();
  const ruleGroups: RuleGroupProvider = options.ruleGroups ?? new MemoryListProvider<RuleGroupDef>();
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const exportPage = options.exportPageSize ?? 1000;
  const doc = JSON.stringify(openApiDocument(options.version));
  const requests = new Map<string, number>();
  const startedAt = Date.now();
  const access = options.access ?? new AccessControl([]);
  const systemLog = options.systemLog ?? new SystemLog();
  const hosts = new Set((options.hosts ?? []).map(hostName));
  const checkHost = !access.enabled || options.hosts !== undefined;
  const logAction = (ctx: RequestContext, action: string, detail: Record<string, unknown>): void =>
    systemLog.write({ actor: ctx.caller.name, ...(ctx.caller.role ? { role: ctx.caller.role } : {}), action, remote: ctx.req.socket.remoteAddress ?? '', ok: true, detail });

  const records: Handler = async ({ res, url }) => {
    const q = parseParams(url.searchParams, recordParams);
    const format = (q.format as string | undefined) ?? 'json';
    delete q.format;
    if (format === 'json') {
      sendJson(res, 200, await store.search(q as RecordQuery));
      return;
    }
    // Export: follow cursors until done (or `limit` records); the first page
    // is fetched before the headers go out so that a bad query is still a 400.
    const max = (q.limit as number | undefined) ?? Infinity;
    const pageQuery = { ...q, limit: Math.min(exportPage, max) } as RecordQuery;
    let page = await store.search(pageQuery);
    const csv = format === 'csv';
    const stamp = formatTimestamp(Date.now() * 1000).replace(/[-:]/g, '').slice(0, 15);
    res.writeHead(200, {
      'content-type': csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="dbtap-records-${stamp}.${csv ? 'csv' : 'ndjson'}"`,
      'cache-control': 'no-store',
    });
    if (csv && !(await write(res, `${csvHeader()}\r\n`))) return;
    let sent = 0;
    for (;;) {
      const lines = page.records.slice(0, Math.max(0, max - sent)).map((e) => (csv ? `${toCsvRow(e)}\r\n` : `${toNdjson(e)}\n`));
      sent += lines.length;
      if (lines.length > 0 && !(await write(res, lines.join('')))) return;
      if (page.nextCursor === undefined || sent >= max) break;
      page = await store.search({ ...pageQuery, limit: Math.min(exportPage, max - sent), cursor: page.nextCursor });
    }
    res.end();
  };

  const routes: Route[] = [
    { template: '/api/records', pattern: /^\/api\/records$/, methods: { GET: records } },
    {
      template: '/api/sessions', pattern: /^\/api\/sessions$/,
      methods: { GET: async ({ res, url }) => sendJson(res, 200, await store.sessions(parseParams(url.searchParams, sessionParams) as SessionQuery)) },
    },
    {
      template: '/api/sessions/{id}', pattern: /^\/api\/sessions\/([^/]+)$/,
      methods: {
        GET: async ({ res, url, params }) => {
          parseParams(url.searchParams, []);
          const t = await store.session(params[0]!);
          if (t === undefined) throw notFound(`no session ${JSON.stringify(params[0])}`);
          sendJson(res, 200, t);
        },
      },
    },
    {
      template: '/api/alerts', pattern: /^\/api\/alerts$/,
      methods: { GET: async ({ res, url }) => sendJson(res, 200, await store.alerts(parseParams(url.searchParams, alertParams) as AlertQuery)) },
    },
    {
      template: '/api/alerts/{id}/ack', pattern: /^\/api\/alerts\/([^/]+)\/ack$/,
      methods: {
        POST: async (ctx) => {
          const { req, res, params } = ctx;
          const body = await readJson(req, maxBody);
          // with access control the acknowledging user is the caller, whatever the body says
          const by = access.enabled ? ctx.caller.name : body !== null && typeof body === 'object' ? (body as Record<string, unknown>).by : undefined;
          if (typeof by !== 'string' || by.trim() === '' || by.length > 256) {
            throw new DbtapError(HttpErrorCodes.BAD_REQUEST, 'by: required, a name of 1 to 256 characters', { parameter: 'by' });
          }
          const ack = await store.acknowledgeAlert(params[0]!, by);
          if (ack === undefined) throw notFound(`no alert ${JSON.stringify(params[0])}`);
          logAction(ctx, 'alert.ack', { alert: params[0] });
          sendJson(res, 200, { id: params[0], acknowledged: ack });
        },
      },
    },
    {
      template: '/api/objects', pattern: /^\/api\/objects$/,
      methods: {
        GET: async ({ res }) => sendJson(res, 200, { objects: await objects.list() }),
        PUT: async (ctx) => {
          const { req, res } = ctx;
          const list = parseAuditObjects(await readJson(req, maxBody));
          const before = (await objects.list()).map((o) => o.id);
          await objects.replace(list);
          logAction(ctx, 'objects.replace', { before, after: list.map((o) => o.id) });
          sendJson(res, 200, { objects: await objects.list() });
        },
      },
    },
    {
      template: '/api/rule-groups', pattern: /^\/api\/rule-groups$/,
      methods: {
        GET: async ({ res }) => sendJson(res, 200, { ruleGroups: await ruleGroups.list() }),
        PUT: async (ctx) => {
          const { req, res } = ctx;
          const list = parseRuleGroups(await readJson(req, maxBody));
          const before = (await ruleGroups.list()).map((g) => `${g.id}:${g.enabled ? 'on' : 'off'}`);
          await ruleGroups.replace(list);
          logAction(ctx, 'rule-groups.replace', { before, after: list.map((g) => `${g.id}:${g.enabled ? 'on' : 'off'}`) });
          sendJson(res, 200, { ruleGroups: await ruleGroups.list() });
        },
      },
    },
    {
      template: '/api/reports/{kind}', pattern: /^\/api\/reports\/([^/]+)$/,
      methods: {
        GET: async ({ res, url, params }) => {
          const kind = params[0]!;
          if (kind === 'summary') {
            sendJson(res, 200, await store.summary(parseParams(url.searchParams, summaryParams) as SummaryQuery));
            return;
          }
          if (!(REPORT_KINDS as readonly string[]).includes(kind)) {
            throw new DbtapError(HttpErrorCodes.UNKNOWN_REPORT, `no report kind ${JSON.stringify(kind)} (known: summary, ${REPORT_KINDS.join(', ')})`);
          }
          const q = parseParams(url.searchParams, reportParams) as Record<string, string | number | undefined>;
          if (q.object !== undefined && q.auditObjectId !== undefined) throw new DbtapError(HttpErrorCodes.BAD_REQUEST, 'object: give object or auditObjectId, not both', { parameter: 'object' });
          const opts = reportOptionsFromText({
            from: q.from as string | undefined, to: q.to as string | undefined, object: (q.object ?? q.auditObjectId) as string | undefined,
            top: q.top === undefined ? undefined : String(q.top), bucket: q.bucket as string | undefined, minRisk: q.minRisk as string | undefined,
            timeZone: q.timeZone as string | undefined, workHours: q.workHours as string | undefined, workDays: q.workDays as string | undefined,
            sensitive: q.sensitive as string | undefined,
          }, options.reports);
          const format = (q.format as ReportFormat | undefined) ?? 'json';
          const report = await buildReport(store, kind as ReportKind, opts);
          if (format === 'json') {
            sendJson(res, 200, report);
            return;
          }
          const out = renderReport(report, format);
          const stamp = formatTimestamp(report.generatedAt).replace(/[-:]/g, '').slice(0, 15);
          res.writeHead(200, {
            'content-type': out.contentType,
            'content-length': Buffer.byteLength(out.body),
            'content-disposition': `${format === 'html' ? 'inline' : 'attachment'}; filename="dbtap-${kind}-report-${stamp}.${out.extension}"`,
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
            ...(format === 'html' ? { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" } : {}),
          });
          res.end(out.body);
        },
      },
    },
    {
      template: '/api/system-log', pattern: /^\/api\/system-log$/,
      methods: {
        GET: async ({ res, url }) => {
          const raw = url.searchParams.get('limit');
          for (const k of url.searchParams.keys()) if (k !== 'limit') throw new DbtapError(HttpErrorCodes.BAD_REQUEST, `${k}: unknown parameter (allowed: limit)`, { parameter: k });
          const limit = raw === null ? 1000 : Number(raw);
          if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new DbtapError(HttpErrorCodes.BAD_REQUEST, 'limit: expected an integer from 1 to 100000', { parameter: 'limit' });
          sendJson(res, 200, { entries: systemLog.tail(limit) });
        },
      },
    },
    { template: '/api/stats', pattern: /^\/api\/stats$/, methods: { GET: async ({ res }) => sendJson(res, 200, await store.stats()) } },
    {
      template: '/api/openapi.json', pattern: /^\/api\/openapi\.json$/,
      methods: {
        GET: async ({ res }) => {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(doc) });
          res.end(doc);
        },
      },
    },
    { template: '/healthz', pattern: /^\/healthz$/, methods: { GET: async ({ res }) => sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000) }) } },
    {
      template: '/metrics', pattern: /^\/metrics$/,
      methods: {
        GET: async ({ res }) => {
          const samples: MetricSample[] = [];
          if (options.metrics !== undefined) {
            const got = await options.metrics();
            if (Array.isArray(got)) samples.push(...(got as readonly MetricSample[]));
            else for (const [name, value] of Object.entries(got as Record<string, number>)) samples.push({ name, value });
          }
          for (const [key, value] of requests) {
            const [route, code] = key.split(' ');
            samples.push({ name: 'dbtap_http_requests_total', help: 'HTTP API requests by route and status code.', type: 'counter', value, labels: { route: route!, code: code! } });
          }
          samples.push(...requestSeconds.samples());
          const text = prometheusText(samples);
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
      },
    },
  ];

  const count = (route: string, status: number): void => {
    const key = `${route} ${status}`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
  };

  const requestSeconds = new Histogram('dbtap_http_request_seconds', 'HTTP API request latency by route, seconds (until the answer is written).');
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const answered = requestSeconds.startTimer();
    let template = 'unmatched';
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const route = routes.find((r) => r.pattern.test(url.pathname));
      if (route === undefined) throw notFound(`no such path ${url.pathname}`);
      template = route.template;
      const handler = route.methods[req.method ?? ''];
      if (handler === undefined) {
        res.setHeader('allow', Object.keys(route.methods).join(', '));
        throw new DbtapError(HttpErrorCodes.METHOD_NOT_ALLOWED, `${req.method} not allowed on ${route.template} (allowed: ${Object.keys(route.methods).join(', ')})`);
      }
      let params: string[];
      try {
        params = route.pattern.exec(url.pathname)!.slice(1).map(decodeURIComponent);
      } catch {
        throw new DbtapError(HttpErrorCodes.BAD_REQUEST, 'path: bad percent-encoding');
      }
      checkBrowserRequest(req, checkHost, hosts);
      let caller: Caller;
      try {
        caller = access.authorize(req, route.template, req.method ?? '');
      } catch (err) {
        if (isDbtapError(err)) {
          systemLog.write({ actor: String(err.details?.user ?? 'unknown'), action: 'access.denied', remote: req.socket.remoteAddress ?? '', ok: false, detail: { method: req.method, path: route.template, code: err.code } });
          if (err.code === AccessErrorCodes.UNAUTHENTICATED) res.setHeader('www-authenticate', 'Bearer realm="dbtap"');
        }
        throw err;
      }
      await handler({ req, res, url, params, caller });
    } catch (err) {
      const status = statusOf(err);
      if (status === 500) options.onError?.(err, req);
      if (!req.complete) {
        // Answered before the body was read (e.g. too large): discard the
        // rest so the client sees the answer, and do not reuse the connection.
        if (!res.headersSent) res.setHeader('connection', 'close');
        req.resume();
      }
      if (res.headersSent) {
        res.destroy(err instanceof Error ? err : undefined);
      } else {
        const e = isDbtapError(err) && status !== 500 ? err : undefined;
        const body: Record<string, unknown> = { code: e?.code ?? (status === 503 ? StoreErrorCodes.STORE_CLOSED : HttpErrorCodes.INTERNAL), message: e?.message ?? 'internal error' };
        const parameter = e?.details?.parameter ?? e?.details?.path;
        if (typeof parameter === 'string') body.parameter = parameter;
        sendJson(res, status, { error: body });
      }
    } finally {
      count(template, res.statusCode);
      answered({ route: template });
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res);
  };
  return options.tls !== undefined ? createHttpsServer(options.tls, listener) : createServer(listener);
}

import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DbtapError, ErrorCodes, RISK_LEVELS } from '@dbtap/core';
import { MIN_AGENT_TOKEN_LENGTH } from '@dbtap/agent';
import { checkShape, configFail, shape, type Shape } from './validate.js';
import { failWith, validateAuditObjects, type AuditObjectDef } from './objects.js';
import { parseRuleGroups, type RuleGroupDef } from './http/providers.js';
import { parseApiUsers, type ApiUser } from './http/access.js';
import { parseNotificationConfig, type ChannelConfig } from './notify/config.js';
import { reportOptionsFromText, type ReportOptions } from './reports/index.js';
import { defaultWorkerCount, MAX_WORKERS } from './workers.js';
import { parseMaskingConfig, type MaskingConfig } from './masking/index.js';
import { parseIntegrityConfig, type IntegrityConfig } from './integrity/config.js';
import { AgentIdentities, type AgentCredential } from '@dbtap/agent';
import { DEFAULT_MAX_FUTURE_SECONDS, type AgentLimits } from './daemon.js';
import { LISTENER_TLS_SHAPE, listenerTlsOptions, resolveListenerTls, type ListenerTlsConfig } from './http/tls.js';
import { DEFAULT_MASKING } from './masking/config.js';
import { parseStoreConfig, type StoreConfig } from './store/config.js';

const AGENT_LIMIT_KEYS = ['helloTimeoutMs', 'maxHelloBytes', 'maxConnections', 'maxConnectionsPerAddress', 'maxSeqJump'] as const;

/** The limits of the `agents` section that are set, as {@link AuditServerOptions.agentLimits}. */
export function agentLimits(agents: ServerConfig['agents']): AgentLimits {
  const out: AgentLimits = {};
  for (const k of AGENT_LIMIT_KEYS) if (agents[k] !== undefined) out[k] = agents[k];
  return out;
}

/** The server configuration file (`server.yaml` or JSON); every key is optional. */
export interface ServerConfig {
  /** Where the embedded store lives (and the server's own files: objects, rule groups, system log). Default `./data`. */
  dataDir: string;
  /**
   * The audit store of every command: `{type: sqlite}` (the default, the
   * file `path` or `<dataDir>/audit.db`) or `{type: postgres, url, prefix?,
   * partition?}`.
   */
  store: StoreConfig;
  /**
   * Agent listeners. Default `0.0.0.0:9999` and `[::]:9998`. Limits on peers:
   * `helloTimeoutMs` (10000), `maxHelloBytes` before the hello (65536),
   * `maxConnections` (1024) and `maxConnectionsPerAddress` (64); `maxSeqJump`
   * (1000000) bounds how far a batch sequence number may jump. `token`:
   * the shared token(s) agents present, each at least
   * {@link MIN_AGENT_TOKEN_LENGTH} characters. `credentials` (name, token or
   * tokenSha256 or certificateSubject, agentIds) give each agent an identity
   * of its own, bound to the agent ids it may announce. `tls`: certificate and
   * key (and `ca`, `requireClientCert`) of the listeners.
   */
  agents: { listen: Array<{ host: string; port: number }>; token?: string | string[]; tls?: ListenerTlsConfig; credentials?: AgentCredential[] } & AgentLimits;
  /**
   * HTTP API listener. Default `127.0.0.1:8080`; `enabled: false` turns it off.
   * `users` (name, role, token or tokenSha256) turn on access control; without
   * users the API only listens on a loopback address. `tls` serves HTTPS
   * (and no plain HTTP). `hosts`: further names clients may use in the
   * `Host` header besides the listen address and localhost.
   */
  api: { enabled: boolean; host: string; port: number; users: ApiUser[]; tls?: ListenerTlsConfig; hosts?: string[] };
  /** Server ports to audit; default every decoder's default ports. */
  ports?: number[];
  /** Rules: the built-in library (all, or the named policies), extra rule files. */
  rules: { builtin: boolean | string[]; files: string[] };
  /** Monitored databases (audit objects). Changes made through the API are kept in `<dataDir>/objects.json`, which then wins over this list. */
  objects: AuditObjectDef[];
  /** Rule groups (named sets of rule ids with an on/off switch), beside the groups rule files define. API changes go to `<dataDir>/rule-groups.json`. */
  ruleGroups: RuleGroupDef[];
  /** Alert notification channels (syslog, webhook, file); see docs/notifications.md. */
  notifications: ChannelConfig[];
  /** Report defaults: `timeZone`, `workHours` (`08:00-18:00`), `workDays` (`mon-fri`), `sensitive` tables, `minRisk`, `top`; API query parameters override them. */
  reports?: ReportOptions;
  /** Tamper evidence: `keyFile` with the key that signs the store's hash chain (or `DBTAP_INTEGRITY_KEY` / `DBTAP_INTEGRITY_KEY_FILE`). */
  integrity: IntegrityConfig;
  /**
   * What ingest accepts: `maxFutureSeconds` (default 86400), how far past the
   * server's clock a frame's timestamp may lie before the frame is refused.
   */
  ingest: { maxFutureSeconds: number };
  /**
   * Masking of sensitive values before records are stored (`rules`,
   * `replacement`, `hashKeyFile`; see `docs/integrity.md`). Default: the
   * `password` rule ({@link DEFAULT_MASKING}), so secrets of account
   * statements are never stored; `masking: false` turns masking off
   * (undefined here).
   */
  masking?: MaskingConfig;
  /**
   * Pipeline worker threads (reassembly, decoding, rules and masking of the
   * connections sharded over them; the main thread stores). Default one per
   * core but one, at least 1; 0 runs pipelines in the main thread.
   */
  workers: number;
}

/** The configuration used when no file is given. */
export function defaultServerConfig(): ServerConfig {
  return {
    dataDir: './data',
    store: { type: 'sqlite' },
    agents: { listen: [{ host: '0.0.0.0', port: 9999 }, { host: '::', port: 9998 }] },
    api: { enabled: true, host: '127.0.0.1', port: 8080, users: [] },
    rules: { builtin: true, files: [] },
    objects: [],
    ruleGroups: [],
    notifications: [],
    integrity: {},
    ingest: { maxFutureSeconds: DEFAULT_MAX_FUTURE_SECONDS },
    masking: { ...DEFAULT_MASKING, rules: DEFAULT_MASKING.rules.map((r) => ({ ...r })) },
    workers: defaultWorkerCount(),
  };
}

const { string, port, list, map, boolean, either, any, integer } = shape;

/**
 * The shape of the configuration file. Sections with parsers of their own
 * (`store`, `objects`, `ruleGroups`, `notifications`, `integrity`, `masking`,
 * `api.users`) check their keys there, with the same {@link checkKeys}.
 */
const CONFIG_SHAPE: Shape = map({
  dataDir: string(),
  store: any(),
  agents: map({
    listen: list(map({ host: string(), port: port() }, ['host', 'port'])),
    token: either('a string or a list of strings', string(), list(string())),
    helloTimeoutMs: integer(100),
    maxHelloBytes: integer(1024),
    maxConnections: integer(1),
    maxConnectionsPerAddress: integer(1),
    tls: LISTENER_TLS_SHAPE,
    maxSeqJump: integer(1),
    credentials: list(
      map(
        { name: string(), token: string(), tokenSha256: string(), certificateSubject: string(), agentIds: list(string()) },
        ['name', 'agentIds'],
      ),
    ),
  }),
  api: map({ enabled: boolean(), host: string(), port: port(), users: any(), tls: LISTENER_TLS_SHAPE, hosts: list(string()) }),
  ports: list(port()),
  rules: map({ builtin: either('true, false or a list of policy names', boolean(), list(string())), files: list(string()) }),
  objects: any(),
  ruleGroups: any(),
  integrity: any(),
  masking: any(),
  ingest: map({ maxFutureSeconds: integer(0) }),
  workers: integer(0, MAX_WORKERS),
  notifications: any(),
  reports: map({
    timeZone: string(),
    workHours: string(),
    workDays: string(),
    sensitive: either('a table name or a list of them', string(), list(string())),
    minRisk: string(RISK_LEVELS),
    top: either('a whole number', integer(1), string()),
  }),
});

/**
 * Reads a server configuration file (YAML or JSON) over the defaults, then
 * environment overrides (`DBTAP_DATA_DIR`, `DBTAP_API`, `DBTAP_AGENT_TOKEN`,
 * `DBTAP_INTEGRITY_KEY`, `DBTAP_INTEGRITY_KEY_FILE`, `DBTAP_MASKING_KEY`).
 * A missing file, a syntax error or a wrong type throws `DBTAP_E_CONFIG`
 * naming the file and key.
 */
export function loadServerConfig(file?: string, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const cfg = defaultServerConfig();
  let doc: unknown;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `cannot read config ${file}: ${(err as Error).message}`, { file });
    }
    try {
      doc = parseYaml(text, { prettyErrors: true });
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `${file}: not valid YAML/JSON: ${(err as Error).message}`, { file });
    }
    if (doc !== null && doc !== undefined) applyDocument(cfg, doc, file);
  }
  if (env.DBTAP_DATA_DIR) cfg.dataDir = env.DBTAP_DATA_DIR;
  if (env.DBTAP_AGENT_TOKEN) cfg.agents.token = env.DBTAP_AGENT_TOKEN;
  if (env.DBTAP_API) {
    const m = /^(.*):(\d+)$/.exec(env.DBTAP_API);
    if (!m) throw new DbtapError(ErrorCodes.CONFIG, `DBTAP_API must be HOST:PORT, not '${env.DBTAP_API}'`);
    cfg.api = { ...cfg.api, enabled: true, host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(checkShape(Number(m[2]), port(), 'DBTAP_API', configFail('environment'))) };
  }
  // Tamper evidence and masking read key files and environment variables.
  const sections = (doc !== null && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const failAt = (path: string, want: string): never => (path.startsWith('DBTAP_') ? configFail('environment')(path, want) : configFail(file ?? 'config')(path, want));
  cfg.integrity = parseIntegrityConfig(sections.integrity, 'integrity', env, failAt);
  cfg.store = parseStoreConfig(sections.store, 'store', failAt);
  if (sections.masking === false) delete cfg.masking;
  else if (sections.masking !== undefined && sections.masking !== null) cfg.masking = parseMaskingConfig(sections.masking, 'masking', env, failAt);
  const tokens = cfg.agents.token === undefined ? [] : typeof cfg.agents.token === 'string' ? [cfg.agents.token] : cfg.agents.token;
  if (tokens.some((t) => t.length < MIN_AGENT_TOKEN_LENGTH)) {
    // the message never quotes the token
    const where = env.DBTAP_AGENT_TOKEN ? 'environment: DBTAP_AGENT_TOKEN' : `${file ?? 'config'}: agents.token`;
    throw new DbtapError(ErrorCodes.CONFIG, `${where} must be at least ${MIN_AGENT_TOKEN_LENGTH} characters (make one with: dbtap token)`, { path: env.DBTAP_AGENT_TOKEN ? 'DBTAP_AGENT_TOKEN' : 'agents.token' });
  }
  // the files are read now so that a missing or broken one stops the start, not the first handshake
  if (cfg.agents.tls !== undefined) listenerTlsOptions(cfg.agents.tls, 'agents.tls');
  if (cfg.api.tls !== undefined) listenerTlsOptions(cfg.api.tls, 'api.tls');
  if (cfg.api.enabled && cfg.api.users.length === 0 && !isLoopback(cfg.api.host)) {
    throw new DbtapError(ErrorCodes.CONFIG, `${file ?? 'config'}: api.host ${cfg.api.host} is not a loopback address: configure api.users (tokens with roles) before exposing the API`, { path: 'api.users' });
  }
  return cfg;
}

/** The configuration file once it fits {@link CONFIG_SHAPE}. */
interface ConfigDocument {
  dataDir?: string;
  agents?: { listen?: Array<{ host: string; port: number }>; token?: string | string[]; tls?: ListenerTlsConfig; credentials?: AgentCredential[] } & AgentLimits;
  api?: { enabled?: boolean; host?: string; port?: number; users?: unknown; tls?: ListenerTlsConfig; hosts?: string[] };
  ports?: number[];
  rules?: { builtin?: boolean | string[]; files?: string[] };
  reports?: Record<string, unknown>;
  objects?: unknown;
  ruleGroups?: unknown;
  notifications?: unknown;
  ingest?: { maxFutureSeconds?: number };
  workers?: number;
}

function applyDocument(cfg: ServerConfig, doc: unknown, file: string): void {
  const fail = configFail(file);
  checkShape(doc, CONFIG_SHAPE, '', fail);
  const d = doc as ConfigDocument;
  if (d.dataDir !== undefined) cfg.dataDir = d.dataDir;
  if (d.agents?.listen !== undefined) cfg.agents.listen = d.agents.listen.map((l) => ({ host: l.host, port: l.port }));
  if (d.agents?.token !== undefined) cfg.agents.token = d.agents.token;
  if (d.agents?.credentials !== undefined) cfg.agents.credentials = checkCredentials(d.agents.credentials, file);
  for (const k of AGENT_LIMIT_KEYS) if (d.agents?.[k] !== undefined) cfg.agents[k] = d.agents[k];
  if (d.api?.enabled !== undefined) cfg.api.enabled = d.api.enabled;
  if (d.api?.host !== undefined) cfg.api.host = d.api.host;
  if (d.api?.port !== undefined) cfg.api.port = d.api.port;
  if (d.agents?.tls !== undefined) cfg.agents.tls = resolveListenerTls(d.agents.tls, dirname(file), 'agents.tls', fail);
  if (d.api?.tls !== undefined) cfg.api.tls = resolveListenerTls(d.api.tls, dirname(file), 'api.tls', fail);
  if (d.api?.hosts !== undefined) cfg.api.hosts = [...d.api.hosts];
  if (d.api?.users !== undefined) cfg.api.users = parseApiUsers(d.api.users, 'api.users', failWith(ErrorCodes.CONFIG, `${file}: `, { file }));
  if (d.ingest?.maxFutureSeconds !== undefined) cfg.ingest.maxFutureSeconds = d.ingest.maxFutureSeconds;
  if (d.ports !== undefined) cfg.ports = [...d.ports];
  if (d.workers !== undefined) cfg.workers = d.workers;
  if (d.rules?.builtin !== undefined) cfg.rules.builtin = d.rules.builtin;
  if (d.rules?.files !== undefined) cfg.rules.files = [...d.rules.files];
  if (d.reports !== undefined) cfg.reports = parseReportDefaults(d.reports, file);
  if (d.notifications !== undefined) cfg.notifications = parseNotificationConfig(d.notifications, file, { baseDir: dirname(file) });
  if (d.objects !== undefined) cfg.objects = validateAuditObjects(d.objects, 'objects', failWith(ErrorCodes.CONFIG, `${file}: `, { file }));
  if (d.ruleGroups !== undefined) {
    try {
      cfg.ruleGroups = parseRuleGroups({ ruleGroups: d.ruleGroups });
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `${file}: ${(err as Error).message}`, { file });
    }
  }
}

/** The credentials as the transport checks them (secrets, ids bound twice), failing with the key path. */
function checkCredentials(list: AgentCredential[], file: string): AgentCredential[] {
  const out = list.map((c) => ({ ...c, agentIds: [...c.agentIds] }));
  try {
    new AgentIdentities(undefined, out);
  } catch (err) {
    throw new DbtapError(ErrorCodes.CONFIG, `${file}: agents.credentials: ${(err as Error).message.replace(/^agents/, '')}`, { file, path: 'agents.credentials' });
  }
  return out;
}

/** True for addresses only this host can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The `reports` section (already checked against its shape) as report options. */
function parseReportDefaults(o: Record<string, unknown>, file: string): ReportOptions {
  const text: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) text[k] = Array.isArray(x) ? x.join(',') : String(x);
  try {
    return reportOptionsFromText(text);
  } catch (err) {
    const parameter = (err as { details?: { parameter?: string } }).details?.parameter;
    throw new DbtapError(ErrorCodes.CONFIG, `${file}: reports${parameter ? `.${parameter}` : ''}: ${(err as Error).message}`, { file });
  }
}

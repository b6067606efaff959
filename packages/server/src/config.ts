import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { failWith, validateAuditObjects, type AuditObjectDef } from './objects.js';
import { parseRuleGroups, type RuleGroupDef } from './http/providers.js';
import { parseApiUsers, type ApiUser } from './http/access.js';
import { parseNotificationConfig, type ChannelConfig } from './notify/config.js';
import { reportOptionsFromText, type ReportOptions } from './reports/index.js';
import { parseMaskingConfig, type MaskingConfig } from './masking/index.js';
import { parseIntegrityConfig, type IntegrityConfig } from './integrity/index.js';

/** The server configuration file (`server.yaml` or JSON); every key is optional. */
export interface ServerConfig {
  /** Where the embedded store lives. Default `./data`. */
  dataDir: string;
  /** Agent listeners. Default `0.0.0.0:9999` and `[::]:9998`. */
  agents: { listen: Array<{ host: string; port: number }>; token?: string | string[] };
  /**
   * HTTP API listener. Default `127.0.0.1:8080`; `enabled: false` turns it off.
   * `users` (name, role, token or tokenSha256) turn on access control; without
   * users the API only listens on a loopback address.
   */
  api: { enabled: boolean; host: string; port: number; users: ApiUser[] };
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
  /** Masking of sensitive values before records are stored (`rules`, `replacement`, `hashKeyFile`; see `docs/integrity.md`). */
  masking?: MaskingConfig;
}

/** The configuration used when no file is given. */
export function defaultServerConfig(): ServerConfig {
  return {
    dataDir: './data',
    agents: { listen: [{ host: '0.0.0.0', port: 9999 }, { host: '::', port: 9998 }] },
    api: { enabled: true, host: '127.0.0.1', port: 8080, users: [] },
    rules: { builtin: true, files: [] },
    objects: [],
    ruleGroups: [],
    notifications: [],
    integrity: {},
  };
}

function fail(file: string, path: string, want: string): never {
  throw new DbtapError(ErrorCodes.CONFIG, `${file}: ${path} must be ${want}`, { file, path });
}

function port(file: string, path: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) fail(file, path, 'a port number (0-65535)');
  return v as number;
}

function str(file: string, path: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') fail(file, path, 'a non-empty string');
  return v;
}

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
    cfg.api = { ...cfg.api, enabled: true, host: m[1]!.replace(/^\[|\]$/g, ''), port: port('DBTAP_API', 'port', Number(m[2])) };
  }
  // Tamper evidence and masking read key files and environment variables.
  const sections = (doc !== null && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const failAt = (path: string, want: string): never => (path.startsWith('DBTAP_') ? fail('environment', path, want) : fail(file ?? 'config', path, want));
  cfg.integrity = parseIntegrityConfig(sections.integrity, 'integrity', env, failAt);
  if (sections.masking !== undefined && sections.masking !== null) cfg.masking = parseMaskingConfig(sections.masking, 'masking', env, failAt);
  if (cfg.api.enabled && cfg.api.users.length === 0 && !isLoopback(cfg.api.host)) {
    throw new DbtapError(ErrorCodes.CONFIG, `${file ?? 'config'}: api.host ${cfg.api.host} is not a loopback address: configure api.users (tokens with roles) before exposing the API`, { path: 'api.users' });
  }
  return cfg;
}

function applyDocument(cfg: ServerConfig, doc: unknown, file: string): void {
  if (typeof doc !== 'object' || Array.isArray(doc)) fail(file, '(top level)', 'a mapping');
  const d = doc as Record<string, unknown>;
  const known = new Set(['dataDir', 'agents', 'api', 'ports', 'rules', 'objects', 'ruleGroups', 'integrity', 'masking', 'notifications', 'reports']);
  for (const k of Object.keys(d)) if (!known.has(k)) fail(file, k, `one of ${[...known].join(', ')} (unknown key)`);
  if (d.dataDir !== undefined) cfg.dataDir = str(file, 'dataDir', d.dataDir);
  if (d.agents !== undefined) {
    const a = d.agents as Record<string, unknown>;
    if (typeof a !== 'object' || a === null) fail(file, 'agents', 'a mapping');
    if (a.listen !== undefined) {
      if (!Array.isArray(a.listen)) fail(file, 'agents.listen', 'a list of {host, port}');
      cfg.agents.listen = a.listen.map((l: unknown, i: number) => {
        const o = l as Record<string, unknown>;
        return { host: str(file, `agents.listen[${i}].host`, o?.host), port: port(file, `agents.listen[${i}].port`, o?.port) };
      });
    }
    if (a.token !== undefined) {
      if (typeof a.token === 'string') cfg.agents.token = a.token;
      else if (Array.isArray(a.token)) cfg.agents.token = a.token.map((t: unknown, i: number) => str(file, `agents.token[${i}]`, t));
      else fail(file, 'agents.token', 'a string or a list of strings');
    }
  }
  if (d.api !== undefined) {
    const a = d.api as Record<string, unknown>;
    if (a === null || typeof a !== 'object') fail(file, 'api', 'a mapping');
    if (a.enabled !== undefined) {
      if (typeof a.enabled !== 'boolean') fail(file, 'api.enabled', 'true or false');
      cfg.api.enabled = a.enabled;
    }
    if (a.host !== undefined) cfg.api.host = str(file, 'api.host', a.host);
    if (a.port !== undefined) cfg.api.port = port(file, 'api.port', a.port);
    if (a.users !== undefined) cfg.api.users = parseApiUsers(a.users, 'api.users', failWith(ErrorCodes.CONFIG, `${file}: `));
  }
  if (d.ports !== undefined) {
    if (!Array.isArray(d.ports)) fail(file, 'ports', 'a list of port numbers');
    cfg.ports = d.ports.map((p: unknown, i: number) => port(file, `ports[${i}]`, p));
  }
  if (d.rules !== undefined) {
    const r = d.rules as Record<string, unknown>;
    if (r === null || typeof r !== 'object') fail(file, 'rules', 'a mapping');
    if (r.builtin !== undefined) {
      if (typeof r.builtin === 'boolean') cfg.rules.builtin = r.builtin;
      else if (Array.isArray(r.builtin)) cfg.rules.builtin = r.builtin.map((n: unknown, i: number) => str(file, `rules.builtin[${i}]`, n));
      else fail(file, 'rules.builtin', 'true, false or a list of policy names');
    }
    if (r.files !== undefined) {
      if (!Array.isArray(r.files)) fail(file, 'rules.files', 'a list of paths');
      cfg.rules.files = r.files.map((f: unknown, i: number) => str(file, `rules.files[${i}]`, f));
    }
  }
  if (d.reports !== undefined) cfg.reports = parseReportDefaults(d.reports, file);
  if (d.notifications !== undefined) cfg.notifications = parseNotificationConfig(d.notifications, file, { baseDir: dirname(file) });
  if (d.objects !== undefined) cfg.objects = validateAuditObjects(d.objects, 'objects', failWith(ErrorCodes.CONFIG, `${file}: `));
  if (d.ruleGroups !== undefined) {
    try {
      cfg.ruleGroups = parseRuleGroups({ ruleGroups: d.ruleGroups });
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `${file}: ${(err as Error).message}`, { file });
    }
  }
}

/** True for addresses only this host can reach (127.0.0.0/8, ::1, localhost). */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function parseReportDefaults(v: unknown, file: string): ReportOptions {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(file, 'reports', 'a mapping');
  const o = v as Record<string, unknown>;
  const keys = ['timeZone', 'workHours', 'workDays', 'sensitive', 'minRisk', 'top'];
  const text: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) {
    if (!keys.includes(k)) fail(file, `reports.${k}`, `one of ${keys.join(', ')} (unknown key)`);
    if (k === 'sensitive' && Array.isArray(x)) text[k] = x.map((t, i) => str(file, `reports.sensitive[${i}]`, t)).join(',');
    else if (k === 'top' && typeof x === 'number') text[k] = String(x);
    else text[k] = str(file, `reports.${k}`, x);
  }
  try {
    return reportOptionsFromText(text);
  } catch (err) {
    const parameter = (err as { details?: { parameter?: string } }).details?.parameter;
    throw new DbtapError(ErrorCodes.CONFIG, `${file}: reports${parameter ? `.${parameter}` : ''}: ${(err as Error).message}`, { file });
  }
}

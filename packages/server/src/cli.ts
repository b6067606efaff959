import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isDbtapError, type DbtapError } from '@dbtap/core';
import { basename, join } from 'node:path';
import { openCapture, type Frame } from '@dbtap/core';
import { auditCaptureFile } from './audit.js';
import { loadServerConfig, type ServerConfig } from './config.js';
import { AuditServer } from './daemon.js';
import type { RecordProcessor } from './compose.js';
import { loadRuleSelection, rulesProcessor, RuleRouter, type RuleSelection } from './rules.js';
import { AuditCatalog } from './catalog.js';
import { Notifier } from './notify/index.js';
import { AccessControl, SystemLog, createApiServer, hashToken, newToken } from './http/index.js';
import { builtinPolicies, checkRuleFiles, builtinRuleFiles, runSqlTool, parseDialect, DIALECTS, type Dialect, type SqlToolMode } from '@dbtap/rules';
import { createInterface } from 'node:readline';
import { tableHeader, toNdjson, toTableRow } from './format.js';
import { existsSync, writeFileSync } from 'node:fs';
import { DbtapError as ReportIoError, ErrorCodes } from '@dbtap/core';
import { SqliteStore } from './store/index.js';
import { verifySqliteFile, type ChainAnchor, type IntegrityReport } from './integrity/index.js';
import { RecordMasker } from './masking/index.js';
import { readKeyFile } from './masking/config.js';
import { buildReport, renderReport, reportOptionsFromText, REPORT_FORMATS, REPORT_KINDS, type ReportFormat, type ReportKind } from './reports/index.js';

const usage = `usage: dbtap <command> [options]

commands:
  audit <file.pcap|file.pcapng> [--format ndjson|table] [--port 3306,5432,...] [--max-rows N]
        [--rules FILE]... [--policy NAME,...] [--no-rules] [--config server.yaml]
      Decode a capture file and print one audit record per line (NDJSON by
      default), with a summary on stderr. The built-in rule library gives each
      record its risk and matched rules; alerts print as records of kind alert.
      --config applies a server config's audit objects, rules, rule groups
      and masking, as the server would.
  rules check FILE...      Validate rule files (diagnostics with file:line:column).
  rules list               The built-in policies and their rules.
  sql classify|fingerprint|sqli [--dialect mysql|postgres|tsql|oracle|db2]
      Read one statement per line on stdin, print one JSON object per line.
  serve [--config server.yaml] [--data-dir DIR]
      Run the audit server: receive agents on 9999 (IPv4) and 9998 (IPv6),
      audit their traffic into the embedded store under ./data.
      (Also the default command of the dbtap-server executable.)
  import [--data-dir DIR] [--port ...] <file.pcap>...
      Audit capture files into the store (offline audit).
  report server|source|compliance|statements [--from ISO] [--to ISO] [--object ID]
        [--format json|csv|html] [--out FILE] [--data-dir DIR] [--config FILE] [--top N]
        [--bucket 15m] [--min-risk LEVEL] [--tz ZONE] [--work-hours 08:00-18:00]
        [--work-days mon-fri] [--sensitive TABLE,...]
      Build a report from the store under the data directory: server analysis,
      source analysis, compliance, or statement statistics per fingerprint.
  verify [--data-dir DIR] [--config FILE] [--key-file FILE] [--anchor LINK:HASH]... [--json]
      Verify the store's hash chain: exit 0 when intact, 1 naming the first
      altered, missing or inserted record, 3 when it cannot be verified.
  token
      Print a new API token and the tokenSha256 to put in api.users.
  help
      Show this text.
`;

/** Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
async function main(argv: string[]): Promise<number> {
  // `dbtap-server ARGS` is `dbtap serve ARGS` (or `dbtap import ...`).
  if (basename(process.argv[1] ?? '') === 'dbtap-server' && argv[0] !== 'import' && argv[0] !== 'report' && argv[0] !== 'verify' && argv[0] !== 'help') argv = ['serve', ...argv];
  const [command, ...rest] = argv;
  switch (command) {
    case 'audit':
      return audit(rest);
    case 'token': {
      const token = newToken();
      process.stdout.write(`token: ${token}\ntokenSha256: ${hashToken(token)}\n`);
      return 0;
    }
    case 'serve':
      return serve(rest);
    case 'rules':
      return rulesCommand(rest);
    case 'sql':
      return sqlCommand(rest);
    case 'import':
      return importFiles(rest);
    case 'report':
      return reportCommand(rest);
    case 'verify':
      return verifyCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`dbtap: unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

function parsePorts(text: string): number[] {
  const ports = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`invalid port in --port: '${text}'`);
  }
  return ports;
}

class UsageError extends Error {}

async function audit(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'ndjson' },
      port: { type: 'string', multiple: true },
      'max-rows': { type: 'string' },
      rules: { type: 'string', multiple: true },
      policy: { type: 'string', multiple: true },
      'no-rules': { type: 'boolean', default: false },
      config: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('audit needs exactly one capture file');
  // A server config brings its audit objects, rule selection, rule groups and masking to an offline audit.
  const cfg = values.config !== undefined ? loadServerConfig(values.config) : undefined;
  const format = values.format;
  if (format !== 'ndjson' && format !== 'table') throw new UsageError(`--format must be ndjson or table, not '${format}'`);
  const ports = values.port?.flatMap(parsePorts);
  const maxRows = values['max-rows'] !== undefined ? Number(values['max-rows']) : undefined;
  if (maxRows !== undefined && !(Number.isInteger(maxRows) && maxRows >= 0)) throw new UsageError('--max-rows must be a whole number');

  const policies = values.policy?.flatMap((p) => p.split(',').map((x) => x.trim()).filter(Boolean));
  let processor: RecordProcessor | undefined;
  let catalog: AuditCatalog | undefined;
  if (cfg !== undefined) {
    const judged = configuredRules(cfg, { builtin: policies ?? cfg.rules.builtin, files: [...cfg.rules.files, ...(values.rules ?? [])] });
    catalog = judged.catalog;
    if (!values['no-rules']) processor = judged.rules.process;
  } else if (!values['no-rules']) processor = rulesProcessor(loadRuleSelection({ builtin: policies ?? true, files: values.rules ?? [] })).process;
  const masker = cfg?.masking !== undefined ? new RecordMasker(cfg.masking) : undefined;

  const out = process.stdout;
  if (format === 'table') out.write(`${tableHeader()}\n`);
  let alerts = 0;
  const { summary } = await auditCaptureFile(positionals[0]!, {
    ...(ports !== undefined ? { ports } : {}),
    ...(maxRows !== undefined ? { maxRows } : {}),
    ...(catalog !== undefined ? { objects: catalog.table } : {}),
    ...(processor !== undefined ? { judge: processor } : {}),
    ...(masker !== undefined ? { mask: masker.mask } : {}),
    collect: false,
    onEvent: (e) => {
      if (e.kind === 'alert') alerts++;
      out.write(format === 'table' ? `${toTableRow(e)}\n` : `${toNdjson(e)}\n`);
    },
  });
  const s = summary;
  const protocols = Object.entries(s.flowsByProtocol).map(([k, v]) => `${k}=${v}`).join(' ');
  process.stderr.write(
    `dbtap: ${s.frames} frames, ${s.flows} flows (${s.decodedFlows} decoded${protocols ? `: ${protocols}` : ''}, ${s.undetectedFlows} undetected), ` +
      `${s.events} records (${s.errorEvents} errors), ${processor ? `${alerts} alerts, ` : ''}${s.sessions.malformed} malformed messages, ${s.gaps} gaps (${s.gapBytes} bytes)` +
      `${s.truncatedFrames > 0 ? `, ${s.truncatedFrames} truncated frames` : ''}\n`,
  );
  if (s.captureError !== undefined) process.stderr.write(`dbtap: capture ended early: ${s.captureError}\n`);
  return 0;
}

async function rulesCommand(args: string[]): Promise<number> {
  const [sub, ...files] = args;
  if (sub === 'list') {
    for (const p of builtinPolicies()) {
      process.stdout.write(`${p.name}${p.defaultEnabled ? '' : ' (off by default)'}: ${p.description}\n  rules: ${p.ruleIds.join(', ')}\n`);
    }
    return 0;
  }
  if (sub !== 'check' || files.length === 0) throw new UsageError('usage: dbtap rules check FILE... | dbtap rules list');
  const r = checkRuleFiles(files, { include: builtinRuleFiles() });
  for (const line of r.lines) process.stdout.write(`${line}\n`);
  return r.ok ? 0 : 1;
}

async function sqlCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { dialect: { type: 'string', default: 'mysql' } } });
  const mode = positionals[0];
  if (positionals.length !== 1 || (mode !== 'classify' && mode !== 'fingerprint' && mode !== 'sqli')) {
    throw new UsageError('usage: dbtap sql classify|fingerprint|sqli [--dialect mysql|postgres|tsql|oracle|db2]');
  }
  let dialect: Dialect;
  try {
    dialect = parseDialect(values.dialect);
  } catch {
    throw new UsageError(`--dialect must be one of ${DIALECTS.join(', ')} (or mariadb, postgresql, mssql), not '${values.dialect}'`);
  }
  // One line in, one line out as each line arrives, so the tool works at the end of a live pipe.
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    for (const out of runSqlTool(mode as SqlToolMode, [line], dialect)) process.stdout.write(`${out}\n`);
  }
  return 0;
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'data-dir': { type: 'string' } } });
  const cfg = loadServerConfig(values.config);
  if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString()} dbtap-server: ${line}\n`);
  };
  const { catalog, rules } = configuredRules(cfg, cfg.rules, cfg.dataDir);
  const systemLog = new SystemLog(join(cfg.dataDir, 'system.log'));
  const access = new AccessControl(cfg.api.users);
  if (cfg.api.enabled && !access.enabled) log(`API access control is off (no api.users): anyone on ${cfg.api.host} can read and change everything`);
  catalog.onChange((change) => systemLog.write({ actor: 'system', action: `${change}.applied`, ok: true, detail: { count: change === 'objects' ? catalog.objects().length : catalog.ruleGroups().length } }));
  const server = new AuditServer({
    dataDir: cfg.dataDir,
    agentListen: cfg.agents.listen,
    catalog,
    processRecord: rules.process,
    ...(cfg.masking !== undefined ? { mask: new RecordMasker(cfg.masking).mask } : {}),
    integrity: cfg.integrity,
    ...(cfg.notifications.length > 0 ? { notifier: new Notifier(cfg.notifications, { spoolDir: join(cfg.dataDir, 'notify-spool'), log }) } : {}),
    ...(cfg.agents.token !== undefined ? { agentToken: cfg.agents.token } : {}),
    ...(cfg.ports !== undefined ? { ports: cfg.ports } : {}),
    log,
    ...(cfg.api.enabled
      ? {
          api: {
            host: cfg.api.host,
            port: cfg.api.port,
            create: (store, srv) =>
              createApiServer({ store, metrics: () => srv.metrics(), objects: catalog.objectProvider(), ruleGroups: catalog.ruleGroupProvider(), access, systemLog, ...(cfg.reports ? { reports: cfg.reports } : {}) }),
          },
        }
      : {}),
  });
  // a signed store opened without its key would refuse every batch: say so now
  if (server.store instanceof SqliteStore) server.store.assertWritable();
  const where = await server.start();
  systemLog.write({ actor: 'system', action: 'service.start', ok: true, detail: { agents: where.agents, ...(where.api ? { api: where.api } : {}), users: cfg.api.users.map((u) => `${u.name}:${u.role}`) } });
  log(`store ${cfg.dataDir}/audit.db; agents on ${where.agents.join(', ') || '(none)'}${where.api ? `; API on http://${where.api}` : ''}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      log(`${sig}: flushing and stopping`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // SIGHUP re-reads the config file's audit objects and rule groups (lists the API has taken over stay as they are)
    process.on('SIGHUP', () => {
      try {
        const next = loadServerConfig(values.config);
        const changed = catalog.reloadConfig(next.objects, next.ruleGroups);
        systemLog.write({ actor: 'system', action: 'config.reload', ok: true, detail: { changed } });
        log(`SIGHUP: config re-read; ${changed.length > 0 ? `applied ${changed.join(' and ')}` : 'no change to objects or rule groups'}`);
      } catch (err) {
        log(`SIGHUP: config not applied: ${(err as DbtapError).code ?? 'error'}: ${(err as Error).message}`);
      }
    });
  });
  await server.stop();
  systemLog.write({ actor: 'system', action: 'service.stop', ok: true });
  return 0;
}

/**
 * The rule engine and audit catalog of a server configuration: `selection`
 * of rules, judged per audit object by its rule group. With `dataDir`, API
 * changes to objects and rule groups are kept there (it is created).
 */
function configuredRules(cfg: ServerConfig, selection: RuleSelection, dataDir?: string): { catalog: AuditCatalog; rules: RuleRouter } {
  const ruleSet = loadRuleSelection(selection);
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const catalog = new AuditCatalog({ ...(dataDir !== undefined ? { dataDir } : {}), objects: cfg.objects, ruleGroups: cfg.ruleGroups, ruleFileGroups: ruleSet.groups.keys() });
  return { catalog, rules: new RuleRouter(ruleSet, catalog) };
}

async function importFiles(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, port: { type: 'string', multiple: true } },
  });
  if (positionals.length === 0) throw new UsageError('import needs at least one capture file');
  const cfg = loadServerConfig(values.config);
  if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
  const ports = values.port?.flatMap(parsePorts) ?? cfg.ports;
  const { catalog, rules } = configuredRules(cfg, cfg.rules, cfg.dataDir);
  const server = new AuditServer({
    dataDir: cfg.dataDir, agentListen: [], catalog, processRecord: rules.process, ...(ports ? { ports } : {}),
    ...(cfg.masking !== undefined ? { mask: new RecordMasker(cfg.masking).mask } : {}), integrity: cfg.integrity,
  });
  let failed = 0;
  try {
    for (const file of positionals) {
      const reader = openCapture(file);
      const source = `file:${file}`;
      const chunk: Frame[] = [];
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        chunk.push({ ...f, data: f.data.slice() });
        if (chunk.length >= 4096) await server.ingest(source, chunk.splice(0));
      }
      await server.ingest(source, chunk);
      reader.close();
      const st = await server.endSource(source);
      process.stderr.write(`dbtap: ${file}: ${st?.frames ?? 0} frames, ${st?.flows ?? 0} flows, ${st?.events ?? 0} records\n`);
      if (reader.error) {
        failed++;
        process.stderr.write(`dbtap: ${file}: capture ended early: ${reader.error.code}: ${reader.error.message}\n`);
      }
    }
  } finally {
    await server.stop();
  }
  return failed > 0 ? 1 : 0;
}

async function reportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      from: { type: 'string' }, to: { type: 'string' }, object: { type: 'string' }, format: { type: 'string', default: 'json' },
      out: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, top: { type: 'string' }, bucket: { type: 'string' },
      'min-risk': { type: 'string' }, tz: { type: 'string' }, 'work-hours': { type: 'string' }, 'work-days': { type: 'string' }, sensitive: { type: 'string' },
    },
  });
  const kind = positionals[0];
  if (positionals.length !== 1 || !(REPORT_KINDS as readonly string[]).includes(kind!)) throw new UsageError(`report needs one kind: ${REPORT_KINDS.join(', ')}`);
  const format = values.format;
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be ${REPORT_FORMATS.join(', ')}, not '${format}'`);
  const options = reportOptionsFromText({
    from: values.from, to: values.to, object: values.object, top: values.top, bucket: values.bucket, minRisk: values['min-risk'],
    timeZone: values.tz, workHours: values['work-hours'], workDays: values['work-days'], sensitive: values.sensitive,
  });
  const cfg = loadServerConfig(values.config);
  if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
  const path = join(cfg.dataDir, 'audit.db');
  // Never create an empty store by mistake: the report reads an existing one.
  if (!existsSync(path)) throw new ReportIoError(ErrorCodes.IO, `no audit store at ${path} (give --data-dir)`, { path });
  const store = new SqliteStore({ path });
  try {
    const out = renderReport(await buildReport(store, kind as ReportKind, options), format as ReportFormat);
    if (values.out === undefined) process.stdout.write(out.body);
    else {
      writeFileSync(values.out, out.body);
      process.stderr.write(`dbtap: ${kind} report written to ${values.out} (${Buffer.byteLength(out.body)} bytes)\n`);
    }
  } finally {
    await store.close();
  }
  return 0;
}

/** Prints a verification report for people. */
function printIntegrity(r: IntegrityReport, path: string): void {
  const out = process.stdout;
  const mode = r.mode === 'sha256' ? 'unsigned SHA-256' : r.mode === 'mixed' ? 'SHA-256, then HMAC-SHA-256' : 'HMAC-SHA-256';
  const scope = `${r.records} records in ${r.links} links (${mode}${r.keyId !== undefined ? `, key id ${r.keyId}` : ''})${r.removedByRetention > 0 ? `, ${r.removedByRetention} removed by retention` : ''}`;
  if (r.ok) out.write(`intact: ${path}: ${scope}\n`);
  else {
    out.write(`NOT INTACT: ${path}: ${r.problems[0]!.message}\n`);
    out.write(`${r.problemCount} problem${r.problemCount === 1 ? '' : 's'} in all; checked ${scope}\n`);
    for (const p of r.problems.slice(1, 20)) out.write(`  ${p.kind}: ${p.message}\n`);
    if (r.problemCount > 20) out.write(`  ... and ${r.problemCount - 20} more (--json lists up to 100)\n`);
  }
  for (const n of r.notes) out.write(`note: ${n}\n`);
  if (r.head !== undefined) out.write(`head: link ${r.head.link} ${r.head.hash} (note it elsewhere; --anchor ${r.head.link}:${r.head.hash} later proves nothing was cut from the end)\n`);
}

/** `verify`: 0 intact, 1 problems found, 3 cannot verify (no store, no chain, key missing or unreadable). */
async function verifyCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    allowPositionals: false,
    options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, 'key-file': { type: 'string' }, anchor: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } },
  });
  const anchors: ChainAnchor[] = (values.anchor ?? []).map((a) => {
    const m = /^(\d+):([0-9a-fA-F]{64})$/.exec(a.trim());
    if (m === null) throw new UsageError(`--anchor must be LINK:HASH (a link number and 64 hex digits), not '${a}'`);
    return { link: Number(m[1]), hash: m[2]!.toLowerCase() };
  });
  try {
    const cfg = loadServerConfig(values.config);
    if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
    const key = values['key-file'] !== undefined ? readKeyFile(values['key-file'], '--key-file') : cfg.integrity.key;
    const path = join(cfg.dataDir, 'audit.db');
    if (!existsSync(path)) throw new ReportIoError(ErrorCodes.IO, `no audit store at ${path} (give --data-dir)`, { path });
    const report = await verifySqliteFile(path, { ...(key !== undefined ? { key } : {}), anchors });
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printIntegrity(report, path);
    return report.ok ? 0 : 1;
  } catch (err) {
    if (!isDbtapError(err)) throw err;
    process.stderr.write(`dbtap: cannot verify: ${err.code}: ${err.message}\n`);
    return 3;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`dbtap: ${err.message}\n\n${usage}`);
      process.exitCode = 2;
    } else if (isDbtapError(err)) {
      process.stderr.write(`dbtap: ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`dbtap: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);

// `dbtap serve` (and `dbtap-server`): the audit server, until SIGINT or
// SIGTERM; SIGHUP re-reads the config file's audit objects and rule groups.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DbtapError } from '@dbtap/core';
import { agentLimits, isLoopback, loadServerConfig } from '../config.js';
import { AuditServer } from '../daemon.js';
import { AccessControl, SystemLog } from '../http/access.js';
import { createApiServer } from '../http/server.js';
import { listenerTlsOptions } from '../http/tls.js';
import { RecordMasker } from '../masking/masker.js';
import { Notifier } from '../notify/notifier.js';
import { SqliteStore } from '../store/sqlite.js';
import { describeStore, openStore } from '../store/config.js';
import { registryDialects } from '../compose.js';
import { configuredRules, serverLog, type Command } from './common.js';

export const serveCommand: Command = {
  name: 'serve',
  usage: `  serve [--config server.yaml] [--data-dir DIR]
      Run the audit server: receive agents on 9999 (IPv4) and 9998 (IPv6),
      audit their traffic into the store (the config's store section; default
      the embedded SQLite file under ./data). SIGINT or
      SIGTERM flush and stop it; SIGHUP re-reads the config file's audit
      objects and rule groups. (Also the default command of dbtap-server.)
`,
  run,
};

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'data-dir': { type: 'string' } } });
  const cfg = loadServerConfig(values.config);
  if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
  const logger = serverLog();
  const log = (line: string): void => logger.info(line);
  const { catalog, rules, registry } = configuredRules(cfg, cfg.rules, cfg.dataDir);
  const systemLog = new SystemLog(join(cfg.dataDir, 'system.log'));
  const access = new AccessControl(cfg.api.users);
  if (cfg.api.enabled && !access.enabled) logger.warn(`API access control is off (no api.users): anyone on ${cfg.api.host} can read and change everything`);
  const agentTls = cfg.agents.tls !== undefined ? listenerTlsOptions(cfg.agents.tls, 'agents.tls') : undefined;
  const apiTls = cfg.api.tls !== undefined ? listenerTlsOptions(cfg.api.tls, 'api.tls') : undefined;
  catalog.onChange((change) => systemLog.write({ actor: 'system', action: `${change}.applied`, ok: true, detail: { count: change === 'objects' ? catalog.objects().length : catalog.ruleGroups().length } }));
  // with worker threads the main thread receives and judges while another commits (docs/server.md, Workers)
  const store = await openStore(cfg.store, { dataDir: cfg.dataDir, integrity: cfg.integrity, writerThread: cfg.workers > 0 });
  const server = new AuditServer({
    dataDir: cfg.dataDir,
    store,
    agentListen: cfg.agents.listen,
    catalog,
    // in-process only: workers build their own rules, masking and decoders
    ...(cfg.workers === 0 ? { registry, processRecord: rules.process } : {}),
    workers: { count: cfg.workers, rules: cfg.rules, ...(cfg.masking !== undefined ? { masking: cfg.masking } : {}) },
    ...(cfg.masking !== undefined && cfg.workers === 0 ? { mask: new RecordMasker(cfg.masking, { dialectFor: registryDialects(registry) }).mask } : {}),
    maxFutureSeconds: cfg.ingest.maxFutureSeconds,
    ...(cfg.notifications.length > 0 ? { notifier: new Notifier(cfg.notifications, { spoolDir: join(cfg.dataDir, 'notify-spool'), log: (line) => logger.warn(line) }) } : {}),
    ...(cfg.agents.token !== undefined ? { agentToken: cfg.agents.token } : {}),
    ...(agentTls !== undefined ? { agentTls } : {}),
    ...(cfg.agents.credentials !== undefined ? { agentCredentials: cfg.agents.credentials } : {}),
    agentLimits: agentLimits(cfg.agents),
    ...(cfg.ports !== undefined ? { ports: cfg.ports } : {}),
    log: (line, level) => logger.log(level ?? 'info', line),
    ...(cfg.api.enabled
      ? {
          api: {
            host: cfg.api.host,
            port: cfg.api.port,
            create: (store, srv) =>
              createApiServer({
                store, metrics: () => srv.metrics(), objects: catalog.objectProvider(), ruleGroups: catalog.ruleGroupProvider(), access, systemLog,
                ...(cfg.reports ? { reports: cfg.reports } : {}), ...(apiTls !== undefined ? { tls: apiTls } : {}), ...(cfg.api.hosts !== undefined ? { hosts: cfg.api.hosts } : {}),
              }),
          },
        }
      : {}),
  });
  // a signed store opened without its key would refuse every batch: say so now
  if (server.store instanceof SqliteStore) server.store.assertWritable();
  // listening for the stop signals before anything starts: a SIGTERM while starting still stops cleanly
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const where = await server.start();
  systemLog.write({ actor: 'system', action: 'service.start', ok: true, detail: { agents: where.agents, ...(where.api ? { api: where.api } : {}), users: cfg.api.users.map((u) => `${u.name}:${u.role}`) } });
  // an agent listener others can reach, with no token: anyone there can feed it made-up traffic
  const exposed = cfg.agents.token === undefined && cfg.agents.credentials === undefined ? where.agents.filter((a) => !isLoopback(a.slice(0, a.lastIndexOf(':')).replace(/^\[|\]$/g, ''))) : [];
  if (exposed.length > 0) {
    logger.warn(`agents.token is not set and the agent listener on ${exposed.join(', ')} is not loopback: any host that reaches it can send traffic to audit (set agents.token${agentTls ? '' : ' and agents.tls'})`);
    systemLog.write({ actor: 'system', action: 'config.warning', ok: true, detail: { warning: 'agent-listener-without-token', listen: exposed } });
  }
  log(`store ${describeStore(cfg.store, cfg.dataDir)}; agents on ${where.agents.join(', ') || '(none)'}${agentTls ? ' (TLS)' : ''}${where.api ? `; API on ${apiTls ? 'https' : 'http'}://${where.api}` : ''}`);
  const reload = (): void => {
    try {
      const next = loadServerConfig(values.config);
      const changed = catalog.reloadConfig(next.objects, next.ruleGroups);
      systemLog.write({ actor: 'system', action: 'config.reload', ok: true, detail: { changed } });
      log(`SIGHUP: config re-read; ${changed.length > 0 ? `applied ${changed.join(' and ')}` : 'no change to objects or rule groups'}`);
    } catch (err) {
      logger.error(`SIGHUP: config not applied: ${(err as DbtapError).code ?? 'error'}: ${(err as Error).message}`);
    }
  };
  process.on('SIGHUP', reload);
  const sig = await stopped;
  log(`${sig}: flushing and stopping`);
  process.off('SIGHUP', reload);
  await server.stop();
  systemLog.write({ actor: 'system', action: 'service.stop', ok: true });
  return 0;
}

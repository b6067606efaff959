// dbtap-agent: the capture agent daemon and its helper commands.
import { parseArgs } from 'node:util';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { DbtapError } from '@dbtap/core';
import { loadAgentConfig, defaultStatusSocket, parseHostPort } from './config.js';
import { AgentDaemon, agentMetrics, readAgentStatus } from './daemon.js';
import { AgentLogger } from './log.js';
import { startPcapReceiver } from './receive.js';
import { installSystemdUnit, uninstallSystemdUnit } from './service.js';
import { listCaptureDevices } from './capture/live.js';
import type { ListenOptions } from './transport/server.js';
import { version } from './index.js';

const USAGE = `dbtap-agent ${version}: capture database traffic and deliver it to a dbtap server

Usage:
  dbtap-agent [run] --config FILE        run the agent (agent.conf, .json, .yaml)
  dbtap-agent receive --write FILE.pcap [--listen HOST:PORT]... [--token T]
                      [--tls-cert F --tls-key F [--tls-ca F --require-client-cert]]
                                         run only the receiving end, writing a pcap file
  dbtap-agent status [--socket PATH | --config FILE]
                                         print the live counters of a running agent
                                         (capture: kernel received/dropped, as pcap_stats reports)
  dbtap-agent metrics [--socket PATH | --config FILE]
                                         the same counters in the Prometheus text format
  dbtap-agent devices                    list capture devices
  dbtap-agent install-service --config FILE [--user USER] [--unit-dir DIR] [--name NAME]
  dbtap-agent uninstall-service [--unit-dir DIR] [--name NAME]

  dbtap-agent --version | -V | --help | -h | COMMAND --help

Signals: SIGHUP reloads the configuration, SIGTERM flushes the queue and exits.
Logs go to stderr and to the configured log file.
Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error,
3 stopped with packets still queued (not delivered).
`;

const commands = new Set(['run', 'receive', 'status', 'metrics', 'devices', 'install-service', 'uninstall-service', 'help']);

function fail(message: string, code = 2): never {
  process.stderr.write(`dbtap-agent: ${message}\n`);
  process.exit(code);
}

function describe(err: unknown): string {
  return err instanceof DbtapError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const configPath = values.config;
  let loaded;
  try {
    loaded = loadAgentConfig(configPath === undefined ? undefined : resolve(configPath));
  } catch (err) {
    fail(describe(err));
  }
  const log = new AgentLogger(loaded.config.logFile, true);
  for (const w of loaded.warnings) log.warn(w);
  if (loaded.files.length > 0) log.info(`configuration from ${loaded.files.join(', ')}`);
  const daemon = new AgentDaemon(loaded.config, { logger: log });
  let exiting = false;
  const exit = async (why: string, code = 0) => {
    if (exiting) return;
    exiting = true;
    log.info(why);
    const s = await daemon.stop(code === 0 ? 10_000 : 2000);
    process.exit(code !== 0 ? code : s.queuedPackets > 0 ? 3 : 0);
  };
  process.on('SIGTERM', () => void exit('SIGTERM received'));
  process.on('SIGINT', () => void exit('SIGINT received'));
  process.on('SIGHUP', () => {
    log.info('SIGHUP received');
    try {
      const next = loadAgentConfig(configPath === undefined ? undefined : resolve(configPath));
      for (const w of next.warnings) log.warn(w);
      daemon.reload(next.config).catch((err) => log.error(`reload failed: ${describe(err)}`));
    } catch (err) {
      log.error(`reload refused, keeping the running configuration: ${describe(err)}`);
    }
  });
  daemon.on('sourceEnd', () => void exit('source finished'));
  try {
    await daemon.start();
  } catch (err) {
    log.error(`cannot start: ${describe(err)}`);
    await daemon.stop(0);
    process.exit(1);
  }
}

async function receive(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', short: 'l', multiple: true },
      write: { type: 'string', short: 'w' },
      token: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'require-client-cert': { type: 'boolean' },
      'log-file': { type: 'string' },
    },
    strict: true,
  });
  if (!values.write) fail('receive needs --write FILE.pcap');
  const listen: ListenOptions[] = [];
  for (const l of values.listen ?? []) {
    const hp = parseHostPort(l);
    if (!hp) fail(`--listen wants HOST:PORT, got ${JSON.stringify(l)}`);
    listen.push({ host: hp.host, port: hp.port });
  }
  if (listen.length === 0) listen.push({ host: '0.0.0.0' }, { host: '::' });
  const { readFileSync } = await import('node:fs');
  const tlsFiles = [values['tls-cert'], values['tls-key']];
  if (tlsFiles.some((x) => x !== undefined) && tlsFiles.some((x) => x === undefined)) fail('TLS needs both --tls-cert and --tls-key');
  let tls;
  try {
    tls = values['tls-cert']
      ? {
          cert: readFileSync(values['tls-cert']),
          key: readFileSync(values['tls-key']!),
          ca: values['tls-ca'] ? readFileSync(values['tls-ca']) : undefined,
          requestCert: values['require-client-cert'] === true,
          rejectUnauthorized: values['require-client-cert'] === true,
        }
      : undefined;
  } catch (err) {
    fail(`cannot read TLS files: ${describe(err)}`);
  }
  const log = new AgentLogger(values['log-file'], true);
  let rx;
  try {
    rx = await startPcapReceiver({ listen, path: resolve(values.write), token: values.token ?? process.env.DBTAP_AGENT_TOKEN, tls, logger: log });
  } catch (err) {
    log.error(describe(err));
    process.exit(1);
  }
  const receiver = rx;
  let closing = false;
  const stop = async (sig: string) => {
    if (closing) return;
    closing = true;
    await receiver.close();
    const s = receiver.server.stats();
    log.info(`${sig}: wrote ${receiver.frames} frames (${s.batches} batches, ${receiver.skipped} skipped) to ${values.write}`);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

// `status` prints the counters as JSON, `metrics` in the Prometheus text format.
async function status(args: string[], format: 'json' | 'prometheus'): Promise<void> {
  const { values } = parseArgs({ args, options: { socket: { type: 'string' }, config: { type: 'string', short: 'c' } }, strict: true });
  let socket = values.socket;
  if (socket === undefined && values.config !== undefined) {
    try {
      socket = loadAgentConfig(resolve(values.config)).config.statusSocket;
    } catch (err) {
      fail(describe(err));
    }
  }
  socket ??= process.env.DBTAP_AGENT_STATUS_SOCKET || defaultStatusSocket();
  try {
    const st = await readAgentStatus(socket);
    process.stdout.write(format === 'json' ? `${JSON.stringify(st, null, 2)}\n` : agentMetrics(st));
  } catch (err) {
    fail(describe(err), 1);
  }
}

function installService(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, user: { type: 'string' }, 'unit-dir': { type: 'string' }, name: { type: 'string' } },
    strict: true,
  });
  if (!values.config) fail('install-service needs --config FILE');
  const config = resolve(values.config);
  try {
    loadAgentConfig(config, { env: {} });
  } catch (err) {
    fail(`the configuration does not load, not installing: ${describe(err)}`);
  }
  const script = realpathSync(process.argv[1]!);
  const exec = `${process.execPath} ${script}`;
  const name = values.name ?? 'dbtap-agent';
  const path = installSystemdUnit(values['unit-dir'] ?? '/etc/systemd/system', name, { config, exec, user: values.user });
  process.stdout.write(`wrote ${path}\nnext: systemctl daemon-reload && systemctl enable --now ${name}\n`);
}

function uninstallService(args: string[]): void {
  const { values } = parseArgs({ args, options: { 'unit-dir': { type: 'string' }, name: { type: 'string' } }, strict: true });
  const name = values.name ?? 'dbtap-agent';
  const path = uninstallSystemdUnit(values['unit-dir'] ?? '/etc/systemd/system', name);
  if (path === undefined) fail(`no ${name}.service installed`, 1);
  process.stdout.write(`removed ${path}\nnext: systemctl disable --now ${name}; systemctl daemon-reload\n`);
}

async function main(argv: string[]): Promise<void> {
  let [cmd, ...rest] = argv;
  if (cmd === '--help' || cmd === '-h') cmd = 'help';
  if (cmd === '--version' || cmd === '-V') {
    process.stdout.write(`${version}\n`);
    return;
  }
  if (cmd === undefined || !commands.has(cmd)) {
    rest = cmd === undefined ? [] : argv;
    cmd = 'run';
  }
  // `dbtap-agent COMMAND --help` (before any `--`) is help, whatever the command
  const end = rest.indexOf('--');
  if ((end < 0 ? rest : rest.slice(0, end)).some((a) => a === '--help' || a === '-h')) cmd = 'help';
  try {
    switch (cmd) {
      case 'help':
        process.stdout.write(USAGE);
        return;
      case 'run':
        return await run(rest);
      case 'receive':
        return await receive(rest);
      case 'status':
        return await status(rest, 'json');
      case 'metrics':
        return await status(rest, 'prometheus');
      case 'devices':
        for (const d of listCaptureDevices()) process.stdout.write(`${d.name}${d.addresses.length ? `\t${d.addresses.join(' ')}` : ''}${d.description ? `\t(${d.description})` : ''}\n`);
        return;
      case 'install-service':
        return installService(rest);
      case 'uninstall-service':
        return uninstallService(rest);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) fail(`${(err as Error).message}\n\n${USAGE}`);
    fail(describe(err), 1);
  }
}

void main(process.argv.slice(2));

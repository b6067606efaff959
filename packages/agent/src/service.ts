// systemd unit for the agent daemon.
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Options of {@link renderSystemdUnit}. */
export interface ServiceOptions {
  /** Absolute path of the configuration file. */
  config: string;
  /** Command line that starts the agent binary, e.g. `/usr/bin/node /usr/lib/dbtap/cli.js`. */
  exec: string;
  /** Run as this user instead of root; capture capabilities are granted as ambient capabilities. */
  user?: string;
  /** Unit description. */
  description?: string;
}

/**
 * A systemd service unit that restarts the agent on failure, reloads it with
 * SIGHUP and stops it with SIGTERM (which flushes the queue).
 */
export function renderSystemdUnit(o: ServiceOptions): string {
  const quote = (s: string) => (/[\s"\\]/.test(s) ? `"${s.replace(/["\\]/g, '\\$&')}"` : s);
  const lines = [
    '[Unit]',
    `Description=${o.description ?? 'dbtap database audit agent'}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${o.exec} --config ${quote(o.config)}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'Restart=on-failure',
    'RestartSec=5',
  ];
  if (o.user) {
    lines.push(`User=${o.user}`, 'AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN', 'CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN', 'NoNewPrivileges=yes');
  }
  lines.push('', '[Install]', 'WantedBy=multi-user.target', '');
  return lines.join('\n');
}

/** Writes `<unitDir>/<name>.service`; returns its path. */
export function installSystemdUnit(unitDir: string, name: string, o: ServiceOptions): string {
  mkdirSync(unitDir, { recursive: true });
  const path = join(unitDir, `${name}.service`);
  writeFileSync(path, renderSystemdUnit(o), { mode: 0o644 });
  return path;
}

/** Removes `<unitDir>/<name>.service`; returns its path, or undefined when there was none. */
export function uninstallSystemdUnit(unitDir: string, name: string): string | undefined {
  const path = join(unitDir, `${name}.service`);
  if (!existsSync(path)) return undefined;
  unlinkSync(path);
  return path;
}

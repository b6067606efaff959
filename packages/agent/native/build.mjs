// Builds the optional native binding (dbtap_pcap.node) with node-gyp when
// libpcap's headers are present. It never fails the install: without the
// binding, live capture runs through the `cap` package and the kernel's drop
// counters are reported as unknown.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const skip = (why) => {
  console.log(`dbtap-agent: native capture binding not built (${why}); kernel drop counters will be reported as unknown`);
  process.exit(0);
};
if (process.platform === 'win32') skip('not supported on Windows');
if (!['/usr/include/pcap/pcap.h', '/usr/local/include/pcap/pcap.h', '/opt/homebrew/include/pcap/pcap.h'].some((p) => existsSync(p)) && process.platform !== 'darwin') {
  skip('libpcap headers not found: install libpcap-dev');
}
// npm names its node-gyp in npm_config_node_gyp; else the one bundled with npm.
const gyp = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find(
  (p) => p && existsSync(p),
);
if (!gyp) skip('node-gyp not found');
// Headers installed beside this node (a distribution's nodejs-dev) spare
// node-gyp a download, which an offline build host could not make.
const prefix = join(dirname(process.execPath), '..');
const args = [gyp, 'rebuild'];
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) skip(`node-gyp failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}`);

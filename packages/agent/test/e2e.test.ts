// End to end on lo: real MariaDB and PostgreSQL traffic captured by the
// dbtap-agent daemon, delivered to `dbtap-agent receive`, compared with a
// reference capture of the same traffic taken by dumpcap.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { openCapture, type Frame } from '@dbtap/core';
import { canCapture } from '../../../test-support/live-capture.js';
import { sleep, waitFor } from './helpers.js';
import { startProcess, type Proc } from '../../../test-support/process.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../src/cli.ts');
const hasDumpcap = spawnSync('dumpcap', ['--version'], { stdio: 'ignore' }).status === 0;
const ready = canCapture() && hasDumpcap;
if (!ready) console.log('skipping the end-to-end test: needs capture permission on lo and dumpcap');
const e2e = ready ? test.serial : test.skip;

function agentCli(...args: string[]): Proc {
  return startProcess(process.execPath, ['--import', 'tsx', cli, ...args]);
}

// TCP ports of a frame (Ethernet, IPv4 or IPv6), or undefined.
function ports(f: Frame): [number, number] | undefined {
  const d = Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength);
  if (d.length < 14) return undefined;
  const et = d.readUInt16BE(12);
  let l4: number;
  if (et === 0x0800 && d[23] === 6) l4 = 14 + (d[14]! & 0x0f) * 4;
  else if (et === 0x86dd && d[20] === 6) l4 = 54;
  else return undefined;
  if (d.length < l4 + 4) return undefined;
  return [d.readUInt16BE(l4), d.readUInt16BE(l4 + 2)];
}

/**
 * Count, bytes and hashes of the test's packets. Two packet sockets on `lo`
 * may see packets sent at the same moment from different CPUs in a different
 * order, so the whole capture is compared as a multiset (hash of the sorted
 * packet hashes) and the order is compared per direction of each connection,
 * where TCP keeps it.
 */
function digest(path: string, clientPorts: Set<number>): { count: number; bytes: number; packets: string; directions: Record<string, string> } {
  const all: string[] = [];
  const byDirection = new Map<string, ReturnType<typeof createHash>>();
  let bytes = 0;
  const r = openCapture(path);
  for (const f of r) {
    const p = ports(f);
    if (!p || !(clientPorts.has(p[0]) || clientPorts.has(p[1]))) continue;
    bytes += f.data.length;
    all.push(createHash('sha256').update(f.data).digest('hex'));
    const dir = `${p[0]}>${p[1]}`;
    if (!byDirection.has(dir)) byDirection.set(dir, createHash('sha256'));
    byDirection.get(dir)!.update(f.data);
  }
  if (r.error) throw r.error;
  const directions: Record<string, string> = {};
  for (const [k, h] of [...byDirection].sort(([a], [b]) => a.localeCompare(b))) directions[k] = h.digest('hex');
  return { count: all.length, bytes, packets: createHash('sha256').update(all.sort().join('')).digest('hex'), directions };
}

e2e('MariaDB and PostgreSQL traffic on lo arrives byte-identical to a reference capture', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-e2e-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const filter = 'tcp port 3306 or tcp port 5432';
  const procs: Proc[] = [];
  try {
    const received = join(dir, 'received.pcap');
    const reference = join(dir, 'reference.pcap');
    const rx = agentCli('receive', '--listen', `127.0.0.1:${port}`, '--write', received, '--token', 'e2e-token-0123456789');
    procs.push(rx);
    await waitFor(() => rx.out().includes('listening on'), 'receiver listening', 20_000);

    const ref = startProcess('dumpcap', ['-q', '-i', 'lo', '-f', filter, '-P', '-w', reference]);
    procs.push(ref);
    await waitFor(() => existsSync(reference) && readFileSync(reference).length >= 24, 'dumpcap running', 20_000);

    writeFileSync(
      join(dir, 'agent.conf'),
      `receive_device=lo\npacket_filter=${filter}\ndst_ip=127.0.0.1\ndst_port=${port}\ntoken=e2e-token-0123456789\nagent_id=e2e\nlog_file=${join(dir, 'agent.log')}\nstatus_socket=${join(dir, 'agent.sock')}\n`,
    );
    writeFileSync(join(dir, 'queue.conf'), 'CACHE_NUM_MAX=100000\nCACHE_SIZE=64\n');
    const agent = agentCli('--config', join(dir, 'agent.conf'));
    procs.push(agent);
    await waitFor(() => agent.out().includes('capture started') && agent.out().includes('connected to'), 'agent capturing and connected', 20_000);

    // Real traffic, from clients whose local ports identify it among other traffic on lo.
    const clientPorts = new Set<number>();
    const my = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: 'test' });
    clientPorts.add((my as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort);
    await my.query('CREATE TABLE IF NOT EXISTS dbtap_agent_e2e (id INT PRIMARY KEY, v TEXT)');
    await my.query('DELETE FROM dbtap_agent_e2e');
    for (let i = 0; i < 50; i++) await my.query('INSERT INTO dbtap_agent_e2e VALUES (?, ?)', [i, 'v'.repeat(i * 40)]);
    await my.query('SELECT * FROM dbtap_agent_e2e');
    await my.query('DROP TABLE dbtap_agent_e2e');
    await my.end();

    const pc = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
    await pc.connect();
    clientPorts.add((pc as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort);
    await pc.query('SELECT generate_series(1, 2000) AS n, md5(random()::text) AS h');
    await pc.query('SELECT $1::text AS x', ['dbtap e2e']);
    await pc.end();

    await sleep(500);
    const status = agentCli('status', '--socket', join(dir, 'agent.sock'));
    t.is(await status.exited, 0, status.out());
    const st = JSON.parse(status.out()) as { connected: boolean; agentId: string; source: { frames: number }; transport: { droppedPackets: number } };
    t.true(st.connected);
    t.is(st.agentId, 'e2e');
    t.true(st.source.frames > 0);

    agent.child.kill('SIGTERM');
    t.is(await agent.exited, 0, agent.out());
    ref.child.kill('SIGINT');
    await ref.exited;
    rx.child.kill('SIGTERM');
    t.is(await rx.exited, 0, rx.out());

    const a = digest(received, clientPorts);
    const b = digest(reference, clientPorts);
    t.log(`reference: ${b.count} packets, ${b.bytes} bytes; delivered: ${a.count} packets, ${a.bytes} bytes`);
    t.true(b.count > 100);
    t.deepEqual(a, b);
    const log = readFileSync(join(dir, 'agent.log'), 'utf8');
    t.regex(log, new RegExp(`connected to 127\\.0\\.0\\.1:${port}`));
    t.regex(log, /stopped: \d+ packets delivered, 0 dropped, 0 undelivered/);
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

e2e('the daemon logs refused connections with their reason and reloads on SIGHUP', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-e2e-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const procs: Proc[] = [];
  try {
    const rx = agentCli('receive', '--listen', `127.0.0.1:${port}`, '--write', join(dir, 'rx.pcap'), '--token', 'right-token-0123456789');
    procs.push(rx);
    await waitFor(() => rx.out().includes('listening on'), 'receiver', 20_000);
    const conf = join(dir, 'agent.conf');
    writeFileSync(conf, `receive_device=lo\npacket_filter=tcp port 3306\ndst_ip=127.0.0.1\ndst_port=${port}\ntoken=wrong-token-0123456789\nstatus_socket=\n`);
    const agent = agentCli('--config', conf);
    procs.push(agent);
    await waitFor(() => /DBTAP_E_AUTH: wrong token/.test(agent.out()), 'refusal logged', 20_000);
    t.regex(rx.out(), /refused 127\.0\.0\.1:\d+: DBTAP_E_AUTH: wrong token/);
    writeFileSync(conf, `receive_device=lo\npacket_filter=tcp port 3306\ndst_ip=127.0.0.1\ndst_port=${port}\ntoken=right-token-0123456789\nstatus_socket=\n`);
    agent.child.kill('SIGHUP');
    await waitFor(() => agent.out().includes('configuration reloaded') && agent.out().includes('connected to'), 'reload and connect', 40_000);
    agent.child.kill('SIGTERM');
    t.is(await agent.exited, 0);
    t.regex(rx.out(), /agent \S+ .*connected from 127\.0\.0\.1/);
    // A bad configuration on start is a clear error and exit code 2.
    writeFileSync(conf, 'receive_device=lo\n');
    const bad = agentCli('--config', conf);
    t.is(await bad.exited, 2);
    t.regex(bad.out(), /DBTAP_E_CONFIG: invalid agent configuration:\n.*no server address/);
    // An unknown device is a clear error and exit code 1.
    writeFileSync(conf, `receive_device=nosuchdev9\ndst_ip=127.0.0.1\ndst_port=${port}\nstatus_socket=\n`);
    const nodev = agentCli('--config', conf);
    t.is(await nodev.exited, 1);
    t.regex(nodev.out(), /DBTAP_E_UNKNOWN_DEVICE: capture device "nosuchdev9" does not exist; devices: .*lo/);
    rx.child.kill('SIGTERM');
    await rx.exited;
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('install-service writes a unit and uninstall-service removes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dbtap-unit-'));
  try {
    const conf = join(dir, 'agent.conf');
    writeFileSync(conf, 'receive_device=lo\ndst_ip=127.0.0.1\n');
    const inst = agentCli('install-service', '--config', conf, '--unit-dir', dir, '--user', 'dbtap');
    t.is(await inst.exited, 0, inst.out());
    const unit = readFileSync(join(dir, 'dbtap-agent.service'), 'utf8');
    t.regex(unit, new RegExp(`ExecStart=.*cli\\.ts --config ${conf.replace(/[.]/g, '\\.')}`));
    t.regex(unit, /Restart=on-failure/);
    const un = agentCli('uninstall-service', '--unit-dir', dir);
    t.is(await un.exited, 0);
    t.false(existsSync(join(dir, 'dbtap-agent.service')));
    const again = agentCli('uninstall-service', '--unit-dir', dir);
    t.is(await again.exited, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

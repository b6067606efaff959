import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import type { Frame } from '@dbtap/core';
import { AgentErrorCodes, LiveCaptureSource, listCaptureDevices } from '@dbtap/agent';
import { canCapture } from '../../../test-support/live-capture.js';
import { waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const live = canCapture();
const liveTest = live ? test.serial : test.skip;
if (!live) console.log('skipping live capture tests: this process may not capture on lo (needs root or CAP_NET_RAW)');

function mariadb(sql: string): void {
  execFileSync('mariadb', ['-h', '127.0.0.1', '-P', '3306', '-u', 'root', 'test', '-e', sql], { stdio: 'ignore' });
}

test('an unknown device is refused with the list of devices that exist', async (t) => {
  const err = await t.throwsAsync(new LiveCaptureSource({ device: 'nosuchdev0' }).start());
  t.is((err as { code?: string }).code, AgentErrorCodes.UNKNOWN_DEVICE);
  t.regex(err!.message, /"nosuchdev0" does not exist; devices: .*\blo\b/);
  t.true(listCaptureDevices().some((d) => d.name === 'lo' && d.addresses.includes('127.0.0.1')));
});

test('bad options are refused before anything opens', (t) => {
  t.throws(() => new LiveCaptureSource({ device: '' }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  t.throws(() => new LiveCaptureSource({ device: 'lo', snapLen: 70000 }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
  t.throws(() => new LiveCaptureSource({ device: 'lo', bufferSize: 10 }), { code: 'DBTAP_E_INVALID_ARGUMENT' });
});

liveTest('an invalid filter is refused with libpcap\'s message', async (t) => {
  for (const [filter, msg] of [
    ['tcp prot 3306', /syntax error/],
    ['tcp port 99999', /illegal port number 99999/],
  ] as const) {
    const err = await t.throwsAsync(new LiveCaptureSource({ device: 'lo', filter }).start());
    t.is((err as { code?: string }).code, AgentErrorCodes.INVALID_FILTER, filter);
    t.regex(err!.message, msg);
  }
});

liveTest('capture without the capabilities is refused with DBTAP_E_PERMISSION and the setcap advice', async (t) => {
  const script = join(here, `.perm-${process.pid}.ts`);
  writeFileSync(
    script,
    `import { LiveCaptureSource } from '@dbtap/agent';
try { await new LiveCaptureSource({ device: 'lo', filter: 'tcp' }).start(); console.log('OPENED'); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
`,
  );
  try {
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-net_raw,-net_admin', process.execPath, '--import', 'tsx', script],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (r.error) return t.log(`setpriv unavailable: ${r.error.message}`), t.pass();
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: string; message: string };
    t.is(out.code, AgentErrorCodes.PERMISSION);
    t.regex(out.message, /Operation not permitted.*setcap cap_net_raw,cap_net_admin/);
  } finally {
    rmSync(script, { force: true });
  }
});

liveTest('captures real MariaDB traffic on lo with a multi-port filter', async (t) => {
  const src = new LiveCaptureSource({ device: 'lo', filter: 'tcp port 3306 or tcp port 5432' });
  const frames: Frame[] = [];
  src.on('frame', (f) => frames.push({ ...f, data: f.data.slice() }));
  await src.start();
  t.is(src.linkType, 1);
  mariadb("select 'dbtap-live-capture-marker'");
  await src.stop();
  t.true(frames.length >= 10);
  const all = Buffer.concat(frames.map((f) => f.data));
  t.true(all.includes('dbtap-live-capture-marker'));
  // Ethernet + IPv4/IPv6 + TCP to or from a filtered port, every one of them
  // (other processes may talk to PostgreSQL meanwhile).
  for (const f of frames) {
    const d = Buffer.from(f.data);
    const et = d.readUInt16BE(12);
    t.true(et === 0x0800 || et === 0x86dd);
    const tcp = et === 0x0800 ? 14 + (d[14]! & 0x0f) * 4 : 54;
    const ports = [d.readUInt16BE(tcp), d.readUInt16BE(tcp + 2)];
    t.true(ports.includes(3306) || ports.includes(5432));
    t.is(f.origLen, f.data.length);
  }
  t.true(frames.every((f, i) => i === 0 || f.ts >= frames[i - 1]!.ts), 'timestamps never go back');
  const s = src.stats();
  t.is(s.frames, frames.length);
  t.is(s.sourceDrops, 0);
});

liveTest('a snap length cuts frames and keeps the wire length from the IP header', async (t) => {
  const src = new LiveCaptureSource({ device: 'lo', filter: 'tcp port 3306', snapLen: 96 });
  const frames: Frame[] = [];
  src.on('frame', (f) => frames.push({ ...f, data: f.data.slice() }));
  await src.start();
  mariadb(`select '${'x'.repeat(3000)}'`);
  await src.stop();
  const cut = frames.filter((f) => f.origLen > f.data.length);
  t.true(cut.length >= 2);
  for (const f of cut) t.is(f.data.length, 96);
  t.true(cut.some((f) => f.origLen > 3000));
  t.is(src.stats().truncated, cut.length);
});

liveTest('a device that disappears while capturing ends the capture with DBTAP_E_DEVICE_GONE', async (t) => {
  const a = `dbtv${process.pid % 10000}a`;
  const b = `dbtv${process.pid % 10000}b`;
  const made = spawnSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  if (made.status !== 0) {
    t.log(`cannot create a veth pair here (${String(made.stderr).trim()}); device-gone path not exercised`);
    return t.pass();
  }
  try {
    execFileSync('ip', ['link', 'set', a, 'up']);
    execFileSync('ip', ['link', 'set', b, 'up']);
    const src = new LiveCaptureSource({ device: a });
    const errors: Array<{ code: string; message: string }> = [];
    src.on('error', (e) => errors.push(e));
    let ended = false;
    src.on('end', () => (ended = true));
    await src.start();
    execFileSync('ip', ['link', 'del', a]);
    await waitFor(() => ended, 'capture end', 10_000);
    t.is(errors.length, 1);
    t.is(errors[0]!.code, AgentErrorCodes.DEVICE_GONE);
    t.regex(errors[0]!.message, new RegExp(`"${a}" disappeared`));
  } finally {
    spawnSync('ip', ['link', 'del', a]);
  }
});

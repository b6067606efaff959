import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig, parseByteSize, parseHostPort, renderSystemdUnit, type AgentConfig } from '@dbtap/agent';

const dir = mkdtempSync(join(tmpdir(), 'dbtap-agent-conf-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(name: string, text: string): string {
  const d = join(dir, String(n++));
  mkdirSync(d);
  const p = join(d, name);
  writeFileSync(p, text);
  return p;
}

function conf(path: string, env: NodeJS.ProcessEnv = {}): AgentConfig {
  return loadAgentConfig(path, { env }).config;
}

test('classic agent.conf and the queue.conf beside it', (t) => {
  const p = file(
    'agent.conf',
    `# classic agent configuration
receive_device = lo
send_device=lo
packet_filter="tcp port 3306 or tcp port 5432"
dst_ip=10.0.0.5
token = 'abc-0123456789abcdef'
`,
  );
  writeFileSync(join(p, '..', 'queue.conf'), 'CACHE_NUM_MAX=5000\nCACHE_SIZE=64\nOVERFLOW_POLICY=drop-oldest\n');
  const { config, files, warnings } = loadAgentConfig(p, { env: {} });
  t.deepEqual(config.source, { kind: 'live', device: 'lo', filter: 'tcp port 3306 or tcp port 5432', snapLen: 65535, bufferSize: 32 << 20, pollMs: 40, binding: 'auto' });
  t.is(config.server.host, '10.0.0.5');
  t.is(config.server.port, 9999);
  t.is(config.server.token, 'abc-0123456789abcdef');
  t.is(config.server.sendDevice, 'lo');
  t.deepEqual(config.queue, { maxPackets: 5000, maxBytes: 64 << 20, overflow: 'drop-oldest' });
  t.is(files.length, 2);
  t.deepEqual(warnings, []);
});

test('an IPv6 dst_ip defaults to port 9998; host:port forms parse', (t) => {
  t.is(conf(file('agent.conf', 'receive_device=lo\ndst_ip=::1\n')).server.port, 9998);
  t.is(conf(file('agent.conf', 'receive_device=lo\ndst_ip=[::1]:7000\n')).server.port, 7000);
  t.deepEqual(parseHostPort('db.example:9999'), { host: 'db.example', port: 9999 });
  t.is(parseHostPort('a:b:c:zz'), undefined);
  t.is(parseHostPort('host:70000'), undefined);
});

test('classic errors are reported together with file and line; unknown keys are warnings', (t) => {
  const p = file('agent.conf', 'receive_device=lo\nthis line is wrong\ndst_port=http\nfoo=bar\n');
  writeFileSync(join(p, '..', 'queue.conf'), 'CACHE_NUM_MAX=-1\nCACHE_SIZE=lots\n');
  const err = t.throws(() => loadAgentConfig(p, { env: {} }));
  t.is((err as { code?: string }).code, 'DBTAP_E_CONFIG');
  const diags = (err as unknown as { details: { diagnostics: string[] } }).details.diagnostics;
  t.true(diags.some((d) => d.startsWith(`${p}:2: expected key=value`)));
  t.true(diags.some((d) => d.startsWith(`${p}:3: dst_port must be a port number`)));
  t.true(diags.some((d) => /queue\.conf:1: CACHE_NUM_MAX/.test(d)));
  t.true(diags.some((d) => /queue\.conf:2: CACHE_SIZE/.test(d)));
  t.true(diags.some((d) => d.includes('no server address')));
  const ok = file('agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\nfoo=bar\n');
  t.deepEqual(loadAgentConfig(ok, { env: {} }).warnings, [`${ok}:3: unknown key "foo" ignored`]);
});

test('YAML form with sizes, TLS paths relative to the file, and line:column diagnostics', (t) => {
  const p = file(
    'agent.yaml',
    `agentId: db-7
capture:
  device: lo
  filter: tcp port 5432
  bufferSize: 8MiB
server:
  host: audit.example
  port: 9000
  token: t0k-0123456789abcdef
  tls:
    ca: certs/ca.pem
batch:
  maxPackets: 500
queue:
  maxPackets: 1000
  maxBytes: 16M
  overflow: drop-newest
`,
  );
  const c = conf(p);
  t.is(c.agentId, 'db-7');
  t.like(c.source, { kind: 'live', device: 'lo', filter: 'tcp port 5432', bufferSize: 8 << 20 });
  t.like(c.server, { host: 'audit.example', port: 9000, token: 't0k-0123456789abcdef' });
  t.is(c.server.tls?.ca, join(p, '..', 'certs/ca.pem'));
  t.deepEqual(c.queue, { maxPackets: 1000, maxBytes: 16 << 20, overflow: 'drop-newest' });
  t.is(c.batch.maxPackets, 500);
  const bad = file('agent.yml', 'capture:\n  device: lo\nserver:\n  host: x\n  port: many\nqueue:\n  overflow: explode\n');
  const err = t.throws(() => conf(bad));
  t.regex(err!.message, /agent\.yml:5:9: server\.port: must be a positive number/);
  t.regex(err!.message, /agent\.yml:7:13: queue\.overflow: must be drop-newest or drop-oldest/);
  const broken = file('agent.yaml', 'capture: [\n');
  t.regex(t.throws(() => conf(broken))!.message, /agent\.yaml:\d+:\d+/);
});

test('JSON form and environment overrides', (t) => {
  const p = file('agent.json', JSON.stringify({ capture: { device: 'eth0' }, server: { host: '10.1.1.1' }, queue: { maxPackets: 10 } }));
  const c = conf(p, {
    DBTAP_AGENT_DEVICE: 'lo',
    DBTAP_AGENT_SERVER: '[::1]:9100',
    DBTAP_AGENT_TOKEN: 'from-env-0123456789',
    DBTAP_AGENT_QUEUE_PACKETS: '77',
    DBTAP_AGENT_QUEUE_BYTES: '2M',
    DBTAP_AGENT_OVERFLOW: 'drop-oldest',
  });
  t.like(c.source, { device: 'lo' });
  t.like(c.server, { host: '::1', port: 9100, token: 'from-env-0123456789' });
  t.deepEqual(c.queue, { maxPackets: 77, maxBytes: 2 << 20, overflow: 'drop-oldest' });
  t.throws(() => conf(p, { DBTAP_AGENT_QUEUE_PACKETS: 'lots' }), { message: /DBTAP_AGENT_QUEUE_PACKETS: not a positive count/ });
  t.throws(() => conf(file('agent.json', '{ nope')), { code: 'DBTAP_E_CONFIG', message: /not valid JSON/ });
  t.throws(() => loadAgentConfig(join(dir, 'missing.conf'), { env: {} }), { code: 'DBTAP_E_CONFIG', message: /ENOENT/ });
});

test('byte sizes', (t) => {
  t.is(parseByteSize('512k'), 512 * 1024);
  t.is(parseByteSize('64'), 64);
  t.is(parseByteSize('64', 1 << 20), 64 << 20);
  t.is(parseByteSize('1.5G'), Math.floor(1.5 * (1 << 30)));
  t.is(parseByteSize('12 parsecs'), undefined);
  t.is(parseByteSize(-5), undefined);
});

test('the systemd unit restarts on failure and grants capture capabilities to a non-root user', (t) => {
  const unit = renderSystemdUnit({ config: '/etc/dbtap/agent.conf', exec: '/usr/bin/node /opt/dbtap/cli.js', user: 'dbtap' });
  t.regex(unit, /^ExecStart=\/usr\/bin\/node \/opt\/dbtap\/cli\.js --config \/etc\/dbtap\/agent\.conf$/m);
  t.regex(unit, /^Restart=on-failure$/m);
  t.regex(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  t.regex(unit, /^AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN$/m);
  t.notRegex(renderSystemdUnit({ config: '/a', exec: '/b' }), /User=/);
});

test('the kernel capture buffer and poll interval: both formats, validated', (t) => {
  const classic = conf(file('agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\nbuffer_size=128MiB\npoll_ms=25\n'));
  t.like(classic.source, { kind: 'live', bufferSize: 128 << 20, pollMs: 25 });
  const yaml = conf(file('agent.yaml', 'capture: { device: lo, bufferSize: 1GiB, pollMs: 5, binding: cap }\nserver: { host: 127.0.0.1 }\n'));
  t.like(yaml.source, { kind: 'live', bufferSize: 1 << 30, pollMs: 5, binding: 'cap' });
  t.like(conf(file('agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\ncapture_binding=native\n')).source, { binding: 'native' });
  const json = conf(file('agent.json', JSON.stringify({ capture: { device: 'lo', bufferSize: 65536 }, server: { host: '127.0.0.1' } })));
  t.like(json.source, { kind: 'live', bufferSize: 65536, pollMs: 40 });
  for (const [name, text, msg] of [
    ['agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\nbuffer_size=32KiB\n', /capture buffer size must be 64KiB\.\.2GiB-1 .*got 32768/],
    ['agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\nbuffer_size=2GiB\n', /capture buffer size must be 64KiB\.\.2GiB-1 .*got 2147483648/],
    ['agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\nbuffer_size=lots\n', /buffer_size must be a positive number, got "lots"/],
    ['agent.yaml', 'capture: { device: lo, pollMs: 5000 }\nserver: { host: 127.0.0.1 }\n', /capture poll interval must be 1\.\.1000 ms, got 5000/],
    ['agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\npoll_ms=-3\n', /poll_ms must be a positive number/],
    ['agent.conf', 'receive_device=lo\ndst_ip=127.0.0.1\ncapture_binding=pfring\n', /capture_binding must be auto, native or cap, got "pfring"/],
    ['agent.yaml', 'capture: { device: lo, binding: 3 }\nserver: { host: 127.0.0.1 }\n', /must be a string, got 3/],
  ] as const) {
    const err = t.throws(() => conf(file(name, text)), { code: 'DBTAP_E_CONFIG' });
    t.regex(err!.message, msg);
  }
});

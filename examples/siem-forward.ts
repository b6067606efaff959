// An embedded receiver for a SIEM connector: dbtap agents send their captured
// frames straight to this process (no audit server, no store), which decodes
// them, applies the built-in policies and writes every alert as one CEF line
// on stdout, ready for a collector that reads a pipe (Logstash stdin, Fluent
// Bit exec, a Splunk scripted input, ...).
//
//   node --import=tsx examples/siem-forward.ts --listen 127.0.0.1:9999 [--token SECRET]
//   dbtap-agent --config agent.yaml        (on each database host; server: { host, port, token })
//
// Options: --listen HOST:PORT (default 127.0.0.1:9999), --token (or env
// DBTAP_AGENT_TOKEN), --header none|rfc5424|rfc3164 (syslog header in front of
// each CEF line, default none), --min-risk LEVEL (also forward ordinary
// records at that risk or above; default: alerts only). Status goes to
// stderr. SIGINT or SIGTERM closes the listener, ends the open sessions
// (their last records are judged and forwarded too) and exits 0.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { DbtapError, isDbtapError, type AuditEvent, type RiskLevel } from '@dbtap/core';
import { TransportServer, formatHostPort } from '@dbtap/agent';
import { createDefaultRegistry } from '@dbtap/protocols';
import { AuditPipeline, NOTIFY_PRODUCT, formatCef, loadRuleSelection, rulesProcessor, type CefOptions } from '@dbtap/server';

const RISKS: readonly RiskLevel[] = ['none', 'info', 'low', 'medium', 'high'];

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        listen: { type: 'string', default: '127.0.0.1:9999' },
        token: { type: 'string', default: process.env.DBTAP_AGENT_TOKEN },
        header: { type: 'string', default: 'none' },
        'min-risk': { type: 'string' },
      },
    }).values;
  } catch (err) {
    throw new DbtapError('DBTAP_E_INVALID_ARGUMENT', (err as Error).message);
  }
  // HOST:PORT, with an IPv6 address in brackets: [::1]:9999
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(parsed.listen!);
  if (m === null || Number(m[2]) > 65535) throw new DbtapError('DBTAP_E_INVALID_ARGUMENT', `--listen wants HOST:PORT, not ${parsed.listen}`);
  const header = parsed.header as CefOptions['header'];
  if (!['none', 'rfc5424', 'rfc3164'].includes(header)) throw new DbtapError('DBTAP_E_INVALID_ARGUMENT', `--header is none, rfc5424 or rfc3164, not ${header}`);
  const minRisk = parsed['min-risk'] === undefined ? undefined : RISKS.indexOf(parsed['min-risk'] as RiskLevel);
  if (minRisk === -1) throw new DbtapError('DBTAP_E_INVALID_ARGUMENT', `--min-risk is one of ${RISKS.join(', ')}`);
  return { host: m[1]!, port: Number(m[2]), token: parsed.token, header, minRisk };
}

async function main(): Promise<void> {
  const o = options();
  const log = (line: string) => process.stderr.write(`siem-forward: ${line}\n`);
  const rules = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
  // The same formatter the server's syslog channels use, here writing bare lines.
  const cef: CefOptions = { ...NOTIFY_PRODUCT, hostname: hostname(), header: o.header, facility: 16, appName: 'dbtap', procId: String(process.pid), maxMessageBytes: 8192 };
  let forwarded = 0;
  const forward = (record: AuditEvent) => {
    for (const e of rules.process(record)) {
      const risky = o.minRisk !== undefined && RISKS.indexOf(e.risk ?? 'none') >= o.minRisk;
      if (e.kind !== 'alert' && !risky) continue;
      process.stdout.write(`${formatCef({ type: 'event', event: e }, cef)}\n`);
      forwarded++;
    }
  };

  // One pipeline per agent run: flows of different agents never mix, and the
  // prefix keeps their record ids apart (agents may see the same addresses).
  const pipelines = new Map<string, AuditPipeline>();
  const registry = createDefaultRegistry();
  const server = new TransportServer({
    ...(o.token !== undefined ? { token: o.token } : {}),
    // The batch is acknowledged once this returns: its alerts are on stdout by then.
    onBatch: (agent, frames) => {
      const key = `${agent.id}/${agent.instance}`;
      let p = pipelines.get(key);
      if (p === undefined) pipelines.set(key, (p = new AuditPipeline({ registry, flowIdPrefix: `${agent.id}.${agent.instance.slice(0, 8)}/`, onEvent: forward })));
      for (const f of frames) p.push(f);
    },
  });
  server.on('connect', (a) => log(`agent ${a.id} connected from ${formatHostPort(a.remoteAddress, a.remotePort)}`));
  server.on('disconnect', (a, reason) => log(`agent ${a.id} disconnected: ${reason}`));
  server.on('clientError', (err, remote) => log(`refused ${remote}: ${err.code}: ${err.message}`));
  server.on('batchError', (err, a) => log(`batch of ${a.id} failed: ${(err as Error).message}`));
  for (const a of await server.listen({ host: o.host, port: o.port })) log(`listening on ${formatHostPort(a.address, a.port)}`);

  // Live traffic: connections that go quiet are closed by the wall clock, so their last records are not held back.
  const tick = setInterval(() => {
    for (const p of pipelines.values()) p.tick(Date.now() * 1000);
  }, 5000);

  // The same signal again, during the shutdown, gets Node's default handling (exit at once).
  const signal = await new Promise<string>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig));
  });
  clearInterval(tick);
  await server.close();
  for (const p of pipelines.values()) p.finish();
  const s = server.stats();
  log(`${signal}: stopped after ${s.batches} batches, ${s.frames} frames, ${forwarded} CEF lines`);
}

main().catch((err: unknown) => {
  process.stderr.write(`siem-forward: ${isDbtapError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
  process.exitCode = isDbtapError(err, 'DBTAP_E_INVALID_ARGUMENT') ? 2 : 1;
});

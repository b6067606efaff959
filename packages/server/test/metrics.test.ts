// /metrics: latency histograms (agent batches, store commits, API requests)
// and the process figures, in the Prometheus text format, from a server that
// ingested real agent batches.
import test from 'ava';
import { join } from 'node:path';
import { openCapture } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { AuditServer, SqliteStore, createApiServer } from '../src/index.js';
import { prometheusText } from '../src/http/server.js';
import { Histogram } from '../src/http/metrics.js';
import { repoRoot } from '../../../test-support/corpus.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the exposition text; also checks that every family has one TYPE line before its samples. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.trimEnd().split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      if (types.has(type[1]!)) throw new Error(`second TYPE line for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]!) && !types.has(family)) throw new Error(`sample ${m[1]} before its TYPE line`);
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { samples, types };
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

test('a histogram counts each observation in its bucket, cumulatively, with sum and count per label set', (t) => {
  const h = new Histogram('x_seconds', 'X.', [0.01, 0.1, 1]);
  for (const v of [0.005, 0.01, 0.05, 0.5, 3]) h.observe(v, { route: '/a' });
  h.observe(0.2, { route: '/b' });
  const { samples, types } = parse(prometheusText(h.samples()));
  t.is(types.get('x_seconds'), 'histogram');
  const buckets = samples.filter((s) => s.name === 'x_seconds_bucket' && s.labels.route === '/a').map((s) => [s.labels.le, s.value]);
  // le is inclusive: 0.01 falls in the 0.01 bucket
  t.deepEqual(buckets, [['0.01', 2], ['0.1', 3], ['1', 4], ['+Inf', 5]]);
  t.is(value(samples, 'x_seconds_count', { route: '/a' }), 5);
  t.is(Math.round(value(samples, 'x_seconds_sum', { route: '/a' })! * 1000), 3565);
  t.is(value(samples, 'x_seconds_bucket', { route: '/b', le: '0.1' }), 0);
  t.is(value(samples, 'x_seconds_bucket', { route: '/b', le: '1' }), 1);
  t.deepEqual(new Histogram('empty_seconds', 'E.').samples(), [], 'no series before the first observation');
});

test('/metrics of a server that ingested agent batches: latency histograms and process figures', async (t) => {
  const store = new SqliteStore({ path: ':memory:' });
  const server = new AuditServer({
    store,
    agentListen: [{ host: '127.0.0.1', port: 0 }],
    api: { host: '127.0.0.1', port: 0, create: (s, srv) => createApiServer({ store: s, metrics: () => srv.metrics() }) },
  });
  const { agents, api } = await server.start();
  t.teardown(() => server.stop());
  const client = new TransportClient({ host: '127.0.0.1', port: Number(agents[0]!.split(':').pop()), agentId: 'db1', batchMaxPackets: 10 }).start();
  const reader = openCapture(join(repoRoot, 'examples/captures/mariadb-session.pcap'));
  for (let f = reader.next(); f !== undefined; f = reader.next()) client.send({ ...f, data: f.data.slice() });
  reader.close();
  t.true(await client.drain(60_000));
  await client.stop();
  const get = async (path: string): Promise<string> => {
    const r = await fetch(`http://${api}${path}`);
    t.is(r.status, 200, path);
    return r.text();
  };
  await get('/api/records?limit=5');
  await get('/api/records?limit=1');
  // a loop blocked for 200 ms shows in the event-loop delay
  const until = Date.now() + 200;
  while (Date.now() < until);
  await new Promise((r) => setTimeout(r, 30));
  const { samples, types } = parse(await get('/metrics'));

  const batches = server.stats().batches;
  t.true(batches >= 7, `62 frames in batches of at most 10 (${batches})`);
  t.is(types.get('dbtap_agent_batch_seconds'), 'histogram');
  t.is(value(samples, 'dbtap_agent_batch_seconds_count'), batches);
  t.is(value(samples, 'dbtap_agent_batch_seconds_bucket', { le: '+Inf' }), batches);
  t.true(value(samples, 'dbtap_agent_batch_seconds_sum')! > 0);
  const commits = value(samples, 'dbtap_store_commit_seconds_count')!;
  t.true(commits >= 1 && commits <= batches, `one commit per batch that produced records (${commits})`);
  t.is(value(samples, 'dbtap_http_request_seconds_count', { route: '/api/records' }), 2);
  t.is(value(samples, 'dbtap_http_request_seconds_bucket', { route: '/api/records', le: '+Inf' }), 2);

  t.true(value(samples, 'process_resident_memory_bytes')! > 10 << 20);
  t.true(value(samples, 'nodejs_heap_size_used_bytes')! > 0);
  t.true(value(samples, 'nodejs_heap_size_used_bytes')! <= value(samples, 'nodejs_heap_size_total_bytes')!);
  const cpu = value(samples, 'process_cpu_seconds_total')!;
  t.true(cpu > 0);
  t.is(Math.round(cpu * 1e6), Math.round((value(samples, 'process_cpu_user_seconds_total')! + value(samples, 'process_cpu_system_seconds_total')!) * 1e6));
  t.is(types.get('process_cpu_seconds_total'), 'counter');
  const start = value(samples, 'process_start_time_seconds')!;
  t.true(start <= Date.now() / 1000 && start > Date.now() / 1000 - process.uptime() - 1);
  t.true(value(samples, 'process_open_fds')! >= 3, 'stdio, the listeners, the client sockets');
  t.true(value(samples, 'nodejs_active_resources')! >= 2);
  t.true(value(samples, 'nodejs_eventloop_lag_max_seconds')! >= 0.15, 'the 200 ms block is the longest delay');
  t.true(value(samples, 'nodejs_eventloop_lag_p50_seconds')! <= value(samples, 'nodejs_eventloop_lag_max_seconds')!);
  t.true(value(samples, 'nodejs_eventloop_lag_mean_seconds')! >= 0);
});

// Latency histograms and process figures for `/metrics`, in the shapes the
// Prometheus client libraries export (so the usual dashboards and alerts
// apply): `<name>_bucket{le=...}` / `_sum` / `_count` histograms, and the
// `process_*` / `nodejs_*` names of prom-client's default collectors.
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { MetricSample } from './server.js';

/**
 * Upper bounds, in seconds, of the latency buckets: 0.5 ms to 10 s, about
 * 2.5x apart (a store commit of one batch is ~1 ms, an API search up to
 * seconds over millions of records).
 */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series {
  labels: Readonly<Record<string, string>>;
  counts: number[];
  sum: number;
  count: number;
}

/** A Prometheus histogram, optionally with one series per label set. */
export class Histogram {
  private readonly series = new Map<string, Series>();

  /**
   * @param name - metric family name, e.g. `dbtap_store_commit_seconds`
   * @param help - `# HELP` text
   * @param buckets - ascending upper bounds (`+Inf` is implied)
   */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {}

  /** Counts one observation (seconds, for latencies) in the series of `labels`. */
  observe(value: number, labels: Readonly<Record<string, string>> = {}): void {
    const key = JSON.stringify(labels);
    let s = this.series.get(key);
    if (s === undefined) this.series.set(key, (s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    // buckets are cumulative in the exposition; here each counts its own range
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Starts a timer; the function it returns observes the seconds since, in the series of the labels it is given. */
  startTimer(): (labels?: Readonly<Record<string, string>>) => void {
    const t0 = process.hrtime.bigint();
    return (labels) => this.observe(Number(process.hrtime.bigint() - t0) / 1e9, labels);
  }

  /** The `_bucket`, `_sum` and `_count` samples of every series. */
  samples(): MetricSample[] {
    const out: MetricSample[] = [];
    const family = { family: this.name, help: this.help, type: 'histogram' as const };
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push({ ...family, name: `${this.name}_bucket`, value: cumulative, labels: { ...s.labels, le: String(le) } });
      });
      out.push({ ...family, name: `${this.name}_bucket`, value: s.count, labels: { ...s.labels, le: '+Inf' } });
      out.push({ ...family, name: `${this.name}_sum`, value: s.sum, labels: s.labels });
      out.push({ ...family, name: `${this.name}_count`, value: s.count, labels: s.labels });
    }
    return out;
  }
}

/** Period of the event-loop delay sampling timer, ms. */
const LOOP_RESOLUTION_MS = 10;

/**
 * Figures of this process: memory, CPU time, open file descriptors, active
 * handles, start time, and the event loop's delay (sampled every 10 ms by
 * `monitorEventLoopDelay`; a high figure means records wait behind
 * synchronous work).
 */
export class ProcessMetrics {
  private readonly loop: IntervalHistogram;
  private readonly startSeconds = Date.now() / 1000 - process.uptime();

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loop.enable();
  }

  /** Stops sampling the event loop. */
  close(): void {
    this.loop.disable();
  }

  /** The samples now. */
  samples(): MetricSample[] {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const gauge = (name: string, help: string, value: number): MetricSample => ({ name, help, type: 'gauge', value });
    const out: MetricSample[] = [
      gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', mem.rss),
      gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, bytes.', mem.heapUsed),
      gauge('nodejs_heap_size_total_bytes', 'V8 heap allocated, bytes.', mem.heapTotal),
      gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (buffers), bytes.', mem.external),
      { name: 'process_cpu_user_seconds_total', help: 'User CPU time spent, seconds.', type: 'counter', value: cpu.user / 1e6 },
      { name: 'process_cpu_system_seconds_total', help: 'System CPU time spent, seconds.', type: 'counter', value: cpu.system / 1e6 },
      { name: 'process_cpu_seconds_total', help: 'User and system CPU time spent, seconds.', type: 'counter', value: (cpu.user + cpu.system) / 1e6 },
      gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, seconds.', Math.round(this.startSeconds * 1000) / 1000),
      gauge('nodejs_active_resources', 'Handles and requests keeping the event loop alive (sockets, timers, files).', process.getActiveResourcesInfo().length),
    ];
    const fds = openFds();
    if (fds !== undefined) out.push(gauge('process_open_fds', 'Open file descriptors.', fds));
    const loop = this.loop;
    // The histogram holds the nanoseconds between two runs of its 10 ms timer,
    // so an idle loop reads 10 ms (measured: min 10.08, median 10.14): the
    // delay is what exceeds the timer's period. Before the first run it holds nothing.
    const s = (ns: number): number => (loop.count === 0 || !Number.isFinite(ns) ? 0 : Math.max(0, ns - LOOP_RESOLUTION_MS * 1e6) / 1e9);
    out.push(
      gauge('nodejs_eventloop_lag_mean_seconds', 'Mean event loop delay since the start, seconds.', s(loop.mean)),
      gauge('nodejs_eventloop_lag_p50_seconds', 'Median event loop delay since the start, seconds.', s(loop.percentile(50))),
      gauge('nodejs_eventloop_lag_p99_seconds', '99th percentile of the event loop delay since the start, seconds.', s(loop.percentile(99))),
      gauge('nodejs_eventloop_lag_max_seconds', 'Longest event loop delay since the start, seconds.', s(loop.max)),
    );
    return out;
  }
}

/** Open descriptors of this process (Linux `/proc/self/fd`), or undefined elsewhere. */
function openFds(): number | undefined {
  try {
    // the listing itself holds one descriptor open while it reads
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

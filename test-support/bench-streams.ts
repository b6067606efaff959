// Benchmark plumbing shared by the protocol benches: a capture reassembled
// once into per-connection chunks held in memory, sessions of any decoder
// fed from them, and best-of-N timing.
import { Direction, FlowTable, PacketDecoder, openCapture, type CloseReason, type Endpoint } from '@dbtap/core';
import { defaultSessionOptions, type ProtocolDecoder } from '@dbtap/protocols';
import { auditCaptureFile } from '@dbtap/server';
import { spawnSync } from 'node:child_process';

/** One connection's reassembled stream. */
export interface Stream {
  client: Endpoint;
  server: Endpoint;
  midStream: boolean;
  /** In-order chunks: direction, bytes (copied), or a gap size. */
  chunks: [Direction, Uint8Array | number][];
  close: CloseReason;
}

/** Reassembles `file` once and keeps the chunks of every connection to `port` (every connection when absent). */
export function loadStreams(file: string, port?: number): { streams: Stream[]; payload: number } {
  const streams: Stream[] = [];
  const byFlow = new Map<string, Stream>();
  let payload = 0;
  const table = new FlowTable<undefined>({
    open: (f) => {
      if (port !== undefined && f.server.port !== port) return;
      const s: Stream = { client: f.client, server: f.server, midStream: f.midStream, chunks: [], close: 'end-of-capture' };
      byFlow.set(f.id, s);
      streams.push(s);
    },
    data: (f, d, b) => {
      const s = byFlow.get(f.id);
      if (s === undefined) return;
      s.chunks.push([d, Uint8Array.from(b)]);
      payload += b.length;
    },
    gap: (f, d, n) => {
      byFlow.get(f.id)?.chunks.push([d, n]);
    },
    close: (f, reason) => {
      const s = byFlow.get(f.id);
      if (s) s.close = reason;
    },
  });
  const reader = openCapture(file);
  const decoder = new PacketDecoder();
  for (let fr = reader.next(); fr !== undefined; fr = reader.next()) table.process(decoder.decode(fr));
  table.flush(Number.MAX_SAFE_INTEGER);
  reader.close();
  return { streams, payload };
}

/** Feeds every stream into a session of `decoder`; counts records and statements. */
export function runSessions(decoder: ProtocolDecoder, streams: readonly Stream[], maxRows: number): { records: number; statements: number } {
  let records = 0;
  let statements = 0;
  let n = 0;
  for (const s of streams) {
    const session = decoder.createSession({
      flowId: `bench-${n++}`,
      client: s.client,
      server: s.server,
      midStream: s.midStream,
      options: { ...defaultSessionOptions, maxRows },
      emit: (e) => {
        records++;
        if (e.kind === 'statement') statements++;
      },
    });
    let ts = 0;
    for (const [d, b] of s.chunks) {
      if (typeof b === 'number') session.gap(d, b, ++ts);
      else session.data(d, b, ++ts);
    }
    session.close(s.close, ++ts);
  }
  return { records, statements };
}

/** Best of `runs` timed runs after one untimed run. */
export function best<T>(fn: () => T, runs = 5): { seconds: number; result: T } {
  (globalThis as { gc?: () => void }).gc?.();
  let seconds = Infinity;
  let result = fn();
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    result = fn();
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { seconds, result };
}

/** Megabytes per second, one decimal. */
export const mbPerSec = (bytes: number, seconds: number): number => +(bytes / 1e6 / seconds).toFixed(1);

/** The whole audit path on `file` (read, decode, reassemble, detect, decode): best of `runs`, with the statements and frames it saw. */
export async function bestAudit(file: string, ports?: readonly number[], runs = 3): Promise<{ seconds: number; statements: number; frames: number }> {
  let seconds = Infinity;
  let statements = 0;
  let frames = 0;
  for (let i = 0; i < runs; i++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    const audit = await auditCaptureFile(file, {
      ...(ports === undefined ? {} : { ports }),
      collect: false,
      onEvent: (e) => {
        if (e.kind === 'statement') n++;
      },
    });
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - t0) / 1e9);
    statements = n;
    frames = audit.summary.frames;
  }
  return { seconds, statements, frames };
}

/** tshark with `args`, best of `runs`, and the lines its last run printed; undefined when tshark could not run. A failed run ends the series. */
export function bestTshark(args: readonly string[], runs = 3): { seconds: number; lines: number } | undefined {
  let seconds = Infinity;
  let lines = -1;
  for (let i = 0; i < runs; i++) {
    const t1 = process.hrtime.bigint();
    const ts = spawnSync('tshark', args, { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
    if (ts.status !== 0) break;
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - t1) / 1e9);
    lines = ts.stdout.toString().split('\n').filter((l) => l !== '').length;
  }
  return lines < 0 ? undefined : { seconds, lines };
}

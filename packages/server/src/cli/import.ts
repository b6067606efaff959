// `dbtap import`: audit capture files into the store, as the server would.
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { openCapture, type Frame } from '@dbtap/core';
import { registryDialects } from '../compose.js';
import { loadServerConfig } from '../config.js';
import { AuditServer } from '../daemon.js';
import { RecordMasker } from '../masking/masker.js';
import { openStore } from '../store/config.js';
import { configuredRules, parsePorts, UsageError, type Command } from './common.js';

export const importCommand: Command = {
  name: 'import',
  usage: `  import [--data-dir DIR] [--config FILE] [--port ...] <file.pcap>...
      Audit capture files into the store (offline audit); several files are
      one capture continued (rotated with tcpdump -C or -G), in the order
      given. Records already stored (the same capture imported again) are
      counted and skipped. Exit 1 when a capture ended early.
`,
  run,
};

/** Frames read and handed on at once. */
const CHUNK_FRAMES = 4096;

/**
 * The id of an import: a digest of its first frames (times and bytes). It
 * prefixes every flow and record id, so importing the same capture again
 * yields the same record ids (stored once), while another capture whose
 * connections happen to share addresses gets ids of its own.
 */
function importId(first: readonly Frame[]): string {
  const h = createHash('sha256');
  const ts = Buffer.alloc(8);
  for (const f of first) {
    ts.writeDoubleBE(f.ts);
    h.update(ts).update(f.data);
  }
  return h.digest('hex').slice(0, 12);
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, port: { type: 'string', multiple: true } },
  });
  if (positionals.length === 0) throw new UsageError('import needs at least one capture file');
  const cfg = loadServerConfig(values.config);
  if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
  const ports = values.port?.flatMap(parsePorts) ?? cfg.ports;
  const { catalog, rules, registry } = configuredRules(cfg, cfg.rules, cfg.dataDir);
  const store = await openStore(cfg.store, { dataDir: cfg.dataDir, integrity: cfg.integrity });
  const server = new AuditServer({
    dataDir: cfg.dataDir,
    store,
    agentListen: [],
    catalog,
    // in-process only: workers build their own rules, masking and decoders
    ...(cfg.workers === 0 ? { registry, processRecord: rules.process } : {}),
    workers: { count: cfg.workers, rules: cfg.rules, ...(cfg.masking !== undefined ? { masking: cfg.masking } : {}) },
    ...(ports ? { ports } : {}),
    ...(cfg.masking !== undefined && cfg.workers === 0 ? { mask: new RecordMasker(cfg.masking, { dialectFor: registryDialects(registry) }).mask } : {}),
    maxFutureSeconds: cfg.ingest.maxFutureSeconds,
  });
  let failed = 0;
  try {
    const storedBefore = (await server.store.stats()).records;
    // One pipeline for every file: connections carry over from one file to the next.
    let source: string | undefined;
    let prefix = '';
    const ingest = async (frames: Frame[]): Promise<void> => {
      if (source === undefined) {
        if (frames.length === 0) return;
        const id = importId(frames);
        source = `import:${id}`;
        prefix = `${id}/`;
      }
      await server.ingest(source, frames, undefined, prefix);
    };
    const counted = () => {
      const p = server.stats().pipelines[0];
      return { frames: p?.frames ?? 0, events: p?.events ?? 0, refused: server.stats().refusedFrames };
    };
    for (const file of positionals) {
      const reader = openCapture(file === '-' ? '/dev/stdin' : file);
      const before = counted();
      const chunk: Frame[] = [];
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        chunk.push({ ...f, data: f.data.slice() });
        if (chunk.length >= CHUNK_FRAMES) await ingest(chunk.splice(0));
      }
      await ingest(chunk.splice(0));
      reader.close();
      const after = counted();
      const refused = after.refused - before.refused;
      process.stderr.write(`dbtap: ${file}: ${after.frames - before.frames} frames, ${after.events - before.events} records${refused > 0 ? `, ${refused} frames refused (timestamp before 1970 or more than ${cfg.ingest.maxFutureSeconds} s in the future)` : ''}\n`);
      if (reader.error) {
        failed++;
        process.stderr.write(`dbtap: ${file}: capture ended early: ${reader.error.code}: ${reader.error.message}\n`);
      }
    }
    // Connections still open at the end of the last file close now (their pending requests become records).
    const st = source !== undefined ? await server.endSource(source) : undefined;
    const stored = (await server.store.stats()).records - storedBefore;
    const made = server.stats().records + server.stats().alerts;
    const already = made - stored;
    process.stderr.write(`dbtap: import ${source ?? '(no frames)'}: ${st?.frames ?? 0} frames, ${st?.flows ?? 0} flows, ${made} records and alerts, ${stored} stored${already > 0 ? `, ${already} already stored (same capture imported before)` : ''}\n`);
  } finally {
    await server.stop();
  }
  return failed > 0 ? 1 : 0;
}

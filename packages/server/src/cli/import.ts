// `dbtap import`: audit capture files into the store, as the server would.
import { parseArgs } from 'node:util';
import { openCapture, type Frame } from '@dbtap/core';
import { registryDialects } from '../compose.js';
import { loadServerConfig } from '../config.js';
import { AuditServer } from '../daemon.js';
import { RecordMasker } from '../masking/masker.js';
import { configuredRules, parsePorts, UsageError, type Command } from './common.js';

export const importCommand: Command = {
  name: 'import',
  usage: `  import [--data-dir DIR] [--config FILE] [--port ...] <file.pcap>...
      Audit capture files into the store (offline audit); exit 1 when a
      capture ended early.
`,
  run,
};

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
  const server = new AuditServer({
    dataDir: cfg.dataDir,
    agentListen: [],
    catalog,
    // in-process only: workers build their own rules, masking and decoders
    ...(cfg.workers === 0 ? { registry, processRecord: rules.process } : {}),
    workers: { count: cfg.workers, rules: cfg.rules, ...(cfg.masking !== undefined ? { masking: cfg.masking } : {}) },
    ...(ports ? { ports } : {}),
    ...(cfg.masking !== undefined && cfg.workers === 0 ? { mask: new RecordMasker(cfg.masking, { dialectFor: registryDialects(registry) }).mask } : {}),
    integrity: cfg.integrity,
    maxFutureSeconds: cfg.ingest.maxFutureSeconds,
  });
  let failed = 0;
  try {
    for (const file of positionals) {
      const reader = openCapture(file === '-' ? '/dev/stdin' : file);
      const source = `file:${file}`;
      const refusedBefore = server.stats().refusedFrames;
      const chunk: Frame[] = [];
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        chunk.push({ ...f, data: f.data.slice() });
        if (chunk.length >= 4096) await server.ingest(source, chunk.splice(0));
      }
      await server.ingest(source, chunk);
      reader.close();
      const st = await server.endSource(source);
      const refused = server.stats().refusedFrames - refusedBefore;
      process.stderr.write(`dbtap: ${file}: ${st?.frames ?? 0} frames, ${st?.flows ?? 0} flows, ${st?.events ?? 0} records${refused > 0 ? `, ${refused} frames refused (timestamp before 1970 or more than ${cfg.ingest.maxFutureSeconds} s in the future)` : ''}\n`);
      if (reader.error) {
        failed++;
        process.stderr.write(`dbtap: ${file}: capture ended early: ${reader.error.code}: ${reader.error.message}\n`);
      }
    }
  } finally {
    await server.stop();
  }
  return failed > 0 ? 1 : 0;
}

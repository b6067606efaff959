// `dbtap audit`: a capture file (or `-`, a capture on stdin) to one audit
// record per line, judged by the rules, with a summary on stderr.
import { parseArgs } from 'node:util';
import { createDefaultRegistry } from '@dbtap/protocols';
import { auditCaptureFile, type AuditSummary } from '../audit.js';
import type { AuditCatalog } from '../catalog.js';
import { registryDialects, type RecordProcessor } from '../compose.js';
import { loadServerConfig } from '../config.js';
import { tableHeader, toNdjson, toTableRow } from '../format.js';
import { RecordMasker } from '../masking/masker.js';
import { DEFAULT_MASKING } from '../masking/config.js';
import { loadRuleSelection, rulesProcessor } from '../rules.js';
import { configuredRules, parsePorts, StdoutLines, UsageError, type Command } from './common.js';

export const auditCommand: Command = {
  name: 'audit',
  usage: `  audit <file.pcap|file.pcapng|-> [--format ndjson|table] [--port 3306,5432,...] [--max-rows N]
        [--rules FILE]... [--policy NAME,...] [--no-rules] [--config server.yaml]
      Decode a capture file ('-' reads one from stdin, as tcpdump -w - writes it)
      and print one audit record per line (NDJSON by default), with a summary
      on stderr. The built-in rule library gives each record its risk and
      matched rules; alerts print as records of kind alert. --config applies a
      server config's audit objects, rules, rule groups and masking, as the
      server would. Exit 1 when the capture was truncated (ended early).
`,
  run,
};

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'ndjson' },
      port: { type: 'string', multiple: true },
      'max-rows': { type: 'string' },
      rules: { type: 'string', multiple: true },
      policy: { type: 'string', multiple: true },
      'no-rules': { type: 'boolean', default: false },
      config: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('audit needs exactly one capture file (or - for stdin)');
  // A server config brings its audit objects, rule selection, rule groups and masking to an offline audit.
  const cfg = values.config !== undefined ? loadServerConfig(values.config) : undefined;
  const format = values.format;
  if (format !== 'ndjson' && format !== 'table') throw new UsageError(`--format must be ndjson or table, not '${format}'`);
  const ports = values.port?.flatMap(parsePorts);
  const maxRows = values['max-rows'] !== undefined ? Number(values['max-rows']) : undefined;
  if (maxRows !== undefined && !(Number.isInteger(maxRows) && maxRows >= 0)) throw new UsageError('--max-rows must be a whole number');

  const policies = values.policy?.flatMap((p) => p.split(',').map((x) => x.trim()).filter(Boolean));
  let registry = createDefaultRegistry();
  let judge: RecordProcessor | undefined;
  let catalog: AuditCatalog | undefined;
  if (cfg !== undefined) {
    const judged = configuredRules(cfg, { builtin: policies ?? cfg.rules.builtin, files: [...cfg.rules.files, ...(values.rules ?? [])] });
    catalog = judged.catalog;
    registry = judged.registry;
    if (!values['no-rules']) judge = judged.rules.process;
  } else if (!values['no-rules']) {
    judge = rulesProcessor(loadRuleSelection({ builtin: policies ?? true, files: values.rules ?? [] }), { dialectFor: registryDialects(registry) }).process;
  }
  // account secrets are masked unless a config turns masking off (masking: false)
  const masking = cfg !== undefined ? cfg.masking : DEFAULT_MASKING;
  const masker = masking !== undefined ? new RecordMasker(masking, { dialectFor: registryDialects(registry) }) : undefined;

  const out = new StdoutLines();
  if (format === 'table') out.write(`${tableHeader()}\n`);
  let alerts = 0;
  const file = positionals[0] === '-' ? '/dev/stdin' : positionals[0]!;
  let s: AuditSummary;
  try {
    ({ summary: s } = await auditCaptureFile(file, {
      registry,
      ...(ports !== undefined ? { ports } : {}),
      ...(maxRows !== undefined ? { maxRows } : {}),
      ...(catalog !== undefined ? { objects: catalog.table } : {}),
      ...(judge !== undefined ? { judge } : {}),
      ...(masker !== undefined ? { mask: masker.mask } : {}),
      collect: false,
      onEvent: (e) => {
        if (e.kind === 'alert') alerts++;
        out.write(format === 'table' ? `${toTableRow(e)}\n` : `${toNdjson(e)}\n`);
      },
    }));
  } finally {
    // the records before a failure are still printed
    out.flush();
  }
  const protocols = Object.entries(s.flowsByProtocol).map(([k, v]) => `${k}=${v}`).join(' ');
  process.stderr.write(
    `dbtap: ${s.frames} frames, ${s.flows} flows (${s.decodedFlows} decoded${protocols ? `: ${protocols}` : ''}, ${s.undetectedFlows} undetected), ` +
      `${s.events} records (${s.errorEvents} errors), ${judge ? `${alerts} alerts, ` : ''}${s.sessions.malformed} malformed messages, ${s.gaps} gaps (${s.gapBytes} bytes)` +
      `${s.truncatedFrames > 0 ? `, ${s.truncatedFrames} truncated frames` : ''}\n`,
  );
  if (s.captureError !== undefined) process.stderr.write(`dbtap: capture truncated: it ended early: ${s.captureError}\n`);
  return s.captureError !== undefined ? 1 : 0;
}

// `dbtap report`: one report from the store, with the config file's report defaults.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadServerConfig } from '../config.js';
import { buildReport } from '../reports/build.js';
import { reportOptionsFromText } from '../reports/options.js';
import { renderReport, REPORT_FORMATS, type ReportFormat } from '../reports/render.js';
import { REPORT_KINDS, type ReportKind } from '../reports/types.js';
import { openStore } from '../store/config.js';
import { UsageError, type Command } from './common.js';

export const reportCommand: Command = {
  name: 'report',
  usage: `  report server|source|compliance|statements [--from ISO] [--to ISO] [--object ID]
        [--format json|csv|html] [--out FILE] [--data-dir DIR] [--config FILE] [--top N]
        [--bucket 15m] [--min-risk LEVEL] [--tz ZONE] [--work-hours 08:00-18:00]
        [--work-days mon-fri] [--sensitive TABLE,...]
      Build a report from the store (the config's store section, default the
      file under the data directory): server analysis,
      source analysis, compliance, or statement statistics per fingerprint.
      The config file's reports section gives the defaults; options override it.
`,
  run,
};

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      from: { type: 'string' }, to: { type: 'string' }, object: { type: 'string' }, format: { type: 'string', default: 'json' },
      out: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, top: { type: 'string' }, bucket: { type: 'string' },
      'min-risk': { type: 'string' }, tz: { type: 'string' }, 'work-hours': { type: 'string' }, 'work-days': { type: 'string' }, sensitive: { type: 'string' },
    },
  });
  const kind = positionals[0];
  if (positionals.length !== 1 || !(REPORT_KINDS as readonly string[]).includes(kind!)) throw new UsageError(`report needs one kind: ${REPORT_KINDS.join(', ')}`);
  const format = values.format;
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be ${REPORT_FORMATS.join(', ')}, not '${format}'`);
  const cfg = loadServerConfig(values.config);
  if (values['data-dir'] !== undefined) cfg.dataDir = values['data-dir'];
  // the same defaults the API applies (working hours, sensitive tables, ...), overridden by the options
  const options = reportOptionsFromText(
    {
      from: values.from, to: values.to, object: values.object, top: values.top, bucket: values.bucket, minRisk: values['min-risk'],
      timeZone: values.tz, workHours: values['work-hours'], workDays: values['work-days'], sensitive: values.sensitive,
    },
    cfg.reports,
  );
  // never creates an empty store by mistake
  const store = await openStore(cfg.store, { dataDir: cfg.dataDir, mustExist: true });
  try {
    const out = renderReport(await buildReport(store, kind as ReportKind, options), format as ReportFormat);
    if (values.out === undefined) process.stdout.write(out.body);
    else {
      writeFileSync(values.out, out.body);
      process.stderr.write(`dbtap: ${kind} report written to ${values.out} (${Buffer.byteLength(out.body)} bytes)\n`);
    }
  } finally {
    await store.close();
  }
  return 0;
}

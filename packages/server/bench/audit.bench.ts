// The whole offline audit path on a large capture of real traffic (pgbench in
// extended mode and mariadb-slap, recorded on lo): read, decode, reassemble,
// detect, decode both wire protocols, and run the built-in rules. Printed
// beside tshark extracting the queries of the same file
// (`-Y "pgsql.query or mysql.query" -T fields -e pgsql.query -e mysql.query`).
//
// Then the NDJSON output of `dbtap audit` on a sysbench capture: toNdjson
// against JSON.stringify with the replacer (what it replaced), same records,
// same process, median of 3 runs each.
//
//   node --import=tsx packages/server/bench/audit.bench.ts
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import type { AuditEvent } from '@dbtap/core';
import { auditCaptureFile, loadRuleSelection, rulesProcessor } from '../src/index.js';
import { jsonReplacer, toNdjson } from '../src/format.js';
import { benchCapture, sysbenchCapture } from '../../../test-support/bench-capture.js';

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const file = await benchCapture();
const mb = statSync(file).size / 1e6;

for (const withRules of [false, true]) {
  let best = Infinity;
  let records = 0;
  let statements = 0;
  let byProtocol: Record<string, number> = {};
  for (let run = 0; run < 3; run++) {
    const rules = withRules ? rulesProcessor(loadRuleSelection({ builtin: true, files: [] })) : undefined;
    records = 0;
    statements = 0;
    const t0 = process.hrtime.bigint();
    const r = await auditCaptureFile(file, {
      collect: false,
      onEvent: (e) => {
        records += rules ? rules.process(e).length : 1;
        if (e.kind === 'statement') statements++;
      },
    });
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    byProtocol = r.summary.flowsByProtocol;
  }
  emit({ bench: 'audit.offline', rules: withRules, file, mb: +mb.toFixed(1), flows: byProtocol, statements, records, seconds: +best.toFixed(3), statementsPerSec: Math.round(statements / best), mbPerSec: +(mb / best).toFixed(1) });
}

const t0 = process.hrtime.bigint();
const ts = spawnSync('tshark', ['-r', file, '-d', 'tcp.port==3306,mysql', '-Y', 'pgsql.query or mysql.query', '-T', 'fields', '-e', 'pgsql.query', '-e', 'mysql.query'], { maxBuffer: 1 << 30 });
const s = Number(process.hrtime.bigint() - t0) / 1e9;
if (ts.status !== 0) emit({ bench: 'audit.tshark', error: ts.stderr?.toString().slice(0, 200) ?? 'tshark failed' });
else {
  const queries = ts.stdout.toString().split('\n').filter((l) => l.trim() !== '').length;
  emit({ bench: 'audit.tshark', file, queries, seconds: +s.toFixed(3), queriesPerSec: Math.round(queries / s), mbPerSec: +(mb / s).toFixed(1) });
}

const sysbench = await sysbenchCapture();
const judged = rulesProcessor(loadRuleSelection({ builtin: true, files: [] }));
const { events } = await auditCaptureFile(sysbench, { judge: judged.process });
const median = (serialize: (e: AuditEvent) => string): { seconds: number; bytes: number } => {
  const times: number[] = [];
  let bytes = 0;
  for (let run = 0; run < 3; run++) {
    bytes = 0;
    const t = process.hrtime.bigint();
    for (const e of events) bytes += serialize(e).length + 1;
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { seconds: times.sort((a, b) => a - b)[1]!, bytes };
};
const withReplacer = median((e) => JSON.stringify(e, jsonReplacer));
const direct = median(toNdjson);
emit({ bench: 'audit.ndjson', file: sysbench, records: events.length, mb: +(direct.bytes / 1e6).toFixed(1), replacerSeconds: +withReplacer.seconds.toFixed(3), toNdjsonSeconds: +direct.seconds.toFixed(3), speedup: +(withReplacer.seconds / direct.seconds).toFixed(2) });

// The whole offline audit path on a large capture of real traffic (pgbench in
// extended mode and mariadb-slap, recorded on lo): read, decode, reassemble,
// detect, decode both wire protocols, and run the built-in rules. Printed
// beside tshark extracting the queries of the same file
// (`-Y "pgsql.query or mysql.query" -T fields -e pgsql.query -e mysql.query`).
//
//   node --import=tsx packages/server/bench/audit.bench.ts
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { auditCaptureFile, loadRuleSelection, rulesProcessor } from '../src/index.js';
import { benchCapture } from '../../../test-support/bench-capture.js';

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

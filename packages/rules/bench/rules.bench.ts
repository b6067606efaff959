// Throughput of the rules package: the built-in library over a realistic mix
// (with and without the injection detector), SQL-injection checks,
// fingerprints and full analyses. One JSON line per case. The fingerprint
// case runs beside a regex port of pt-fingerprint's algorithm in the same
// process as a baseline.
import { RuleEngine, analyzeSql, builtinPolicies, compileRules, builtinRuleFiles, detectSqlInjection, fingerprint } from '../src/index.js';
import { events, statement } from './workload.js';

const MIN_MS = Number(process.env.BENCH_MIN_MS ?? 1500);

function report(name: string, ops: number, ns: number, extra: Record<string, unknown> = {}): void {
  const perSec = Math.round(ops / (ns / 1e9));
  console.log(JSON.stringify({ bench: 'rules', case: name, ops, seconds: +(ns / 1e9).toFixed(3), perSec, ...extra }));
}

/** Runs `fn` over `items` repeatedly (fresh batches from `make`) for at least MIN_MS; returns ops and ns. */
function measure<T>(make: () => T[], fn: (x: T) => unknown): { ops: number; ns: number } {
  // warm-up
  for (const x of make().slice(0, 20000)) fn(x);
  let ops = 0;
  let ns = 0;
  while (ns < MIN_MS * 1e6) {
    const batch = make();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch.length; i++) fn(batch[i]!);
    ns += Number(process.hrtime.bigint() - t0);
    ops += batch.length;
  }
  return { ops, ns };
}

// ---- library without SQLi ----
const noSqli = builtinPolicies().filter((p) => p.defaultEnabled && p.name !== 'sql-injection').map((p) => p.name);
{
  const engine = new RuleEngine(compileRules(builtinRuleFiles(noSqli)));
  const { ops, ns } = measure(() => events(200_000), (e) => engine.process(e));
  const s = engine.stats();
  report('library-without-sqli', ops, ns, { unit: 'events', target: 500_000, policies: noSqli.length, analysed: s.analysed, cacheHits: s.analysisCacheHits, alerts: s.alerts });
}
// ---- full library ----
{
  const engine = new RuleEngine(compileRules(builtinRuleFiles()));
  const { ops, ns } = measure(() => events(200_000), (e) => engine.process(e));
  report('library-full', ops, ns, { unit: 'events', policies: builtinPolicies().filter((p) => p.defaultEnabled).length, alerts: engine.stats().alerts });
}
// ---- statement-level functions ----
const sqls = (): string[] => Array.from({ length: 100_000 }, statement);
{
  const { ops, ns } = measure(sqls, (s) => detectSqlInjection(s));
  report('sqli-checks', ops, ns, { unit: 'statements', target: 450_000 });
}
{
  const { ops, ns } = measure(sqls, (s) => fingerprint(s));
  report('fingerprint', ops, ns, { unit: 'statements' });
}
{
  // Baseline: pt-fingerprint's regular expressions (QueryRewriter::fingerprint) ported to JS.
  const ptLike = (q: string): string => {
    q = q.replace(/\/\*[^!].*?\*\//gs, '').replace(/(?:--|#)[^'"\r\n]*(?=[\r\n]|$)/g, '');
    q = q.replace(/\\["']/g, '').replace(/".*?"/gs, '?').replace(/'.*?'/gs, '?');
    q = q.replace(/[0-9+-][0-9a-f.xb+-]*/g, '?').replace(/[xb.+-]\?/g, '?');
    q = q.trim().replace(/[ \n\t\r\f]+/g, ' ').toLowerCase().replace(/\bnull\b/g, '?');
    q = q.replace(/\b(in|values?)(?:[\s,]*\([\s?,]*\))+/g, '$1(?+)');
    q = q.replace(/\blimit \?(?:, ?\?| offset \?)?/, 'limit ?');
    return q;
  };
  const { ops, ns } = measure(sqls, ptLike);
  report('fingerprint-baseline-pt-regex', ops, ns, { unit: 'statements' });
}
{
  const { ops, ns } = measure(sqls, (s) => analyzeSql(s));
  report('analyze', ops, ns, { unit: 'statements' });
}

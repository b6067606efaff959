// Throughput of the rules package, one JSON line per case:
//
//  - the built-in library over a realistic mix of records (bench/workload.ts),
//    without and with the SQL-injection policy, and without the analysis
//    cache (every statement lexed and analysed, the worst case);
//  - SQL-injection checks, fingerprints and full analyses per statement,
//    with a regular-expression port of pt-fingerprint beside the
//    fingerprints as a baseline in the same process.
//
// Records are generated in batches of BATCH outside the timed region and are
// dropped after processing, as in a pipeline (a huge pre-built array would
// measure the garbage collector copying it instead).
import { RuleEngine, analyzeSql, builtinPolicies, compileRules, builtinRuleFiles, detectSqlInjection, fingerprint } from '../src/index.js';
import { events, statement } from './workload.js';

const MIN_MS = Number(process.env.BENCH_MIN_MS ?? 1500);
const BATCH = 2000;
const gc = (globalThis as { gc?: () => void }).gc;

function report(name: string, ops: number, ns: number, extra: Record<string, unknown> = {}): void {
  const perSec = Math.round(ops / (ns / 1e9));
  console.log(JSON.stringify({ bench: 'rules', case: name, ops, seconds: +(ns / 1e9).toFixed(3), perSec, ...extra }));
}

/** Runs `fn` over fresh batches from `make` for at least MIN_MS of timed work; returns ops and ns. */
function measure<T>(make: () => T[], fn: (x: T) => unknown): { ops: number; ns: number } {
  gc?.();
  // warm-up
  for (let w = 0; w < 20; w++) for (const x of make()) fn(x);
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

const library = builtinPolicies().filter((p) => p.defaultEnabled);
const noSqli = library.filter((p) => p.name !== 'sql-injection').map((p) => p.name);

{
  const engine = new RuleEngine(compileRules(builtinRuleFiles(noSqli)));
  const { ops, ns } = measure(() => events(BATCH), (e) => engine.process(e));
  const s = engine.stats();
  report('library-without-sqli', ops, ns, { unit: 'events', target: 500_000, policies: noSqli.length, rules: engine.ruleSet.rules.length, candidatesPerEvent: +(s.candidates / s.events).toFixed(2), cacheHitRate: +(s.analysisCacheHits / (s.analysisCacheHits + s.analysed)).toFixed(3), alerts: s.alerts });
}
{
  const engine = new RuleEngine(compileRules(builtinRuleFiles()));
  const { ops, ns } = measure(() => events(BATCH), (e) => engine.process(e));
  report('library-full', ops, ns, { unit: 'events', policies: library.length, alerts: engine.stats().alerts });
}
{
  const engine = new RuleEngine(compileRules(builtinRuleFiles(noSqli)), { analysisCacheSize: 0 });
  const { ops, ns } = measure(() => events(BATCH), (e) => engine.process(e));
  report('library-without-sqli-uncached', ops, ns, { unit: 'events', note: 'every statement lexed and analysed' });
}

const sqls = (): string[] => Array.from({ length: BATCH }, statement);
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

// Throughput of the rules package, one JSON line per case:
//
//  - the built-in library over a realistic mix of records (bench/workload.ts),
//    without and with the SQL-injection policy, and without the analysis
//    cache (every statement lexed and analysed, the worst case); beside
//    them, in the same process, a reference engine that evaluates every
//    rule's whole condition on every record with no cache (`exhaustive`),
//    as the ratio `vsReference`;
//  - SQL-injection checks, fingerprints and full analyses per statement;
//    the checks beside a reference that lexes and checks every statement
//    (no per-shape verdicts), the fingerprints beside a regular-expression
//    port of pt-fingerprint (`vsBaseline`).
//
// Records are generated in batches of BATCH outside the timed region and are
// dropped after processing, as in a pipeline (a huge pre-built array would
// measure the garbage collector copying it instead).
import { RuleEngine, TokenBuffer, analyzeSql, builtinPolicies, compileRules, builtinRuleFiles, detectSqlInjection, fingerprint, scanSql } from '../src/index.js';
import { detectInjectionTokens } from '../src/sql/sqli.js';
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

const perSec = (m: { ops: number; ns: number }): number => m.ops / (m.ns / 1e9);
const ratio = (a: { ops: number; ns: number }, b: { ops: number; ns: number }): number => +(perSec(a) / perSec(b)).toFixed(2);

for (const [name, names] of [
  ['library-without-sqli', noSqli],
  ['library-full', undefined],
] as const) {
  const rules = compileRules(builtinRuleFiles(names));
  const reference = new RuleEngine(rules, { exhaustive: true, analysisCacheSize: 0 });
  const ref = measure(() => events(BATCH), (e) => reference.process(e));
  const engine = new RuleEngine(rules);
  const m = measure(() => events(BATCH), (e) => engine.process(e));
  const s = engine.stats();
  const r = reference.stats();
  report(name, m.ops, m.ns, {
    unit: 'events',
    ...(names === undefined ? {} : { target: 500_000 }),
    policies: names?.length ?? library.length,
    rules: engine.ruleSet.rules.length,
    candidatesPerEvent: +(s.candidates / s.events).toFixed(2),
    cacheHitRate: +(s.analysisCacheHits / (s.analysisCacheHits + s.analysed)).toFixed(3),
    alerts: s.alerts,
    referencePerSec: Math.round(perSec(ref)),
    referenceCandidatesPerEvent: +(r.candidates / r.events).toFixed(2),
    vsReference: ratio(m, ref),
  });
}
{
  const engine = new RuleEngine(compileRules(builtinRuleFiles(noSqli)), { analysisCacheSize: 0 });
  const { ops, ns } = measure(() => events(BATCH), (e) => engine.process(e));
  report('library-without-sqli-uncached', ops, ns, { unit: 'events', note: 'every statement lexed and analysed' });
}

const sqls = (): string[] => Array.from({ length: BATCH }, statement);
{
  // reference: every statement lexed and checked (no verdicts kept per shape)
  const buf = new TokenBuffer();
  const ref = measure(sqls, (s) => detectInjectionTokens(scanSql(s, undefined, buf)));
  const m = measure(sqls, (s) => detectSqlInjection(s));
  report('sqli-checks', m.ops, m.ns, { unit: 'statements', target: 450_000, referencePerSec: Math.round(perSec(ref)), vsReference: ratio(m, ref) });
}
let fp = { ops: 0, ns: 1 };
{
  fp = measure(sqls, (s) => fingerprint(s));
  report('fingerprint', fp.ops, fp.ns, { unit: 'statements', target: 500_000 });
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
  const m = measure(sqls, ptLike);
  report('fingerprint-baseline-pt-regex', m.ops, m.ns, { unit: 'statements', fingerprintVsBaseline: ratio(fp, m) });
}
{
  const { ops, ns } = measure(sqls, (s) => analyzeSql(s));
  report('analyze', ops, ns, { unit: 'statements' });
}

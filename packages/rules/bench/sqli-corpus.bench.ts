// Detection and false-positive rates of the SQL-injection detector on the
// public libinjection corpora (data/sqli-*.txt attack inputs and
// data/false_positives.txt benign inputs), plus generated application SQL.
//
// libinjection's files hold URL-encoded user input, one per line (lines
// that are empty or start with # are skipped). A database audit sees whole
// statements, so each input is placed the way a vulnerable application
// would place it, unescaped, into three statements:
//
//   numeric:       SELECT * FROM products WHERE id = <input>
//   single-quoted: SELECT * FROM products WHERE name = '<input>'
//   double-quoted: SELECT * FROM products WHERE name = "<input>"   (MySQL strings)
//
// An attack counts as detected when any of the three statements is flagged
// (libinjection also tries each quoting context). Benign inputs are placed
// the way a correct application places them (escaped into a string
// literal); the unescaped placement is reported too, since a vulnerable
// application sends exactly that.
//
// Usage: LIBINJECTION_DATA=/path/to/libinjection/data npx tsx packages/rules/bench/sqli-corpus.bench.ts
// (default: .bench/libinjection under the repository root). One JSON line per case.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectSqlInjection } from '../src/index.js';
import { allAppTemplates, appStatements } from '../test/helpers/app-sql.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = resolve(repoRoot, process.env.LIBINJECTION_DATA ?? '.bench/libinjection');

function out(o: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: 'sqli-corpus', ...o }));
}

/** URL decoding as libinjection's test driver does it: '+' is a space, %XX a byte; bytes are read as UTF-8. */
function urlDecode(s: string): string {
  const b = Buffer.from(s.replace(/\+/g, ' '), 'utf8');
  const bytes: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x25 && i + 2 < b.length) {
      const hex = String.fromCharCode(b[i + 1]!, b[i + 2]!);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
    }
    bytes.push(b[i]!);
  }
  return Buffer.from(bytes).toString('utf8');
}

function inputs(file: string): string[] {
  return readFileSync(join(dir, file), 'utf8')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map(urlDecode);
}

const CONTEXTS: Record<string, (x: string) => string> = {
  numeric: (x) => `SELECT * FROM products WHERE id = ${x}`,
  single: (x) => `SELECT * FROM products WHERE name = '${x}'`,
  double: (x) => `SELECT * FROM products WHERE name = "${x}"`,
};

const rate = (a: number, b: number): number => (b === 0 ? 0 : +(a / b).toFixed(4));

if (!existsSync(dir)) {
  out({ case: 'skipped', reason: `no libinjection data at ${dir} (set LIBINJECTION_DATA to libinjection's data/ directory)` });
} else {
  const files = readdirSync(dir)
    .filter((f) => f.startsWith('sqli-') && f.endsWith('.txt'))
    .sort();
  let total = 0;
  let detected = 0;
  const perContext: Record<string, number> = { numeric: 0, single: 0, double: 0 };
  const reasons = new Map<string, number>();
  for (const f of files) {
    let n = 0;
    let hit = 0;
    for (const x of inputs(f)) {
      n++;
      let any = false;
      for (const [ctx, make] of Object.entries(CONTEXTS)) {
        const r = detectSqlInjection(make(x), 'mysql');
        if (r.injection) {
          perContext[ctx]!++;
          if (!any) for (const reason of r.reasons) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          any = true;
        }
      }
      if (any) hit++;
    }
    total += n;
    detected += hit;
    out({ case: 'attacks', file: f, inputs: n, detected: hit, rate: rate(hit, n) });
  }
  out({
    case: 'attacks-total',
    files: files.length,
    inputs: total,
    detected,
    rate: rate(detected, total),
    perContext: Object.fromEntries(Object.entries(perContext).map(([k, v]) => [k, rate(v, total)])),
    topReasons: [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12),
  });

  const fpFile = join(dir, 'false_positives.txt');
  if (existsSync(fpFile)) {
    const benign = inputs('false_positives.txt');
    const escaped = benign.filter((x) => detectSqlInjection(`SELECT * FROM products WHERE name = '${x.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`, 'mysql').injection).length;
    const unescaped = benign.filter((x) => detectSqlInjection(CONTEXTS.single!(x), 'mysql').injection);
    out({ case: 'false-positives', file: 'false_positives.txt', inputs: benign.length, flaggedEscaped: escaped, rateEscaped: rate(escaped, benign.length), flaggedUnescaped: unescaped.length, rateUnescaped: rate(unescaped.length, benign.length) });
  }
}

// Benign application statements (the same generator the tests use).
{
  const stmts = [...allAppTemplates(), ...appStatements(20_000)];
  const flagged = stmts.filter((s) => detectSqlInjection(s.sql, s.dialect).injection).length;
  out({ case: 'false-positives', file: 'generated application SQL', inputs: stmts.length, flagged, rate: rate(flagged, stmts.length) });
}

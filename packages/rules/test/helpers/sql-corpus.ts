// Query strings of the capture corpus, extracted with tshark (MySQL COM_QUERY /
// COM_STMT_PREPARE text, PostgreSQL Simple Query and Parse). Server ports
// that tshark does not know are decoded as in the corpus SOURCES.md.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { corpusDir, corpusFiles, hasTshark, tshark } from '../../../../test-support/corpus.js';

const MYSQL_PORTS = [12345, 3307, 5432, 20130, 30130, 2883, 6033, 13001];
const PG_PORTS = [15432, 8000, 60102];

/** tshark -T fields escapes \n, \r, \t and backslash; undo that. */
export function unescapeField(s: string): string {
  return s.replace(/\\([nrt\\])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : '\\'));
}

function fields(file: string, decode: string[], field: string): string[] {
  const out: string[] = [];
  const text = tshark(['-r', file, ...decode, '-Y', field, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\u0001', '-e', field]);
  for (const line of text.split('\n')) {
    for (const q of line.split('\u0001')) if (q.trim().length > 0) out.push(unescapeField(q));
  }
  return out;
}

function extract(subdir: string, ports: number[], proto: string, field: string): string[] {
  const decode = ports.flatMap((p) => ['-d', `tcp.port==${p},${proto}`]);
  const files = corpusFiles(subdir);
  // One tshark run over the merged captures (per-file runs take minutes on a
  // loaded machine); per file only when mergecap is missing or fails.
  const merged = join(mkdtempSync(join(tmpdir(), 'dbtap-corpus-')), `${subdir}.pcapng`);
  try {
    execFileSync('mergecap', ['-F', 'pcapng', '-w', merged, ...files], { stdio: 'ignore' });
    return fields(merged, decode, field);
  } catch {
    const out: string[] = [];
    for (const f of files) {
      try {
        out.push(...fields(f, decode, field));
      } catch {
        // a capture tshark cannot read is the decoders' concern, not ours
      }
    }
    return out;
  } finally {
    rmSync(dirname(merged), { recursive: true, force: true });
  }
}

let cache: { mysql: string[]; postgres: string[] } | undefined;

/**
 * All query strings of the corpus, per dialect (with repeats, in capture
 * order). The extraction takes tshark several seconds, and several test
 * files need it, so the result is kept in the system temp directory under a
 * key made of the capture files' names, sizes and times.
 */
export function corpusQueries(): { mysql: string[]; postgres: string[] } {
  if (cache !== undefined) return cache;
  if (!hasTshark()) return { mysql: [], postgres: [] };
  const files = [...corpusFiles('mysql'), ...corpusFiles('postgresql')];
  const key = createHash('sha256')
    .update(files.map((f) => `${f}:${statSync(f).size}:${statSync(f).mtimeMs}`).join('\n'))
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .digest('hex')
    .slice(0, 16);
  const cacheFile = join(tmpdir(), `dbtap-corpus-queries-${key}.json`);
  if (existsSync(cacheFile)) {
    try {
      cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as { mysql: string[]; postgres: string[] };
      return cache;
    } catch {
      // a half-written file from a concurrent run: extract again
    }
  }
  cache = { mysql: extract('mysql', MYSQL_PORTS, 'mysql', 'mysql.query'), postgres: extract('postgresql', PG_PORTS, 'pgsql', 'pgsql.query') };
  const tmp = `${cacheFile}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(cache));
  renameSync(tmp, cacheFile);
  return cache;
}

/** True when pt-fingerprint (Debian percona-toolkit) is installed. */
export function hasPtFingerprint(): boolean {
  try {
    execFileSync('pt-fingerprint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * pt-fingerprint of each query, in one run: its file mode reads records
 * separated by ";\n" and skips records that do not start with a word
 * character, so only such queries are passed (the rest map to undefined).
 */
export function ptFingerprints(queries: readonly string[], tmpDir: string): (string | undefined)[] {
  const usable = queries.map((q) => {
    const t = q.replace(/^\s+/, '').replace(/;\s*$/, '');
    return /^\w/.test(t) && !t.includes(';\n') && !/^#/m.test(t) ? t : undefined;
  });
  const file = join(tmpDir, 'queries.sql');
  const body = usable.filter((q): q is string => q !== undefined).map((q) => `${q};\n`).join('');
  execFileSync('sh', ['-c', 'cat > "$0"', file], { input: body });
  const lines = execFileSync('pt-fingerprint', [file], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
  let k = 0;
  return usable.map((q) => (q === undefined ? undefined : lines[k++]));
}

export { corpusDir };

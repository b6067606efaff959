// Shared test helpers: where the public capture corpus lives, and a test
// wrapper that skips (with a printed reason) when it is absent, except under
// CI where a missing corpus is a failure.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The corpus of real captures, beside the repository. */
export const corpusDir = process.env.DBTAP_CORPUS ?? resolve(repoRoot, '../shared/corpus/pcaps');
/** True when the corpus directory exists. */
export const corpusAvailable = existsSync(corpusDir);

/** Capture files (pcap/pcapng) of one corpus sub-directory, or of all of them, as absolute paths, sorted. */
export function corpusFiles(subdir?: string): string[] {
  if (!corpusAvailable) return [];
  const dirs = subdir === undefined ? readdirSync(corpusDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [subdir];
  const out: string[] = [];
  for (const d of dirs) {
    const full = join(corpusDir, d);
    if (!existsSync(full)) continue;
    for (const f of readdirSync(full)) if (/\.(pcap|pcapng|cap)$/i.test(f)) out.push(join(full, f));
  }
  return out.sort();
}

/** Registers a test that needs the corpus: skipped with a reason outside CI, failed in CI, when it is missing. */
export function corpusTest(title: string, fn: (t: ExecutionContext) => void | Promise<void>): void {
  if (corpusAvailable) {
    test(title, fn);
  } else if (process.env.CI) {
    test(title, (t) => t.fail(`capture corpus not found at ${corpusDir}`));
  } else {
    console.log(`skipping "${title}": capture corpus not found at ${corpusDir}`);
    test.skip(title, () => {});
  }
}

let tsharkChecked: boolean | undefined;
/** True when tshark is installed. */
export function hasTshark(): boolean {
  if (tsharkChecked === undefined) {
    try {
      execFileSync('tshark', ['--version'], { stdio: 'ignore' });
      tsharkChecked = true;
    } catch {
      tsharkChecked = false;
    }
  }
  return tsharkChecked;
}

/** Runs tshark with `args` and returns its stdout. */
export function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Registers a test that needs tshark (same skip/fail policy as {@link corpusTest}). */
export function tsharkTest(title: string, fn: (t: ExecutionContext) => void | Promise<void>): void {
  if (corpusAvailable && hasTshark()) {
    test(title, fn);
  } else if (process.env.CI) {
    test(title, (t) => t.fail(corpusAvailable ? 'tshark is not installed' : `capture corpus not found at ${corpusDir}`));
  } else {
    console.log(`skipping "${title}": needs tshark and the capture corpus`);
    test.skip(title, () => {});
  }
}

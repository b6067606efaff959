// Every capture of the corpus, read by dbtap and by tshark: same frames,
// same lengths, same timestamps.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { openCapture } from '@dbtap/core';
import { corpusAvailable, corpusDir, corpusTest, tsharkTest } from '../../../test-support/corpus.js';

/** Capture files under the corpus, at any depth. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, d.name);
    if (d.isDirectory()) out.push(...walk(full));
    else if (/\.(pcap|pcapng|cap)$/i.test(d.name)) out.push(full);
  }
  return out.sort();
}

interface Read {
  /** `origLen ts` per frame, ts in whole microseconds. */
  frames: string[];
  error: string | undefined;
}

function readAll(file: string): Read {
  const r = openCapture(file);
  const frames: string[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) frames.push(`${f.origLen} ${f.ts}`);
  return { frames, error: r.error?.code };
}

/** Runs a Wireshark tool; a non-zero exit (a cut file) still yields what it printed, with `ok` false. */
function run(cmd: string, args: string[]): { out: string; ok: boolean } {
  try {
    return { out: execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] }), ok: true };
  } catch (err) {
    // A missing tool (ENOENT) also lands here: mergecap/capinfos fall back to per-file tshark runs.
    return { out: (err as { stdout?: string }).stdout ?? '', ok: false };
  }
}

/** tshark's `frame.len` and `frame.time_epoch` rows as `origLen ts`, ts truncated to microseconds like dbtap's. */
function tsharkRows(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [len, epoch] = l.split('\t');
      const [sec, frac = ''] = epoch!.split('.');
      const secN = Number(sec);
      const us = Math.floor(Number(frac.padEnd(9, '0').slice(0, 9)) / 1000);
      // Epochs before 1970 print as -S.F = -(S + F): dbtap's ts is floor-based.
      return `${len} ${epoch!.startsWith('-') ? secN * 1e6 - us : secN * 1e6 + us}`;
    });
}

const files = corpusAvailable ? walk(corpusDir) : [];
const ours = new Map<string, Read>();
function ourRead(file: string): Read {
  let r = ours.get(file);
  if (r === undefined) {
    r = readAll(file);
    ours.set(file, r);
  }
  return r;
}

corpusTest('every corpus capture opens and reads to its end without an exception', (t) => {
  t.true(files.length > 0, `no capture files under ${corpusDir}`);
  for (const f of files) {
    const name = relative(corpusDir, f);
    let r: Read | undefined;
    t.notThrows(() => {
      r = ourRead(f);
    }, name);
    t.true((r?.frames.length ?? 0) > 0, `${name}: has frames`);
    // Only a file that is itself cut short may end with an error.
    if (r?.error !== undefined) t.is(r.error, 'DBTAP_E_TRUNCATED', name);
  }
});

tsharkTest('every corpus capture: frame count, lengths and timestamps agree with tshark', (t) => {
  const good = files.filter((f) => ourRead(f).error === undefined);
  const cut = files.filter((f) => ourRead(f).error !== undefined);
  const theirs = new Map<string, string[]>();
  // One tshark run over all intact files, concatenated by mergecap (each file keeps its
  // own interfaces and timestamp resolution); capinfos' per-file counts split the rows.
  const tmp = mkdtempSync(join(tmpdir(), 'dbtap-corpus-'));
  try {
    const merged = join(tmp, 'all.pcapng');
    const m = run('mergecap', ['-I', 'none', '-a', '-F', 'pcapng', '-w', merged, ...good]);
    const counts = run('capinfos', ['-T', '-r', '-c', ...good]);
    if (m.ok && counts.ok) {
      const rows = tsharkRows(run('tshark', ['-r', merged, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.time_epoch']).out);
      const per = counts.out.split('\n').filter((l) => l !== '').map((l) => Number(l.split('\t')[1]));
      t.is(per.length, good.length, 'capinfos counted every file');
      t.is(rows.length, per.reduce((a, b) => a + b, 0), 'tshark read every merged frame');
      let at = 0;
      good.forEach((f, i) => {
        theirs.set(f, rows.slice(at, at + per[i]!));
        at += per[i]!;
      });
    } else {
      // A file mergecap cannot take whole: fall back to one tshark run per file.
      t.log('mergecap/capinfos failed; reading each file with tshark');
      cut.push(...good);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // A cut file: tshark reads the frames before the cut and says so; compare those.
  for (const f of cut) theirs.set(f, tsharkRows(run('tshark', ['-r', f, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.time_epoch']).out));

  let frames = 0;
  for (const f of files) {
    const name = relative(corpusDir, f);
    const mine = ourRead(f).frames;
    const other = theirs.get(f) ?? [];
    t.is(mine.length, other.length, `${name}: frame count`);
    const firstDiff = mine.findIndex((row, i) => row !== other[i]);
    t.is(firstDiff, -1, `${name}: frame ${firstDiff + 1} is "${mine[firstDiff]}" here, "${other[firstDiff]}" for tshark (origLen ts-us)`);
    frames += mine.length;
  }
  t.log(`${files.length} files, ${frames} frames compared, ${cut.length} cut short`);
});

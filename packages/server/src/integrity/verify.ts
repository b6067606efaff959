// Walks a store's chain and its records side by side, in position order,
// and names the first record or link that does not match what was sealed.
import { DbtapError, type AuditEvent } from '@dbtap/core';
import {
  IntegrityErrorCodes,
  ZERO_HASH,
  chainKey,
  decodeCheckpoint,
  decodePosition,
  entryCount,
  entryHash,
  entrySeq,
  inRanges,
  isLinkKind,
  linkHash,
  recordHash,
  sameHash,
  type ChainKey,
  type LinkRow,
  type SeqRanges,
} from './chain.js';
import type { IntegrityProblem, IntegrityReport, VerifyOptions } from './types.js';

/** A stored record as verification reads it. */
export interface StoredRecord {
  /** Its position. */
  seq: number;
  /** The stored JSON text. */
  json: string;
  /** The stored filter columns, by column name (numbers as numbers). */
  columns: Record<string, unknown>;
}

/** What verification reads from a store (one consistent snapshot). */
export interface ChainSource {
  /** The newest retention link, if any. */
  latestRetention(): Promise<LinkRow | undefined>;
  /** Links numbered above `after`, in ascending order. */
  links(after: number): AsyncIterable<LinkRow>;
  /** Every stored record, in ascending position. */
  records(): AsyncIterable<StoredRecord>;
  /** The filter columns the store derives from a record (compared with {@link StoredRecord.columns}). */
  expectedColumns(e: AuditEvent, json: string): Record<string, unknown>;
  /** The stored ingest positions by source, when the store seals them with `position` links. */
  positions?(): Promise<ReadonlyMap<string, number>>;
}

function hex(b: Buffer): string {
  return b.toString('hex');
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return false;
}

/**
 * What an altered record's JSON now says differently from the filter
 * columns written with it (which an editor of the JSON often leaves alone):
 * a hint of what was changed.
 */
function alteredHint(source: ChainSource, r: StoredRecord): string {
  let e: AuditEvent;
  try {
    e = JSON.parse(r.json) as AuditEvent;
  } catch {
    return ' (it is not valid JSON any more)';
  }
  if (e === null || typeof e !== 'object') return ' (it is not a record any more)';
  let expected: Record<string, unknown>;
  try {
    expected = source.expectedColumns(e, r.json);
  } catch {
    return ' (it is not a complete record any more)';
  }
  const diffs: string[] = [];
  for (const [col, v] of Object.entries(expected)) {
    if (!sameValue(v, r.columns[col])) diffs.push(`${col} ${JSON.stringify(r.columns[col])} -> ${JSON.stringify(v)}`);
  }
  return diffs.length === 0 ? '' : ` (changed against the columns stored with it: ${diffs.join(', ')})`;
}

/**
 * Verifies a chain: every link continues the one before it and has the hash
 * of its content (HMAC with the key when signed); every record a link seals
 * is stored with that hash, or was removed by a retention checkpoint; no
 * stored record is left unsealed; the filter columns agree with the record.
 *
 * @throws DbtapError `DBTAP_E_INTEGRITY_KEY` when the chain is signed and no key was given.
 */
export async function verifyChain(source: ChainSource, options: VerifyOptions = {}): Promise<IntegrityReport> {
  const key: ChainKey | undefined = options.key !== undefined ? chainKey(options.key) : undefined;
  const maxProblems = options.maxProblems ?? 100;
  const problems: IntegrityProblem[] = [];
  let problemCount = 0;
  const report = (p: IntegrityProblem): void => {
    problemCount++;
    if (problems.length < maxProblems) problems.push(p);
  };
  const notes: string[] = [];

  // Where to start: after the cut of the newest retention checkpoint.
  let startN = 0;
  let startHash = ZERO_HASH;
  let cutSeq = 0;
  let removed: SeqRanges = [];
  const latest = await source.latestRetention();
  if (latest !== undefined) {
    const cp = decodeCheckpoint(latest.body);
    if (cp === undefined) {
      report({ kind: 'link-malformed', link: latest.n, message: `link ${latest.n} (retention checkpoint) cannot be decoded; verifying from the beginning` });
    } else {
      startN = cp.cutN;
      startHash = cp.cutHash;
      cutSeq = cp.cutSeq;
      removed = cp.removed;
    }
  }

  const anchors = new Map<number, string>();
  for (const a of options.anchors ?? []) {
    if (a.link < startN) notes.push(`anchor ${a.link}:${a.hash} is before the retention cut (link ${startN}) and cannot be checked any more`);
    else if (a.link === startN) {
      if (a.hash.toLowerCase() !== hex(startHash)) report({ kind: 'anchor-mismatch', link: a.link, message: `anchor link ${a.link} had hash ${a.hash}, the retention cut records ${hex(startHash)}` });
    } else anchors.set(a.link, a.hash.toLowerCase());
  }

  const recIt = source.records()[Symbol.asyncIterator]();
  let cur: StoredRecord | undefined;
  let lastId: string | undefined;
  const advance = async (): Promise<void> => {
    const r = await recIt.next();
    cur = r.done ? undefined : r.value;
  };
  await advance();
  const idOf = (r: StoredRecord): string | undefined => (typeof r.columns.id === 'string' ? r.columns.id : undefined);
  /** Reports the stored records below `seq` as unsealed. */
  const drainBelow = async (seq: number): Promise<void> => {
    while (cur !== undefined && cur.seq < seq) {
      const id = idOf(cur);
      const what = cur.seq <= cutSeq ? `is at or below the retention cut (seq ${cutSeq}), whose records were all removed` : 'is sealed by no link';
      report({ kind: 'record-inserted', seq: cur.seq, ...(id !== undefined ? { recordId: id } : {}), message: `record seq ${cur.seq}${id !== undefined ? ` (id ${id})` : ''} ${what}: it was added behind the store's back` });
      lastId = id;
      await advance();
    }
  };

  let links = 0;
  let records = 0;
  let removedByRetention = 0;
  let signed = 0;
  let unsigned = 0;
  let expectN = startN + 1;
  let prev = startHash;
  let head: LinkRow | undefined;
  let adopted: { records: number; at: number } | undefined;
  const sealedPositions = new Map<string, { seq: number; link: number }>();

  for await (const link of source.links(startN)) {
    links++;
    if (link.n !== expectN) {
      report({ kind: 'link-missing', link: link.n, message: `links ${expectN}${link.n - 1 > expectN ? `..${link.n - 1}` : ''} missing before link ${link.n}` });
    } else if (!sameHash(link.prev, prev)) {
      report({ kind: 'link-missing', link: link.n, message: `link ${link.n} does not continue link ${link.n - 1}: a link between them was replaced or removed` });
    }
    // The hash, with the key when the link says it is signed.
    if (link.keyId === '') {
      unsigned++;
      if (signed > 0) report({ kind: 'key-downgrade', link: link.n, message: `link ${link.n} is unsigned although earlier links are signed` });
      if (!sameHash(linkHash(link, undefined), link.hash)) report({ kind: 'link-altered', link: link.n, message: `link ${link.n} was altered: its SHA-256 does not match its content` });
    } else {
      signed++;
      if (key === undefined) {
        throw new DbtapError(IntegrityErrorCodes.KEY, `the chain is signed (link ${link.n}, key id ${link.keyId}): give the key to verify it`, { keyId: link.keyId });
      }
      if (link.keyId !== key.id) {
        report({ kind: 'link-altered', link: link.n, message: `link ${link.n} is signed with key id ${link.keyId}, not the given key (id ${key.id}): wrong key, or the chain was re-signed` });
      } else if (!sameHash(linkHash(link, key), link.hash)) {
        report({ kind: 'link-altered', link: link.n, message: `link ${link.n} was altered: its HMAC does not match its content` });
      }
    }
    const anchored = anchors.get(link.n);
    if (anchored !== undefined) {
      if (anchored !== hex(link.hash)) report({ kind: 'anchor-mismatch', link: link.n, message: `anchor link ${link.n} had hash ${anchored}, the chain now has ${hex(link.hash)}` });
      anchors.delete(link.n);
    }
    // Continue from what the link says, so that one bad link is reported once.
    prev = link.hash;
    expectN = link.n + 1;
    head = link;

    if (link.kind === 'retention') continue;
    if (link.kind === 'position') {
      const p = decodePosition(link.body);
      if (p === undefined) report({ kind: 'link-malformed', link: link.n, message: `link ${link.n} (ingest position) cannot be decoded` });
      else sealedPositions.set(p.source, { seq: p.seq, link: link.n });
      continue;
    }
    if (!isLinkKind(link.kind)) {
      report({ kind: 'link-malformed', link: link.n, message: `link ${link.n} has an unknown kind ${JSON.stringify(link.kind)}` });
      continue;
    }
    const count = entryCount(link.body);
    if (count !== link.count) {
      report({ kind: 'link-malformed', link: link.n, message: `link ${link.n} should seal ${link.count} records but its body holds ${count < 0 ? 'a partial entry' : count}` });
      if (count < 0) continue;
    }
    if (link.kind === 'adopt') adopted = { records: (adopted?.records ?? 0) + count, at: link.at };
    let before = 0;
    for (let i = 0; i < count; i++) {
      const seq = entrySeq(link.body, i);
      if (seq <= before) {
        report({ kind: 'link-malformed', link: link.n, message: `link ${link.n}: entries out of order at seq ${seq}` });
        break;
      }
      before = seq;
      await drainBelow(seq);
      const r = cur as StoredRecord | undefined;
      if (r !== undefined && r.seq === seq) {
        records++;
        const id = idOf(r);
        const where = `record seq ${seq}${id !== undefined ? ` (id ${id})` : ''}, sealed in link ${link.n}`;
        if (!sameHash(recordHash(r.json), entryHash(link.body, i))) {
          report({ kind: 'record-altered', link: link.n, seq, ...(id !== undefined ? { recordId: id } : {}), message: `${where}, was altered: its stored JSON does not have the sealed hash${alteredHint(source, r)}` });
        } else {
          const expected = source.expectedColumns(JSON.parse(r.json) as AuditEvent, r.json);
          for (const [col, v] of Object.entries(expected)) {
            if (!sameValue(v, r.columns[col])) {
              report({ kind: 'column-altered', link: link.n, seq, column: col, ...(id !== undefined ? { recordId: id } : {}), message: `${where}: column ${col} was altered to ${JSON.stringify(r.columns[col])} (the record says ${JSON.stringify(v)})` });
              break;
            }
          }
        }
        lastId = id;
        await advance();
      } else if (inRanges(removed, seq)) {
        removedByRetention++;
      } else {
        report({ kind: 'record-missing', link: link.n, seq, message: `record seq ${seq}, sealed in link ${link.n}, is missing${lastId !== undefined ? ` (it followed record id ${lastId})` : ''}; retention did not remove it` });
      }
    }
  }
  await drainBelow(Number.POSITIVE_INFINITY);
  const positions = await source.positions?.();
  if (positions !== undefined) {
    for (const [src, seq] of positions) {
      const sealed = sealedPositions.get(src);
      if (sealed === undefined) report({ kind: 'position-altered', source: src, message: `ingest position of ${src} (batch ${seq}) is sealed by no link: it was added behind the store's back` });
      else if (sealed.seq !== seq) report({ kind: 'position-altered', link: sealed.link, source: src, message: `ingest position of ${src} was altered: it says batch ${seq}, link ${sealed.link} sealed batch ${sealed.seq}` });
    }
    for (const [src, sealed] of sealedPositions) {
      if (!positions.has(src)) report({ kind: 'position-altered', link: sealed.link, source: src, message: `ingest position of ${src} (batch ${sealed.seq}, sealed in link ${sealed.link}) is missing` });
    }
  }
  if (key !== undefined && head !== undefined && head.keyId === '') {
    report({ kind: 'key-downgrade', link: head.n, message: `a key was given but the newest link (${head.n}) is unsigned: the chain was written without the key, or rewritten` });
  }
  for (const [n, h] of anchors) {
    report({ kind: 'anchor-mismatch', link: n, message: `anchor link ${n} (hash ${h}) is not in the chain, which ends at link ${head?.n ?? startN}: links were removed from its end` });
  }
  if (signed > 0 && unsigned > 0 && problems.every((p) => p.kind !== 'key-downgrade')) {
    notes.push(`links ${startN + 1}..${startN + unsigned} are unsigned (written before the key was set); the first signed link protects them too`);
  }
  if (adopted !== undefined) notes.push(`${adopted.records} records were already stored when the chain was created (${new Date(adopted.at / 1000).toISOString()}); the chain protects them from then on`);
  if (startN > 0) notes.push(`retention pruned links 1..${startN} with their records (positions up to ${cutSeq}); verification starts after link ${startN}`);
  if (removedByRetention > 0) notes.push(`${removedByRetention} records sealed in later links were removed by retention (positions listed in the checkpoint)`);

  const out: IntegrityReport = {
    ok: problemCount === 0,
    mode: signed > 0 && unsigned > 0 ? 'mixed' : signed > 0 ? 'hmac-sha256' : 'sha256',
    links,
    records,
    removedByRetention,
    start: { link: startN, hash: hex(startHash) },
    notes,
    problems,
    problemCount,
  };
  if (key !== undefined) out.keyId = key.id;
  if (head !== undefined) out.head = { link: head.n, hash: hex(head.hash), at: head.at };
  if (adopted !== undefined) out.adopted = adopted;
  return out;
}

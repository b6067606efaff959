// The hash chain over stored records: record hashes, link messages and
// their hashes, the bodies links carry, and the key that may sign them.
// Both stores use these functions, so a SQLite file and a PostgreSQL schema
// hold byte-identical links for the same history.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ServerErrorCodes } from '../errors.js';
import { DbtapError, riskRank, type AuditEvent } from '@dbtap/core';

/** Error codes of tamper evidence (besides the stores' codes); a view of {@link ServerErrorCodes}. */
export const IntegrityErrorCodes = {
  KEY: ServerErrorCodes.INTEGRITY_KEY,
  NO_CHAIN: ServerErrorCodes.INTEGRITY_NO_CHAIN,
} as const;

/** Length of a hash (SHA-256 and HMAC-SHA-256), bytes. */
export const HASH_BYTES = 32;
/** The `prev` of the first link. */
export const ZERO_HASH: Buffer = Buffer.alloc(HASH_BYTES);
/** Bytes of one entry of a batch body: seq (u64, big-endian) then the record hash. */
export const ENTRY_BYTES = 8 + HASH_BYTES;
/** Most records sealed in one link when existing records are adopted (keeps bodies bounded). */
export const ADOPT_CHUNK = 10_000;
/** Shortest key accepted, bytes. */
export const MIN_KEY_BYTES = 16;

const DOMAIN = Buffer.from('dbtap-chain-v1\n', 'latin1');
const KEY_ID_LABEL = Buffer.from('dbtap-chain-key-id', 'latin1');

/**
 * What a link seals.
 * - `batch`: the records one `append` stored.
 * - `adopt`: records that were already in the store when the chain was
 *   created there (stores written before tamper evidence existed).
 * - `retention`: a retention checkpoint: the link the chain now starts
 *   after (older links were pruned with their records) and every record
 *   position retention removed from the links that remain.
 * - `position`: an ingest position (a source and its last stored batch
 *   number), written in the transaction that stores it, so a position
 *   changed behind the store's back (which decides what a re-sent batch
 *   counts as a duplicate) is reported like an altered record.
 */
export type LinkKind = 'batch' | 'adopt' | 'retention' | 'position';

const KIND_BYTE: Record<LinkKind, number> = { batch: 0x42 /* B */, adopt: 0x41 /* A */, retention: 0x52 /* R */, position: 0x50 /* P */ };

/** One link as stored (both stores keep these columns). */
export interface LinkRow {
  /** Position in the chain, 1 for the first link. */
  n: number;
  /** What it seals. */
  kind: LinkKind;
  /** When it was written (µs since the epoch). */
  at: number;
  /** Lowest record position (`seq`) it covers; for a retention link, the highest position ever assigned at the time. */
  firstSeq: number;
  /** Highest record position it covers; for a retention link, as `firstSeq`. */
  lastSeq: number;
  /** Records it seals (0 for a retention link). */
  count: number;
  /** Id of the key that signed it (16 hex digits), `''` when unsigned (plain SHA-256). */
  keyId: string;
  /** Hash of the previous link. */
  prev: Buffer;
  /** This link's hash. */
  hash: Buffer;
  /** Entries (batch, adopt) or the checkpoint (retention). */
  body: Buffer;
}

/** A signing key and its public id. */
export interface ChainKey {
  /** First 8 bytes of HMAC-SHA-256(key, "dbtap-chain-key-id"), hex: names the key without revealing it. */
  readonly id: string;
  /** The secret. */
  readonly secret: Buffer;
}

/**
 * Makes a {@link ChainKey} from secret bytes, or text (its UTF-8 bytes).
 * At least 16 bytes; throws `DBTAP_E_INTEGRITY_KEY` otherwise.
 */
export function chainKey(secret: Uint8Array | string): ChainKey {
  const buf = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  if (buf.length < MIN_KEY_BYTES) throw new DbtapError(IntegrityErrorCodes.KEY, `integrity key too short: ${buf.length} bytes, at least ${MIN_KEY_BYTES} needed`);
  const copy = Buffer.from(buf);
  return { id: createHmac('sha256', copy).update(KEY_ID_LABEL).digest('hex').slice(0, 16), secret: copy };
}

/** SHA-256 of a record's stored JSON text (its UTF-8 bytes): what a link seals per record. */
export function recordHash(json: string): Buffer {
  return createHash('sha256').update(json, 'utf8').digest();
}

function u64(buf: Buffer, offset: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), offset);
  buf.writeUInt32BE(v >>> 0, offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * 0x1_0000_0000 + buf.readUInt32BE(offset + 4);
}

/**
 * The bytes a link's hash is computed over:
 *
 * ```
 * "dbtap-chain-v1\n"
 * n u64 | kind u8 ('B' 'A' 'R') | at u64 | firstSeq u64 | lastSeq u64 | count u32
 * keyId 8 bytes (zeros when unsigned) | prev 32 bytes | body
 * ```
 *
 * Integers are big-endian. Every stored column of the link is covered, so
 * none can be changed without changing the hash.
 */
export function linkMessage(l: Omit<LinkRow, 'hash'>): Buffer {
  const head = Buffer.alloc(DOMAIN.length + 8 + 1 + 8 + 8 + 8 + 4 + 8 + HASH_BYTES);
  let o = DOMAIN.copy(head, 0);
  u64(head, o, l.n); o += 8;
  head[o++] = KIND_BYTE[l.kind] ?? 0;
  u64(head, o, l.at); o += 8;
  u64(head, o, l.firstSeq); o += 8;
  u64(head, o, l.lastSeq); o += 8;
  head.writeUInt32BE(l.count, o); o += 4;
  if (l.keyId !== '') head.write(l.keyId, o, 8, 'hex');
  o += 8;
  l.prev.copy(head, o);
  return Buffer.concat([head, l.body]);
}

/** The hash of a link: HMAC-SHA-256 with the key when signed, else SHA-256. */
export function linkHash(l: Omit<LinkRow, 'hash'>, key: ChainKey | undefined): Buffer {
  const msg = linkMessage(l);
  return key === undefined ? createHash('sha256').update(msg).digest() : createHmac('sha256', key.secret).update(msg).digest();
}

/** Constant-time equality of two hashes. */
export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True for a valid link kind name. */
export function isLinkKind(s: unknown): s is LinkKind {
  return s === 'batch' || s === 'adopt' || s === 'retention' || s === 'position';
}

// ---- ingest positions ---------------------------------------------------------

/** Encodes an ingest position as a position link body: `seq u64 | source (UTF-8)`. */
export function encodePosition(source: string, seq: number): Buffer {
  const src = Buffer.from(source, 'utf8');
  const out = Buffer.alloc(8 + src.length);
  u64(out, 0, seq);
  src.copy(out, 8);
  return out;
}

/** Decodes a position link body; `undefined` when it is malformed. */
export function decodePosition(body: Buffer): { source: string; seq: number } | undefined {
  if (body.length < 9) return undefined;
  return { seq: readU64(body, 0), source: body.subarray(8).toString('utf8') };
}

// ---- batch bodies -----------------------------------------------------------

/** Encodes (seq, record hash) entries, in ascending seq order, as a batch body. */
export function encodeEntries(entries: ReadonlyArray<{ seq: number; hash: Buffer }>): Buffer {
  const out = Buffer.alloc(entries.length * ENTRY_BYTES);
  let o = 0;
  for (const e of entries) {
    u64(out, o, e.seq);
    e.hash.copy(out, o + 8);
    o += ENTRY_BYTES;
  }
  return out;
}

/** Number of entries in a batch body, or -1 when its length is not a whole number of entries. */
export function entryCount(body: Buffer): number {
  return body.length % ENTRY_BYTES === 0 ? body.length / ENTRY_BYTES : -1;
}

/** Seq of entry `i` of a batch body. */
export function entrySeq(body: Buffer, i: number): number {
  return readU64(body, i * ENTRY_BYTES);
}

/** Record hash of entry `i` of a batch body (a view). */
export function entryHash(body: Buffer, i: number): Buffer {
  const o = i * ENTRY_BYTES + 8;
  return body.subarray(o, o + HASH_BYTES);
}

// ---- retention checkpoints ----------------------------------------------------

/** Record positions as sorted, disjoint, non-adjacent inclusive ranges. */
export type SeqRanges = Array<[number, number]>;

/** What a retention link records. */
export interface Checkpoint {
  /** The chain starts after this link: links up to it were pruned (0: nothing pruned). */
  cutN: number;
  /** Hash of link `cutN` (zeros when `cutN` is 0): the `prev` of link `cutN + 1`. */
  cutHash: Buffer;
  /** Highest record position in the pruned links (0 when none): no record at or below it may remain. */
  cutSeq: number;
  /** Positions retention removed from links after the cut. */
  removed: SeqRanges;
}

/**
 * Encodes a checkpoint as a retention body:
 * `cutN u64 | cutHash 32 | cutSeq u64 | (from u64 | to u64)*`.
 */
export function encodeCheckpoint(c: Checkpoint): Buffer {
  const out = Buffer.alloc(8 + HASH_BYTES + 8 + c.removed.length * 16);
  u64(out, 0, c.cutN);
  c.cutHash.copy(out, 8);
  u64(out, 8 + HASH_BYTES, c.cutSeq);
  let o = 16 + HASH_BYTES;
  for (const [a, b] of c.removed) {
    u64(out, o, a);
    u64(out, o + 8, b);
    o += 16;
  }
  return out;
}

/** Decodes a retention body; `undefined` when it is malformed. */
export function decodeCheckpoint(body: Buffer): Checkpoint | undefined {
  if (body.length < 16 + HASH_BYTES || (body.length - 16 - HASH_BYTES) % 16 !== 0) return undefined;
  const removed: SeqRanges = [];
  for (let o = 16 + HASH_BYTES; o < body.length; o += 16) removed.push([readU64(body, o), readU64(body, o + 8)]);
  return { cutN: readU64(body, 0), cutHash: Buffer.from(body.subarray(8, 8 + HASH_BYTES)), cutSeq: readU64(body, 8 + HASH_BYTES), removed };
}

/** Builds ranges from positions given in ascending order. */
export class RangeBuilder {
  /** The ranges so far. */
  readonly ranges: SeqRanges = [];

  /** Adds one position (not below the last one added). */
  add(seq: number): void {
    const last = this.ranges[this.ranges.length - 1];
    if (last !== undefined && seq <= last[1] + 1) {
      if (seq > last[1]) last[1] = seq;
    } else {
      this.ranges.push([seq, seq]);
    }
  }
}

/** Union of two range lists. */
export function unionRanges(a: SeqRanges, b: SeqRanges): SeqRanges {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: SeqRanges = [];
  for (const [s, e] of all) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** The ranges clipped to positions above `above`. */
export function rangesAbove(r: SeqRanges, above: number): SeqRanges {
  const out: SeqRanges = [];
  for (const [s, e] of r) if (e > above) out.push([Math.max(s, above + 1), e]);
  return out;
}

/** How many positions in `from..to` (inclusive) the ranges cover. */
export function coveredCount(r: SeqRanges, from: number, to: number): number {
  let n = 0;
  let i = firstRangeEndingAtOrAfter(r, from);
  for (; i < r.length && r[i]![0] <= to; i++) n += Math.min(r[i]![1], to) - Math.max(r[i]![0], from) + 1;
  return n;
}

/** True when a position is in the ranges (binary search). */
export function inRanges(r: SeqRanges, seq: number): boolean {
  const i = firstRangeEndingAtOrAfter(r, seq);
  return i < r.length && r[i]![0] <= seq;
}

function firstRangeEndingAtOrAfter(r: SeqRanges, seq: number): number {
  let lo = 0;
  let hi = r.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (r[mid]![1] < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- indexed columns ----------------------------------------------------------

/**
 * The filter columns both stores derive from a record at append time. Verify
 * recomputes them from the sealed JSON, so a column edited to hide a record
 * from searches (say, a changed user name) is caught although the JSON is intact.
 */
export function indexedColumns(e: AuditEvent, json: string): Record<string, string | number | null> {
  return {
    id: e.id,
    kind: e.kind,
    ts: Math.floor(e.ts),
    flow_id: e.flowId,
    audit_object: e.auditObjectId ?? null,
    db_user: e.user ?? null,
    client_ip: e.client?.ip ?? null,
    program: e.clientProgram ?? null,
    db_type: e.dbType ?? null,
    stmt_type: e.statementType ?? null,
    risk: riskRank(e.risk),
    status: e.status ?? 'unknown',
    size: Buffer.byteLength(json),
  };
}

/**
 * Index keys of the objects a record touches, lower case: for each object its
 * `name` and, when the schema is known (written, or else the record's current
 * database), `schema.name`. `canonical` marks one key per object (the
 * qualified one when known), which reports count by.
 */
export function objectKeys(e: AuditEvent): { key: string; canonical: boolean }[] {
  if (!Array.isArray(e.objects) || e.objects.length === 0) return [];
  const keys = new Map<string, boolean>();
  const db = typeof e.database === 'string' ? e.database.toLowerCase() : undefined;
  for (const o of e.objects) {
    if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || o.name === '') continue;
    const name = o.name.toLowerCase();
    const schema = typeof o.schema === 'string' && o.schema !== '' ? o.schema.toLowerCase() : db;
    if (schema !== undefined && schema !== '') {
      keys.set(`${schema}.${name}`, true);
      if (!keys.has(name)) keys.set(name, false);
    } else {
      keys.set(name, true);
    }
  }
  return [...keys].map(([key, canonical]) => ({ key, canonical }));
}

/** Rule ids a record matches: its `ruleIds` plus, for alerts, the alert's rule. */
export function ruleKeys(e: AuditEvent): string[] {
  const ids = new Set<string>();
  if (Array.isArray(e.ruleIds)) for (const r of e.ruleIds) if (typeof r === 'string' && r !== '') ids.add(r);
  if (e.alert !== undefined && typeof e.alert.ruleId === 'string' && e.alert.ruleId !== '') ids.add(e.alert.ruleId);
  return [...ids];
}

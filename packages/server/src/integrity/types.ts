import type { Timestamp } from '@dbtap/core';

/** Tamper-evidence settings of a store. */
export interface IntegrityOptions {
  /**
   * Secret that signs the chain (HMAC-SHA-256), as bytes or text (its UTF-8
   * bytes), at least 16 bytes. Without it links are plain SHA-256, which
   * anyone with write access to the database can recompute (see
   * `docs/integrity.md`). Once a store's chain is signed, appends need the
   * same key and fail with `DBTAP_E_INTEGRITY_KEY` otherwise.
   */
  key?: Uint8Array | string;
}

/** A chain position recorded elsewhere, to prove later that the chain still reaches it. */
export interface ChainAnchor {
  /** Link number. */
  link: number;
  /** The link's hash, hex. */
  hash: string;
}

/** Options of a verification. */
export interface VerifyOptions {
  /** The signing key; required when the chain is signed. */
  key?: Uint8Array | string;
  /**
   * Heads noted earlier (printed by every verification): each must still be
   * in the chain with the same hash. This is what detects links removed from
   * the end of the chain together with their records.
   */
  anchors?: readonly ChainAnchor[];
  /** Problems kept in the report (default 100); all are counted. */
  maxProblems?: number;
}

/**
 * What a problem is.
 * - `record-altered`: a record's stored JSON no longer has the hash its link sealed.
 * - `column-altered`: the JSON is intact but a filter column derived from it was changed.
 * - `record-missing`: a sealed record is gone, and no retention checkpoint removed it.
 * - `record-inserted`: a record no link seals (added behind the store's back).
 * - `link-altered`: a link's hash does not match its content (or its key).
 * - `link-missing`: links are missing, or a link does not continue the one before it.
 * - `link-malformed`: a link's stored fields cannot be decoded.
 * - `key-downgrade`: an unsigned link follows signed ones.
 * - `anchor-mismatch`: a given anchor is not in the chain, or has another hash.
 * - `position-altered`: a stored ingest position differs from the one its
 *   newest `position` link sealed, is sealed by none, or is gone.
 */
export type IntegrityProblemKind =
  | 'record-altered'
  | 'column-altered'
  | 'record-missing'
  | 'record-inserted'
  | 'link-altered'
  | 'link-missing'
  | 'link-malformed'
  | 'key-downgrade'
  | 'anchor-mismatch'
  | 'position-altered';

/** One thing verification found wrong. */
export interface IntegrityProblem {
  /** What is wrong. */
  kind: IntegrityProblemKind;
  /** One line for people, naming the record and link. */
  message: string;
  /** The link concerned. */
  link?: number;
  /** The record position (`seq`) concerned. */
  seq?: number;
  /** The record's id, when it is still stored. */
  recordId?: string;
  /** The column that disagrees (`column-altered`). */
  column?: string;
  /** The ingest source concerned (`position-altered`). */
  source?: string;
}

/** Result of verifying a store's chain. */
export interface IntegrityReport {
  /** True when nothing is wrong. */
  ok: boolean;
  /** `hmac-sha256` when every link checked was signed with the given key, `sha256` when none was, `mixed` when unsigned links precede signed ones. */
  mode: 'hmac-sha256' | 'sha256' | 'mixed';
  /** Id of the key used, when one was given. */
  keyId?: string;
  /** Links checked. */
  links: number;
  /** Records whose hash and columns were checked. */
  records: number;
  /** Sealed records that retention removed (listed in the retention checkpoint). */
  removedByRetention: number;
  /** Where verification started: after link `link` with hash `hash` (link 0 and zeros at the chain's beginning). */
  start: ChainAnchor;
  /** The newest link; absent for an empty chain. */
  head?: ChainAnchor & { at: Timestamp };
  /** Records sealed when the chain was created on a store that already held them (their earlier history is unknown). */
  adopted?: { records: number; at: Timestamp };
  /** Remarks that are not problems: an unsigned beginning, adopted records, anchors pruned by retention. */
  notes: string[];
  /** Problems in chain order, the first one first (at most `maxProblems`). */
  problems: IntegrityProblem[];
  /** All problems found. */
  problemCount: number;
}

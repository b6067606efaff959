// Per-connection state that outlives the process: what later records of a
// connection depend on (the identity learned at login, prepared statement
// texts, the negotiated charset and capabilities, requests still waiting for
// their responses) as a versioned, bounded text. A server that stores it with
// its ingest position can resume the connections open at a crash with their
// context instead of picking them up mid-session without user, database or
// statement texts.
//
// Encoding: JSON, with values JSON lacks tagged as one-key objects:
//
//   bigint      {"$n": "123"}
//   Uint8Array  {"$b": "<base64>"}
//   Map         {"$m": [[key, value], ...]}
//   undefined   dropped (as JSON.stringify does for object fields)
//
// A plain object whose only key is one of the tags is escaped as {"$o": {...}}.
import { DbtapError, ErrorCodes } from '@dbtap/core';
import type { SessionIdentity } from './record.js';

/** Version of the snapshot format; a snapshot of another version is not restored. */
export const SESSION_STATE_VERSION = 1;
/** Largest encoded snapshot of one session, bytes; a larger one is not kept (the connection resumes mid-session, as without snapshots). */
export const MAX_SESSION_STATE_BYTES = 256 << 10;
/** Largest encoded snapshot of all the sessions of one source, bytes; sessions past it are not kept (counted). */
export const MAX_SOURCE_STATE_BYTES = 16 << 20;

/** What the kit itself keeps of a session: record numbering and identity. */
export interface KitSessionState {
  /** Records the session emitted (record ids continue after it). */
  readonly records: number;
  /** Records carried `midSession`. */
  readonly midSession: boolean;
  /** A login succeeded (or was implied). */
  readonly loggedIn: boolean;
  /** The identity copied onto every record. */
  readonly who: SessionIdentity;
}

/** The snapshot of one session, as {@link ProtocolSession.snapshot} returns it. */
export interface SessionSnapshot {
  /** {@link SESSION_STATE_VERSION}. */
  readonly v: number;
  /** The decoder's name. */
  readonly protocol: string;
  /** The kit's part. */
  readonly kit: KitSessionState;
  /** The protocol's part (plain data: objects, arrays, strings, numbers, bigints, byte arrays, maps). */
  readonly data: unknown;
}

const TAGS = new Set(['$n', '$b', '$m', '$o']);

function tag(value: unknown): unknown {
  if (typeof value === 'bigint') return { $n: value.toString() };
  if (value instanceof Uint8Array) return { $b: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Map) return { $m: [...value].map(([k, v]) => [tag(k), tag(v)]) };
  if (Array.isArray(value)) return value.map(tag);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined && typeof v !== 'function') out[k] = tag(v);
    const keys = Object.keys(out);
    return keys.length === 1 && TAGS.has(keys[0]!) ? { $o: out } : out;
  }
  return value;
}

function untag(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untag);
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    if (typeof o.$n === 'string') return BigInt(o.$n);
    if (typeof o.$b === 'string') return new Uint8Array(Buffer.from(o.$b, 'base64'));
    if (Array.isArray(o.$m)) return new Map((o.$m as unknown[]).map((e) => (Array.isArray(e) ? [untag(e[0]), untag(e[1])] : [undefined, undefined])));
    if (o.$o !== null && typeof o.$o === 'object') return untagFields(o.$o as Record<string, unknown>);
  }
  return untagFields(o);
}

function untagFields(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = untag(v);
  return out;
}

/** Encodes a snapshot (or any plain state) as text; see the module comment for the tags. */
export function encodeState(value: unknown): string {
  return JSON.stringify(tag(value));
}

/**
 * Decodes text written by {@link encodeState}.
 * @throws `DBTAP_E_INVALID_ARGUMENT` when it is not JSON
 */
export function decodeState(text: string): unknown {
  try {
    return untag(JSON.parse(text));
  } catch (err) {
    throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `session state is not valid: ${(err as Error).message}`);
  }
}

/** True when `s` looks like a snapshot of this version for `protocol` (its data is the protocol's to check). */
export function isSessionSnapshot(s: unknown, protocol: string): s is SessionSnapshot {
  if (s === null || typeof s !== 'object') return false;
  const o = s as Partial<SessionSnapshot>;
  const k = o.kit;
  return (
    o.v === SESSION_STATE_VERSION &&
    o.protocol === protocol &&
    k !== null &&
    typeof k === 'object' &&
    Number.isSafeInteger(k.records) &&
    k.records >= 0 &&
    typeof k.midSession === 'boolean' &&
    typeof k.loggedIn === 'boolean' &&
    k.who !== null &&
    typeof k.who === 'object'
  );
}

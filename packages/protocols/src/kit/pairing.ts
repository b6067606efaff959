// Request/response pairing. Databases answer most requests in order (FIFO:
// MySQL, PostgreSQL, TDS without MARS); some pair by an id on the wire
// (TDS MARS session ids, DRDA correlation ids, Oracle cursor ids: keyed).
// Both are bounded and count what they could not pair, as packetbeat's
// transaction layer does (unmatched_requests / unmatched_responses).

/** What every pending request carries for the kit. */
export interface Pending {
  /** When the request was first seen. */
  ts: number;
  /** Part of the request or its response was not captured. */
  truncated: boolean;
  /** Bytes were missing in the stream before this request. */
  gapBefore: boolean;
}

/** Counters of a pairing; sessions fold them into their stats. */
export interface PairingCounters {
  /** Requests that never got their response (flushed at close or evicted). */
  unmatchedRequests: number;
  /** Responses that had no request (e.g. a capture picked up mid-request). */
  unmatchedResponses: number;
  /** Requests pushed out to stay within the bound (also counted unmatched). */
  evicted: number;
}

function newCounters(): PairingCounters {
  return { unmatchedRequests: 0, unmatchedResponses: 0, evicted: 0 };
}

/**
 * Requests answered in arrival order. A queue with a head index: `shift` is
 * O(1) and the array is compacted only when the consumed prefix dominates,
 * so a pipeline of 65,536 requests costs no quadratic copying.
 */
export class FifoPairing<R extends Pending> {
  /** What could not be paired. */
  readonly counters: PairingCounters = newCounters();
  private items: R[] = [];
  private first = 0;

  /**
   * @param max most requests in flight; pushing more evicts the oldest.
   * @param onEvict receives each evicted request (typically emitted with status `unknown`).
   */
  constructor(
    readonly max: number,
    private readonly onEvict: (r: R) => void,
  ) {}

  /** Requests in flight. */
  get length(): number {
    return this.items.length - this.first;
  }

  /** Adds a request; past the bound the oldest is evicted, counted and handed to `onEvict`. */
  push(r: R): void {
    if (this.length >= this.max) {
      const old = this.shift()!;
      this.counters.evicted++;
      this.counters.unmatchedRequests++;
      this.onEvict(old);
    }
    this.items.push(r);
  }

  /** The oldest request in flight. */
  head(): R | undefined {
    return this.first < this.items.length ? this.items[this.first] : undefined;
  }

  /** The `i`-th request in flight (0 = head). */
  at(i: number): R | undefined {
    return i >= 0 && i < this.length ? this.items[this.first + i] : undefined;
  }

  /** Position of `r` among the requests in flight, or -1. */
  indexOf(r: R): number {
    const i = this.items.indexOf(r, this.first);
    return i < 0 ? -1 : i - this.first;
  }

  /** Removes and returns the oldest request. */
  shift(): R | undefined {
    if (this.first >= this.items.length) return undefined;
    const r = this.items[this.first]!;
    (this.items as (R | undefined)[])[this.first] = undefined;
    this.first++;
    if (this.first === this.items.length) {
      this.items.length = 0;
      this.first = 0;
    } else if (this.first >= 1024 && this.first * 2 >= this.items.length) {
      this.items = this.items.slice(this.first);
      this.first = 0;
    }
    return r;
  }

  /** Removes `r` wherever it stands; true when it was in flight. */
  remove(r: R): boolean {
    const i = this.indexOf(r);
    if (i < 0) return false;
    if (i === 0) this.shift();
    else this.items.splice(this.first + i, 1);
    return true;
  }

  /** Counts a response that had no request. */
  noRequest(): void {
    this.counters.unmatchedResponses++;
  }

  /** A gap: every request in flight may have lost bytes of its response. */
  markTruncated(): void {
    for (let i = this.first; i < this.items.length; i++) this.items[i]!.truncated = true;
  }

  /** Every request in flight, oldest first, each counted unmatched (the connection ended). */
  flush(): R[] {
    const out = this.items.slice(this.first);
    this.items = [];
    this.first = 0;
    this.counters.unmatchedRequests += out.length;
    return out;
  }

  /** Iterates the requests in flight, oldest first. */
  *[Symbol.iterator](): IterableIterator<R> {
    for (let i = this.first; i < this.items.length; i++) yield this.items[i]!;
  }
}

/**
 * Requests answered by key (a session id, correlation id or cursor id). A
 * second request under a key still in flight evicts the first as unmatched.
 */
export class KeyedPairing<K, R extends Pending> {
  /** What could not be paired. */
  readonly counters: PairingCounters = newCounters();
  private readonly map = new Map<K, R>();

  /**
   * @param max most requests in flight; pushing more evicts the oldest.
   * @param onEvict receives each evicted request.
   */
  constructor(
    readonly max: number,
    private readonly onEvict: (r: R) => void,
  ) {}

  /** Requests in flight. */
  get size(): number {
    return this.map.size;
  }

  /** Adds a request under `key`. */
  push(key: K, r: R): void {
    const same = this.map.get(key);
    if (same !== undefined) {
      this.map.delete(key);
      this.evict(same);
    } else if (this.map.size >= this.max) {
      const oldest = this.map.entries().next();
      if (oldest.done !== true) {
        this.map.delete(oldest.value[0]);
        this.evict(oldest.value[1]);
      }
    }
    this.map.set(key, r);
  }

  /** The request in flight under `key`. */
  get(key: K): R | undefined {
    return this.map.get(key);
  }

  /** Removes and returns the request under `key`; a response without one is counted. */
  take(key: K): R | undefined {
    const r = this.map.get(key);
    if (r === undefined) {
      this.counters.unmatchedResponses++;
      return undefined;
    }
    this.map.delete(key);
    return r;
  }

  /** A gap: every request in flight may have lost bytes of its response. */
  markTruncated(): void {
    for (const r of this.map.values()) r.truncated = true;
  }

  /** Every request in flight, oldest first, each counted unmatched. */
  flush(): R[] {
    const out = [...this.map.values()];
    this.map.clear();
    this.counters.unmatchedRequests += out.length;
    return out;
  }

  private evict(r: R): void {
    this.counters.evicted++;
    this.counters.unmatchedRequests++;
    this.onEvict(r);
  }
}

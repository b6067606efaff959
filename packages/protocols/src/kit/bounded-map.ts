/** No key: {@link BoundedMap}'s newest key once it was removed. */
const NONE: unique symbol = Symbol('none');

/**
 * A map with a fixed capacity for per-connection state a peer can make grow
 * (prepared statements, portals, cursors): inserting past the bound evicts
 * the oldest insertion and counts it, so hostile or leaky clients cost a
 * bounded amount of memory and the loss is visible.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  private evicted = 0;
  /** The key inserted last while it is still held, else {@link NONE}. */
  private newest: K | typeof NONE = NONE;

  /** @param max most entries kept (at least 1). */
  constructor(readonly max: number) {
    if (!(max >= 1)) this.max = 1;
  }

  /** Entries evicted to stay within {@link BoundedMap.max}. */
  get evictions(): number {
    return this.evicted;
  }

  /** Entries held now. */
  get size(): number {
    return this.map.size;
  }

  /** The value under `k`. */
  get(k: K): V | undefined {
    return this.map.get(k);
  }

  /** True when `k` is held. */
  has(k: K): boolean {
    return this.map.has(k);
  }

  /** Stores `v` under `k`; a new key past the bound evicts the oldest entry. Re-setting a key keeps its age. */
  set(k: K, v: V): this {
    if (!this.map.has(k)) {
      if (this.map.size >= this.max) {
        const oldest = this.map.keys().next();
        if (oldest.done !== true) {
          this.map.delete(oldest.value);
          this.evicted++;
        }
      }
      this.newest = k;
    }
    this.map.set(k, v);
    return this;
  }

  /**
   * Stores `v` under `k` as the newest entry: a key defined again counts as
   * new (it moves to the end). The same as `delete(k)` then `set(k, v)`, with
   * one lookup fewer when the key was held, and none of the map's
   * re-ordering when it is the newest already (the unnamed statement and
   * portal of every extended query).
   */
  renew(k: K, v: V): this {
    if (k === this.newest) {
      this.map.set(k, v); // held and last: stays last
      return this;
    }
    if (this.map.delete(k)) {
      this.map.set(k, v);
      this.newest = k;
      return this;
    }
    return this.set(k, v);
  }

  /** Removes `k`; true when it was held. */
  delete(k: K): boolean {
    if (k === this.newest) this.newest = NONE;
    return this.map.delete(k);
  }

  /** Removes every entry (not counted as evictions). */
  clear(): void {
    this.newest = NONE;
    this.map.clear();
  }

  /** Values, oldest first. */
  values(): IterableIterator<V> {
    return this.map.values();
  }

  /** Keys, oldest first. */
  keys(): IterableIterator<K> {
    return this.map.keys();
  }
}

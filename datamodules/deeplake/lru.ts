/**
 * A byte-bounded LRU map (Map keeps insertion order; a hit re-inserts the entry). Entries
 * larger than the whole budget are not kept. In-flight loads are shared through `load`,
 * so two readers of the same chunk fetch it once.
 */
export class LruCache<V> {
  private readonly map = new Map<string, { value: V; size: number }>();
  private readonly inflight = new Map<string, Promise<V>>();
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: string, value: V, size: number): void {
    const old = this.map.get(key);
    if (old) {
      this.used -= old.size;
      this.map.delete(key);
    }
    if (size > this.maxBytes) return;
    this.map.set(key, { value, size });
    this.used += size;
    for (const [k, e] of this.map) {
      if (this.used <= this.maxBytes) break;
      this.map.delete(k);
      this.used -= e.size;
    }
  }

  /** The cached value, or `make()`'s (cached with `sizeOf`), sharing concurrent loads of a key. */
  async load(key: string, make: () => Promise<V>, sizeOf: (v: V) => number): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    this.misses++;
    const p = make().then(
      (v) => {
        this.inflight.delete(key);
        this.set(key, v, sizeOf(v));
        return v;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}

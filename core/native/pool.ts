/**
 * A recycling pool for the Float32Arrays the native kernels allocate for their outputs.
 *
 * Why: a training step allocates gigabytes of short-lived tensors. A fresh large
 * Float32Array is fresh mmap'd memory: the kernel zeroes and faults in every page on first
 * touch, and a disposed tensor's memory only goes back when V8's garbage collector gets to
 * it. Measured on a CLIP ViT-B/32 step (batch 16, 2 cores): a quarter of the wall time was
 * system time and single element-wise Adds of 7 MB took 30 ms instead of 1-3 ms. Reusing the
 * arrays of disposed tensors, whose pages are already mapped, took the step (with the other
 * optimisations in place) from 6.0-8.2 s to 4.9-5.4 s, at the same peak RSS: the arrays it
 * keeps are ones that would otherwise sit as garbage.
 *
 * Safety: an array is handed out again only when nothing else can still see it. The pool
 * tracks, per ArrayBuffer it allocated, how many tensors are bound to it:
 * - allocated, not yet bound: 0; bound to one tensor: 1;
 * - bound a second time (a tfjs cpu kernel that wraps an input's array, or a subarray view
 *   of it, in a new tensor), or read out by `dataSync()`/`data()` (the caller holds the
 *   array): "escaped", never recycled;
 * - when its only tensor is disposed, the array returns to the pool.
 * Arrays the pool did not allocate (user data, tfjs cpu kernels) are never touched.
 */

import { totalmem } from 'node:os';

/** Pool counters (for tests and benchmarks). */
export interface PoolStats {
  /** Allocations served from the pool. */
  hits: number;
  /** Allocations that needed a new array (pool empty for that size, or below the minimum). */
  misses: number;
  /** Bytes currently waiting in the pool. */
  pooledBytes: number;
  /** The pool's capacity in bytes (0: disabled). */
  capacityBytes: number;
}

const ESCAPED = -1;

/** Size-keyed free lists of Float32Arrays with binding counts; see the file comment. */
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  // Every pooled array, oldest first (a Set keeps insertion order): eviction drops the
  // arrays that waited longest, whose size the current workload has stopped asking for.
  private readonly lru = new Set<Float32Array>();
  private readonly bindings = new WeakMap<ArrayBufferLike, number>();
  // Every buffer (pooled or not) that dataSync()/data() handed out: in-place updates
  // (fused AdamW) must not change an array the caller may still be holding.
  private readonly readOut = new WeakSet<ArrayBufferLike>();
  private pooledBytes = 0;
  private hits = 0;
  private misses = 0;

  /**
   * @param capacityBytes most bytes kept waiting for reuse (0 disables pooling).
   * @param minLength arrays shorter than this are left to V8 (small ones are cheap).
   */
  constructor(private capacityBytes: number, private readonly minLength = 1024) {}

  /** A Float32Array of exactly `n` elements, zero-filled when `zero` (else contents are arbitrary). */
  alloc(n: number, zero = false): Float32Array {
    if (this.capacityBytes > 0 && n >= this.minLength) {
      const list = this.free.get(n);
      const a = list?.pop();
      if (a) {
        this.lru.delete(a);
        this.hits++;
        this.pooledBytes -= a.byteLength;
        this.bindings.set(a.buffer, 0);
        if (zero) a.fill(0);
        return a;
      }
      this.misses++;
      const fresh = new Float32Array(n);
      this.bindings.set(fresh.buffer, 0);
      return fresh;
    }
    this.misses++;
    return new Float32Array(n);
  }

  /** A tensor was created on `values` (the backend's write). */
  bind(values: unknown): void {
    const buf = bufferOf(values);
    if (!buf) return;
    const n = this.bindings.get(buf);
    if (n === undefined || n === ESCAPED) return;
    this.bindings.set(buf, n === 0 ? 1 : ESCAPED);
  }

  /** `values` were handed to code outside the kernels (dataSync, data): never recycle them. */
  escape(values: unknown): void {
    const buf = bufferOf(values);
    if (!buf) return;
    this.readOut.add(buf);
    if (this.bindings.has(buf)) this.bindings.set(buf, ESCAPED);
  }

  /** Whether `values` (or another view of its buffer) was ever read out with dataSync()/data(). */
  wasReadOut(values: unknown): boolean {
    const buf = bufferOf(values);
    return buf !== null && this.readOut.has(buf);
  }

  /** The tensor bound to `values` was deleted: recycle the array if nothing else can see it. */
  release(values: unknown): void {
    const buf = bufferOf(values);
    if (!buf || !(values instanceof Float32Array)) return;
    const n = this.bindings.get(buf);
    if (n === undefined) return;
    if (n !== 1 || values.byteOffset !== 0 || values.byteLength !== buf.byteLength ||
        values.byteLength > this.capacityBytes) {
      this.bindings.delete(buf);
      return;
    }
    while (this.pooledBytes + values.byteLength > this.capacityBytes) this.evictOldest();
    this.bindings.set(buf, 0);
    this.lru.add(values);
    let list = this.free.get(values.length);
    if (!list) this.free.set(values.length, (list = []));
    list.push(values);
    this.pooledBytes += values.byteLength;
  }

  /**
   * Return a scratch array from {@link alloc} that never became a tensor (im2col columns):
   * the caller must not use it afterwards.
   */
  recycle(values: Float32Array): void {
    const buf = values.buffer;
    if (this.bindings.get(buf) !== 0) return;
    this.bindings.set(buf, 1);
    this.release(values);
  }

  private evictOldest(): void {
    const old = this.lru.values().next().value;
    if (!old) return;
    this.lru.delete(old);
    const list = this.free.get(old.length);
    const i = list ? list.indexOf(old) : -1;
    if (list && i >= 0) list.splice(i, 1);
    this.bindings.delete(old.buffer);
    this.pooledBytes -= old.byteLength;
  }

  /** Drop every pooled array (they are garbage-collected) and set a new capacity. */
  reset(capacityBytes = this.capacityBytes): void {
    this.free.clear();
    this.lru.clear();
    this.pooledBytes = 0;
    this.capacityBytes = Math.max(0, capacityBytes);
  }

  /** Counters since construction. */
  stats(): PoolStats {
    return { hits: this.hits, misses: this.misses, pooledBytes: this.pooledBytes, capacityBytes: this.capacityBytes };
  }
}

function bufferOf(values: unknown): ArrayBufferLike | null {
  return ArrayBuffer.isView(values) ? values.buffer : null;
}

/**
 * Default capacity: LIGHTCLIP_POOL_MB when set (0 disables the pool), else a quarter of the
 * machine's memory. A training step frees what it allocated, so live tensors plus pooled
 * arrays stay near the step's peak of live tensors (which the process reached anyway: without
 * the pool the same bytes sit as garbage until V8 collects them); the cap bounds the pool
 * when shapes keep changing. Too small a cap is slow: at 2 GB a CLIP ViT-B/32 batch-16 step
 * (4 GB of activations and gradients) missed the pool for 60% of its arrays and took 1.4x as
 * long as with 4 GB.
 */
export function defaultPoolBytes(): number {
  const mb = Number.parseFloat(process.env.LIGHTCLIP_POOL_MB ?? '');
  return Number.isFinite(mb) && mb >= 0 ? mb * 1024 * 1024 : Math.floor(totalmem() / 4);
}

/** The pool of the native backend (one per process, like the backend). */
export const bufferPool = new BufferPool(defaultPoolBytes());

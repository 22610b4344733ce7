/**
 * The output-buffer pool (core/native/pool.ts): arrays come back only when no tensor and no
 * caller can still see them.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { bufferPool } from '../../core/native/backend.js';
import { BufferPool } from '../../core/native/pool.js';
import { NATIVE, compareBackends, rand, setupNative, t } from './helpers.js';

beforeAll(setupNative);
afterEach(() => tf.setBackend('cpu'));

const N = 4096;

describe('BufferPool', () => {
  it('hands a released array out again, zero-filled on request', () => {
    const pool = new BufferPool(1 << 20, 16);
    const a = pool.alloc(N);
    pool.bind(a);
    a.fill(7);
    pool.release(a);
    const b = pool.alloc(N);
    expect(b).toBe(a);
    pool.bind(b);
    pool.release(b);
    const c = pool.alloc(N, true);
    expect(c).toBe(a);
    expect(c.every((v) => v === 0)).toBe(true);
    expect(pool.stats().hits).toBe(2);
  });

  it('never recycles an array that was read out, bound twice (a view), or not its own', () => {
    const pool = new BufferPool(1 << 20, 16);
    const read = pool.alloc(N);
    pool.bind(read);
    pool.escape(read);
    pool.release(read);
    const twice = pool.alloc(N);
    pool.bind(twice);
    pool.bind(twice.subarray(10, 20));
    pool.release(twice);
    const foreign = new Float32Array(N);
    pool.bind(foreign);
    pool.release(foreign);
    expect(pool.stats().pooledBytes).toBe(0);
    const next = pool.alloc(N);
    for (const old of [read, twice, foreign]) expect(next).not.toBe(old);
  });

  it('leaves small arrays to V8 and evicts the oldest arrays beyond its capacity', () => {
    const pool = new BufferPool(3 * N * 4, 1024);
    const small = pool.alloc(100);
    pool.bind(small);
    pool.release(small);
    expect(pool.stats().pooledBytes).toBe(0);
    const arrays = [0, 1, 2, 3].map(() => pool.alloc(N));
    arrays.forEach((a) => { pool.bind(a); pool.release(a); });
    expect(pool.stats().pooledBytes).toBe(3 * N * 4);
    // the first released was evicted; the most recent is handed out first
    const got = [pool.alloc(N), pool.alloc(N), pool.alloc(N)];
    expect(got).toContain(arrays[3]);
    expect(got).not.toContain(arrays[0]);
  });

  it('takes back unbound scratch arrays with recycle, and a capacity of 0 disables it', () => {
    const pool = new BufferPool(1 << 20, 16);
    const scratch = pool.alloc(N);
    pool.recycle(scratch);
    expect(pool.alloc(N)).toBe(scratch);
    const off = new BufferPool(0, 16);
    const a = off.alloc(N);
    off.bind(a);
    off.release(a);
    expect(off.alloc(N)).not.toBe(a);
  });
});

describe('the pool behind lightclip-cpu', () => {
  it('reuses the arrays of disposed outputs', () => {
    tf.setBackend(NATIVE);
    const capacity = bufferPool.stats().capacityBytes;
    bufferPool.reset(64 << 20); // whatever LIGHTCLIP_POOL_MB says
    const x = tf.ones([64, 64]);
    tf.exp(x).dispose();
    const before = bufferPool.stats().hits;
    for (let i = 0; i < 5; i++) tf.exp(x).dispose();
    expect(bufferPool.stats().hits - before).toBeGreaterThanOrEqual(5);
    x.dispose();
    bufferPool.reset(capacity);
  });

  it('an array read with dataSync keeps its values after the tensor is disposed', () => {
    tf.setBackend(NATIVE);
    const x = tf.fill([64, 64], 2);
    const y = tf.mul(x, 3);
    const values = y.dataSync();
    y.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => void tf.add(tf.mul(x, 100), 1));
    expect(values.every((v) => v === 6)).toBe(true);
    x.dispose();
  });

  it('a tensor made on a view of a pooled output keeps its values after the output is disposed', () => {
    tf.setBackend(NATIVE);
    const backend = tf.backend() as unknown as {
      data: { get(id: object): { values: Float32Array } };
      makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): { dataId: object; shape: number[]; dtype: 'float32' };
    };
    const x = tf.fill([64, 64], 5);
    const y = tf.neg(x);
    // what tfjs' cpu Slice does for contiguous slices: a new tensor on a subarray
    const info = backend.makeTensorInfo([64], 'float32', backend.data.get(y.dataId).values.subarray(0, 64));
    const view = tf.engine().makeTensorFromTensorInfo(info) as Tensor;
    y.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => void tf.neg(tf.mul(x, 10)));
    expect(Array.from(view.dataSync()).every((v) => v === -5)).toBe(true);
    tf.dispose([x, view]);
  });

  it('long chains of disposed intermediates give the cpu results', () => {
    const x = rand([32, 48]);
    const w = rand([48, 48], -0.15, 0.15); // contractive, so rounding differences do not grow
    compareBackends(() => {
      let h = t(x);
      const wt = t(w);
      for (let i = 0; i < 20; i++) {
        const next = tf.tidy(() => tf.tanh(tf.add(tf.matMul(h, wt), tf.pad(tf.slice(h, [0, 0], [32, 40]), [[0, 0], [4, 4]]))));
        h.dispose();
        h = next;
      }
      return [h, tf.sum(h, 0)];
    }, 1e-4, 1e-5, 'chain');
  });
});

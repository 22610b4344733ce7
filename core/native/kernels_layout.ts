/**
 * Data-movement kernels, all reduced to the addon's one strided copy: Transpose, Slice, Concat,
 * PadV2, BroadcastTo, Tile; plus GatherV2 and UnsortedSegmentSum (its gradient).
 */
import { tf } from '../tf.js';
import type { NativeAddon } from './addon.js';
import type { NativeKernel } from './context.js';
import { alloc, f32, i32Values, input, output } from './context.js';
import { broadcastStrides, denseStrides, i32, simplify, sizeOf } from './shape.js';

/** dst[dstOff + idx.dstStrides] = src[srcOff + idx.srcStrides] over `shape`. */
export function stridedCopy(addon: NativeAddon, src: Float32Array, srcOff: number, srcStrides: number[],
  dst: Float32Array, dstOff: number, dstStrides: number[], shape: number[]): void {
  if (sizeOf(shape) === 0) return;
  const s = simplify(shape, [srcStrides, dstStrides]);
  addon.copy(src, srcOff, i32(s.strides[0]), dst, dstOff, i32(s.strides[1]), i32(s.shape));
}

/** Transpose of float32 data by `perm`; returns the new values. */
export function nativeTranspose(addon: NativeAddon, xv: Float32Array, shape: number[], perm: number[]): Float32Array {
  const xs = denseStrides(shape);
  const outShape = perm.map((p) => shape[p]);
  const out = alloc(xv.length);
  stridedCopy(addon, xv, 0, perm.map((p) => xs[p]), out, 0, denseStrides(outShape), outShape);
  return out;
}

const transpose: NativeKernel = {
  kernelName: 'Transpose',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const perm = attrs.perm as number[];
    return output(backend, perm.map((p) => x.shape[p]), nativeTranspose(addon, xv, x.shape, perm));
  },
};

const slice: NativeKernel = {
  kernelName: 'Slice',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
    tf.slice_util.assertParamsValid(x, begin, size);
    const xs = denseStrides(x.shape);
    const off = begin.reduce((acc, b, d) => acc + b * xs[d], 0);
    const out = alloc(sizeOf(size));
    stridedCopy(addon, xv, off, xs, out, 0, denseStrides(size), size);
    return output(backend, size, out);
  },
};

// tfjs' cpu SplitV calls its own JavaScript slice directly, so it needs a native version too
// (the q/k/v split of every attention layer goes through it).
const splitV: NativeKernel = {
  kernelName: 'SplitV',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, attrs.numOrSizeSplits as number[] | number, axis);
    const xs = denseStrides(x.shape);
    let start = 0;
    return sizes.map((s) => {
      const shape = x.shape.slice();
      shape[axis] = s;
      const out = alloc(sizeOf(shape));
      stridedCopy(addon, xv, start * xs[axis], xs, out, 0, denseStrides(shape), shape);
      start += s;
      return output(backend, shape, out);
    });
  },
};

const concat: NativeKernel = {
  kernelName: 'Concat',
  func: (inputs, attrs, backend, addon) => {
    const list = Array.isArray(inputs) ? inputs : Object.values(inputs);
    if (list.length === 0) return null;
    const vals = list.map((t) => f32(backend, t));
    if (vals.some((v) => v === null)) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, list[0].shape)[0];
    const shapes = list.map((t) => t.shape);
    tf.backend_util.assertParamsConsistent(shapes, axis);
    const outShape = tf.backend_util.computeOutShape(shapes, axis);
    const outer = sizeOf(outShape.slice(0, axis));
    const rowLen = sizeOf(outShape.slice(axis));
    const out = alloc(sizeOf(outShape));
    let col = 0;
    list.forEach((t, i) => {
      const inner = sizeOf(t.shape.slice(axis));
      stridedCopy(addon, vals[i] as Float32Array, 0, [inner, 1], out, col, [rowLen, 1], [outer, inner]);
      col += inner;
    });
    return output(backend, outShape, out);
  },
};

const padV2: NativeKernel = {
  kernelName: 'PadV2',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const paddings = attrs.paddings as [number, number][];
    const outShape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
    const value = Number(attrs.constantValue ?? 0);
    const out = alloc(sizeOf(outShape), value === 0);
    if (value !== 0) out.fill(value);
    const os = denseStrides(outShape);
    const off = paddings.reduce((acc, p, d) => acc + p[0] * os[d], 0);
    stridedCopy(addon, xv, 0, denseStrides(x.shape), out, off, os, x.shape);
    return output(backend, outShape, out);
  },
};

const broadcastTo: NativeKernel = {
  kernelName: 'BroadcastTo',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const shape = (attrs.shape as number[]).slice();
    const out = alloc(sizeOf(shape));
    stridedCopy(addon, xv, 0, broadcastStrides(x.shape, shape), out, 0, denseStrides(shape), shape);
    return output(backend, shape, out);
  },
};

// Tile viewed as a copy over [r0, s0, r1, s1, ...]: the repeat dimensions read with stride 0.
const tile: NativeKernel = {
  kernelName: 'Tile',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const reps = attrs.reps as number[];
    if (!x || !xv || reps.length !== x.shape.length) return null;
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const xs = denseStrides(x.shape);
    const os = denseStrides(outShape);
    const shape: number[] = [];
    const src: number[] = [];
    const dst: number[] = [];
    x.shape.forEach((d, i) => {
      shape.push(reps[i], d);
      src.push(0, xs[i]);
      dst.push(d * os[i], os[i]);
    });
    const out = alloc(sizeOf(outShape));
    stridedCopy(addon, xv, 0, src, out, 0, dst, shape);
    return output(backend, outShape, out);
  },
};

const gatherV2: NativeKernel = {
  kernelName: 'GatherV2',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const indices = input(inputs, 'indices');
    const xv = f32(backend, x);
    const iv = i32Values(backend, indices);
    if (!x || !indices || !xv || !iv || Number(attrs.batchDims ?? 0) !== 0) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const outer = sizeOf(x.shape.slice(0, axis));
    const n = x.shape[axis];
    const inner = sizeOf(x.shape.slice(axis + 1));
    const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    const out = alloc(sizeOf(outShape));
    const bad = addon.gather(xv, iv, out, outer, n, inner);
    if (bad > 0) {
      const index = iv.find((k) => k < 0 || k >= n);
      throw new Error(`GatherV2: the index value ${index} is not in [0, ${n - 1}]`);
    }
    return output(backend, outShape, out);
  },
};

const unsortedSegmentSum: NativeKernel = {
  kernelName: 'UnsortedSegmentSum',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const ids = input(inputs, 'segmentIds');
    const xv = f32(backend, x);
    const iv = i32Values(backend, ids);
    if (!x || !ids || !xv || !iv) return null;
    const numSegments = Number(attrs.numSegments);
    const rest = x.shape.slice(ids.shape.length);
    const inner = sizeOf(rest);
    const out = alloc(numSegments * inner, true);
    if (iv.length > 0 && inner > 0) addon.segmentSum(xv, iv, out, inner, numSegments);
    return output(backend, [numSegments, ...rest], out);
  },
};

// ScatterNd (summing duplicates) is F.embedding's gradient: a [vocab, width] table from the
// token rows. tfjs' JavaScript kernel took 110 ms of a CLIP ViT-B/32 step; here the indices
// become flat row numbers and the addon's segment sum adds the rows.
const scatterNd: NativeKernel = {
  kernelName: 'ScatterNd',
  func: (inputs, attrs, backend, addon) => {
    const indices = input(inputs, 'indices');
    const updates = input(inputs, 'updates');
    const uv = f32(backend, updates);
    const iv = i32Values(backend, indices);
    if (!indices || !updates || !uv || !iv) return null;
    const shape = (attrs.shape as number[]).slice();
    const { sliceRank, numUpdates, sliceSize, strides, outputSize } = tf.backend_util.calculateShapes(updates, indices, shape);
    if (sliceRank < 1 || uv.length !== numUpdates * sliceSize) return null;
    const out = alloc(outputSize, true);
    if (outputSize === 0) return output(backend, shape, out);
    const rows = outputSize / sliceSize;
    const ids = new Int32Array(numUpdates);
    for (let i = 0; i < numUpdates; i++) {
      let flat = 0;
      for (let j = 0; j < sliceRank; j++) flat += iv[i * sliceRank + j] * strides[j];
      if (flat < 0 || flat >= rows) {
        const index = Array.from(iv.subarray(i * sliceRank, (i + 1) * sliceRank));
        throw new Error(`Invalid indices: ${index} does not index into ${shape}`);
      }
      ids[i] = flat;
    }
    if (sliceSize > 0) addon.segmentSum(uv, ids, out, sliceSize, rows);
    return output(backend, shape, out);
  },
};

/** The data-movement kernels of the native backend. */
export const layoutKernels: NativeKernel[] = [
  transpose, slice, splitV, concat, padV2, broadcastTo, tile, gatherV2, unsortedSegmentSum, scatterNd,
];

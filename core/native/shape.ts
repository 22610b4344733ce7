/**
 * Shape bookkeeping for the native kernels: the addon sees only simplified iteration spaces
 * (size-1 dimensions dropped, mergeable neighbours merged), which keeps its loops short and
 * its rank small whatever the tensor's rank.
 */

/** Row-major element strides of a dense shape. */
export function denseStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Product of the dimensions. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Strides that read `inShape` broadcast to `outShape` (numpy rules, right-aligned): 0 where the
 * input has size 1 or lacks the dimension.
 */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const dense = denseStrides(inShape);
  const off = outShape.length - inShape.length;
  return outShape.map((n, d) => {
    const i = d - off;
    if (i < 0 || inShape[i] === 1) return 0;
    return dense[i];
  });
}

/** A simplified iteration space: one shape and, per operand, its strides over that shape. */
export interface Simplified {
  shape: number[];
  strides: number[][];
}

/**
 * Drop size-1 dimensions and merge dimension d into d+1 when, for every operand,
 * stride[d] == stride[d+1] * shape[d+1] (so one loop of shape[d]*shape[d+1] steps walks both).
 */
export function simplify(shape: readonly number[], strides: readonly (readonly number[])[]): Simplified {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => { outStrides[k][last] = s[d]; });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Int32Array view of small integer lists (shapes, strides) for the addon. */
export function i32(values: readonly number[]): Int32Array {
  return Int32Array.from(values);
}

/** Normalise possibly negative axes against a rank, sorted and de-duplicated. */
export function normAxes(axis: number | number[] | undefined | null, rank: number): number[] {
  if (axis === undefined || axis === null) return Array.from({ length: rank }, (_, i) => i);
  const list = Array.isArray(axis) ? axis : [axis];
  const out = new Set<number>();
  for (const a of list) {
    const v = a < 0 ? a + rank : a;
    if (v < 0 || v >= rank) throw new Error(`axis ${a} is out of range for rank ${rank}`);
    out.add(v);
  }
  return [...out].sort((x, y) => x - y);
}

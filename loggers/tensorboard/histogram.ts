/**
 * Bucketing for TensorBoard histograms, following torch's `make_histogram`
 * (torch/utils/tensorboard/summary.py): count values into bins with `np.histogram`'s rules,
 * then keep only the span of non-empty bins plus one empty bin on the left, because
 * TensorBoard stores right edges only and needs the left edge of the first filled bin.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import type { HistogramData } from './summary.js';

/**
 * How to bin a histogram:
 * - `'tensorflow'`: TensorFlow's exponential edges, ±1e-12 · 1.1^k up to ±1e20 plus 0
 *   (torch's default `bins="tensorflow"`);
 * - a number `n`: `n` uniform bins over [min, max] of the values;
 * - an increasing array: explicit bin edges (values outside are left out of the buckets).
 */
export type HistogramBins = 'tensorflow' | number | readonly number[];

let tensorflowEdges: Float64Array | undefined;

/**
 * TensorFlow's default bucket edges (tsl/lib/histogram/histogram.cc `InitDefaultBuckets`,
 * as torch's `_default_bins` rebuilds them): 1e-12 growing by 10% to 1e20, mirrored, with 0.
 */
export function defaultTensorflowEdges(): Float64Array {
  if (tensorflowEdges === undefined) {
    const pos: number[] = [];
    for (let v = 1e-12; v < 1e20; v *= 1.1) pos.push(v);
    const edges = new Float64Array(pos.length * 2 + 1);
    for (let i = 0; i < pos.length; i++) {
      edges[pos.length - 1 - i] = -pos[i]!;
      edges[pos.length + 1 + i] = pos[i]!;
    }
    tensorflowEdges = edges;
  }
  return tensorflowEdges;
}

/** Uniform edges as `np.linspace`, widened to ±0.5 when all values are equal (as numpy does). */
function uniformEdges(n: number, min: number, max: number): Float64Array {
  let lo = min;
  let hi = max;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const edges = new Float64Array(n + 1);
  for (let i = 0; i <= n; i++) edges[i] = lo + ((hi - lo) * i) / n;
  edges[n] = hi;
  return edges;
}

/** Index of the bin holding `v` (np.histogram: [e_i, e_i+1), last bin closed), or -1 outside. */
function binIndex(edges: ArrayLike<number>, v: number): number {
  const last = edges.length - 1;
  if (v < edges[0]! || v > edges[last]!) return -1;
  if (v === edges[last]) return last - 1;
  let lo = 0;
  let hi = last; // invariant: edges[lo] <= v < edges[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! <= v) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Computes a {@link HistogramData} from `values`. Non-finite values (NaN, ±Infinity) are
 * skipped: they have no bucket and would poison min/max/sum.
 * @param tag only used in error messages
 * @throws MisconfigurationError when `bins` is invalid or there is no finite value
 */
export function computeHistogram(values: ArrayLike<number>, bins: HistogramBins = 'tensorflow', tag = ''): HistogramData {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSquares = 0;
  let num = 0;
  const finite = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    finite[num++] = v;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sumSquares += v * v;
  }
  if (num === 0) {
    throw new MisconfigurationError(`Histogram \`${tag}\` has no finite values (got ${values.length} values); nothing to log.`);
  }

  let edges: ArrayLike<number>;
  if (bins === 'tensorflow') edges = defaultTensorflowEdges();
  else if (typeof bins === 'number') {
    if (!Number.isInteger(bins) || bins < 1) {
      throw new MisconfigurationError(`\`bins\` must be 'tensorflow', a positive integer or increasing edges, got ${showValue(bins)}.`);
    }
    edges = uniformEdges(bins, min, max);
  } else {
    if (bins.length < 2 || bins.some((e, i) => !Number.isFinite(e) || (i > 0 && e <= bins[i - 1]!))) {
      throw new MisconfigurationError(`\`bins\` edges must be at least 2 finite, strictly increasing numbers, got ${showValue(bins)}.`);
    }
    edges = bins;
  }

  const counts = new Float64Array(edges.length - 1);
  for (let i = 0; i < num; i++) {
    const b = binIndex(edges, finite[i]!);
    if (b >= 0) counts[b]! += 1;
  }

  // torch: start = first non-empty bin, end = one past the last non-empty bin.
  let start = -1;
  let end = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i]! > 0) {
      if (start < 0) start = i;
      end = i + 1;
    }
  }
  if (start < 0) {
    throw new MisconfigurationError(`Histogram \`${tag}\`: no value falls inside the \`bins\` edges [${edges[0]}, ${edges[edges.length - 1]}].`);
  }
  // Keep one empty bin left of the first filled one: its right edge is that bin's left edge.
  const bucket = start > 0 ? Array.from(counts.subarray(start - 1, end)) : [0, ...counts.subarray(0, end)];
  const bucketLimit = Array.from({ length: end + 1 - start }, (_, i) => edges[start + i]!);
  return { min, max, num, sum, sumSquares, bucketLimit, bucket };
}

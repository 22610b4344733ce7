/**
 * Positional-embedding resampling for ViTs at another input size (multi-scale batches, and
 * loading weights trained at one resolution into a model at another).
 *
 * - {@link resizePosEmbed2d}: OpenAI/open_clip layout `[1 + g², D]` (class row first): the g×g
 *   grid is resized bilinearly to gh×gw (PyTorch `align_corners=False` sampling), the class
 *   row is kept. open_clip's `resize_pos_embed` does the same with bicubic.
 * - {@link resizePosEmbed1d}: CoreNet's ViT, whose `[1, 1, N, D]` table (no class row) goes
 *   through `F.interpolate(mode="bilinear", align_corners=False)` to `[1, 1, M, D]`: a 1-D
 *   linear resample along the flattened token index, not a grid resize.
 * Both are written as products with interpolation matrices (exact PyTorch sampling, and
 * differentiable without tfjs' ResizeBilinear gradient, which fails for non-square inputs).
 */
import { tf, type Tensor } from '../../core/tf.js';

/** `[m, n]` matrix W with `W·v` = linear resample of v (length n) to m, align_corners=False. */
export function linearResampleMatrix(n: number, m: number): Float32Array {
  const w = new Float32Array(m * n);
  for (let j = 0; j < m; j++) {
    const src = Math.max(0, (j + 0.5) * (n / m) - 0.5);
    const i0 = Math.min(Math.floor(src), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    const t = src - i0;
    w[j * n + i0] += 1 - t;
    w[j * n + i1] += t;
  }
  return w;
}

const resampler = (n: number, m: number): Tensor => tf.tensor2d(linearResampleMatrix(n, m), [m, n]);

/** `[1 + g², D]` (class row first) → `[1 + gh·gw, D]`. */
export function resizePosEmbed2d(pos: Tensor, gridH: number, gridW: number = gridH): Tensor {
  const [rows, d] = pos.shape as [number, number];
  const g = Math.round(Math.sqrt(rows - 1));
  if (g * g !== rows - 1) throw new Error(`resizePosEmbed2d: ${rows} rows is not 1 + a square grid`);
  if (g === gridH && g === gridW) return tf.clone(pos);
  return tf.tidy(() => {
    const cls = tf.slice(pos, [0, 0], [1, d]);
    const grid = tf.reshape(tf.slice(pos, [1, 0], [g * g, d]), [g, g * d]);
    const byRows = tf.reshape(tf.matMul(resampler(g, gridH), grid), [gridH, g, d]); // rows resampled
    const cols = tf.reshape(tf.transpose(byRows, [1, 0, 2]), [g, gridH * d]);
    const byCols = tf.reshape(tf.matMul(resampler(g, gridW), cols), [gridW, gridH, d]);
    return tf.concat([cls, tf.reshape(tf.transpose(byCols, [1, 0, 2]), [gridH * gridW, d])], 0);
  });
}

/** `[N, D]` → `[M, D]`, linear along the token index with half-pixel centres (CoreNet's 1-D resample). */
export function resizePosEmbed1d(pos: Tensor, m: number): Tensor {
  const [n, d] = pos.shape as [number, number];
  if (n === m) return tf.clone(pos);
  return tf.tidy(() => tf.matMul(resampler(n, m), pos));
}

/**
 * open_clip's `PatchDropout` (`--force_patch_dropout P`; Li et al. 2023, "Scaling
 * Language-Image Pre-training via Masking"): in training, each image keeps a random
 * subset of max(1, ⌊(1 − P)·N⌋) of its N patch tokens — the class token (first) is always
 * kept, in front — before the transformer; in eval mode and with P = 0 the tokens pass
 * unchanged. Kept patches stay in their original order (open_clip takes the top-k of random
 * scores, whose order does not matter to a transformer without a mask; sorted is easier to test).
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { defaultGenerator } from '../../core/random.js';
import { tf, type Tensor } from '../../core/tf.js';

export class PatchDropout {
  constructor(readonly prob: number) {
    if (!(prob >= 0 && prob < 1)) throw new MisconfigurationError(`\`--force_patch_dropout\` must be in [0, 1), got ${showValue(prob)}.`);
  }

  /** Patches kept of `n`. */
  kept(n: number): number {
    return Math.max(1, Math.floor(n * (1 - this.prob)));
  }

  /** `tokens [B, 1 + N, W]` (class token first) → `[B, 1 + kept(N), W]` in training. */
  apply(tokens: Tensor, training: boolean): Tensor {
    if (!training || this.prob === 0) return tokens;
    const [b, l, w] = tokens.shape as [number, number, number];
    const n = l - 1;
    const keep = this.kept(n);
    return tf.tidy(() => {
      const scores = tf.randomUniform([b, n], 0, 1, 'float32', defaultGenerator.nextSeed());
      const top = tf.topk(scores, keep).indices; // [B, keep]
      const sorted = tf.neg(tf.topk(tf.neg(tf.cast(top, 'float32')), keep).values);
      const idx = tf.add(tf.cast(sorted, 'int32'), tf.scalar(1, 'int32'));
      const cls = tf.slice(tokens, [0, 0, 0], [b, 1, w]);
      const patches = tf.gather(tokens, idx, 1, 1); // batchDims 1: [B, keep, W]
      return tf.concat([cls, patches], 1);
    });
  }
}

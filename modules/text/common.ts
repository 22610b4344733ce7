/**
 * Pieces shared by the Hugging Face text encoders: the output contract, the additive
 * attention mask, head splitting and transformers' weight initialisation.
 */
import { Embedding, init, Linear, LayerNorm, type Module } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import type { HfTextConfig } from './config.js';

/** What every HF text encoder returns (transformers' `BaseModelOutputWithPooling`). */
export interface TextEncoderOutput {
  /** `[B, L, hidden]`: the last layer's token states. */
  lastHiddenState: Tensor;
  /** `[B, hidden]`: tanh(dense(first token)); absent for models without a pooler (DistilBERT). */
  poolerOutput?: Tensor;
}

/**
 * The interface `CustomClipWrapper` and friends program against: any HF text encoder.
 * `forward` takes token ids `[B, L]` (int32) and an attention mask `[B, L]` (1 = token,
 * 0 = padding; all ones when omitted).
 */
export interface HfTextEncoder extends Module {
  readonly config: HfTextConfig;
  /** Width of `lastHiddenState` (768 for the base models). */
  readonly hiddenSize: number;
  forward(inputIds: Tensor, attentionMask?: Tensor | null, tokenTypeIds?: Tensor | null): TextEncoderOutput;
}

/**
 * transformers adds `torch.finfo(float32).min` to masked scores (not -inf), so a row whose
 * keys are all padding still softmaxes to a uniform distribution instead of NaN.
 */
export const MASK_VALUE = -3.4028234663852886e38;

/** `[B, L]` mask of 1/0 → additive bias `[B, 1, 1, L]`: 0 for tokens, {@link MASK_VALUE} for padding. */
export function additiveMask(attentionMask: Tensor): Tensor {
  const [b, l] = attentionMask.shape as [number, number];
  return tf.tidy(() => {
    const m = attentionMask.dtype === 'float32' ? attentionMask : tf.cast(attentionMask, 'float32');
    return tf.reshape(tf.mul(tf.sub(1, m), MASK_VALUE), [b, 1, 1, l]);
  });
}

/** `[B, L, heads·d]` → `[B, heads, L, d]`. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, l, h] = x.shape as [number, number, number];
  return tf.tidy(() => tf.transpose(tf.reshape(x, [b, l, heads, h / heads]), [0, 2, 1, 3]));
}

/** `[B, heads, L, d]` → `[B, L, heads·d]`. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, heads, l, d] = x.shape as [number, number, number, number];
  return tf.tidy(() => tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, l, heads * d]));
}

/**
 * Validates forward inputs and fills in the defaults: an all-ones mask, zero token types.
 * @throws Error when the shapes disagree (a programming error, not user configuration).
 */
export function prepareInputs(
  name: string,
  inputIds: Tensor,
  attentionMask?: Tensor | null,
  tokenTypeIds?: Tensor | null,
): { ids: Tensor; mask: Tensor; types: Tensor } {
  if (inputIds.rank !== 2) throw new Error(`${name}: inputIds must be [B, L], got [${inputIds.shape.join(', ')}]`);
  const same = (t: Tensor): boolean => t.rank === 2 && t.shape[0] === inputIds.shape[0] && t.shape[1] === inputIds.shape[1];
  if (attentionMask && !same(attentionMask)) {
    throw new Error(`${name}: attentionMask [${attentionMask.shape.join(', ')}] must match inputIds [${inputIds.shape.join(', ')}]`);
  }
  if (tokenTypeIds && !same(tokenTypeIds)) {
    throw new Error(`${name}: tokenTypeIds [${tokenTypeIds.shape.join(', ')}] must match inputIds [${inputIds.shape.join(', ')}]`);
  }
  return {
    ids: inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32'),
    mask: attentionMask ?? tf.onesLike(inputIds),
    types: tokenTypeIds ? (tokenTypeIds.dtype === 'int32' ? tokenTypeIds : tf.cast(tokenTypeIds, 'int32')) : tf.zerosLike(inputIds),
  };
}

/**
 * transformers' `_init_weights`: Linear and Embedding weights N(0, std²), biases 0, the
 * embedding's padding row 0, LayerNorm 1/0. Used for models built from a config (training
 * from scratch, or a pooler the checkpoint lacks).
 */
export function initHfWeights(module: Module, std: number): void {
  for (const [, m] of module.namedModules()) {
    if (m instanceof Linear) {
      init.assignInit(m.weight, (s) => init.normal(s, { std }));
      if (m.bias) init.assignInit(m.bias, init.zeros);
    } else if (m instanceof Embedding) {
      const pad = m.paddingIdx;
      init.assignInit(m.weight, (s) =>
        tf.tidy(() => {
          const w = init.normal(s, { std });
          if (pad === null) return w;
          const keep = tf.reshape(tf.notEqual(tf.range(0, s[0]!, 1, 'int32'), pad), [s[0]!, 1]);
          return tf.where(keep, w, 0);
        }),
      );
    } else if (m instanceof LayerNorm) {
      if (m.weight) init.assignInit(m.weight, init.ones);
      if (m.bias) init.assignInit(m.bias, init.zeros);
    }
  }
}

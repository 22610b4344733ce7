import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor } from '../tf.js';
import { checkInt } from './checks.js';
import * as F from './functional.js';
import * as init from './init.js';
import { Module, type Parameter, type TensorModule } from './module.js';

/** Options of {@link Embedding}. */
export interface EmbeddingOptions {
  /**
   * Row initialised to zeros (PyTorch's `padding_idx`; negative counts from the end).
   * Unlike PyTorch its gradient is not masked: keep the row frozen by not training it, or
   * mask the inputs.
   */
  paddingIdx?: number | null;
}

/**
 * A lookup table `weight [numEmbeddings, embeddingDim]` (PyTorch's `nn.Embedding`),
 * initialised N(0, 1) as PyTorch. `forward` maps integer indices of any shape `[...]` to
 * `[..., embeddingDim]`.
 */
export class Embedding extends Module implements TensorModule {
  readonly weight: Parameter;
  readonly paddingIdx: number | null;

  /** @throws MisconfigurationError for non-positive sizes or a `paddingIdx` out of range. */
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: EmbeddingOptions = {},
  ) {
    super();
    checkInt('numEmbeddings', numEmbeddings);
    checkInt('embeddingDim', embeddingDim);
    const pad = options.paddingIdx ?? null;
    if (pad !== null && !(Number.isInteger(pad) && pad >= -numEmbeddings && pad < numEmbeddings)) {
      throw new MisconfigurationError(`\`paddingIdx\` must be an integer in [${-numEmbeddings}, ${numEmbeddings}), got ${showValue(pad)}`);
    }
    this.paddingIdx = pad === null ? null : pad < 0 ? pad + numEmbeddings : pad;
    const padRow = this.paddingIdx;
    const w = tf.tidy(() => {
      const t = init.normal([numEmbeddings, embeddingDim]);
      if (padRow === null) return t;
      const keep = tf.reshape(tf.notEqual(tf.range(0, numEmbeddings, 1, 'int32'), padRow), [numEmbeddings, 1]);
      return tf.where(keep, t, 0);
    });
    this.weight = this.registerParameter('weight', w);
  }

  /** `indices` are integers (cast to int32 if needed) of any shape. */
  forward(indices: Tensor): Tensor {
    return tf.tidy(() => F.embedding(this.weight.variable, indices));
  }
}

import type { Tensor } from '../tf.js';
import { checkDropout } from './checks.js';
import * as F from './functional.js';
import { Module, type TensorModule } from './module.js';

/**
 * Inverted dropout (PyTorch's `nn.Dropout`): in training mode zeroes each element with
 * probability `p` and scales the rest by 1/(1 − p); the identity in eval mode. Masks are
 * seeded from `defaultGenerator`, so `seedEverything` reproduces them.
 */
export class Dropout extends Module implements TensorModule {
  /** @throws MisconfigurationError when `p` is outside [0, 1). */
  constructor(readonly p = 0.5) {
    super();
    checkDropout('p', p);
  }

  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}


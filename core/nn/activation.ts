import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor } from '../tf.js';
import * as F from './functional.js';
import { Module, type TensorModule } from './module.js';

/** GELU (PyTorch's `nn.GELU`): exact `x·Φ(x)` through erf, or the tanh approximation. */
export class GELU extends Module implements TensorModule {
  /** @throws MisconfigurationError when `approximate` is not 'none' or 'tanh'. */
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new MisconfigurationError(`\`approximate\` must be "none" or "tanh", got ${showValue(approximate)}`);
    }
  }

  forward(x: Tensor): Tensor {
    return F.gelu(x, this.approximate);
  }
}

/** OpenAI CLIP's `QuickGELU`: `x·σ(1.702·x)`. */
export class QuickGELU extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return F.quickGelu(x);
  }
}

/** `max(x, 0)` (PyTorch's `nn.ReLU`). */
export class ReLU extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return tf.relu(x);
  }
}

/** Logistic sigmoid (PyTorch's `nn.Sigmoid`). */
export class Sigmoid extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return tf.sigmoid(x);
  }
}

/** Hyperbolic tangent (PyTorch's `nn.Tanh`). */
export class Tanh extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return tf.tanh(x);
  }
}

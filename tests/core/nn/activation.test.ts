import { describe, expect, it } from 'vitest';
import { GELU, QuickGELU, ReLU, Sigmoid, Tanh } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose } from './helpers.js';

describe('activation modules', () => {
  const xs = [-2, -0.5, 0, 0.5, 2];
  const x = (): tf.Tensor => tf.tensor1d(xs);
  const sig = (v: number): number => 1 / (1 + Math.exp(-v));

  it('GELU is exact by default and tanh-approximate on request', () => {
    // Φ(0.5) = 0.691462461, Φ(2) = 0.977249868 (standard normal table).
    const phi = [1 - 0.977249868, 1 - 0.691462461, 0.5, 0.691462461, 0.977249868];
    expectClose(new GELU().forward(x()), xs.map((v, i) => v * phi[i]!), 2e-6);
    const tanhApprox = xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expectClose(new GELU('tanh').forward(x()), tanhApprox, 2e-6);
    expect(() => new GELU('fast' as 'none')).toThrow(/`approximate`/);
  });

  it('QuickGELU, ReLU, Sigmoid, Tanh', () => {
    expectClose(new QuickGELU().forward(x()), xs.map((v) => v * sig(1.702 * v)));
    expectClose(new ReLU().forward(x()), xs.map((v) => Math.max(v, 0)), 0);
    expectClose(new Sigmoid().forward(x()), xs.map(sig));
    expectClose(new Tanh().forward(x()), xs.map(Math.tanh));
  });
});

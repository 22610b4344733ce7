import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { Embedding } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose, values } from './helpers.js';

describe('Embedding', () => {
  it('looks rows up by index for any index shape', () => {
    const emb = new Embedding(4, 2);
    emb.weight.variable.assign(tf.tensor2d([[0, 1], [10, 11], [20, 21], [30, 31]]));
    const y = emb.forward(tf.tensor2d([[3, 0], [1, 1]], [2, 2], 'int32'));
    expect(y.shape).toEqual([2, 2, 2]);
    expectClose(y, [30, 31, 0, 1, 10, 11, 10, 11], 0);
    // Float indices are cast.
    expectClose(emb.forward(tf.tensor1d([2])), [20, 21], 0);
    expect(Object.keys(emb.stateDict())).toEqual(['weight']);
  });

  it('zeroes the padding row (negative index counts from the end)', () => {
    const emb = new Embedding(5, 3, { paddingIdx: -1 });
    expect(emb.paddingIdx).toBe(4);
    const w = values(emb.weight.variable);
    expect(w.slice(12)).toEqual([0, 0, 0]);
    expect(w.slice(0, 12).some((v) => v !== 0)).toBe(true);
    expect(() => new Embedding(5, 3, { paddingIdx: 5 })).toThrow(MisconfigurationError);
  });
});

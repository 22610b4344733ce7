import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { Dropout } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { values } from './helpers.js';

describe('Dropout', () => {
  it('drops with seeded masks in training and is the identity in eval', () => {
    const d = new Dropout(0.5);
    const x = tf.ones([200]);
    seedEverything(9);
    const a = values(d.forward(x));
    seedEverything(9);
    expect(values(d.forward(x))).toEqual(a);
    expect(a.every((v) => v === 0 || v === 2)).toBe(true);
    const kept = a.filter((v) => v === 2).length;
    expect(kept).toBeGreaterThan(70);
    expect(kept).toBeLessThan(130);
    d.eval();
    expect(d.forward(x)).toBe(x);
    expect(() => new Dropout(1)).toThrow(MisconfigurationError);
    expect(() => new Dropout(-0.1)).toThrow(/`p` must be a probability in \[0, 1\)/);
  });
});

import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../core/tf.js';
import { RecordedForward } from '../../core/autograd.js';
import { Sequential } from '../../core/nn/containers.js';
import { Conv2d } from '../../core/nn/conv.js';
import { BatchNorm2d } from '../../core/nn/norm.js';
import { GELU } from '../../core/nn/activation.js';
import { Dropout } from '../../core/nn/dropout.js';
import { Flatten, Linear } from '../../core/nn/linear.js';
import { LayerNorm } from '../../core/nn/norm.js';
import { defaultGenerator, seedEverything } from '../../core/random.js';

function net(): Sequential {
  return new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new GELU(), new Dropout(0.3), new Flatten(), new Linear(4 * 4 * 4, 5), new LayerNorm([5]));
}

describe('RecordedForward', () => {
  it('back-propagates a forward recorded before an await exactly as one tape does', async () => {
    seedEverything(3);
    const m = net();
    const x = tf.randomNormal([3, 4, 4, 3], 0, 1, 'float32', 1);
    const dy = tf.randomNormal([3, 5], 0, 1, 'float32', 2);
    const vars = m.parameters().map((p) => p.variable);
    const state = defaultGenerator.getState();
    // Reference: one tape over Σ out·dy (the same dropout draws: generator state restored).
    const ref = tf.variableGrads(() => tf.sum(tf.mul(m.forward(x) as Tensor, dy)) as tf.Scalar, vars);
    defaultGenerator.setState(state);
    const before = tf.memory().numTensors;
    const rec = RecordedForward.record(() => [m.forward(x) as Tensor]);
    await new Promise((r) => setTimeout(r, 5));
    // Ops run while awaiting are not recorded and do not disturb the tape.
    tf.tidy(() => tf.matMul(tf.ones([4, 4]), tf.ones([4, 4]))).dispose();
    const grads = rec.backward([dy], vars);
    expect(grads.every((g) => g !== null)).toBe(true);
    vars.forEach((v, i) => {
      const a = ref.grads[v.name]!.dataSync();
      const b = grads[i]!.dataSync();
      let scale = 0;
      for (let j = 0; j < a.length; j++) scale = Math.max(scale, Math.abs(a[j]!));
      expect(scale).toBeGreaterThan(0);
      for (let j = 0; j < a.length; j++) expect(Math.abs(b[j]! - a[j]!)).toBeLessThanOrEqual(1e-6 + 1e-5 * scale);
    });
    tf.dispose(grads as Tensor[]);
    // Everything the tape saved is freed: only the (BatchNorm) buffers it re-assigned remain as they were.
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, dy, ref.value, ...Object.values(ref.grads)]);
  });

  it('gives null for inputs the outputs do not depend on, and frees the tape on dispose()', () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const unused = tf.variable(tf.tensor1d([3]));
    const dy = tf.ones([2]);
    const before = tf.memory().numTensors;
    const rec = RecordedForward.record(() => [tf.square(a)]);
    const [ga, gu] = rec.backward([dy], [a, unused]);
    expect(Array.from(ga!.dataSync())).toEqual([2, 4]);
    expect(gu).toBeNull();
    ga!.dispose();
    expect(() => rec.backward([dy], [a])).toThrow(/already/);
    const rec2 = RecordedForward.record(() => [tf.exp(a)]);
    rec2.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses to record inside another tape', () => {
    const a = tf.variable(tf.scalar(1));
    expect(() => tf.variableGrads(() => {
      RecordedForward.record(() => [tf.square(a)]);
      return tf.square(a) as tf.Scalar;
    }, [a])).toThrow(/inside another gradient/);
  });
});

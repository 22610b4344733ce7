import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { Linear, init } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { values } from './helpers.js';

const meanStd = (v: number[]): [number, number] => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return [m, Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length)];
};

describe('init', () => {
  it('fan in/out and gains follow PyTorch', () => {
    expect(init.calculateFanInAndFanOut([8, 4, 3, 3])).toEqual([36, 72]);
    expect(init.calculateFanInAndFanOut([5, 7])).toEqual([7, 5]);
    expect(() => init.calculateFanInAndFanOut([5])).toThrow(MisconfigurationError);
    expect(init.calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(init.calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(init.calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
  });

  it('seedEverything reproduces a layer; another seed changes it', () => {
    seedEverything(5);
    const a = values(new Linear(4, 3).weight.variable);
    seedEverything(5);
    const b = values(new Linear(4, 3).weight.variable);
    seedEverything(6);
    const c = values(new Linear(4, 3).weight.variable);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('uniform initialisers respect their bounds', () => {
    const w = values(init.kaimingUniform([64, 50], { a: Math.sqrt(5) }));
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(50));
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.9 / Math.sqrt(50));
    const relu = values(init.kaimingUniform([64, 50], { nonlinearity: 'relu' }));
    expect(Math.max(...relu.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 50));
    expect(Math.max(...relu.map(Math.abs))).toBeGreaterThan(0.9 * Math.sqrt(6 / 50));
    const x = values(init.xavierUniform([30, 20]));
    expect(Math.max(...x.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 50));
    expect(values(init.defaultBias(10, [10, 4])).every((v) => Math.abs(v) <= 0.5)).toBe(true);
  });

  it('normal and truncNormal have the requested moments and range', () => {
    seedEverything(1);
    const [m, s] = meanStd(values(init.normal([4000], { mean: 1, std: 0.02 })));
    expect(m).toBeCloseTo(1, 2);
    expect(Math.abs(s - 0.02)).toBeLessThan(0.002);
    const t = values(init.truncNormal([4000], { std: 1, a: -0.5, b: 1 }));
    expect(t.every((v) => v >= -0.5 && v <= 1)).toBe(true);
    // Both tails were cut: values close to each bound exist.
    expect(Math.min(...t)).toBeLessThan(-0.45);
    expect(Math.max(...t)).toBeGreaterThan(0.95);
    expect(() => init.truncNormal([3], { a: 1, b: 0 })).toThrow(/`a` must be < `b`/);
  });

  it('zeros, ones, constant and assignInit', () => {
    expect(values(init.zeros([3]))).toEqual([0, 0, 0]);
    expect(values(init.ones([2]))).toEqual([1, 1]);
    expect(values(init.constant([2], 0.5))).toEqual([0.5, 0.5]);
    const lin = new Linear(3, 2);
    const n = tf.memory().numTensors;
    init.assignInit(lin.weight, (s) => init.constant(s, 2));
    init.assignInit(lin.bias!.variable, init.zeros);
    expect(tf.memory().numTensors).toBe(n);
    expect(values(lin.weight.variable)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(values(lin.bias!.variable)).toEqual([0, 0]);
  });
});

import { expect } from 'vitest';
import { tf } from '../../../core/tf.js';
import { Parameter } from '../../../core/nn/module.js';

/** A parameter holding `values` (shape defaults to 1-D). */
export function param(values: number[], shape: number[] = [values.length], requiresGrad = true): Parameter {
  const t = tf.tensor(values, shape);
  const p = new Parameter(t, requiresGrad);
  t.dispose();
  return p;
}

/** Replaces `p.grad` with `values` (disposing the previous one). */
export function setGrad(p: Parameter, values: number[]): void {
  p.zeroGrad();
  p.grad = tf.tensor(values, p.shape);
}

export function values(p: Parameter): number[] {
  return Array.from(p.variable.dataSync());
}

export function gradValues(p: Parameter): number[] {
  if (p.grad === null) throw new Error('no grad');
  return Array.from(p.grad.dataSync());
}

/** Element-wise |a − e| ≤ tol·max(1, |e|) (float32 against float64 references). */
export function expectClose(actual: number[], expected: number[], tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i];
    if (Math.abs(a - e) > tol * Math.max(1, Math.abs(e))) {
      throw new Error(`element ${i}: got ${a}, expected ${e} (all: [${actual.join(', ')}] vs [${expected.join(', ')}])`);
    }
  });
}

import { expect } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';

/** Flat values of a tensor as a plain array. */
export function values(t: Tensor): number[] {
  return Array.from(t.dataSync());
}

/** Asserts elementwise |a − b| ≤ tol (and equal lengths). */
export function expectClose(actual: Tensor | ArrayLike<number>, expected: Tensor | ArrayLike<number>, tol = 1e-5): void {
  const a = actual instanceof tf.Tensor ? values(actual) : Array.from(actual);
  const b = expected instanceof tf.Tensor ? values(expected) : Array.from(expected);
  expect(a.length).toBe(b.length);
  const worst = a.reduce((m, v, i) => Math.max(m, v === b[i] ? 0 : Math.abs(v - b[i]!)), 0);
  if (!(worst <= tol)) expect.fail(`max |diff| ${worst} > ${tol}\nactual   ${a.slice(0, 12).join(', ')}\nexpected ${b.slice(0, 12).join(', ')}`);
}

/** Deterministic pseudo-random values in [-1, 1) for test inputs (no dependence on the generator under test). */
export function fixture(shape: number[], salt = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 * salt + salt * 78.233) * 0.999);
  return tf.tensor(data, shape);
}

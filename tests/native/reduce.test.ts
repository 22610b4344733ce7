import { beforeAll, describe, it } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { compareBackends, rand, setupNative, t } from './helpers.js';

beforeAll(setupNative);

/** Every non-empty subset of [0..n). */
function subsets(n: number): number[][] {
  const out: number[][] = [];
  for (let m = 1; m < 1 << n; m++) out.push([...Array(n).keys()].filter((i) => m & (1 << i)));
  return out;
}

const ops: [string, (x: Tensor, axis: number[], keep: boolean) => Tensor][] = [
  ['Sum', (x, a, k) => tf.sum(x, a, k)], ['Mean', (x, a, k) => tf.mean(x, a, k)],
  ['Max', (x, a, k) => tf.max(x, a, k)], ['Min', (x, a, k) => tf.min(x, a, k)],
  ['Prod', (x, a, k) => tf.prod(x, a, k)],
];

describe('reductions match tfjs cpu over any axes', () => {
  for (const [name, op] of ops) {
    it(name, () => {
      for (const shape of [[7], [3, 5], [2, 3, 4], [2, 1, 3, 4], [3, 0, 2]]) {
        const x = rand(shape, name === 'Prod' ? 0.5 : -1, name === 'Prod' ? 1.5 : 1);
        for (const axes of subsets(shape.length)) {
          for (const keep of [false, true]) {
            compareBackends(() => op(t(x), axes, keep), 1e-5, 1e-6, `${name} ${shape} ${axes} ${keep}`);
          }
        }
        compareBackends(() => op(t(x), [-1], false), 1e-5, 1e-6, `${name} ${shape} negative axis`);
      }
      // long rows and columns use the multi-threaded paths
      const big = rand([3, 70000]);
      compareBackends(() => op(t(big), [1], false), 1e-4, 1e-3, `${name} long rows`);
      compareBackends(() => op(t(big), [0], false), 1e-5, 1e-5, `${name} columns`);
      const flat = rand([300000]);
      compareBackends(() => op(t(flat), [0], false), 1e-4, 1e-2, `${name} full`);
    });
  }
});

describe('softmax', () => {
  it('matches tfjs cpu on odd sizes, size 1 and -inf masks', () => {
    for (const shape of [[1], [5], [3, 1], [4, 7], [2, 3, 77]]) {
      const x = rand(shape, -10, 10);
      compareBackends(() => tf.softmax(t(x)), 1e-5, 1e-7, `${shape}`);
    }
    const masked = tf.tensor2d([[0, -Infinity, 1], [-Infinity, 2, -Infinity]]);
    compareBackends(() => tf.softmax(masked.clone()), 1e-6, 1e-7, 'masked');
    masked.dispose();
  });

  it('its gradient matches', () => {
    const x = rand([4, 9]);
    const w = rand([4, 9]);
    compareBackends(() => tf.grad((xi: Tensor) => tf.softmax(xi).mul(t(w)).sum())(t(x)), 1e-5, 1e-6, 'grad');
  });
});

import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { distillationLoss, distillationTargets, klDivergence, sinkhorn } from '../../../modules/losses/distillation.js';

const rowSums = (t: tf.Tensor) => Array.from(tf.sum(t, 1).dataSync());
const colSums = (t: tf.Tensor) => Array.from(tf.sum(t, 0).dataSync());

describe('sinkhorn', () => {
  it('rows sum to 1 exactly and columns converge to the uniform marginal B/K', () => {
    const scores = tf.tensor2d([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.5, 0.4, 0.7], [0.1, 0.2, 0.95]]);
    const q3 = sinkhorn(scores, 0.05, 3);
    for (const r of rowSums(q3)) expect(r).toBeCloseTo(1, 5);
    const q50 = sinkhorn(scores, 0.05, 50);
    for (const r of rowSums(q50)) expect(r).toBeCloseTo(1, 5);
    for (const c of colSums(q50)) expect(c).toBeCloseTo(4 / 3, 3);
    // Peaks stay where the scores peak.
    expect(Array.from(tf.argMax(q3, 1).dataSync())).toEqual([0, 1, 2, 2]);
  });

  it('matches a hand computation for one round on 2×2', () => {
    const s = [[1, 0], [0, 1]];
    const eps = 0.5;
    // exp(s/ε) = [[e², 1], [1, e²]]; columns normalised then rows: symmetric, so rows are [e²,1]/(e²+1).
    const e2 = Math.exp(2);
    const q = sinkhorn(tf.tensor2d(s), eps, 1).arraySync() as number[][];
    expect(q[0]![0]).toBeCloseTo(e2 / (e2 + 1), 6);
    expect(q[0]![1]).toBeCloseTo(1 / (e2 + 1), 6);
  });
});

describe('KL term', () => {
  it('is zero when the student distribution equals the targets, positive otherwise', () => {
    const target = tf.tensor2d([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]);
    expect(klDivergence(tf.log(target), target).dataSync()[0]).toBeCloseTo(0, 6);
    expect(klDivergence(tf.log(target).add(tf.tensor2d([[0, 0, 5], [0, 0, 0]])), target).dataSync()[0]).toBeGreaterThan(0.1);
    // Hand value: KL([1,0] ‖ softmax([0, ln 3])) = ln 4 (one row).
    expect(klDivergence(tf.tensor2d([[0, Math.log(3)]]), tf.tensor2d([[1, 0]])).dataSync()[0]).toBeCloseTo(Math.log(4), 6);
  });

  it('distillationLoss is zero when the targets are the student\'s own softmax, and matches PyTorch otherwise', () => {
    const zi = tf.tensor2d([[1, 0], [0.6, 0.8], [0, 1]]);
    const zt = tf.tensor2d([[0.8, 0.6], [0, 1], [1, 0]]);
    const sinkTemp = tf.scalar(Math.log(2)); // temperature exp(ln 2) = 2
    // Targets equal to softmax(2·zi·ztᵀ) by rows (image side) and by columns (text side):
    // both KL terms vanish, so the loss is 0 — and it is not if either side is swapped.
    const logits = tf.mul(tf.matMul(zi, zt, false, true), 2);
    const own = { image: tf.softmax(logits), text: tf.softmax(tf.transpose(logits)) };
    expect(distillationLoss(zi, zt, sinkTemp, own).dataSync()[0]).toBeCloseTo(0, 6);
    const swapped = { image: own.text, text: own.image };
    expect(distillationLoss(zi, zt, sinkTemp, swapped).dataSync()[0]).toBeGreaterThan(1e-3);
    // Independent reference: PyTorch 1.13, (kl_div(log_softmax(L), Ti, 'batchmean') +
    // kl_div(log_softmax(Lᵀ), Tt, 'batchmean')) / 2 with L = 2·zi·ztᵀ and these targets.
    const given = {
      image: tf.tensor2d([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.25, 0.25, 0.5]]),
      text: tf.tensor2d([[0.6, 0.2, 0.2], [0.3, 0.4, 0.3], [0, 0.1, 0.9]]),
    };
    expect(distillationLoss(zi, zt, sinkTemp, given).dataSync()[0]).toBeCloseTo(0.6537569761276245, 5);
    // Sinkhorn targets: rows sum to 1 exactly, columns to B/K = 1 up to convergence.
    const targets = distillationTargets(zi, zt);
    for (const r of rowSums(targets.image)) expect(r).toBeCloseTo(1, 5);
    for (const c of rowSums(tf.transpose(targets.image))) expect(Math.abs(c - 1)).toBeLessThan(0.05);
  });
});

import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { ClipLoss, clipLossCore, retrievalAccuracy } from '../../../modules/losses/clipLoss.js';

/** log-sum-exp cross-entropy of one row, in plain numbers. */
const ce = (row: number[], target: number) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[target]!;

describe('clipLossCore (symmetric InfoNCE)', () => {
  it('matches a hand computation on 2×2', () => {
    const I = [[1, 0], [0.6, 0.8]];
    const T = [[0.8, 0.6], [0, 1]];
    const s = 2;
    const L = I.map((i) => T.map((t) => s * (i[0]! * t[0]! + i[1]! * t[1]!)));
    const Lt = [0, 1].map((c) => L.map((r) => r[c]!));
    const expected = ((ce(L[0]!, 0) + ce(L[1]!, 1)) / 2 + (ce(Lt[0]!, 0) + ce(Lt[1]!, 1)) / 2) / 2;
    const got = clipLossCore(tf.tensor2d(I), tf.tensor2d(T), s).dataSync()[0]!;
    expect(got).toBeCloseTo(expected, 6);
    // Independent reference: PyTorch 1.13, (F.cross_entropy(L, y) + F.cross_entropy(L.T, y)) / 2
    // with L = 2·I·Tᵀ (printed by /usr/bin/python3; not computed by the code under test).
    expect(got).toBeCloseTo(0.5248968601226807, 6);
  });

  it('matches a hand computation on 3×3 with a tensor scale, and is symmetric in its towers', () => {
    const I = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
    const T = [[0.6, 0.8, 0], [0, 0.6, 0.8], [0.8, 0, 0.6]];
    const s = 10;
    const L = I.map((i) => T.map((t) => s * i.reduce((a, v, k) => a + v * t[k]!, 0)));
    const Lt = [0, 1, 2].map((c) => L.map((r) => r[c]!));
    const expected = ([0, 1, 2].reduce((a, k) => a + ce(L[k]!, k), 0) / 3 + [0, 1, 2].reduce((a, k) => a + ce(Lt[k]!, k), 0) / 3) / 2;
    const got = clipLossCore(tf.tensor2d(I), tf.tensor2d(T), tf.scalar(s)).dataSync()[0]!;
    expect(got).toBeCloseTo(expected, 5);
    expect(got).toBeCloseTo(2.127223491668701, 5); // PyTorch 1.13, as above with L = 10·I·Tᵀ
    const swapped = clipLossCore(tf.tensor2d(T), tf.tensor2d(I), s).dataSync()[0]!;
    expect(swapped).toBeCloseTo(got, 5);
  });

  it('retrieval accuracy counts rows and columns', () => {
    const acc = retrievalAccuracy(tf.tensor2d([[5, 1, 0], [0, 1, 3], [0, 4, 2]]));
    expect(acc.imageToText).toBeCloseTo(1 / 3, 6); // rows: 0✓ 1✗(→2) 2✗(→1)
    expect(acc.textToImage).toBeCloseTo(1 / 3, 6); // cols: 0✓ 1✗(→2) 2✗(→1)
  });

  it('local loss offsets labels by n·rank', () => {
    const loss = new ClipLoss({ localLoss: true, rank: 1, worldSize: 2 });
    expect(Array.from(loss.groundTruth(3).dataSync())).toEqual([3, 4, 5]);
    const all = tf.tensor2d([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]]);
    const local = tf.slice(all, 2, 2);
    const got = loss.forward(local, local, 3, all, all).contrastiveLoss.dataSync()[0]!;
    const rows = [[0.6 * 3, 0.8 * 3, 3 * 1, 3 * 0.96], [0.8 * 3, 0.6 * 3, 3 * 0.96, 3 * 1]];
    const expected = (ce(rows[0]!, 2) + ce(rows[1]!, 3)) / 2;
    expect(got).toBeCloseTo(expected, 5);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { SIGLIP_DIST_IMPLS, siglipLoss, siglipLossAndGrads } from '../../../modules/losses/siglip.js';
import { buildForWorkers } from '../../strategies/fixtures/build.js';
import { runWorkers, waitGone } from '../../strategies/helpers.js';

/** The loss written out element by element in plain numbers: −Σ log σ(y·(e^θ·⟨i,t⟩ + b)) / N. */
function naive(I: number[][], T: number[][], theta: number, b: number): number {
  let s = 0;
  I.forEach((i, r) =>
    T.forEach((t, c) => {
      const l = Math.exp(theta) * i.reduce((a, v, k) => a + v * t[k]!, 0) + b;
      const y = r === c ? 1 : -1;
      s += Math.log1p(Math.exp(-y * l));
    }),
  );
  return s / I.length;
}

const unitRows = (x: Tensor): Tensor => tf.div(x, tf.norm(x, 2, 1, true));

describe('siglipLoss', () => {
  it('matches a hand-computed 2×2 example (θ = ln 10, b = −10)', () => {
    // logits = 10·[[1, 0.6], [0, 0.8]] − 10 = [[0, −4], [−10, −2]]; positives on the diagonal:
    // loss = (ln 2 + ln(1+e^−4) + ln(1+e^−10) + ln(1+e^2)) / 2 = 1.4191352592 (python3 math).
    const I = tf.tensor2d([[1, 0], [0, 1]]);
    const T = tf.tensor2d([[1, 0], [0.6, 0.8]]);
    const s = tf.scalar(Math.log(10));
    const b = tf.scalar(-10);
    expect(siglipLoss(I, T, s, b).dataSync()[0]).toBeCloseTo(1.4191352592, 5);
    // ∂loss/∂b = Σ −y·σ(−y·logit) / N = −0.6813827351 (python3 math).
    const gb = tf.grad((bb: Tensor) => siglipLoss(I, T, s, bb))(b);
    expect(gb.dataSync()[0]).toBeCloseTo(-0.6813827351, 5);
  });

  it('equals the naive formula on random features, and negative-only blocks have no positives', () => {
    const I = unitRows(tf.randomNormal([5, 7], 0, 1, 'float32', 1));
    const T = unitRows(tf.randomNormal([5, 7], 0, 1, 'float32', 2));
    const Ia = I.arraySync() as number[][];
    const Ta = T.arraySync() as number[][];
    const got = siglipLoss(I, T, tf.scalar(1.3), tf.scalar(-2.5)).dataSync()[0]!;
    expect(got).toBeCloseTo(naive(Ia, Ta, 1.3, -2.5), 5);
    // negatives only: every pair has y = −1
    const neg = siglipLoss(I, T, tf.scalar(1.3), tf.scalar(-2.5), true).dataSync()[0]!;
    let s = 0;
    for (const i of Ia) for (const t of Ta) s += Math.log1p(Math.exp(Math.exp(1.3) * i.reduce((a, v, k) => a + v * t[k]!, 0) - 2.5));
    expect(neg).toBeCloseTo(s / 5, 5);
  });

  it('on one process, siglipLossAndGrads gives the loss and its autodiff gradients', async () => {
    const I = unitRows(tf.randomNormal([4, 3], 0, 1, 'float32', 3));
    const T = unitRows(tf.randomNormal([4, 3], 0, 1, 'float32', 4));
    const r = await siglipLossAndGrads(I, T, tf.scalar(2), tf.scalar(-1));
    const g = tf.grads((a: Tensor, c: Tensor) => siglipLoss(a, c, tf.scalar(2), tf.scalar(-1)))([I, T]);
    expect(r.loss.dataSync()[0]).toBeCloseTo(naive(I.arraySync() as number[][], T.arraySync() as number[][], 2, -1), 5);
    expect(Array.from(r.gradImage.dataSync())).toEqual(Array.from(g[0]!.dataSync()));
    expect(Array.from(r.gradText.dataSync())).toEqual(Array.from(g[1]!.dataSync()));
    await expect(siglipLossAndGrads(I, T, tf.scalar(2), tf.scalar(-1), undefined, 'ring' as never)).rejects.toThrow(/siglip_dist_impl/);
  });
});

describe.each([2, 3])('distributed SigLIP over %i processes', (world) => {
  let build = '';
  beforeAll(async () => {
    build = await buildForWorkers();
  });

  it('every dist_impl (bidir, shift, reduce, gather) equals the single-process global-batch loss and gradients', async () => {
    const [n, d] = [3, 4];
    const out = await runWorkers(build, 'siglipWorker.mjs', SIGLIP_DIST_IMPLS.join(','), { devices: world, env: { SIGLIP_N: String(n), SIGLIP_D: String(d) } });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const ranks = out.results.sort((a, b) => a.rank - b.rank) as Array<{ rank: number; out: Record<string, Record<string, number[]>> }>;
    expect(ranks).toHaveLength(world);
    // Reference: the same seeded global batch on this process.
    const zi = unitRows(tf.randomNormal([world * n, d], 0, 1, 'float32', 11));
    const zt = unitRows(tf.randomNormal([world * n, d], 0, 1, 'float32', 12));
    const theta = tf.scalar(Math.log(7));
    const bias = tf.scalar(-3);
    const ref = tf.valueAndGrads((a: Tensor, c: Tensor, s: Tensor, b: Tensor) => siglipLoss(a, c, s, b))([zi, zt, theta, bias]);
    const L = ref.value.dataSync()[0]!;
    expect(L).toBeCloseTo(naive(zi.arraySync() as number[][], zt.arraySync() as number[][], Math.log(7), -3), 4);
    const [gI, gT, gS, gB] = ref.grads.map((g) => Array.from(g.dataSync()));
    for (const impl of SIGLIP_DIST_IMPLS) {
      const mean = (k: string): number => ranks.reduce((s, r) => s + r.out[impl]![k]![0]!, 0) / world;
      expect(mean('loss'), impl).toBeCloseTo(L, 5);
      expect(mean('gradScale'), impl).toBeCloseTo(gS![0]!, 5);
      expect(mean('gradBias'), impl).toBeCloseTo(gB![0]!, 5);
      for (const r of ranks) {
        // DDP averages over ranks, so each rank's feature gradient is world × its slice of the global one.
        const slice = (g: number[]) => g.slice(r.rank * n * d, (r.rank + 1) * n * d).map((v) => v * world);
        r.out[impl]!.gradImage!.forEach((v, i) => expect(v, `${impl} rank ${r.rank} image ${i}`).toBeCloseTo(slice(gI!)[i]!, 5));
        r.out[impl]!.gradText!.forEach((v, i) => expect(v, `${impl} rank ${r.rank} text ${i}`).toBeCloseTo(slice(gT!)[i]!, 5));
      }
    }
    expect(await waitGone(out.pids, 2000)).toEqual([]);
  }, 60_000);
});

import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import {
  barlipLoss,
  barlowTwinsObjective,
  cl2lLoss,
  detach,
  disposeTerms,
  negativeCosine,
  siamlipLoss,
  swalipLoss,
  swalipV1Loss,
} from '../../../modules/cliprocket/losses.js';

// Plain-number reference implementations of clip-rocket's formulas (losses.py), written
// independently of the tensor code: matrices are number[][].
type M = number[][];
const norm = (m: M): M => m.map((r) => {
  const n = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
  return r.map((v) => v / n);
});
const mmT = (a: M, b: M): M => a.map((r) => b.map((c) => r.reduce((s, v, k) => s + v * c[k]!, 0)));
const scale = (m: M, s: number): M => m.map((r) => r.map((v) => v * s));
const logSoftmaxRow = (r: number[]) => {
  const mx = Math.max(...r);
  const lse = mx + Math.log(r.reduce((s, v) => s + Math.exp(v - mx), 0));
  return r.map((v) => v - lse);
};
/** torch's cross_entropy(logits, arange, label_smoothing=eps), mean over rows. */
const ce = (logits: M, eps = 0, offset = 0) => {
  const c = logits[0]!.length;
  return logits.reduce((s, r, i) => {
    const lp = logSoftmaxRow(r);
    return s - lp.reduce((a, v, k) => a + ((k === i + offset ? 1 - eps : 0) + eps / c) * v, 0);
  }, 0) / logits.length;
};
/** clip-rocket's sinkhorn_knopp, multiplicative form, one process. */
const sinkhornRef = (s: M, eps: number, iters: number): M => {
  const b = s.length;
  const k = s[0]!.length;
  let q = s[0]!.map((_, j) => s.map((r) => Math.exp(r[j]! / eps))); // [K, B]
  const total = q.flat().reduce((a, v) => a + v, 0);
  q = q.map((r) => r.map((v) => v / total));
  for (let it = 0; it < iters; it++) {
    q = q.map((r) => {
      const sum = r.reduce((a, v) => a + v, 0);
      return r.map((v) => v / sum / k);
    });
    const colSums = q[0]!.map((_, j) => q.reduce((a, r) => a + r[j]!, 0));
    q = q.map((r) => r.map((v, j) => v / colSums[j]! / b));
  }
  return q[0]!.map((_, i) => q.map((r) => r[i]! * b)); // back to [B, K]
};
const softCe = (logits: M, targets: M) => -logits.reduce((s, r, i) => s + logSoftmaxRow(r).reduce((a, v, k) => a + targets[i]![k]! * v, 0), 0) / logits.length;

function seeded(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
}
const randM = (rows: number, cols: number, rnd: () => number): M => Array.from({ length: rows }, () => Array.from({ length: cols }, rnd));
const T = (m: M) => tf.tensor2d(m);
const val = (t: Tensor) => t.dataSync()[0]!;

/** clip-rocket's CL2LLoss on one process, in plain numbers. */
function cl2lRef(zi: M, zt: M, hi: M[], ht: M[], s: number, hs: number, eps: number, sum: boolean) {
  const [nzi, nzt] = [norm(zi), norm(zt)];
  const [nhi, nht] = [hi.map(norm), ht.map(norm)];
  const gImg = ce(scale(mmT(nzi, nzt), s));
  const gTxt = ce(scale(mmT(nzt, nzi), s));
  const a = hi.length;
  let lImg = 0;
  let lTxt = 0;
  if (a > 0) {
    const img: number[] = [];
    const txt: number[] = [];
    for (let i = 0; i < a; i++) {
      for (const h of nhi) img.push(ce(scale(mmT(h, nht[i]!), hs), eps));
      for (const h of nht) txt.push(ce(scale(mmT(h, nhi[i]!), hs), eps));
    }
    lImg = img.reduce((x, y) => x + y, 0) / img.length;
    lTxt = txt.reduce((x, y) => x + y, 0) / txt.length;
  }
  const clip = ((gImg + lImg * a) / (1 + a) + (gTxt + lTxt * a) / (1 + a)) / 2;
  return { loss: clip * (sum ? 2 : 1), gImg, gTxt, lImg, lTxt };
}

function inputs(seed: number, b = 4, d = 3, views = 2) {
  const rnd = seeded(seed);
  return {
    zi: randM(b, d, rnd),
    zt: randM(b, d, rnd),
    hi: Array.from({ length: views }, () => randM(b, d + 1, rnd)),
    ht: Array.from({ length: views }, () => randM(b, d + 1, rnd)),
  };
}

function outputsOf(x: ReturnType<typeof inputs>, s: number, hs: number) {
  return {
    zImageGlobal: T(x.zi),
    zTextGlobal: T(x.zt),
    hImageLocal: x.hi.map(T),
    hTextLocal: x.ht.map(T),
    logitScale: tf.scalar(s),
    hLogitScale: tf.scalar(hs),
  };
}

describe('detach', () => {
  it('passes the value and stops the gradient', () => {
    const x = tf.tensor1d([1, 2, 3]);
    expect(Array.from(detach(x).dataSync())).toEqual([1, 2, 3]);
    const g = tf.grad((v: Tensor) => tf.sum(tf.add(tf.mul(detach(v), v), detach(tf.square(v)))))(x);
    // d/dv [sg(v)·v + sg(v²)] = sg(v) = v
    expect(Array.from(g.dataSync())).toEqual([1, 2, 3]);
  });
});

describe('CL2L loss', () => {
  it('equals clip-rocket\'s formula with two views, label smoothing and sum', () => {
    const x = inputs(1);
    const terms = cl2lLoss(outputsOf(x, 14.3, 10), { labelSmoothing: 0.1, lossAvgOrSum: 'sum' });
    const ref = cl2lRef(x.zi, x.zt, x.hi, x.ht, 14.3, 10, 0.1, true);
    expect(val(terms.loss)).toBeCloseTo(ref.loss, 5);
    expect(val(terms.clipLossImageGlobal)).toBeCloseTo(ref.gImg, 5);
    expect(val(terms.clipLossTextGlobal)).toBeCloseTo(ref.gTxt, 5);
    expect(val(terms.clipLossImageLocal!)).toBeCloseTo(ref.lImg, 5);
    expect(val(terms.clipLossTextLocal!)).toBeCloseTo(ref.lTxt, 5);
    disposeTerms(terms);
  });

  it('with --num-augs 0 is CLIP\'s symmetric InfoNCE (no smoothing on the global terms)', () => {
    const x = inputs(2, 5, 4, 0);
    const terms = cl2lLoss(outputsOf(x, 7, 10), { labelSmoothing: 0.1 });
    const nzi = norm(x.zi);
    const nzt = norm(x.zt);
    const clip = (ce(scale(mmT(nzi, nzt), 7)) + ce(scale(mmT(nzt, nzi), 7))) / 2;
    expect(val(terms.loss)).toBeCloseTo(clip, 5);
    expect(terms.clipLossImageLocal).toBeNull();
    disposeTerms(terms);
  });

  it('under DDP scores local rows against gathered columns with labels offset by rank', () => {
    const x = inputs(3, 2, 3, 1);
    const other = inputs(4, 2, 3, 1);
    const g = (a: M, b: M) => T(norm([...a, ...b])); // rank 1's gathered = [rank 0; rank 1]
    const terms = cl2lLoss(outputsOf(x, 5, 8), {
      rank: 1,
      gathered: { zImageGlobal: g(other.zi, x.zi), zTextGlobal: g(other.zt, x.zt), hImageLocal: [g(other.hi[0]!, x.hi[0]!)], hTextLocal: [g(other.ht[0]!, x.ht[0]!)] },
    });
    const gImg = ce(scale(mmT(norm(x.zi), norm([...other.zt, ...x.zt])), 5), 0, 2);
    expect(val(terms.clipLossImageGlobal)).toBeCloseTo(gImg, 5);
    const lTxt = ce(scale(mmT(norm(x.ht[0]!), norm([...other.hi[0]!, ...x.hi[0]!])), 8), 0, 2);
    expect(val(terms.clipLossTextLocal!)).toBeCloseTo(lTxt, 5);
    disposeTerms(terms);
  });

  it('has the gradient of the reference formula (finite differences)', () => {
    const x = inputs(5, 3, 3, 2);
    const f = (zi: Tensor) => cl2lLoss({ ...outputsOf(x, 6, 9), zImageGlobal: zi }, { labelSmoothing: 0.1 }).loss;
    const g = tf.grad(f)(T(x.zi)).arraySync() as M;
    const h = 1e-3;
    for (const [i, j] of [[0, 0], [1, 2], [2, 1]] as const) {
      const plus = x.zi.map((r) => [...r]);
      const minus = x.zi.map((r) => [...r]);
      plus[i]![j]! += h;
      minus[i]![j]! -= h;
      const fd = (cl2lRef(plus, x.zt, x.hi, x.ht, 6, 9, 0.1, false).loss - cl2lRef(minus, x.zt, x.hi, x.ht, 6, 9, 0.1, false).loss) / (2 * h);
      expect(g[i]![j]!).toBeCloseTo(fd, 3);
    }
  });

  it('refuses unequal view counts', () => {
    const x = inputs(6);
    expect(() => cl2lLoss({ ...outputsOf(x, 1, 1), hTextLocal: [T(x.ht[0]!)] })).toThrow(/as many caption views/);
  });
});

describe('BarLIP', () => {
  it('Barlow Twins objective on a hand example', () => {
    // C = [[0.5, 0.2], [-0.1, 1]]: (1−0.5)² + 0 + λ(0.04 + 0.01)
    const got = val(barlowTwinsObjective(tf.tensor2d([[0.5, 0.2], [-0.1, 1]]), 5e-3, 0.025));
    expect(got).toBeCloseTo(0.025 * (0.25 + 5e-3 * 0.05), 8);
  });

  it('averages the global pair and every local pair, added to CL2L', () => {
    const x = inputs(7, 4, 3, 2);
    const rnd = seeded(70);
    const v = { vImage: randM(4, 5, rnd), vText: randM(4, 5, rnd), vImageLocal: [randM(4, 5, rnd), randM(4, 5, rnd)], vTextLocal: [randM(4, 5, rnd), randM(4, 5, rnd)] };
    const terms = barlipLoss({ ...outputsOf(x, 5, 10), vImage: T(v.vImage), vText: T(v.vText), vImageLocal: v.vImageLocal.map(T), vTextLocal: v.vTextLocal.map(T) }, { labelSmoothing: 0.1 });
    const bt = (a: M, b: M) => {
      const n = a.length;
      const c = a[0]!.map((_, i) => b[0]!.map((_, j) => a.reduce((s, r, k) => s + r[i]! * b[k]![j]!, 0) / n));
      return 0.025 * c.reduce((s, r, i) => s + r.reduce((t, val2, j) => t + (i === j ? (1 - val2) ** 2 : 5e-3 * val2 * val2), 0), 0);
    };
    const pairs = [bt(v.vImage, v.vText)];
    for (const a of v.vImageLocal) for (const b of v.vTextLocal) pairs.push(bt(a, b));
    const expected = pairs.reduce((s, p) => s + p, 0) / pairs.length;
    expect(val(terms.barlipLoss)).toBeCloseTo(expected, 5);
    expect(val(terms.loss)).toBeCloseTo(expected + cl2lRef(x.zi, x.zt, x.hi, x.ht, 5, 10, 0.1, false).loss, 5);
    disposeTerms(terms);
  });
});

describe('SiamLIP', () => {
  it('negative cosine is 2 − 2·mean cos, with no gradient into the target', () => {
    const p = [[1, 0], [0, 2]];
    const v = [[1, 1], [0, -1]];
    expect(val(negativeCosine(T(p), T(v)))).toBeCloseTo(2 - 2 * ((1 / Math.SQRT2 + -1) / 2), 6);
    const gv = tf.grad((vt: Tensor) => negativeCosine(T(p), vt))(T(v));
    expect(Math.max(...Array.from(gv.dataSync()).map(Math.abs))).toBe(0);
  });

  it('averages cross-modal terms over the global pair both ways and every local pair both ways', () => {
    const x = inputs(8, 3, 3, 2);
    const rnd = seeded(80);
    const mk = () => randM(3, 4, rnd);
    const o = { pImage: mk(), pText: mk(), pImageLocal: [mk(), mk()], pTextLocal: [mk(), mk()], vImage: mk(), vText: mk(), vImageLocal: [mk(), mk()], vTextLocal: [mk(), mk()] };
    const terms = siamlipLoss({
      ...outputsOf(x, 5, 10),
      pImage: T(o.pImage), pText: T(o.pText), pImageLocal: o.pImageLocal.map(T), pTextLocal: o.pTextLocal.map(T),
      vImage: T(o.vImage), vText: T(o.vText), vImageLocal: o.vImageLocal.map(T), vTextLocal: o.vTextLocal.map(T),
    });
    const d = (p: M, v: M) => {
      const np = norm(p);
      const nv = norm(v);
      return 2 - 2 * np.reduce((s, r, i) => s + r.reduce((t, a, k) => t + a * nv[i]![k]!, 0), 0) / p.length;
    };
    const t = [d(o.pImage, o.vText), d(o.pText, o.vImage)];
    for (const p of o.pImageLocal) for (const v of o.vTextLocal) t.push(d(p, v));
    for (const p of o.pTextLocal) for (const v of o.vImageLocal) t.push(d(p, v));
    expect(t).toHaveLength(10); // clip-rocket's "sum/10" with two views
    expect(val(terms.siamlipLoss)).toBeCloseTo(t.reduce((s, v) => s + v, 0) / 10, 5);
    disposeTerms(terms);
  });
});

describe('SwALIP', () => {
  it('equals clip-rocket\'s swapped prediction with Sinkhorn codes', () => {
    const x = inputs(9, 4, 3, 2);
    const terms = swalipLoss(outputsOf(x, 5, 10));
    const hi = x.hi.map(norm);
    const ht = x.ht.map(norm);
    const img = hi.map((h) => ht.map((all) => mmT(h, all)));
    const txt = ht.map((h) => hi.map((all) => mmT(h, all)));
    let s = 0;
    for (let l1 = 0; l1 < 2; l1++) {
      for (let l2 = 0; l2 < 2; l2++) {
        s += (softCe(scale(img[l1]![l2]!, 10), sinkhornRef(img[1 - l1]![1 - l2]!, 0.05, 3)) + softCe(scale(txt[l1]![l2]!, 10), sinkhornRef(txt[1 - l1]![1 - l2]!, 0.05, 3))) / 2;
      }
    }
    expect(val(terms.swalipLoss)).toBeCloseTo(s / 4, 4);
    expect(val(terms.loss)).toBeCloseTo(0.2 * (s / 4) + cl2lRef(x.zi, x.zt, x.hi, x.ht, 5, 10, 0, false).loss, 4);
    disposeTerms(terms);
  });

  it('refuses label smoothing and view counts other than two', () => {
    const x = inputs(10, 3, 3, 2);
    expect(() => swalipLoss(outputsOf(x, 1, 1), { labelSmoothing: 0.1 })).toThrow(/label-smoothing 0/);
    const y = inputs(11, 3, 3, 1);
    expect(() => swalipLoss(outputsOf(y, 1, 1))).toThrow(/num-augs 2/);
  });

  it('SwALIPV1: CLIP + weight × swapped prediction of the other modality\'s codes', () => {
    const rnd = seeded(12);
    const zi = randM(4, 3, rnd);
    const zt = randM(4, 3, rnd);
    const pi = randM(4, 6, rnd);
    const pt = randM(4, 6, rnd);
    const out = swalipV1Loss({ zImage: T(zi), zText: T(zt), logitScale: tf.scalar(3), pImage: T(pi), pText: T(pt), swalipLogitScale: tf.scalar(10) });
    const clip = (ce(scale(mmT(norm(zi), norm(zt)), 3)) + ce(scale(mmT(norm(zt), norm(zi)), 3))) / 2;
    const swa = (softCe(scale(pi, 10), sinkhornRef(pt, 0.05, 3)) + softCe(scale(pt, 10), sinkhornRef(pi, 0.05, 3))) / 2;
    expect(val(out.swalipLoss)).toBeCloseTo(swa, 4);
    expect(val(out.loss)).toBeCloseTo(clip + 0.2 * swa, 4);
  });
});

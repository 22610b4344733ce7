import { tf, type Tensor } from '../../core/tf.js';
import * as F from '../../core/nn/functional.js';
import { MisconfigurationError } from '../../core/errors.js';
import { sinkhorn } from '../losses/distillation.js';

/**
 * The losses of clip-rocket (Fini et al. 2023, "Improved baselines for vision-language
 * pre-training"): CL2L (CLIP + label-smoothed local-view terms) and the non-contrastive
 * baselines built on it — SiamLIP/BYOLIP, BarLIP, SwALIP — and SwALIPV1 on plain CLIP.
 *
 * Every function takes this rank's (un-normalised) embeddings. Under DDP, clip-rocket
 * all-gathers the embeddings WITHOUT gradient and scores local rows against the gathered
 * columns with labels `rank·B + arange(B)`; pass those gathered tensors as `gathered` and
 * the rank. On one process clip-rocket's gather returns its input itself, so the columns
 * carry gradient too: leaving `gathered` out reproduces exactly that.
 */

/** Stops the gradient (PyTorch's `.detach()`): the value of `x`, a zero gradient. */
export function detach(x: Tensor): Tensor {
  const f = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const v = args[0] as Tensor;
    return { value: tf.clone(v), gradFunc: (dy: Tensor) => tf.zerosLike(dy) };
  });
  return f(x) as Tensor;
}

/** What CL2L's model returns for one batch (clip-rocket's `outputs` dict). */
export interface Cl2lOutputs {
  /** Global image / text embeddings `[B, D]` (the zero-shot heads). */
  zImageGlobal: Tensor;
  zTextGlobal: Tensor;
  /** One `[B, D']` embedding per local image view / strong caption (`--num-augs` each). */
  hImageLocal: Tensor[];
  hTextLocal: Tensor[];
  /** exp of the global logit scale, and of the local one (`--separate-proj`; else the same). */
  logitScale: Tensor;
  hLogitScale: Tensor;
}

/** Normalised embeddings of other ranks too, gathered without gradient (DDP only). */
export interface Cl2lGathered {
  zImageGlobal: Tensor;
  zTextGlobal: Tensor;
  hImageLocal: Tensor[];
  hTextLocal: Tensor[];
}

export interface Cl2lLossOptions {
  /** `--loss-avg-or-sum`: 'sum' doubles the loss (clip-rocket's recipe uses it). */
  lossAvgOrSum?: 'avg' | 'sum';
  /** `--label-smoothing` of the local terms only (0.1 in the recipe). */
  labelSmoothing?: number;
  rank?: number;
  gathered?: Cl2lGathered;
}

/** The terms of the CL2L loss (all scalars; `loss` is what is minimised). */
export interface Cl2lLossTerms {
  loss: Tensor;
  clipLoss: Tensor;
  clipLossImageGlobal: Tensor;
  clipLossTextGlobal: Tensor;
  clipLossImageLocal: Tensor | null;
  clipLossTextLocal: Tensor | null;
  /** Global image→text logits `[B, world·B]`, for the accuracy metric. */
  imageGlobalLogits: Tensor;
}

function labelsFor(n: number, rank: number): Tensor {
  return tf.range(rank * n, rank * n + n, 1, 'int32');
}

/**
 * CL2L: with normalised embeddings, global terms G_img = CE(s·z_I·Z_Tᵀ), G_txt = CE(s·z_T·Z_Iᵀ);
 * local terms = the mean over all (view a, view b) pairs of label-smoothed
 * CE(h·h_a·H_bᵀ) per side; per side (G + A·L)/(1 + A) with A = `--num-augs`; the two sides
 * averaged; ×2 with `sum`. `--num-augs 0` is CLIP's symmetric InfoNCE.
 */
export function cl2lLoss(out: Cl2lOutputs, options: Cl2lLossOptions = {}): Cl2lLossTerms {
  const a = out.hImageLocal.length;
  if (a !== out.hTextLocal.length) {
    throw new MisconfigurationError(`CL2L needs as many caption views as image views, got ${out.hTextLocal.length} and ${a}.`);
  }
  const smoothing = options.labelSmoothing ?? 0;
  const sumMode = (options.lossAvgOrSum ?? 'avg') === 'sum';
  let tidied!: { loss: Tensor; clipLoss: Tensor; gImg: Tensor; gTxt: Tensor; lImg: Tensor | null; lTxt: Tensor | null; imageGlobalLogits: Tensor };
  // tf.tidy cannot return nulls: keep what the caller gets, release the rest.
  tf.tidy(() => {
    const zi = F.normalize(out.zImageGlobal);
    const zt = F.normalize(out.zTextGlobal);
    const hi = out.hImageLocal.map((h) => F.normalize(h));
    const ht = out.hTextLocal.map((h) => F.normalize(h));
    const g = options.gathered;
    const ziAll = g?.zImageGlobal ?? zi;
    const ztAll = g?.zTextGlobal ?? zt;
    const hiAll = g?.hImageLocal ?? hi;
    const htAll = g?.hTextLocal ?? ht;
    const labels = labelsFor(zi.shape[0]!, options.rank ?? 0);
    const imageGlobalLogits = tf.mul(tf.matMul(zi, ztAll, false, true), out.logitScale);
    const textGlobalLogits = tf.mul(tf.matMul(zt, ziAll, false, true), out.logitScale);
    const gImg = F.crossEntropy(imageGlobalLogits, labels);
    const gTxt = F.crossEntropy(textGlobalLogits, labels);
    let lImg: Tensor | null = null;
    let lTxt: Tensor | null = null;
    if (a > 0) {
      const ceLocal = (h: Tensor, all: Tensor) => F.crossEntropy(tf.mul(tf.matMul(h, all, false, true), out.hLogitScale), labels, { labelSmoothing: smoothing });
      const imgTerms: Tensor[] = [];
      const txtTerms: Tensor[] = [];
      for (let b = 0; b < a; b++) {
        for (const h of hi) imgTerms.push(ceLocal(h, htAll[b]!));
        for (const h of ht) txtTerms.push(ceLocal(h, hiAll[b]!));
      }
      lImg = tf.div(tf.addN(imgTerms), imgTerms.length);
      lTxt = tf.div(tf.addN(txtTerms), txtTerms.length);
    }
    const side = (gl: Tensor, lo: Tensor | null) => (lo ? tf.div(tf.add(gl, tf.mul(lo, a)), 1 + a) : gl);
    const clipLoss = tf.div(tf.add(side(gImg, lImg), side(gTxt, lTxt)), 2);
    const loss = sumMode ? tf.mul(clipLoss, 2) : clipLoss;
    tidied = { loss, clipLoss, gImg, gTxt, lImg, lTxt, imageGlobalLogits };
    for (const t of Object.values(tidied)) if (t) tf.keep(t);
  });
  return {
    loss: tidied.loss,
    clipLoss: tidied.clipLoss,
    clipLossImageGlobal: tidied.gImg,
    clipLossTextGlobal: tidied.gTxt,
    clipLossImageLocal: tidied.lImg,
    clipLossTextLocal: tidied.lTxt,
    imageGlobalLogits: tidied.imageGlobalLogits,
  };
}

/** Releases every tensor of a terms object. */
export function disposeTerms(terms: object): void {
  for (const v of Object.values(terms)) if (v && typeof (v as Tensor).dispose === 'function') (v as Tensor).dispose();
}

/** Cross-correlation `z1ᵀ·z2 / N` of two `[N, D]` batches (BarLIP's C before any all-reduce). */
export function crossCorrelation(z1: Tensor, z2: Tensor): Tensor {
  return tf.tidy(() => tf.div(tf.matMul(z1, z2, true, false), z1.shape[0]!));
}

/**
 * Barlow Twins' objective on a correlation matrix C `[D, D]`:
 * `scale · [Σ_i (1 − C_ii)² + λ·Σ_{i≠j} C_ij²]` (λ 5e-3, scale 0.025 in clip-rocket).
 */
export function barlowTwinsObjective(corr: Tensor, lambda = 5e-3, scale = 0.025): Tensor {
  return tf.tidy(() => {
    const d = corr.shape[0]!;
    const eye = tf.eye(d);
    const sq = tf.square(tf.sub(corr, eye));
    const weights = tf.add(eye, tf.mul(tf.sub(1, eye), lambda));
    return tf.mul(tf.sum(tf.mul(sq, weights)), scale);
  });
}

export interface BarlipOutputs extends Cl2lOutputs {
  /** BarLIP projections of the global image/caption and of each local view. */
  vImage: Tensor;
  vText: Tensor;
  vImageLocal: Tensor[];
  vTextLocal: Tensor[];
}

export interface BarlipOptions extends Cl2lLossOptions {
  lambda?: number;
  scale?: number;
}

/**
 * BarLIP: Barlow Twins between the image and caption projections — the global pair and
 * every (local image view, local caption view) pair, averaged — added to the CL2L loss.
 * On one process C is the batch's correlation; under DDP clip-rocket all-reduces C to the
 * mean over ranks (the caller reduces and passes `barlowTwinsObjective` itself).
 */
export function barlipLoss(out: BarlipOutputs, options: BarlipOptions = {}): Cl2lLossTerms & { barlipLoss: Tensor } {
  const clip = cl2lLoss(out, options);
  const barlip = tf.tidy(() => {
    const term = (x: Tensor, y: Tensor) => barlowTwinsObjective(crossCorrelation(x, y), options.lambda, options.scale);
    const terms = [term(out.vImage, out.vText)];
    for (const vi of out.vImageLocal) for (const vt of out.vTextLocal) terms.push(term(vi, vt));
    return tf.div(tf.addN(terms), terms.length);
  });
  const loss = tf.add(barlip, clip.loss);
  clip.loss.dispose();
  return { ...clip, loss, barlipLoss: barlip };
}

/** SimSiam's `2 − 2·mean cos(p, stopgrad(v))`. */
export function negativeCosine(p: Tensor, v: Tensor): Tensor {
  return tf.tidy(() => tf.sub(2, tf.mul(2, tf.mean(tf.sum(tf.mul(F.normalize(p), detach(F.normalize(v))), 1)))));
}

export interface SiamlipOutputs extends Cl2lOutputs {
  /** Predictor outputs of the global image/caption and of each local view. */
  pImage: Tensor;
  pText: Tensor;
  pImageLocal: Tensor[];
  pTextLocal: Tensor[];
  /** Projector outputs (targets); for BYOLIP those of the momentum model. */
  vImage: Tensor;
  vText: Tensor;
  vImageLocal: Tensor[];
  vTextLocal: Tensor[];
}

/**
 * SiamLIP (and BYOLIP, whose targets `v*` come from the momentum model): cross-modal
 * SimSiam — each image prediction against each caption target and vice versa (global pair
 * both ways, every (local a, local b) pair both ways), averaged over those terms, plus CL2L.
 */
export function siamlipLoss(out: SiamlipOutputs, options: Cl2lLossOptions = {}): Cl2lLossTerms & { siamlipLoss: Tensor } {
  const clip = cl2lLoss(out, options);
  const siam = tf.tidy(() => {
    const terms = [negativeCosine(out.pImage, out.vText), negativeCosine(out.pText, out.vImage)];
    for (const p of out.pImageLocal) for (const v of out.vTextLocal) terms.push(negativeCosine(p, v));
    for (const p of out.pTextLocal) for (const v of out.vImageLocal) terms.push(negativeCosine(p, v));
    return tf.div(tf.addN(terms), terms.length);
  });
  const loss = tf.add(siam, clip.loss);
  clip.loss.dispose();
  return { ...clip, loss, siamlipLoss: siam };
}

/** `−mean_i Σ_k targets_ik · log_softmax(logits)_ik` (SwAV's swapped-prediction term). */
export function softTargetCrossEntropy(logits: Tensor, targets: Tensor): Tensor {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1))));
}

export interface SwalipOptions extends Cl2lLossOptions {
  /** Sinkhorn iterations (`--sk-iters`, 3) and entropy ε (`--target-epsilon`, 0.05). */
  sinkhornIterations?: number;
  epsilon?: number;
  /** `--swalip-weight` (0.2). */
  weight?: number;
}

/**
 * SwALIP on CL2L's two local views: S^I_ab = h_I,a · H_T,bᵀ (and S^T_ab for captions);
 * Sinkhorn codes of each (no gradient) with the other modality's gathered samples as the
 * prototypes; each view pair (a, b) predicts the codes of the swapped pair (1−a, 1−b) with
 * the local logit scale; summed over pairs and sides, /2 per pair and /A²; total
 * CL2L + weight·SwALIP. clip-rocket's loop is written for exactly two views and requires
 * `--label-smoothing 0`.
 */
export function swalipLoss(out: Cl2lOutputs, options: SwalipOptions = {}): Cl2lLossTerms & { swalipLoss: Tensor } {
  if ((options.labelSmoothing ?? 0) !== 0) throw new MisconfigurationError('SwALIP requires `--label-smoothing 0` (as clip-rocket asserts).');
  const a = out.hImageLocal.length;
  if (a !== 2 || out.hTextLocal.length !== 2) {
    throw new MisconfigurationError(`SwALIP needs \`--num-augs 2\` (its swapped prediction pairs view a with view 1−a), got ${a} image and ${out.hTextLocal.length} caption views.`);
  }
  const clip = cl2lLoss(out, options);
  const eps = options.epsilon ?? 0.05;
  const iters = options.sinkhornIterations ?? 3;
  const swa = tf.tidy(() => {
    const hi = out.hImageLocal.map((h) => F.normalize(h));
    const ht = out.hTextLocal.map((h) => F.normalize(h));
    const hiAll = options.gathered?.hImageLocal ?? hi;
    const htAll = options.gathered?.hTextLocal ?? ht;
    const img = hi.map((h) => htAll.map((all) => tf.matMul(h, all, false, true)));
    const txt = ht.map((h) => hiAll.map((all) => tf.matMul(h, all, false, true)));
    const codes = (s: Tensor) => sinkhorn(detach(s), eps, iters);
    const imgCodes = img.map((row) => row.map(codes));
    const txtCodes = txt.map((row) => row.map(codes));
    const terms: Tensor[] = [];
    for (let l1 = 0; l1 < 2; l1++) {
      for (let l2 = 0; l2 < 2; l2++) {
        const t1 = 1 - l1;
        const t2 = 1 - l2;
        terms.push(
          tf.div(
            tf.add(
              softTargetCrossEntropy(tf.mul(img[l1]![l2]!, out.hLogitScale), imgCodes[t1]![t2]!),
              softTargetCrossEntropy(tf.mul(txt[l1]![l2]!, out.hLogitScale), txtCodes[t1]![t2]!),
            ),
            2,
          ),
        );
      }
    }
    return tf.div(tf.addN(terms), a * a);
  });
  const loss = tf.add(tf.mul(swa, options.weight ?? 0.2), clip.loss);
  clip.loss.dispose();
  return { ...clip, loss, swalipLoss: swa };
}

export interface SwalipV1Outputs {
  /** CLIP's global embeddings (the online CLIP term). */
  zImage: Tensor;
  zText: Tensor;
  logitScale: Tensor;
  /** Prototype scores `[B, K]` of the image and the caption (weight-normalised prototypes). */
  pImage: Tensor;
  pText: Tensor;
  /** exp of the SwALIP logit scale (1/temperature; 10 by default, frozen unless learnt). */
  swalipLogitScale: Tensor;
  /** Momentum-model prototype scores, when a momentum model is used. */
  pImageMomentum?: Tensor;
  pTextMomentum?: Tensor;
}

/**
 * SwALIPV1 on plain CLIP: Sinkhorn codes of each modality's prototype scores (momentum
 * model's when given), each modality predicting the other's codes at the SwALIP scale,
 * averaged over the two; total CLIP + weight·SwALIP.
 */
export function swalipV1Loss(out: SwalipV1Outputs, options: { weight?: number; epsilon?: number; sinkhornIterations?: number; rank?: number; gathered?: { zImage: Tensor; zText: Tensor } } = {}): { loss: Tensor; clipLoss: Tensor; swalipLoss: Tensor } {
  return tf.tidy(() => {
    const zi = F.normalize(out.zImage);
    const zt = F.normalize(out.zText);
    const labels = labelsFor(zi.shape[0]!, options.rank ?? 0);
    const li = tf.mul(tf.matMul(zi, options.gathered?.zText ?? zt, false, true), out.logitScale);
    const lt = tf.mul(tf.matMul(zt, options.gathered?.zImage ?? zi, false, true), out.logitScale);
    const clipLoss = tf.div(tf.add(F.crossEntropy(li, labels), F.crossEntropy(lt, labels)), 2);
    const eps = options.epsilon ?? 0.05;
    const iters = options.sinkhornIterations ?? 3;
    const imageAssign = sinkhorn(detach(out.pImageMomentum ?? out.pImage), eps, iters);
    const textAssign = sinkhorn(detach(out.pTextMomentum ?? out.pText), eps, iters);
    const swa = tf.div(
      tf.add(
        softTargetCrossEntropy(tf.mul(out.pImage, out.swalipLogitScale), textAssign),
        softTargetCrossEntropy(tf.mul(out.pText, out.swalipLogitScale), imageAssign),
      ),
      2,
    );
    return { loss: tf.add(tf.mul(swa, options.weight ?? 0.2), clipLoss), clipLoss, swalipLoss: swa };
  });
}

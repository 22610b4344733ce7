/**
 * Fused operations with exact gradients (tf.customGrad). On `lightclip-cpu` each runs as one
 * native kernel forward and one backward; on any other backend the same function computes the
 * unfused composition of tf ops, so callers (modules/, core/optim) need no backend checks.
 */
import type { GradSaveFunc, Tensor, Variable } from '@tensorflow/tfjs';

import { tf } from '../tf.js';
import { loadAddon } from './addon.js';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { FusedKernelName, GeluKindCode } from './kernels_fused.js';
import { bufferPool } from './pool.js';

const NATIVE = 'lightclip-cpu';

/** True when the active backend is the native one (fused kernels available). */
export function nativeActive(): boolean {
  return tf.getBackend() === NATIVE;
}

type Grad = { value: Tensor; gradFunc: (dy: Tensor, saved: Tensor[]) => Tensor | Tensor[] };
// tf.customGrad's declared parameter type is variadic Tensor|GradSaveFunc; this is what it calls.
type CustomFn = (...args: (Tensor | GradSaveFunc)[]) => Grad;

function run(name: string, inputs: Record<string, Tensor>, attrs: Record<string, number | boolean> = {}): Tensor[] {
  const out = tf.engine().runKernel(name, inputs, attrs);
  return Array.isArray(out) ? out : [out];
}

/** Reference LayerNorm over the last axis from tf ops (also the fallback). */
export function layerNormComposed(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(gamma).add(beta);
  });
}

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  if (!nativeActive()) return layerNormComposed(x, gamma, beta, eps);
  const f = tf.customGrad(((xi: Tensor, g: Tensor, b: Tensor, save: GradSaveFunc): Grad => {
    const [y, mean, rstd] = run(FusedKernelName.LayerNorm, { x: xi, gamma: g, beta: b }, { eps });
    save([xi, g, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sg, sm, sr] = saved;
        return run(FusedKernelName.LayerNormGrad, { x: sx, dy, gamma: sg, mean: sm, rstd: sr });
      },
    };
  }) as CustomFn);
  return f(x, gamma, beta);
}

/** GELU variants: exact (erf), tanh approximation, and CLIP's QuickGELU x*sigmoid(1.702x). */
export type GeluKind = keyof typeof GeluKindCode;

/** Reference GELU from tf ops (also the fallback). */
export function geluComposed(x: Tensor, kind: GeluKind = 'erf'): Tensor {
  return tf.tidy(() => {
    if (kind === 'quick') return x.mul(tf.sigmoid(x.mul(1.702)));
    if (kind === 'tanh') {
      const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
      return x.mul(0.5).mul(tf.tanh(inner).add(1));
    }
    return x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1));
  });
}

/** GELU (default exact/erf) or QuickGELU (`'quick'`), one native kernel each way. */
export function gelu(x: Tensor, kind: GeluKind = 'erf'): Tensor {
  if (!nativeActive()) return geluComposed(x, kind);
  const code = GeluKindCode[kind];
  const f = tf.customGrad(((xi: Tensor, save: GradSaveFunc): Grad => {
    save([xi]);
    return {
      value: run(FusedKernelName.Gelu, { x: xi }, { kind: code })[0],
      gradFunc: (dy, [sx]) => run(FusedKernelName.GeluGrad, { x: sx, dy }, { kind: code })[0],
    };
  }) as CustomFn);
  return f(x);
}

/** Reference softmax(scale * x) over the last axis (also the fallback). */
export function softmaxComposed(x: Tensor, scale = 1, log = false): Tensor {
  return tf.tidy(() => {
    const s = scale === 1 ? x : x.mul(scale);
    return log ? tf.logSoftmax(s) : tf.softmax(s);
  });
}

/**
 * softmax(scale * x) (or log-softmax with `log`) over the last axis: the attention softmax with
 * its 1/sqrt(d) folded in. Masks (-inf entries) give exact zeros.
 */
export function scaledSoftmax(x: Tensor, scale = 1, log = false): Tensor {
  if (!nativeActive()) return softmaxComposed(x, scale, log);
  const f = tf.customGrad(((xi: Tensor, save: GradSaveFunc): Grad => {
    const y = run(FusedKernelName.Softmax, { x: xi }, { scale, log })[0];
    save([y]);
    return {
      value: y,
      gradFunc: (dy, [sy]) => {
        if (!log) return run(FusedKernelName.SoftmaxGrad, { y: sy, dy }, { scale })[0];
        // d/dx log_softmax(sx) = s * (dy - softmax * sum(dy))
        return tf.tidy(() => dy.sub(tf.exp(sy).mul(dy.sum(-1, true))).mul(scale));
      },
    };
  }) as CustomFn);
  return f(x);
}

/** What {@link batchNormTrain} returns: the output and the batch statistics per channel. */
export interface BatchNormResult {
  y: Tensor;
  /** Batch mean per channel `[C]` (no gradient flows back through it). */
  mean: Tensor;
  /** Biased batch variance per channel `[C]` (no gradient flows back through it). */
  variance: Tensor;
}

/** Reference {@link batchNormTrain} from tf ops (also the fallback), as core/nn's BatchNorm computes it. */
export function batchNormComposed(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): BatchNormResult {
  return tf.tidy(() => {
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    let scale = tf.rsqrt(tf.add(variance, eps));
    if (gamma) scale = tf.mul(scale, gamma);
    let shift = tf.neg(tf.mul(mean, scale));
    if (beta) shift = tf.add(shift, beta);
    return { y: tf.add(tf.mul(x, scale), shift), mean, variance };
  });
}

/**
 * Training-mode batch normalisation over every axis but the last (channels-last, as
 * core/nn's BatchNorm): `y = (x - mean) / sqrt(var + eps) * gamma + beta` with the batch's
 * mean and biased variance. On `lightclip-cpu` one native kernel each way (statistics and
 * output in three passes over x; the gradient in two), where the composition saves half a
 * dozen full-size intermediates for backprop. Running statistics are the caller's business.
 */
export function batchNormTrain(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): BatchNormResult {
  if (!nativeActive() || x.rank === 0 || !gamma || !beta) return batchNormComposed(x, gamma, beta, eps);
  let stats: Tensor[] = [];
  const f = tf.customGrad(((xi: Tensor, g: Tensor, b: Tensor, save: GradSaveFunc): Grad => {
    const [y, mean, variance] = run(FusedKernelName.BatchNorm, { x: xi, gamma: g, beta: b }, { eps });
    save([xi, g, mean, variance]);
    // tfjs runs this function inside a tidy that frees whatever it does not return
    stats = [tf.keep(mean), tf.keep(variance)];
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sg, sm, sv] = saved;
        return run(FusedKernelName.BatchNormGrad, { x: sx, dy, gamma: sg, mean: sm, variance: sv }, { eps });
      },
    };
  }) as CustomFn);
  const y = f(x, gamma, beta);
  // clones (shared data) belong to the caller's scope like any op output; the kept originals go
  const out = { y, mean: tf.clone(stats[0]!), variance: tf.clone(stats[1]!) };
  tf.dispose(stats);
  return out;
}

/** Reference {@link splitHeads} from tf ops (also the fallback): reshape, transpose, slices. */
export function splitHeadsComposed(qkv: Tensor, heads: number): [Tensor, Tensor, Tensor] {
  return tf.tidy(() => {
    const [b, l, e3] = qkv.shape;
    const d = e3 / (3 * heads);
    const packed = tf.transpose(tf.reshape(qkv, [b, l, 3, heads, d]), [2, 0, 3, 1, 4]);
    const part = (i: number): Tensor => tf.reshape(tf.slice(packed, [i, 0, 0, 0, 0], [1, b, heads, l, d]), [b, heads, l, d]);
    return [part(0), part(1), part(2)];
  });
}

let splitHeadsGradRegistered = false;

/**
 * Attention heads from a packed projection: `qkv` [B, L, 3·H·d] (x·in_proj_weightᵀ + bias,
 * q, k, v stacked on the last axis) → q, k, v, each [B, H, L, d]. On `lightclip-cpu` one
 * kernel makes the three copies and the gradient is one kernel writing the three head
 * gradients back into [B, L, 3·H·d]; the composed form's gradient (three zero-padded copies of
 * the whole projection and two full-size additions) cost about as much as the attention
 * matmuls in a ViT-B/32 step.
 */
export function splitHeads(qkv: Tensor, heads: number): [Tensor, Tensor, Tensor] {
  if (!nativeActive() || qkv.rank !== 3 || (qkv.shape[2] ?? 0) % (3 * heads) !== 0) return splitHeadsComposed(qkv, heads);
  if (!splitHeadsGradRegistered) {
    // a kernel with three outputs cannot go through tf.customGrad (one output only), so its
    // gradient is registered with tfjs like a built-in kernel's (tfjs passes all three dys)
    tf.registerGradient({
      kernelName: FusedKernelName.SplitHeads,
      gradFunc: (dys: Tensor | Tensor[]) => {
        const [q, k, v] = dys as Tensor[];
        return { x: () => run(FusedKernelName.MergeHeads, { q, k, v })[0] };
      },
    });
    splitHeadsGradRegistered = true;
  }
  const [q, k, v] = run(FusedKernelName.SplitHeads, { x: qkv }, { heads });
  return [q, k, v];
}

/** AdamW hyper-parameters of one step (`step` counts from 1). */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

/** One parameter's optimiser slots. */
export interface AdamWSlot {
  param: Variable;
  grad: Tensor;
  m: Variable;
  v: Variable;
}

/**
 * The Float32Array of a variable, made private to it first when another tensor shares it or
 * when its array was read out (dataSync hands out the array itself: an earlier reading held
 * by the caller must keep its values, as it does when tfjs replaces a variable's data).
 */
function ownedValues(backend: MathBackendCPU, v: Variable): Float32Array | null {
  const data = backend.data.get(v.dataId);
  if (!(data.values instanceof Float32Array)) return null;
  if (backend.refCount(v.dataId) > 1 || data.values.byteLength !== data.values.buffer.byteLength || bufferPool.wasReadOut(data.values)) {
    // tf.variable(t) and clones share storage with t: copy, or the update would change t too
    const fresh = tf.tensor(Float32Array.from(data.values), v.shape, 'float32');
    v.assign(fresh);
    fresh.dispose(); // the variable now holds the only reference
    const own = backend.data.get(v.dataId).values;
    return own instanceof Float32Array && backend.refCount(v.dataId) === 1 ? own : null;
  }
  return data.values;
}

/**
 * One AdamW step (PyTorch's formulation: p *= 1 - lr*wd, then the bias-corrected Adam update)
 * over every slot. On `lightclip-cpu` the parameters and moments are updated in place in their
 * buffers by one native pass each; elsewhere, with tf ops and `assign`.
 */
export function adamwStep(slots: AdamWSlot[], h: AdamWHyper): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const addon = nativeActive() ? loadAddon() : null;
  // tfjs hands back its KernelBackend base type; on 'lightclip-cpu' it is our MathBackendCPU subclass
  const backend = addon ? (tf.backend() as MathBackendCPU) : null;
  for (const s of slots) {
    if (addon && backend) {
      const g = backend.data.get(s.grad.dataId).values;
      const p = ownedValues(backend, s.param);
      const m = ownedValues(backend, s.m);
      const v = ownedValues(backend, s.v);
      if (p && m && v && g instanceof Float32Array) {
        addon.adamw(p, g, m, v, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, bc1, bc2);
        continue;
      }
    }
    tf.tidy(() => {
      const m = s.m.mul(h.beta1).add(s.grad.mul(1 - h.beta1));
      const v = s.v.mul(h.beta2).add(s.grad.square().mul(1 - h.beta2));
      const denom = v.sqrt().div(Math.sqrt(bc2)).add(h.eps);
      const p = s.param.mul(1 - h.lr * h.weightDecay).sub(m.div(denom).mul(h.lr / bc1));
      s.m.assign(m);
      s.v.assign(v);
      s.param.assign(p);
    });
  }
}

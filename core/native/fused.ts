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

/** The Float32Array of a variable, made private to it first when another tensor shares it. */
function ownedValues(backend: MathBackendCPU, v: Variable): Float32Array | null {
  const data = backend.data.get(v.dataId);
  if (!(data.values instanceof Float32Array)) return null;
  if (backend.refCount(v.dataId) > 1) {
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

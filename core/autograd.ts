import { tf, type Tensor } from './tf.js';
import type { Parameter } from './nn/module.js';

/**
 * tfjs records gradients only inside a function it runs (no retained graph as in
 * PyTorch), so lightclip's `backward` takes the loss *function*: it runs `lossFn`,
 * differentiates it with respect to every parameter that requires grad, and adds the
 * result to each `param.grad`. Returns the loss value (caller disposes it).
 *
 * A vector–Jacobian product (gradient caching) is the same call with the scalar
 * `sum(output * upstream)`.
 */
export function backward(params: readonly Parameter[], lossFn: () => Tensor, scale = 1): Tensor {
  const trainable = params.filter((p) => p.requiresGrad);
  if (trainable.length === 0) {
    return tf.tidy(() => lossFn());
  }
  const { value, grads } = tf.variableGrads(() => {
    const loss = lossFn();
    if (loss.rank !== 0) throw new Error(`backward() needs a scalar loss, got shape [${loss.shape.join(', ')}]`);
    return (scale === 1 ? loss : tf.mul(loss, scale)) as tf.Scalar;
  }, trainable.map((p) => p.variable));
  for (const p of trainable) {
    const g = grads[p.variable.name];
    if (g) p.accumulateGrad(g);
  }
  if (scale === 1) return value;
  const unscaled = tf.div(value, scale);
  value.dispose();
  return unscaled;
}

/** One op recorded by tfjs's tape (the fields of tfjs-core's `TapeNode` lightclip reads). */
interface TapeNode {
  kernelName: string;
  inputs: Record<string, Tensor>;
  outputs: Tensor[];
  saved?: Tensor[];
  gradient?: (dys: Array<Tensor | null>) => Record<string, () => Tensor>;
}

/** The engine state the tape lives in (tfjs-core 4.x `EngineState`). */
interface TapeState {
  gradientDepth: number;
  activeTape: TapeNode[] | null;
}

function engineState(): TapeState {
  return (tf.engine() as unknown as { state: TapeState }).state;
}

/**
 * A forward pass whose graph outlives the call, so it can be differentiated after an
 * `await` (an all-gather) without running the forward again. PyTorch keeps the graph of
 * any tensor; tfjs keeps one only inside `tf.grad`-style calls, which cannot await. This
 * opens tfjs's tape around `forward`, detaches it from the engine when `forward` returns
 * (so nothing run while awaiting is recorded) and back-propagates it in {@link backward}.
 *
 * Call `backward` or `dispose` exactly once: the tape holds the tensors the gradients need.
 */
export class RecordedForward {
  private tape: TapeNode[] | null;

  private constructor(
    readonly outputs: Tensor[],
    tape: TapeNode[],
  ) {
    this.tape = tape;
  }

  /** Runs `forward` on a detached tape; its outputs are kept until `backward`/`dispose`. */
  static record(forward: () => Tensor[]): RecordedForward {
    const state = engineState();
    if (state.gradientDepth !== 0) throw new Error('RecordedForward.record() cannot run inside another gradient computation.');
    state.activeTape = [];
    state.gradientDepth = 1;
    let outputs: Tensor[];
    try {
      outputs = tf.tidy(forward);
    } finally {
      state.gradientDepth = 0;
    }
    const tape = state.activeTape ?? [];
    state.activeTape = null;
    return new RecordedForward(outputs, tape);
  }

  /**
   * The vector–Jacobian product: gradients of `Σ_k sum(outputs[k] · dys[k])` with respect to
   * each of `xs` (null where an x does not reach any output). Frees the tape and outputs.
   */
  backward(dys: Tensor[], xs: readonly Tensor[]): Array<Tensor | null> {
    const tape = this.tape;
    if (!tape) throw new Error('RecordedForward: backward() or dispose() was already called.');
    if (dys.length !== this.outputs.length) throw new Error(`RecordedForward: ${this.outputs.length} outputs, ${dys.length} upstream gradients.`);
    const found: boolean[] = [];
    try {
      const kept = tf.tidy(() => {
        // Tensors computed from some x: only their gradients are needed.
        const fromX = new Set(xs.map((x) => x.id));
        for (const node of tape) {
          if (Object.values(node.inputs).some((t) => fromX.has(t.id))) for (const o of node.outputs) fromX.add(o.id);
        }
        const grads = new Map<number, Tensor>();
        this.outputs.forEach((o, k) => {
          const prev = grads.get(o.id);
          grads.set(o.id, prev ? tf.add(prev, dys[k]!) : dys[k]!);
        });
        for (let i = tape.length - 1; i >= 0; i--) {
          const node = tape[i]!;
          const dy = node.outputs.map((o) => grads.get(o.id) ?? null);
          if (dy.every((d) => d === null)) continue;
          const wanted = Object.entries(node.inputs).filter(([, t]) => fromX.has(t.id));
          if (wanted.length === 0) continue;
          if (!node.gradient) throw new Error(`Cannot compute gradient: no gradient function for ${node.kernelName}.`);
          const inputGrads = node.gradient(dy);
          for (const [name, input] of wanted) {
            const f = inputGrads[name];
            if (!f) throw new Error(`Cannot compute gradient: ${node.kernelName} gives no gradient for its input ${name}.`);
            const dx = f();
            const prev = grads.get(input.id);
            grads.set(input.id, prev ? tf.add(prev, dx) : dx);
          }
        }
        const out: Tensor[] = [];
        for (const x of xs) {
          const g = grads.get(x.id);
          found.push(g !== undefined);
          if (g) out.push(tf.clone(g));
        }
        return out;
      });
      let k = 0;
      return found.map((f) => (f ? kept[k++]! : null));
    } finally {
      this.dispose();
    }
  }

  /** Frees the tape's saved tensors and the outputs without differentiating. */
  dispose(): void {
    if (!this.tape) return;
    for (const node of this.tape) for (const t of node.saved ?? []) t.dispose();
    this.tape = null;
    tf.dispose(this.outputs);
  }
}

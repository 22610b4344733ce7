import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { Module } from '../../../core/nn/module.js';
import { Linear } from '../../../core/nn/linear.js';
import { Embedding } from '../../../core/nn/embedding.js';
import { Dropout } from '../../../core/nn/dropout.js';
import { BatchNorm1d } from '../../../core/nn/norm.js';
import { defaultGenerator, seedEverything } from '../../../core/random.js';
import { Strategy } from '../../../core/strategy.js';
import { BertModel } from '../../../modules/text/bert.js';
import { parseHfTextConfig, type BertConfig } from '../../../modules/text/config.js';
import { CustomClipWrapper, type ImageEncoder, type TextEncoder } from '../../../modules/wrappers/customClipWrapper.js';
import { TINY_BERT } from '../text/fixtures.js';
import type { Trainer } from '../../../core/trainer.js';
import { ClipWrapper, type ContrastiveTowers } from '../../../modules/wrappers/clipWrapper.js';

/**
 * Rank 0 of two whose other rank holds the same batch: all-gather stacks the batch twice.
 * The global loss L([X; X]) is symmetric in the two copies, so rank 0's slice ×2 is its
 * full gradient, and averaging with an identical rank is the identity.
 */
class MirrorStrategy extends Strategy {
  gathers = 0;
  get name(): string {
    return 'mirror';
  }
  override get worldSize(): number {
    return 2;
  }
  override async allGather(t: Tensor): Promise<Tensor> {
    this.gathers++;
    await new Promise((r) => setTimeout(r, 1));
    return tf.stack([t, t]);
  }
}

/** Two towers with dropout (as BERT/RoBERTa text towers, p large so masks matter) or BatchNorm. */
class Towers extends Module implements ContrastiveTowers {
  readonly img1 = this.registerModule('img1', new Linear(12, 16));
  readonly img2 = this.registerModule('img2', new Linear(16, 8));
  readonly emb = this.registerModule('emb', new Embedding(20, 6));
  readonly txt = this.registerModule('txt', new Linear(6, 8));
  readonly drop = this.registerModule('drop', new Dropout(0.4));
  readonly bn: BatchNorm1d | null;
  constructor(readonly kind: 'dropout' | 'batchnorm') {
    super();
    this.bn = kind === 'batchnorm' ? this.registerModule('bn', new BatchNorm1d(16)) : null;
    this.registerParameter('logit_scale', tf.scalar(Math.log(1 / 0.07)));
  }
  encodeImage(images: Tensor): Tensor {
    return tf.tidy(() => {
      const h = this.img1.forward(tf.reshape(images, [images.shape[0]!, -1]));
      return this.img2.forward(this.bn ? this.bn.forward(h) : this.drop.forward(tf.relu(h)));
    });
  }
  encodeText(tokens: Tensor): Tensor {
    return tf.tidy(() => this.txt.forward(this.kind === 'dropout' ? this.drop.forward(tf.mean(this.emb.forward(tokens), 1)) : tf.mean(this.emb.forward(tokens), 1)));
  }
}

function batch(n: number) {
  return { images: tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', 11), texts: tf.randomUniform([n, 5], 0, 20, 'int32', 12) };
}

/** Symmetric InfoNCE written out here (not lightclip's), on L2-normalised features. */
function infoNce(zi: Tensor, zt: Tensor, logScale: Tensor): Tensor {
  const unit = (z: Tensor) => tf.div(z, tf.sqrt(tf.sum(tf.square(z), 1, true)));
  const logits = tf.mul(tf.matMul(unit(zi), unit(zt), false, true), tf.exp(logScale));
  const eye = tf.oneHot(tf.range(0, zi.shape[0]!, 1, 'int32'), zi.shape[0]!);
  const ce = (l: Tensor) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(l), eye), 1)));
  return tf.div(tf.add(ce(logits), ce(tf.transpose(logits))), 2);
}

/**
 * The reference: ONE tape over the batch loss, the towers run on consecutive chunks of
 * `size` (images first, then texts, as the cache pass draws them) — i.e. the full-batch
 * gradient for the dropout masks and BatchNorm chunks gradient caching uses.
 */
function reference(w: ClipWrapper, b: { images: Tensor; texts: Tensor }, size: number): Map<string, Float32Array> {
  const n = b.images.shape[0]!;
  const starts = Array.from({ length: Math.ceil(n / size) }, (_, i) => i * size);
  const named = w.namedParameters();
  const { value, grads } = tf.variableGrads(() => {
    const enc = (f: (x: Tensor) => Tensor, x: Tensor) => tf.concat(starts.map((s) => f(tf.slice(x, s, Math.min(size, n - s)))));
    const zi = enc((x) => w.model.encodeImage(x), b.images);
    const zt = enc((x) => w.model.encodeText(x), b.texts);
    return infoNce(zi, zt, w.logitScale.variable) as tf.Scalar;
  }, named.map(([, p]) => p.variable));
  // Parameters the loss does not use (a BERT pooler) have no gradient.
  const out = new Map(named.filter(([, p]) => grads[p.variable.name]).map(([name, p]) => [name, grads[p.variable.name]!.dataSync() as Float32Array]));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

function maxAbsDiff(w: ClipWrapper, ref: Map<string, Float32Array>): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (const [name, p] of w.namedParameters()) {
    const a = ref.get(name);
    if (!a) {
      expect(p.grad, name).toBeNull();
      continue;
    }
    const g = p.grad!.dataSync();
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(g[i]! - a[i]!));
      scale = Math.max(scale, Math.abs(a[i]!));
    }
  }
  return { diff, scale };
}

describe('exact gradient caching', () => {
  it('dropout towers: the cache and gradient passes draw the same masks, so the gradient is the full-batch one', async () => {
    seedEverything(1);
    const w = new ClipWrapper(new Towers('dropout'), { minibatchSize: 3 });
    w.train();
    const b = batch(7);
    seedEverything(42);
    const { loss, logits } = await w.computeGradients(b);
    const after = defaultGenerator.getState();
    seedEverything(42);
    const ref = reference(w, b, 3);
    // The stream continues as if the batch had been drawn once (not once per pass).
    expect(after).toEqual(defaultGenerator.getState());
    const { diff, scale } = maxAbsDiff(w, ref);
    expect(scale).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThan(1e-5 * Math.max(1, scale));
    tf.dispose([loss, logits, b.images, b.texts]);
  });

  it('batchnorm towers: chunk statistics (the documented difference), running statistics updated once per chunk', async () => {
    seedEverything(2);
    const w = new ClipWrapper(new Towers('batchnorm'), { minibatchSize: 4 });
    const refModel = new ClipWrapper(new Towers('batchnorm'));
    refModel.loadStateDict(w.stateDict());
    w.train();
    refModel.train();
    const b = batch(8);
    const { loss, logits } = await w.computeGradients(b);
    // Equal to one tape over BatchNorm batches of 4 (the chunks)...
    const chunked = reference(refModel, b, 4);
    const { diff, scale } = maxAbsDiff(w, chunked);
    expect(scale).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThan(1e-5 * Math.max(1, scale));
    // ...whose running statistics moved once per chunk: the cache pass left them alone.
    const bn = (x: ClipWrapper) => (x.model as Towers).bn!;
    expect(bn(w).numBatchesTracked!.dataSync()[0]).toBe(2);
    const rm = bn(w).runningMean!.dataSync();
    const rmRef = bn(refModel).runningMean!.dataSync();
    rmRef.forEach((v, i) => expect(rm[i]).toBeCloseTo(v, 6));
    expect(Math.max(...Array.from(rm).map(Math.abs))).toBeGreaterThan(1e-3);
    // ...and not to a BatchNorm batch of 8: that is the difference README and --help state.
    const full = reference(refModel, b, 8);
    expect(maxAbsDiff(w, full).diff).toBeGreaterThan(1e-4);
    tf.dispose([loss, logits, b.images, b.texts]);
  });
});

class FlatText extends Module implements TextEncoder {
  readonly emb = this.registerModule('emb', new Embedding(20, 6));
  forward(ids: Tensor, mask: Tensor): { lastHiddenState: Tensor } {
    return { lastHiddenState: tf.tidy(() => tf.mul(this.emb.forward(ids), tf.expandDims(tf.cast(mask, 'float32'), 2))) };
  }
}

class FlatImage extends Module implements ImageEncoder {
  readonly fc = this.registerModule('fc', new Linear(12, 10));
  forward(images: Tensor): Tensor {
    return tf.tidy(() => this.fc.forward(tf.reshape(images, [images.shape[0]!, -1])));
  }
}

describe('exact gradient caching with a BERT text tower (dropout 0.1 on hidden states and attention)', () => {
  it('CustomClipWrapper: the cached gradient is the batch gradient for the masks drawn', async () => {
    seedEverything(8);
    const w = new CustomClipWrapper(new FlatImage(), new BertModel(parseHfTextConfig(TINY_BERT) as BertConfig), { imageDim: 10, textDim: 16, embedDim: 8, minibatchSize: 2 });
    w.train();
    const n = 6;
    const images = tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', 21);
    // Token ids 1..19 with trailing padding (id 0) of different lengths.
    const ids = Array.from({ length: n }, (_, r) => Array.from({ length: 8 }, (_, c) => (c < 3 + r ? 1 + ((r * 7 + c * 3) % 19) : 0)));
    const texts = tf.tensor2d(ids, [n, 8], 'int32');
    seedEverything(99);
    const { loss, logits } = await w.computeGradients({ images, texts });
    seedEverything(99);
    const ref = reference(w, { images, texts }, 2);
    const { diff, scale } = maxAbsDiff(w, ref);
    expect(scale).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThan(1e-5 * Math.max(1, scale));
    tf.dispose([loss, logits, images, texts]);
  });
});

describe('ClipWrapper with features gathered from 2 ranks (in-process mirror)', () => {
  it('one recorded forward (no caching) and gradient caching both give the global-batch gradient, without leaks', async () => {
    for (const minibatchSize of [0, 3]) {
      seedEverything(5);
      const w = new ClipWrapper(new Towers('dropout'), { minibatchSize });
      w.eval(); // no dropout: the reference below runs the towers on the doubled batch
      const strategy = new MirrorStrategy();
      w.trainer = { strategy } as unknown as Trainer;
      const b = batch(6);
      const doubled = { images: tf.concat([b.images, b.images]), texts: tf.concat([b.texts, b.texts]) };
      const ref = reference(w, doubled, 12);
      const before = tf.memory().numTensors;
      const { loss, logits } = await w.computeGradients(b);
      expect(strategy.gathers).toBe(2);
      expect(logits.shape).toEqual([12, 12]);
      const { diff, scale } = maxAbsDiff(w, ref);
      expect(scale).toBeGreaterThan(1e-3);
      expect(diff, `minibatchSize ${minibatchSize}`).toBeLessThan(1e-5 * Math.max(1, scale));
      tf.dispose([loss, logits]);
      for (const p of w.parameters()) p.zeroGrad();
      expect(tf.memory().numTensors, `minibatchSize ${minibatchSize}: tensors left`).toBe(before);
      w.trainer = null;
      tf.dispose([b.images, b.texts, doubled.images, doubled.texts]);
    }
  });

  it('CustomClipWrapper with self-distillation: the recorded forward and gradient caching give the same gathered gradient', async () => {
    const make = (minibatchSize: number) =>
      new CustomClipWrapper(new FlatImage(), new FlatText(), {
        imageDim: 10, textDim: 6, embedDim: 8, avgWordEmbs: true, minibatchSize, selfDistillation: true,
        teacher: { imageEncoder: new FlatImage(), textEncoder: new FlatText() },
      });
    seedEverything(6);
    const a = make(0);
    const c = make(2);
    c.loadStateDict(a.stateDict());
    const b = batch(6);
    const texts = tf.add(tf.mod(b.texts, 19), 1); // no padding id 0
    const grads: Map<string, Float32Array>[] = [];
    for (const w of [a, c]) {
      w.train();
      w.trainer = { strategy: new MirrorStrategy() } as unknown as Trainer;
      const r = await w.computeGradients({ images: b.images, texts });
      tf.dispose([r.loss, r.logits]);
      grads.push(new Map(w.namedParameters().filter(([, p]) => p.grad).map(([n, p]) => [n, p.grad!.dataSync() as Float32Array])));
      w.trainer = null;
    }
    expect([...grads[0]!.keys()].sort()).toEqual([...grads[1]!.keys()].sort());
    expect(grads[0]!.has('sink_temp')).toBe(true);
    for (const [n, g] of grads[0]!) g.forEach((v, i) => expect(grads[1]!.get(n)![i], n).toBeCloseTo(v, 5));
    tf.dispose([b.images, b.texts, texts]);
  });
});

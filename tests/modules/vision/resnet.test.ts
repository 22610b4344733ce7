import { describe, expect, it } from 'vitest';
import { rawTensorsToTf } from '../../../core/checkpoint/safetensors.js';
import { backward } from '../../../core/autograd.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { ResNet, resnet18, resnet50 } from '../../../modules/vision/resnet.js';
import { expectClose } from '../../core/nn/helpers.js';
import { randomWeights, torchvisionBottleneckSpec } from './torchvisionSpec.js';

function shapesOf(sd: Record<string, Tensor>): Map<string, string> {
  return new Map(Object.entries(sd).map(([k, v]) => [k, v.shape.join('x')]));
}

describe('ResNet-50 has torchvision’s exact state dict', () => {
  it('matches every name and shape, with 161 parameter tensors and 25,557,032 parameters', () => {
    const model = resnet50();
    try {
      const spec = torchvisionBottleneckSpec([3, 4, 6, 3]);
      expect(spec.length).toBe(320);
      expect(shapesOf(model.stateDict())).toEqual(new Map(spec.map((e) => [e.name, e.shape.join('x')])));
      expect(model.namedParameters().length).toBe(161);
      expect(spec.filter((e) => e.kind === 'param').reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0)).toBe(25_557_032);
      expect(model.numParameters()).toBe(25_557_032);
      expect(model.numFeatures).toBe(2048);
    } finally {
      model.dispose();
    }
  });

  it('drops fc with numClasses 0 (a 2048-d feature extractor) and resizes it otherwise', () => {
    const features = resnet50({ numClasses: 0, width: 8 });
    const head = resnet50({ numClasses: 768, width: 8 });
    expect(features.fc).toBeNull();
    expect(Object.keys(features.stateDict()).some((k) => k.startsWith('fc.'))).toBe(false);
    expect(head.fc!.weight.shape).toEqual([768, 256]);
    features.dispose();
    head.dispose();
  });

  it('builds ResNet-18 with basic blocks (11,689,512 parameters, as torchvision)', () => {
    const m = resnet18();
    expect(m.numParameters()).toBe(11_689_512);
    expect(Object.keys(m.stateDict())).toContain('layer2.0.downsample.0.weight');
    expect(Object.keys(m.stateDict())).not.toContain('layer1.0.downsample.0.weight');
    expect(Object.keys(m.stateDict())).not.toContain('layer1.0.conv3.weight');
    m.dispose();
  });

  it('rejects bad options with MisconfigurationError', () => {
    expect(() => new ResNet({ layers: [3, 4, 6] as unknown as [number, number, number, number] })).toThrow(MisconfigurationError);
    expect(() => new ResNet({ numClasses: -1 })).toThrow(/`numClasses` must be an integer >= 0/);
    expect(() => new ResNet({ width: 0 })).toThrow(/`width`/);
  });
});

/** torchvision's forward written with plain tf ops and a JS max pool, over the same weights. */
function referenceForward(x: Tensor, w: Record<string, Tensor>, layers: number[]): Tensor {
  const conv = (h: Tensor, name: string, stride: number, pad: number): Tensor => {
    const padded = tf.pad(h, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) as tf.Tensor4D;
    return tf.conv2d(padded, tf.transpose(w[`${name}.weight`]!, [2, 3, 1, 0]) as tf.Tensor4D, stride, 'valid');
  };
  const bn = (h: Tensor, name: string): Tensor =>
    tf.add(tf.mul(tf.div(tf.sub(h, w[`${name}.running_mean`]!), tf.sqrt(tf.add(w[`${name}.running_var`]!, 1e-5))), w[`${name}.weight`]!), w[`${name}.bias`]!);
  const maxPool = (h: Tensor): Tensor => {
    const [b, hh, ww, c] = h.shape as number[] as [number, number, number, number];
    const src = h.dataSync();
    const oh = Math.floor((hh + 2 - 3) / 2) + 1;
    const ow = Math.floor((ww + 2 - 3) / 2) + 1;
    const out = new Float32Array(b * oh * ow * c).fill(-Infinity);
    for (let n = 0; n < b; n++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++)
          for (let ch = 0; ch < c; ch++)
            for (let di = 0; di < 3; di++)
              for (let dj = 0; dj < 3; dj++) {
                const y = i * 2 - 1 + di;
                const xx = j * 2 - 1 + dj;
                if (y < 0 || xx < 0 || y >= hh || xx >= ww) continue;
                const o = ((n * oh + i) * ow + j) * c + ch;
                out[o] = Math.max(out[o]!, src[((n * hh + y) * ww + xx) * c + ch]!);
              }
    return tf.tensor4d(out, [b, oh, ow, c]);
  };
  let h = maxPool(tf.relu(bn(conv(x, 'conv1', 2, 3), 'bn1')));
  layers.forEach((blocks, s) => {
    for (let i = 0; i < blocks; i++) {
      const p = `layer${s + 1}.${i}`;
      const stride = i === 0 && s > 0 ? 2 : 1;
      let o = tf.relu(bn(conv(h, `${p}.conv1`, 1, 0), `${p}.bn1`));
      o = tf.relu(bn(conv(o, `${p}.conv2`, stride, 1), `${p}.bn2`));
      o = bn(conv(o, `${p}.conv3`, 1, 0), `${p}.bn3`);
      const idn = i === 0 ? bn(conv(h, `${p}.downsample.0`, stride, 0), `${p}.downsample.1`) : h;
      h = tf.relu(tf.add(o, idn));
    }
  });
  const pooled = tf.mean(h, [1, 2]);
  return tf.add(tf.matMul(pooled, w['fc.weight']!, false, true), w['fc.bias']!);
}

describe('ResNet forward', () => {
  const layers = [2, 1, 1, 1];
  const spec = torchvisionBottleneckSpec(layers, 4, 5);

  it('matches an independent composition of torchvision’s ops in eval mode', () => {
    const model = new ResNet({ layers: [2, 1, 1, 1], width: 4, numClasses: 5 });
    const w = rawTensorsToTf(randomWeights(spec, 3));
    model.loadStateDict(w);
    model.eval();
    const x = tf.randomNormal([2, 21, 19, 3], 0, 1, 'float32', 7);
    const got = model.forward(x);
    const want = tf.tidy(() => referenceForward(x, w, layers));
    expect(got.shape).toEqual([2, 5]);
    expectClose(got, want, 1e-4);
    // Without fc: the pooled 128-d features, the same as the logits' input.
    const feats = model.forwardFeatures(x);
    expect(feats.shape).toEqual([2, 128]);
    expectClose(tf.add(tf.matMul(feats, w['fc.weight']!, false, true), w['fc.bias']!), got, 1e-4);
    [x, got, want, feats, ...Object.values(w)].forEach((t) => t.dispose());
    model.dispose();
  });

  it('trains: every parameter gets a gradient, BN statistics move', () => {
    const model = new ResNet({ layers: [1, 1, 1, 1], width: 4, numClasses: 3 });
    model.train();
    const x = tf.randomNormal([4, 16, 16, 3], 0, 1, 'float32', 11);
    const before = Array.from(model.bn1.runningMean!.dataSync());
    const loss = backward(model.parameters(), () => tf.mean(tf.square(model.forward(x))));
    expect(model.parameters().every((p) => p.grad !== null)).toBe(true);
    expect(Array.from(model.bn1.runningMean!.dataSync())).not.toEqual(before);
    loss.dispose();
    x.dispose();
    model.dispose();
  });
});

import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { AvgPool2d, Identity } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { AttentionPool2d, Bottleneck, ModifiedResNet } from '../../../modules/clip/index.js';
import { expectClose, fixture, perturb, refAttentionPool, refBottleneck, refModifiedResNet } from './helpers.js';

describe('Bottleneck', () => {
  it("names the shortcut downsample.0 (conv) and downsample.1 (bn), with a parameterless pool at '-1'", () => {
    const block = new Bottleneck(8, 4, 2);
    const keys = Object.keys(block.stateDict());
    expect(keys.filter((k) => k.startsWith('downsample.'))).toEqual([
      'downsample.0.weight', 'downsample.1.weight', 'downsample.1.bias',
      'downsample.1.running_mean', 'downsample.1.running_var', 'downsample.1.num_batches_tracked',
    ]);
    expect(block.downsample!.get(0)).toBeInstanceOf(AvgPool2d);
    expect(block.avgpool).toBeInstanceOf(AvgPool2d);
    expect(keys.some((k) => k.includes('bias') && k.includes('conv'))).toBe(false);
    // Same width, stride 1: no shortcut projection and no pool.
    const plain = new Bottleneck(16, 4, 1);
    expect(plain.downsample).toBeNull();
    expect(plain.avgpool).toBeInstanceOf(Identity);
  });

  it.each([
    ['stride 2 with downsample', 8, 4, 2],
    ['stride 1 with a width-changing downsample', 8, 4, 1],
    ['stride 1 identity shortcut', 16, 4, 1],
  ])('matches a hand composition in eval mode (%s)', (_, inplanes, planes, stride) => {
    seedEverything(4);
    const block = new Bottleneck(inplanes, planes, stride);
    perturb(block);
    block.eval();
    const x = fixture([2, 8, 8, inplanes], 5);
    const got = block.forward(x);
    const want = tf.tidy(() => refBottleneck(x, block.stateDict(), '', stride));
    expect(got.shape).toEqual([2, 8 / stride, 8 / stride, planes * 4]);
    expectClose(got, want, 1e-5);
  });

  it('pools before conv3/bn3 (training mode: batch statistics tell the order apart)', () => {
    seedEverything(4);
    const block = new Bottleneck(8, 4, 2);
    perturb(block);
    block.train();
    const x = fixture([2, 8, 8, 8], 5);
    const want = tf.tidy(() => refBottleneck(x, block.stateDict(), '', 2, true));
    expectClose(block.forward(x), want, 1e-4);
  });
});

describe('AttentionPool2d', () => {
  it("has OpenAI's names and shapes", () => {
    const pool = new AttentionPool2d(2, 16, 4, 6);
    expect(Object.entries(pool.stateDict()).map(([k, t]) => [k, t.shape])).toEqual([
      ['positional_embedding', [5, 16]],
      ['k_proj.weight', [16, 16]], ['k_proj.bias', [16]],
      ['q_proj.weight', [16, 16]], ['q_proj.bias', [16]],
      ['v_proj.weight', [16, 16]], ['v_proj.bias', [16]],
      ['c_proj.weight', [6, 16]], ['c_proj.bias', [6]],
    ]);
  });

  it('matches a hand composition (mean token as the only query, per-head loop)', () => {
    seedEverything(5);
    const pool = new AttentionPool2d(3, 16, 4, 6);
    perturb(pool, 0.3);
    const x = fixture([2, 3, 3, 16], 6);
    const got = pool.forward(x);
    const want = tf.tidy(() => refAttentionPool(x, pool.stateDict(), '', 4));
    expect(got.shape).toEqual([2, 6]);
    expectClose(got, want, 1e-5);
  });

  it('rejects head counts that do not divide the width', () => {
    expect(() => new AttentionPool2d(2, 16, 3)).toThrow(MisconfigurationError);
  });
});

describe('ModifiedResNet', () => {
  const opts = { layers: [1, 2, 1, 1] as const, width: 8, heads: 4, imageSize: 64, outputDim: 12 };

  it('matches a hand composition of stem, stages and attention pool (eval mode)', () => {
    seedEverything(6);
    const net = new ModifiedResNet(opts);
    perturb(net);
    net.eval();
    const images = fixture([2, 64, 64, 3], 8);
    const got = net.forward(images);
    const want = tf.tidy(() => refModifiedResNet(images, net.stateDict(), '', opts.layers, 4));
    expect(got.shape).toEqual([2, 12]);
    expectClose(got, want, 2e-5);
    // attnpool sees (64/32)² tokens plus the mean.
    expect(net.attnpool.positionalEmbedding.shape).toEqual([5, 256]);
    expect(net.blocks().length).toBe(5);
  });

  it('trains: BatchNorm running statistics move in training mode', () => {
    const net = new ModifiedResNet({ ...opts, imageSize: 32 });
    const rm = (net.stateDict()['bn1.running_mean']!).dataSync().slice();
    net.train();
    tf.tidy(() => net.forward(fixture([2, 32, 32, 3], 3)));
    const after = net.stateDict()['bn1.running_mean']!.dataSync();
    expect(Array.from(after)).not.toEqual(Array.from(rm));
  });

  it('rejects image sizes that are not a multiple of 32 and odd widths', () => {
    expect(() => new ModifiedResNet({ ...opts, imageSize: 48 })).toThrow(MisconfigurationError);
    expect(() => new ModifiedResNet({ ...opts, width: 7 })).toThrow(MisconfigurationError);
    expect(() => new ModifiedResNet(opts).forward(fixture([1, 32, 32, 3]))).toThrow(/\[B, 64, 64, 3\]/);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RawTensor } from '../../../core/checkpoint/dtypes.js';
import { writeSafetensors } from '../../../core/checkpoint/safetensors.js';
import { StateDictError } from '../../../core/nn/index.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { ResNet } from '../../../modules/vision/resnet.js';
import { readWeightsAsTensors } from '../../../modules/weights/readWeights.js';
import { loadTorchvisionResnet, torchvisionResnetToLightclip } from '../../../modules/weights/torchvisionResnet.js';
import { randomWeights, torchvisionBottleneckSpec } from '../vision/torchvisionSpec.js';
import { writeRawTorchZip } from './torchZip.js';

const dir = mkdtempSync(join(tmpdir(), 'lightclip-tv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A ResNet-50-shaped network ([3, 4, 6, 3] bottlenecks) at width 4 instead of 64: the same
// 320 state-dict names, 1/256 of the weights.
const LAYERS = [3, 4, 6, 3] as const;
const spec = torchvisionBottleneckSpec(LAYERS, 4, 10);
const raw = randomWeights(spec, 5);

function narrow(numClasses = 10): ResNet {
  return new ResNet({ layers: LAYERS, width: 4, numClasses });
}

function valuesOf(t: Tensor): number[] {
  return Array.from(t.dataSync());
}

function disposeAll(sd: Record<string, Tensor>): void {
  Object.values(sd).forEach((t) => t.dispose());
}

describe('loadTorchvisionResnet', () => {
  it('loads torchvision-named safetensors with all 320 keys matched and values copied', async () => {
    const file = join(dir, 'resnet.safetensors');
    await writeSafetensors(file, raw);
    const sd = await readWeightsAsTensors(file);
    const model = narrow();
    const report = loadTorchvisionResnet(model, sd);
    expect(report.loaded.length).toBe(320);
    expect(report.dropped).toEqual([]);
    expect(report.added).toEqual([]);
    const own = model.stateDict();
    for (const name of ['conv1.weight', 'layer3.5.bn3.running_var', 'layer4.0.downsample.0.weight', 'fc.bias']) {
      expect(valuesOf(own[name]!)).toEqual(Array.from(raw[name]!.data as Float32Array));
    }
    expect(valuesOf(own['layer2.1.bn2.num_batches_tracked']!)).toEqual([Number((raw['layer2.1.bn2.num_batches_tracked']!.data as BigInt64Array)[0])]);
    disposeAll(sd);
    model.dispose();
  });

  it('loads the same weights from a torch zip .bin identically', async () => {
    const file = join(dir, 'resnet.bin');
    writeRawTorchZip(file, raw);
    const sd = await readWeightsAsTensors(file);
    const model = narrow();
    expect(loadTorchvisionResnet(model, sd).loaded.length).toBe(320);
    expect(valuesOf(model.stateDict()['layer1.2.conv2.weight']!)).toEqual(Array.from(raw['layer1.2.conv2.weight']!.data as Float32Array));
    disposeAll(sd);
    model.dispose();
  });

  it('strips a DDP `module.` prefix and fills in num_batches_tracked of pre-0.4.1 checkpoints', async () => {
    const old: Record<string, RawTensor> = {};
    for (const [k, v] of Object.entries(raw)) if (!k.endsWith('num_batches_tracked')) old[`module.${k}`] = v;
    const file = join(dir, 'old.safetensors');
    await writeSafetensors(file, old);
    const sd = await readWeightsAsTensors(file);
    const mapped = torchvisionResnetToLightclip(sd);
    expect(mapped.strippedPrefix).toBe('module.');
    expect(mapped.added.length).toBe(53);
    mapped.added.forEach((k) => mapped.stateDict[k]!.dispose());
    const model = narrow();
    const report = loadTorchvisionResnet(model, sd);
    expect(report.added).toContain('bn1.num_batches_tracked');
    expect(valuesOf(model.stateDict()['bn1.num_batches_tracked']!)).toEqual([0]);
    disposeAll(sd);
    model.dispose();
  });

  it('takes the ResNet out of a larger checkpoint by the prefix before its stem conv', async () => {
    const mixed: Record<string, RawTensor> = { 'model.transformer.w': { dtype: 'F32', shape: [2], data: new Float32Array(2) } };
    for (const [k, v] of Object.entries(raw)) mixed[`model.visual.${k}`] = v;
    const file = join(dir, 'mixed.safetensors');
    await writeSafetensors(file, mixed);
    const sd = await readWeightsAsTensors(file);
    const model = narrow();
    const report = loadTorchvisionResnet(model, sd);
    expect(report.ignored).toEqual(['model.transformer.w']);
    expect(report.loaded.length).toBe(320);
    expect(valuesOf(model.fc!.bias!.variable)).toEqual(Array.from(raw['fc.bias']!.data as Float32Array));
    disposeAll(sd);
    model.dispose();
  });

  it("skips the classifier for a feature extractor or a replaced fc (train-CLIP's Linear(2048, 768))", () => {
    const sd = tf.tidy(() => Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, tf.tensor(v.dtype === 'I64' ? Int32Array.from(v.data as BigInt64Array, Number) : (v.data as Float32Array), [...v.shape], v.dtype === 'I64' ? 'int32' : 'float32')])));
    const features = narrow(0);
    expect(loadTorchvisionResnet(features, sd).dropped).toEqual(['fc.weight', 'fc.bias']);
    const replaced = narrow(7);
    const fcBefore = valuesOf(replaced.fc!.weight.variable);
    const report = loadTorchvisionResnet(replaced, sd);
    expect(report.dropped).toEqual(['fc.weight', 'fc.bias']);
    expect(valuesOf(replaced.fc!.weight.variable)).toEqual(fcBefore);
    expect(valuesOf(replaced.conv1.weight.variable)).toEqual(Array.from(raw['conv1.weight']!.data as Float32Array));
    disposeAll(sd);
    features.dispose();
    replaced.dispose();
  });

  it('reports missing, unexpected and mis-shaped keys by name', () => {
    const make = (): Record<string, Tensor> =>
      Object.fromEntries(spec.map((e) => [e.name, e.kind === 'counter' ? tf.scalar(0, 'int32') : tf.zeros(e.shape)]));
    const model = narrow();

    const missing = make();
    missing['layer3.2.bn2.running_var']!.dispose();
    delete missing['layer3.2.bn2.running_var'];
    const e1 = (() => {
      try {
        loadTorchvisionResnet(model, missing);
      } catch (e) {
        return e;
      }
    })();
    expect(e1).toBeInstanceOf(StateDictError);
    expect((e1 as StateDictError).missingKeys).toEqual(['layer3.2.bn2.running_var']);
    expect((e1 as Error).message).toContain('"layer3.2.bn2.running_var"');

    const extra = make();
    extra['layer5.0.conv1.weight'] = tf.zeros([1]);
    expect(() => loadTorchvisionResnet(model, extra)).toThrow(/unexpected key\(s\): "layer5\.0\.conv1\.weight"/);

    const wrong = make();
    wrong['layer2.0.conv2.weight']!.dispose();
    wrong['layer2.0.conv2.weight'] = tf.zeros([8, 8, 1, 1]);
    const e3 = (() => {
      try {
        loadTorchvisionResnet(model, wrong);
      } catch (e) {
        return e;
      }
    })();
    expect(e3).toBeInstanceOf(StateDictError);
    expect((e3 as StateDictError).shapeMismatches).toEqual(['layer2.0.conv2.weight: checkpoint [8, 8, 1, 1] vs model [8, 8, 3, 3]']);
    [missing, extra, wrong].forEach(disposeAll);
    model.dispose();
  });
});

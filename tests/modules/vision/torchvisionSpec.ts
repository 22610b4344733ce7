/**
 * torchvision's ResNet state dict (names, shapes, dtypes), written out from the architecture
 * rules of torchvision/models/resnet.py independently of lightclip's model, plus random
 * weights in that layout for load tests.
 */
import type { RawTensor } from '../../../core/checkpoint/dtypes.js';
import { Generator } from '../../../core/random.js';

export interface SpecEntry {
  name: string;
  shape: number[];
  kind: 'param' | 'buffer' | 'counter';
}

/** torchvision's `resnet.state_dict()` entries for bottleneck ResNets, in torchvision's order. */
export function torchvisionBottleneckSpec(layers: readonly number[], width = 64, numClasses = 1000): SpecEntry[] {
  const out: SpecEntry[] = [];
  const conv = (name: string, o: number, i: number, k: number): void => void out.push({ name: `${name}.weight`, shape: [o, i, k, k], kind: 'param' });
  const bn = (name: string, c: number): void => {
    out.push({ name: `${name}.weight`, shape: [c], kind: 'param' }, { name: `${name}.bias`, shape: [c], kind: 'param' });
    out.push({ name: `${name}.running_mean`, shape: [c], kind: 'buffer' }, { name: `${name}.running_var`, shape: [c], kind: 'buffer' });
    out.push({ name: `${name}.num_batches_tracked`, shape: [], kind: 'counter' });
  };
  conv('conv1', width, 3, 7);
  bn('bn1', width);
  let inplanes = width;
  layers.forEach((blocks, stage) => {
    const planes = width * 2 ** stage;
    for (let b = 0; b < blocks; b++) {
      const p = `layer${stage + 1}.${b}`;
      conv(`${p}.conv1`, planes, inplanes, 1);
      bn(`${p}.bn1`, planes);
      conv(`${p}.conv2`, planes, planes, 3);
      bn(`${p}.bn2`, planes);
      conv(`${p}.conv3`, planes * 4, planes, 1);
      bn(`${p}.bn3`, planes * 4);
      if (b === 0) {
        conv(`${p}.downsample.0`, planes * 4, inplanes, 1);
        bn(`${p}.downsample.1`, planes * 4);
      }
      inplanes = planes * 4;
    }
  });
  if (numClasses > 0) {
    out.push({ name: 'fc.weight', shape: [numClasses, inplanes], kind: 'param' }, { name: 'fc.bias', shape: [numClasses], kind: 'param' });
  }
  return out;
}

/** Random weights for a spec: N-ish(0, 0.1) params, positive running variances, int64 counters. */
export function randomWeights(spec: SpecEntry[], seed = 1): Record<string, RawTensor> {
  const g = new Generator(seed);
  const out: Record<string, RawTensor> = {};
  for (const e of spec) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (e.kind === 'counter') {
      out[e.name] = { dtype: 'I64', shape: e.shape, data: BigInt64Array.from([BigInt(g.randint(1000))]) };
    } else {
      const positive = e.name.endsWith('running_var') || (e.name.includes('bn') && e.name.endsWith('.weight')) || e.name.endsWith('downsample.1.weight');
      const data = Float32Array.from({ length: n }, () => (positive ? g.uniform(0.5, 1.5) : g.uniform(-0.3, 0.3)));
      out[e.name] = { dtype: 'F32', shape: e.shape, data };
    }
  }
  return out;
}

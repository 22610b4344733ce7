import { describe, expect, it } from 'vitest';
import { backward } from '../../../core/autograd.js';
import { BatchNorm1d, Dropout, LayerNorm, Linear, Module, ModuleList, StateDictError } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { expectClose, fixture, values } from './helpers.js';

class Block extends Module {
  readonly fc: Linear;
  readonly norm: LayerNorm;
  constructor(width: number) {
    super();
    this.fc = this.registerModule('fc', new Linear(width, width));
    this.norm = this.registerModule('norm', new LayerNorm(width));
  }
  forward(x: Tensor): Tensor {
    return tf.tidy(() => this.norm.forward(this.fc.forward(x)));
  }
}

class Encoder extends Module {
  readonly layers: ModuleList<Block>;
  readonly bn: BatchNorm1d;
  readonly drop = new Dropout(0.5);
  constructor(width = 3, depth = 2) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: depth }, () => new Block(width))));
    this.bn = this.registerModule('bn', new BatchNorm1d(width));
    this.registerModule('drop', this.drop);
  }
  forward(x: Tensor): Tensor {
    return tf.tidy(() => this.bn.forward([...this.layers].reduce((h, b) => b.forward(h), x)));
  }
}

class Model extends Module {
  readonly encoder: Encoder;
  constructor() {
    super();
    this.encoder = this.registerModule('encoder', new Encoder());
  }
}

const expectedKeys = [
  'encoder.layers.0.fc.weight',
  'encoder.layers.0.fc.bias',
  'encoder.layers.0.norm.weight',
  'encoder.layers.0.norm.bias',
  'encoder.layers.1.fc.weight',
  'encoder.layers.1.fc.bias',
  'encoder.layers.1.norm.weight',
  'encoder.layers.1.norm.bias',
  'encoder.bn.weight',
  'encoder.bn.bias',
  'encoder.bn.running_mean',
  'encoder.bn.running_var',
  'encoder.bn.num_batches_tracked',
];

describe('Module naming and state dicts', () => {
  it('names nested parameters and buffers with PyTorch dotted paths', () => {
    const m = new Model();
    expect(Object.keys(m.stateDict())).toEqual(expectedKeys);
    expect(m.namedParameters().map(([n]) => n)).toEqual(expectedKeys.slice(0, 10));
    expect(m.namedBuffers().map(([n]) => n)).toEqual(expectedKeys.slice(10));
    expect(m.stateDict()['encoder.layers.1.fc.weight']!.shape).toEqual([3, 3]);
    expect(m.numParameters()).toBe(2 * (9 + 3 + 3 + 3) + 6);
    m.dispose();
  });

  it('round-trips a state dict into a differently initialised model', () => {
    seedEverything(1);
    const a = new Model();
    seedEverything(2);
    const b = new Model();
    const x = fixture([4, 3]);
    const before = b.encoder.forward(x);
    // Different seeds really gave different weights, so the load below is observable.
    expect(values(before)).not.toEqual(values(a.encoder.forward(x)));
    const res = b.loadStateDict(a.stateDict());
    expect(res).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const [k, t] of Object.entries(a.stateDict())) expectClose(b.stateDict()[k]!, t, 0);
    a.eval();
    b.eval();
    expectClose(b.encoder.forward(x), a.encoder.forward(x), 0);
    // The copy is independent: changing a afterwards leaves b alone.
    a.encoder.layers.get(0).fc.weight.variable.assign(tf.zeros([3, 3]));
    expect(values(b.encoder.layers.get(0).fc.weight.variable).some((v) => v !== 0)).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('lists missing, unexpected and mis-shaped keys in one clear error', () => {
    const m = new Model();
    const sd = { ...m.stateDict() };
    delete sd['encoder.bn.running_var'];
    sd['encoder.extra.weight'] = tf.zeros([2]);
    sd['encoder.layers.0.fc.weight'] = tf.zeros([3, 4]);
    let err: unknown;
    try {
      m.loadStateDict(sd);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictError);
    const e = err as StateDictError;
    expect(e.missingKeys).toEqual(['encoder.bn.running_var']);
    expect(e.unexpectedKeys).toEqual(['encoder.extra.weight']);
    expect(e.shapeMismatches).toEqual(['encoder.layers.0.fc.weight: checkpoint [3, 4] vs model [3, 3]']);
    expect(e.message).toContain('Missing key(s): "encoder.bn.running_var"');
    expect(e.message).toContain('Unexpected key(s): "encoder.extra.weight"');
    expect(e.message).toContain('Size mismatch');
    m.dispose();
  });

  it('strict: false loads the matching keys and reports the rest, but still rejects wrong shapes', () => {
    const m = new Model();
    const partial = { 'encoder.bn.weight': tf.tensor([5, 6, 7]), 'other.bias': tf.zeros([1]) };
    const res = m.loadStateDict(partial, { strict: false });
    expect(res.unexpectedKeys).toEqual(['other.bias']);
    expect(res.missingKeys).toEqual(expectedKeys.filter((k) => k !== 'encoder.bn.weight'));
    expectClose(m.encoder.bn.weight!.variable, [5, 6, 7], 0);
    expect(() => m.loadStateDict({ 'encoder.bn.weight': tf.zeros([4]) }, { strict: false })).toThrow(StateDictError);
    m.dispose();
  });

  it('casts dtypes on load without leaking tensors', () => {
    const m = new Model();
    const sd = { ...m.stateDict(), 'encoder.bn.num_batches_tracked': tf.scalar(7, 'float32') };
    const n = tf.memory().numTensors;
    m.loadStateDict(sd);
    expect(tf.memory().numTensors).toBe(n);
    expect(m.encoder.bn.numBatchesTracked!.dtype).toBe('int32');
    expect(values(m.encoder.bn.numBatchesTracked!)).toEqual([7]);
    m.dispose();
  });

  it('loading its own state dict is a no-op (tfjs would free a variable assigned to itself)', () => {
    const m = new Model();
    const w = values(m.encoder.layers.get(1).fc.weight.variable);
    const n = tf.memory().numTensors;
    m.loadStateDict(m.stateDict());
    expect(tf.memory().numTensors).toBe(n);
    expect(values(m.encoder.layers.get(1).fc.weight.variable)).toEqual(w);
    m.dispose();
  });
});

describe('freezing, modes and shared modules', () => {
  it('frozen parameters get no gradient from backward', () => {
    const m = new Model();
    m.encoder.layers.get(0).requiresGrad(false);
    const x = fixture([4, 3]);
    const loss = backward(m.parameters(), () => tf.sum(tf.square(m.encoder.forward(x))));
    loss.dispose();
    for (const [name, p] of m.namedParameters()) {
      if (name.startsWith('encoder.layers.0.')) expect(p.grad, name).toBeNull();
      else {
        expect(p.grad, name).not.toBeNull();
        expect(p.grad!.shape).toEqual(p.shape);
      }
    }
    expect(m.numParameters(true)).toBe(m.numParameters() - 18);
    m.dispose();
  });

  it('train() and eval() switch every submodule', () => {
    const m = new Model();
    expect(m.namedModules().every(([, s]) => s.training)).toBe(true);
    m.eval();
    expect(m.namedModules().some(([, s]) => s.training)).toBe(false);
    const x = fixture([2, 3]);
    expectClose(m.encoder.drop.forward(x), x, 0);
    m.train();
    expect(m.encoder.drop.training).toBe(true);
    m.dispose();
  });

  it('lists a shared (tied) parameter once and accumulates its gradient once', () => {
    class Tied extends Module {
      readonly lin = new Linear(2, 2);
      constructor() {
        super();
        this.registerModule('a', this.lin);
        this.registerModule('b', this.lin);
      }
    }
    const m = new Tied();
    expect(m.namedParameters().map(([n]) => n)).toEqual(['a.weight', 'a.bias']);
    expect(Object.keys(m.stateDict())).toEqual(['a.weight', 'a.bias', 'b.weight', 'b.bias']);
    const x = fixture([3, 2]);
    backward(m.parameters(), () => tf.sum(m.lin.forward(x))).dispose();
    // d/dW sum(xWᵀ + b) = column sums of x for every row; d/db = batch size.
    const colSums = values(tf.sum(x, 0));
    expectClose(m.lin.weight.grad!, [...colSums, ...colSums]);
    expectClose(m.lin.bias!.grad!, [3, 3]);
    m.dispose();
  });
});

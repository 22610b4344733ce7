import { describe, expect, it } from 'vitest';
import { Linear, ModuleList, QuickGELU, ReLU, Sequential } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose, fixture } from './helpers.js';

describe('Sequential', () => {
  it('names children by position and chains them', () => {
    const a = new Linear(3, 4);
    const b = new Linear(4, 2);
    const seq = new Sequential(a, new ReLU(), b);
    expect(Object.keys(seq.stateDict())).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(seq.length).toBe(3);
    expect(seq.get(-1)).toBe(b);
    const x = fixture([5, 3]);
    expectClose(seq.forward(x), b.forward(tf.relu(a.forward(x))), 0);
    expect([...seq]).toHaveLength(3);
    expect(() => seq.get(3)).toThrow(RangeError);
  });

  it('keeps explicit names, as OpenAI CLIP mlp.c_fc / mlp.c_proj', () => {
    const mlp = new Sequential([
      ['c_fc', new Linear(2, 8)],
      ['gelu', new QuickGELU()],
      ['c_proj', new Linear(8, 2)],
    ]);
    expect(Object.keys(mlp.stateDict())).toEqual(['c_fc.weight', 'c_fc.bias', 'c_proj.weight', 'c_proj.bias']);
    expect(mlp.forward(fixture([1, 2])).shape).toEqual([1, 2]);
    expect(() => mlp.add('c_fc', new ReLU())).toThrow(/already has an attribute named "c_fc"/);
  });
});

describe('ModuleList', () => {
  it('registers items as "0", "1", ... and supports append/extend/iteration', () => {
    const list = new ModuleList([new Linear(2, 2)]);
    list.append(new Linear(2, 3)).extend([new Linear(3, 1)]);
    expect(list.length).toBe(3);
    expect(list.get(1).outFeatures).toBe(3);
    expect([...list].map((l) => l.outFeatures)).toEqual([2, 3, 1]);
    expect(list.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);
  });
});

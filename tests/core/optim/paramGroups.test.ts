import { afterEach, describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { Module, type Parameter } from '../../../core/nn/module.js';
import { AdamW, weightDecayParamGroups } from '../../../core/optim/index.js';
import { MisconfigurationError } from '../../../core/errors.js';

/** Parameters named and shaped as in OpenAI CLIP, registered flat for the test. */
class TinyClip extends Module {
  readonly byName = new Map<string, Parameter>();
  constructor() {
    super();
    const add = (path: string, shape: number[]): void => {
      // Registered through nested dummy modules so that names carry dots.
      const parts = path.split('.');
      let m: Module = this;
      for (const part of parts.slice(0, -1)) {
        const child = m.namedChildren().find(([n]) => n === part)?.[1] ?? new Holder();
        if (!m.namedChildren().some(([n]) => n === part)) (m as Holder | TinyClip).addModule(part, child);
        m = child;
      }
      this.byName.set(path, (m as Holder | TinyClip).addParam(parts[parts.length - 1], tf.zeros(shape)));
    };
    add('visual.conv1.weight', [4, 3, 2, 2]);
    add('visual.class_embedding', [4]);
    add('visual.positional_embedding', [5, 4]);
    add('visual.ln_pre.weight', [4]);
    add('visual.transformer.resblocks.0.attn.in_proj_weight', [12, 4]);
    add('visual.transformer.resblocks.0.attn.in_proj_bias', [12]);
    add('visual.bn1.weight', [4]);
    add('visual.proj', [4, 2]);
    add('ln_final.weight', [4]);
    add('text_projection', [4, 2]);
    add('logit_scale', []);
  }
  addParam(name: string, value: tf.Tensor): Parameter {
    return this.registerParameter(name, value);
  }
  addModule(name: string, m: Module): void {
    this.registerModule(name, m);
  }
}

class Holder extends Module {
  addParam(name: string, value: tf.Tensor): Parameter {
    return this.registerParameter(name, value);
  }
  addModule(name: string, m: Module): void {
    this.registerModule(name, m);
  }
}

const live: Array<{ dispose(): void }> = [];
afterEach(() => live.splice(0).forEach((x) => x.dispose()));

/** Names of `ps`, sorted (namedParameters() order follows the module tree, not this file). */
function names(model: TinyClip, ps: Parameter[]): string[] {
  return ps.map((p) => [...model.byName].find(([, q]) => q === p)?.[0] ?? '?').sort();
}

describe('weightDecayParamGroups', () => {
  it("applies open_clip's rule: no decay for ndim < 2, bn/ln/bias names and logit_scale", () => {
    const model = new TinyClip();
    live.push(model);
    const [decay, noDecay] = weightDecayParamGroups(model.namedParameters(), 0.2);
    expect(names(model, decay.params)).toEqual([
      'text_projection',
      'visual.conv1.weight',
      'visual.positional_embedding',
      'visual.proj',
      'visual.transformer.resblocks.0.attn.in_proj_weight',
    ]);
    expect(names(model, noDecay.params)).toEqual([
      'ln_final.weight',
      'logit_scale',
      'visual.bn1.weight',
      'visual.class_embedding',
      'visual.ln_pre.weight',
      'visual.transformer.resblocks.0.attn.in_proj_bias',
    ]);
    expect([decay.weightDecay, noDecay.weightDecay]).toEqual([0.2, 0]);
    expect('lr' in decay).toBe(false);
  });

  it('skips frozen parameters, takes a custom rule and an lr, and feeds an optimizer', () => {
    const model = new TinyClip();
    live.push(model);
    model.byName.get('visual.proj')!.requiresGrad = false;
    const groups = weightDecayParamGroups(model.namedParameters(), 0.1, { exclude: (name) => name.startsWith('visual.'), lr: 3e-4 });
    expect(names(model, groups[0].params)).toEqual(['ln_final.weight', 'logit_scale', 'text_projection']);
    expect(groups[1].params).toHaveLength(7); // 8 visual.* minus the frozen visual.proj
    const opt = new AdamW(groups, { lr: 1e-3 });
    live.push(opt);
    expect(opt.paramGroups.map((g) => [g.lr, g.weightDecay])).toEqual([[3e-4, 0.1], [3e-4, 0]]);
    expect(() => weightDecayParamGroups([], -1)).toThrow(MisconfigurationError);
  });

  it('checks a 2-D parameter by name as well as by shape', () => {
    const extra = new Holder();
    const p = extra.addParam('weight', tf.zeros([2, 2]));
    live.push(extra);
    const q = extra.addParam('logit_scale', tf.ones([1, 1]));
    const r = extra.addParam('c_fc_weight', tf.ones([2, 2]));
    const [decay, noDecay] = weightDecayParamGroups(
      [['blocks.0.ln_2.weight', p], ['text.logit_scale', q], ['mlp.c_fc.weight', r]],
      0.2,
    );
    const label = (x: Parameter): string => (x === p ? 'ln_2' : x === q ? 'logit_scale' : x === r ? 'c_fc' : '?');
    expect(noDecay.params.map(label)).toEqual(['ln_2', 'logit_scale']);
    expect(decay.params.map(label)).toEqual(['c_fc']);
  });
});

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCorenetConfig, translateCorenetArgv } from '../../../modules/corenet/config.js';

const YAML = `
taskname: 'test catlip'
_anchor_vocab: &v 100
common:
  grad_clip: 1.0
  mixed_precision: true
  seed: 5
dataset:
  name: "wordnet_tagged_classification"
  category: "classification"
  train_batch_size0: 32
  workers: 0
  wordnet_tagged_classification:
    vocab_size: *v
    vocab_file: "/tmp/vocab.pkl"
loss:
  category: "composite_loss"
  composite_loss:
    - loss_category: "classification"
      loss_weight: 1.0
      classification:
        name: "binary_cross_entropy"
        binary_cross_entropy:
          reduction: "batch_mean"
optim:
  name: "adamw"
  weight_decay: 0.2
  adamw: { beta1: 0.9, beta2: 0.999 }
scheduler:
  name: cosine
  max_iterations: 1000
  warmup_iterations: 10
  cosine: { max_lr: 0.001, min_lr: 0.00001 }
model:
  activation_checkpointing: true
  classification:
    name: "vit"
    n_classes: *v
    vit: { mode: "base" }
ema: { enable: true, momentum: 0.0005 }
`;

function write(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-corenet-cfg-'));
  const f = path.join(dir, 'c.yaml');
  fs.writeFileSync(f, text);
  return f;
}

const flagMap = (flags: string[]) => Object.fromEntries(Array.from({ length: flags.length / 2 }, (_, i) => [flags[2 * i]!, flags[2 * i + 1]!]));

describe('CoreNet config reader', () => {
  it('maps recipe keys to train.ts flags; anchors; no-effect keys noted', () => {
    const t = readCorenetConfig(write(YAML));
    const f = flagMap(t.flags);
    expect(f).toMatchObject({ '--model': 'catlip', '--vocab': '/tmp/vocab.pkl', '--vocab_size': '100', '--batch_size': '32', '--num_workers': '0', '--model_name': 'ViT-B/16', '--weight_decay': '0.2', '--max_steps': '1000', '--warmup_steps': '10', '--lr': '0.001', '--gradient_clip_val': '1', '--seed': '5' });
    expect(Number(f['--ema_decay'])).toBeCloseTo(0.9995, 10);
    expect(JSON.parse(f['--model_args']!)).toEqual({ minLr: 0.00001 });
    expect(t.notes.join('\n')).toMatch(/common.mixed_precision: no effect/);
    expect(t.notes.join('\n')).toMatch(/model.activation_checkpointing/);
  });

  it('override-kwargs win over the YAML, cast by the YAML type', () => {
    const f = flagMap(readCorenetConfig(write(YAML), ['scheduler.max_iterations=7', 'ema.enable=False', 'common.grad_clip=0.5']).flags);
    expect(f['--max_steps']).toBe('7');
    expect(f['--ema_decay']).toBe('0');
    expect(f['--gradient_clip_val']).toBe('0.5');
    expect(() => readCorenetConfig(write(YAML), ['a=b=c'])).toThrow(/one '='/);
  });

  it('names every unsupported key in one error', () => {
    const bad = YAML + `\nsampler:\n  name: variable_batch_sampler\nmodel_extra: 1\noptim2: {x: 1}\n`;
    let msg = '';
    try {
      readCorenetConfig(write(bad.replace('beta2: 0.999', 'beta2: 0.98')));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/4 CoreNet key\(s\) not supported/);
    expect(msg).toMatch(/optim.adamw.beta2: 0.98/);
    expect(msg).toMatch(/sampler.name/);
    expect(msg).toMatch(/model_extra/);
    expect(msg).toMatch(/optim2.x/);
    expect(() => readCorenetConfig(write(YAML.replace('wordnet_tagged_classification"', 'img_text_tar"')))).toThrow(/dataset.name: "img_text_tar"/);
  });

  it('translates argv: YAML after the user flags, then --ddp.* to the DDP launcher flags', () => {
    const f = write(YAML);
    const out = translateCorenetArgv(['--folder', 'data/', '--common.config-file', f, '--common.override-kwargs', 'scheduler.max_iterations=3', 'dataset.train_batch_size0=4', '--common.results-loc', 'res', '--ddp.rank', '2', '--ddp.world-size', '4', '--ddp.dist-url', 'tcp://10.0.0.1:30786'], () => {});
    expect(out.slice(0, 2)).toEqual(['--folder', 'data/']);
    const m = flagMap(out);
    expect(m).toMatchObject({ '--max_steps': '3', '--batch_size': '4', '--default_root_dir': 'res', '--strategy': 'ddp', '--num_nodes': '4', '--node_rank': '2', '--master_addr': '10.0.0.1', '--master_port': '30786' });
    const two = flagMap(translateCorenetArgv(['--devices', '2', '--ddp.rank', '2', '--ddp.world-size', '4'], () => {}));
    expect(two).toMatchObject({ '--num_nodes': '2', '--node_rank': '1' });
    expect(() => translateCorenetArgv(['--ddp.rank', '1', '--ddp.world-size', '4', '--devices', '2'])).toThrow(/multiple of --devices 2/);
    expect(() => translateCorenetArgv(['--ddp.backend', 'nccl'])).toThrow(/--ddp.backend: not supported/);
    expect(() => translateCorenetArgv(['--common.bogus', '1'])).toThrow(/--common.bogus/);
    expect(translateCorenetArgv(['--lr', '1'])).toEqual(['--lr', '1']);
  });
});

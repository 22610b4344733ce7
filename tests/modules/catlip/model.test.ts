import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { CatlipTransferModule } from '../../../modules/catlip/transfer.js';
import { bceWithLogitsBatchMean, CatlipModule, synsetClassifierColumns, synsetZeroShotPredict } from '../../../modules/catlip/model.js';
import { SynsetMiner } from '../../../modules/catlip/labeler.js';
import { SynsetVocabulary } from '../../../modules/catlip/vocabulary.js';
import { scanImageTextFolder } from '../../../datamodules/folderDataset.js';
import { ensureDemoData } from '../../../scripts/demoData.js';
import { main as train } from '../../../train.js';

describe('CatLIP loss', () => {
  it('BCE-with-logits: sum over classes, mean over the batch (hand values)', () => {
    const logits = tf.tensor2d([[0, 2], [-1, 3]]);
    const targets = tf.tensor2d([[1, 0], [0, 0]]);
    // ℓ(x, y) = log(1 + e^x) − x·y: log 2, log(1+e²), log(1+e^-1), log(1+e³)
    const expected = (Math.log(2) + Math.log(1 + Math.exp(2)) + Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.exp(3))) / 2;
    expect(bceWithLogitsBatchMean(logits, targets).dataSync()[0]).toBeCloseTo(expected, 5);
    // stable for large logits
    const big = bceWithLogitsBatchMean(tf.tensor2d([[200, -200]]), tf.tensor2d([[0, 1]])).dataSync()[0]!;
    expect(big).toBeCloseTo(400, 3);
  });

  it('all-zero targets still give a loss and a gradient', () => {
    const x = tf.variable(tf.tensor2d([[0.5, -0.5]]));
    const g = tf.grad((v: tf.Tensor) => bceWithLogitsBatchMean(v, tf.zeros([1, 2])))(x);
    // d/dx log(1+e^x) = σ(x)
    expect(Array.from(g.dataSync())).toEqual([expect.closeTo(1 / (1 + Math.exp(-0.5)), 5), expect.closeTo(1 / (1 + Math.exp(0.5)), 5)]);
  });
});

describe('CatLIP pre-training', () => {
  let root: string;
  let data: { train: string; zeroshot: string };
  let vocabFile: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-catlip-'));
    data = await ensureDemoData(path.join(root, 'data'), { trainImages: 64, zeroshotPerClass: 1 });
    const scan = await scanImageTextFolder(data.train, { log: null });
    const vocab = SynsetVocabulary.build(scan.pairs.flatMap((p) => p.captions), new SynsetMiner());
    vocabFile = path.join(root, 'vocab.pkl');
    vocab.write(vocabFile);
  });

  it('module: vocabulary-sized head, multi-hot targets from captions', () => {
    const m = new CatlipModule({ vocab: vocabFile, modelName: 'tiny-ViT' });
    const circle = m.vocab.indexOf('n13873502'); // circle.n.01 (index.noun: circle … 13873502; data: "circle 0 …")
    expect(circle).toBeDefined();
    const out = m.net.forward(tf.zeros([2, 32, 32, 3]));
    expect(out.shape).toEqual([2, m.vocab.size]);
    // other resolutions (multi-scale batches): positional table resized, gradients flow
    expect(m.net.forward(tf.zeros([1, 48, 24, 3])).shape).toEqual([1, m.vocab.size]);
    const { grads } = tf.variableGrads(() => tf.sum(m.net.forward(tf.ones([1, 16, 16, 3]))) as tf.Scalar, [m.net.positionalEmbedding.variable]);
    expect(Math.abs(tf.sum(tf.abs(Object.values(grads)[0]!)).dataSync()[0]!)).toBeGreaterThan(0);
    expect(() => m.net.forward(tf.zeros([1, 30, 32, 3]))).toThrow(/multiples of 8/);
    const { targets, empty } = m.targets(['a red circle', 'nothing here']);
    const t = targets.arraySync() as number[][];
    expect(t[0]![circle!]).toBe(1);
    expect(t[1]!.every((v) => v === 0)).toBe(true);
    expect(empty).toBe(1);
  });

  it('train.ts --model catlip --vocab: BCE goes down; head rows classify shapes by synset', async () => {
    const args = ['--model', 'catlip', '--vocab', vocabFile, '--model_name', 'tiny-ViT', '--folder', data.train, '--batch_size', '16', '--num_workers', '0', '--warmup_steps', '2', '--lr', '2e-3', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1', '--seed', '3'];
    const first = await train([...args, '--max_steps', '1']);
    const l0 = first!.callbackMetrics.train_loss as number;
    const trainer = await train([...args, '--max_steps', '60']);
    const l1 = trainer!.callbackMetrics.train_loss as number;
    console.log(`CatLIP tiny run: train_loss step 1 = ${l0.toFixed(3)}, step 60 = ${l1.toFixed(3)}`);
    expect(l0).toBeGreaterThan(0);
    expect(l1).toBeLessThan(0.5 * l0);
    expect(fs.readdirSync(path.join(trainer!.logDir, 'checkpoints'))).toContain('last.ckpt');
    const model = trainer!.lightningModule as unknown as CatlipModule;
    const { columns, missing } = synsetClassifierColumns(model.vocab, ['n13873502', 'n2121620']);
    expect(columns).toHaveLength(1);
    expect(missing).toEqual(['n2121620']); // cat: never in these captions
    const pred = synsetZeroShotPredict(tf.tensor2d([[0, 5, 1], [9, 0, 2]]), [1, 2]);
    expect(pred).toEqual([0, 1]);

    // Transfer: pre-trained tower, fresh head over the ImageFolder's classes.
    const ckpt = path.join(trainer!.logDir, 'checkpoints', 'last.ckpt');
    const classes = fs.readdirSync(data.zeroshot).filter((d) => fs.statSync(path.join(data.zeroshot, d)).isDirectory()).length;
    const t = await CatlipTransferModule.fromCatlipCheckpoint(ckpt, { numClasses: classes });
    expect(t.net.classifier.weight.variable.shape).toEqual([classes, 64]);
    const pre = model.net.stateDict();
    const post = t.net.stateDict();
    expect(Array.from(post['transformer.resblocks.0.attn.in_proj_weight']!.dataSync())).toEqual(Array.from(pre['transformer.resblocks.0.attn.in_proj_weight']!.dataSync()));
    expect(Array.from(post['conv1.weight']!.dataSync())).toEqual(Array.from(pre['conv1.weight']!.dataSync()));
    const ft = await train(['--model', 'catlip_transfer', '--init_from', ckpt, '--folder', data.zeroshot, '--val_folder', data.zeroshot, '--batch_size', '8', '--max_epochs', '8', '--lr', '2e-3', '--warmup_steps', '1', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1']);
    expect(ft!.callbackMetrics.val_acc).toBeGreaterThan(1 / classes);
    console.log(`CatLIP transfer on ${classes} classes: val_acc ${(ft!.callbackMetrics.val_acc as number).toFixed(3)} (train = val folder, smoke test)`);
    await expect(train(['--model', 'catlip_transfer', '--folder', data.zeroshot])).rejects.toThrow(/--init_from/);

    // The same pre-training from a CoreNet-style config (our own YAML) with override-kwargs.
    const yaml = path.join(root, 'catlip.yaml');
    fs.writeFileSync(yaml, ['dataset:', '  name: wordnet_tagged_classification', '  train_batch_size0: 8', '  workers: 0', '  wordnet_tagged_classification:', `    vocab_file: ${vocabFile}`, 'scheduler:', '  name: cosine', '  max_iterations: 100', '  warmup_iterations: 1', '  cosine: {max_lr: 0.001, min_lr: 0.00001}', 'ema: {enable: true, momentum: 0.0005}', 'common: {grad_clip: 1.0}', ''].join('\n'));
    const viaYaml = await train(['--model_name', 'tiny-ViT', '--folder', data.train, '--no-progress_bar', '--default_root_dir', root, '--common.config-file', yaml, '--common.override-kwargs', 'scheduler.max_iterations=2']);
    expect(viaYaml!.globalStep).toBe(2);
    expect((viaYaml!.lightningModule as unknown as CatlipModule).vocab.size).toBe(model.vocab.size);
    await expect(train(['--model', 'catlip', '--folder', data.train])).rejects.toThrow(/--vocab/);
  });
});

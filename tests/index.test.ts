import { describe, expect, it } from 'vitest';
import * as lc from '../index.js';

const { tf } = lc;

@lc.registerClass('model', 'test_mlp', { description: 'a two-layer perceptron registered by decorator' })
class Mlp extends lc.LightningModule<{ x: lc.Tensor; y: lc.Tensor }> {
  readonly net: lc.nn.Sequential;
  constructor(options: { hidden?: number } = {}) {
    super();
    this.net = this.registerModule('net', new lc.nn.Sequential(new lc.nn.Linear(2, options.hidden ?? 8), new lc.nn.ReLU(), new lc.nn.Linear(options.hidden ?? 8, 2)));
    this.saveHyperparameters(options);
  }
  trainingStep(batch: { x: lc.Tensor; y: lc.Tensor }): lc.Tensor {
    const loss = lc.nn.F.crossEntropy(this.net.forward(batch.x), batch.y);
    this.log('train_loss', loss);
    return loss;
  }
  configureOptimizers(): lc.OptimizerConfig {
    return new lc.optim.AdamW(this.parameters(), { lr: 0.05 });
  }
}

describe('package root', () => {
  it('exports what a user script needs', () => {
    for (const name of ['Trainer', 'LightningModule', 'LightningDataModule', 'createClip', 'CLIP', 'ClipTokenizer', 'ClipWrapper', 'CustomClipWrapper', 'ImageTextFolderDataModule',
      'ModelCheckpoint', 'EarlyStopping', 'LearningRateMonitor', 'EMA', 'ZeroShotEval', 'TensorBoardLogger', 'CSVLogger', 'writeSafetensors', 'readSafetensors',
      'loadClipWeights', 'BertModel', 'HfTokenizer', 'readTorchCheckpoint', 'resnet50', 'selectBackend', 'seedEverything'] as const) {
      expect(typeof (lc as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('registers the built-ins by name', () => {
    expect(lc.listRegistered('logger')).toEqual(expect.arrayContaining(['csv', 'tensorboard']));
    expect(lc.listRegistered('callback')).toEqual(expect.arrayContaining(['model_checkpoint', 'early_stopping', 'lr_monitor', 'progress_bar', 'ema', 'zeroshot']));
    expect(lc.listRegistered('datamodule')).toContain('folder');
    expect(lc.listRegistered('clip')).toEqual(expect.arrayContaining(['RN50', 'ViT-B/32', 'ViT-L/14-336px']));
    expect(() => lc.create('model', 'nope')).toThrow(/Unknown model name `--model=nope`. Available: .*test_mlp/);
  });

  it('builds a decorated LightningModule from its name and options, and trains it', async () => {
    lc.seedEverything(0);
    const model = lc.create<Mlp>('model', 'test_mlp', { hidden: 16 });
    expect(model.hparams).toEqual({ hidden: 16 });
    const x = tf.tensor2d([[0, 0], [0, 1], [1, 0], [1, 1], [0.1, 0.9], [0.9, 0.1], [0.9, 0.9], [0.1, 0.1]]);
    const y = tf.tensor1d([0, 1, 1, 0, 1, 1, 0, 0], 'int32');
    const trainer = new lc.Trainer({ maxEpochs: 150, logger: false, enableProgressBar: false, enableCheckpointing: false });
    await trainer.fit(model, { train: new lc.ArrayDataLoader({ x, y }, { batchSize: 8 }) });
    expect(trainer.callbackMetrics.train_loss).toBeLessThan(0.1); // XOR learned
  });
});

/**
 * CatLIP transfer (CoreNet `projects/catlip/image_classification`): the pre-trained image tower
 * with a **fresh** classifier for the target classes, fine-tuned with cross-entropy (label
 * smoothing 0.1), AdamW (0.9, 0.999) wd 0.05, cosine with warmup; data is an ImageFolder.
 * CoreNet's transfer configs load the pre-trained weights with `resume_exclude_scopes:
 * [classifier]`: here every tensor but `model.classifier.*` must match.
 */

import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { LightningDataModule, type DataLoader } from '../../core/datamodule.js';
import { MisconfigurationError } from '../../core/errors.js';
import { LightningModule } from '../../core/module.js';
import { F } from '../../core/nn/index.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import { Generator } from '../../core/random.js';
import { registerClass } from '../../core/registry.js';
import { tf, type Tensor } from '../../core/tf.js';
import type { OptimizerConfig } from '../../core/types.js';
import { LabelledImageLoader, scanImageFolder, type LabelledImage, type LabelledImageBatch } from '../../datamodules/imageFolder.js';
import { resolveModelConfig } from '../clip/config.js';
import { CatlipVit } from './model.js';

export interface CatlipTransferOptions {
  /** Pre-trained CatLIP checkpoint (`--init_from`, a lightclip .ckpt of `--model catlip`). */
  initFrom?: string;
  numClasses: number;
  modelName?: string;
  imageSize?: number;
  lr?: number;
  minLr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  totalSteps?: number;
  hparams?: Record<string, unknown>;
}

@registerClass('model', 'catlip_transfer', { description: 'CatLIP transfer: pre-trained tower (--init_from) + fresh classifier, cross-entropy on an ImageFolder' })
export class CatlipTransferModule extends LightningModule<LabelledImageBatch> {
  readonly net: CatlipVit;
  private readonly o: Required<Omit<CatlipTransferOptions, 'initFrom' | 'totalSteps' | 'hparams' | 'modelName' | 'imageSize'>> & { totalSteps?: number };

  constructor(options: CatlipTransferOptions) {
    super();
    const modelName = options.modelName ?? 'ViT-B/16';
    const v = resolveModelConfig(modelName).vision;
    if (typeof v.layers !== 'number' || v.patchSize === null) throw new MisconfigurationError(`CatLIP transfer needs a ViT; \`--model_name ${modelName}\` is a ResNet.`);
    this.net = this.registerModule(
      'model',
      new CatlipVit({ imageSize: options.imageSize ?? v.imageSize, patchSize: v.patchSize, width: v.width, layers: v.layers, heads: v.heads || Math.max(1, v.width / 64), numClasses: options.numClasses }),
    );
    this.o = {
      numClasses: options.numClasses,
      lr: options.lr ?? 3e-5,
      minLr: options.minLr ?? 3e-6,
      warmupSteps: options.warmupSteps ?? 500,
      weightDecay: options.weightDecay ?? 0.05,
      labelSmoothing: options.labelSmoothing ?? 0.1,
      totalSteps: options.totalSteps,
    };
    this.saveHyperparameters({ ...options.hparams, model: 'catlip_transfer', model_name: modelName, image_size: this.net.options.imageSize, num_classes: options.numClasses, init_from: options.initFrom ?? null });
  }

  /**
   * Builds the module from a `--model catlip` checkpoint: its tower shape (model_name,
   * image_size from the checkpoint's hparams), its weights, a fresh `numClasses` head.
   */
  static async fromCatlipCheckpoint(file: string, options: Omit<CatlipTransferOptions, 'initFrom' | 'modelName' | 'imageSize'>): Promise<CatlipTransferModule> {
    const ckpt = await loadCheckpointFile(file);
    try {
      const hp = ((ckpt.json as { hparams?: Record<string, unknown> })?.hparams ?? {}) as Record<string, unknown>;
      if (hp.model !== 'catlip') throw new MisconfigurationError(`\`--init_from ${file}\`: not a CatLIP pre-training checkpoint (its hparams.model is ${JSON.stringify(hp.model ?? null)}, expected "catlip").`);
      const module = new CatlipTransferModule({ ...options, initFrom: file, modelName: hp.model_name as string, imageSize: hp.image_size as number });
      module.loadPretrained(ckpt.tensors, file);
      return module;
    } finally {
      tf.dispose(Object.values(ckpt.tensors));
    }
  }

  /** Copies every `state_dict.model.*` tensor except the classifier; all others must be present. */
  loadPretrained(tensors: Record<string, Tensor>, source: string): void {
    const sd: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) {
      if (!k.startsWith('state_dict.model.') || k.startsWith('state_dict.model.classifier.')) continue;
      sd[k.slice('state_dict.model.'.length)] = t;
    }
    const res = this.net.loadStateDict(sd, { strict: false });
    const missing = res.missingKeys.filter((k) => !k.startsWith('classifier.'));
    if (missing.length || res.unexpectedKeys.length) {
      throw new MisconfigurationError(`\`--init_from ${source}\`: the checkpoint does not match the tower: missing ${missing.join(', ') || 'none'}; unexpected ${res.unexpectedKeys.join(', ') || 'none'}.`);
    }
  }

  override configureOptimizers(): OptimizerConfig {
    const optimizer = new AdamW(weightDecayParamGroups(this.namedParameters(), this.o.weightDecay), { lr: this.o.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: this.o.weightDecay });
    const total = this.o.totalSteps ?? this.trainer?.estimatedSteppingBatches ?? 1;
    const warmup = Math.min(this.o.warmupSteps, Math.max(0, total - 1));
    const scheduler = new CosineWarmupScheduler(optimizer, { warmupSteps: warmup, totalSteps: Math.max(total, warmup + 1), minLr: this.o.minLr });
    return { optimizer, lrScheduler: { scheduler, interval: 'step' } };
  }

  override trainingStep(batch: LabelledImageBatch): Tensor {
    const logits = this.net.forward(batch.images);
    const loss = F.crossEntropy(logits, batch.labels, { labelSmoothing: this.o.labelSmoothing });
    this.log('train_loss', loss, { progBar: true, batchSize: batch.paths.length });
    return loss;
  }

  override validationStep(batch: LabelledImageBatch): void {
    const logits = this.net.forward(batch.images);
    const n = batch.paths.length;
    this.log('val_loss', F.crossEntropy(logits, batch.labels), { batchSize: n });
    const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels), 'float32')));
    this.log('val_acc', acc, { progBar: true, batchSize: n });
  }
}

/** Shuffled (per epoch, from the seed), rank-sharded batches of an ImageFolder. */
class ShuffledImageFolderLoader implements DataLoader<LabelledImageBatch> {
  private epoch = 0;
  private shard = { rank: 0, worldSize: 1 };
  constructor(
    private readonly samples: readonly LabelledImage[],
    private readonly imageSize: number,
    private readonly batchSize: number,
    private readonly seed: number,
    private readonly shuffle: boolean,
  ) {}
  get length(): number {
    return Math.ceil(Math.ceil(this.samples.length / this.shard.worldSize) / this.batchSize);
  }
  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }
  setDistributed(shard: { rank: number; worldSize: number }): void {
    this.shard = shard;
  }
  [Symbol.asyncIterator](): AsyncIterator<LabelledImageBatch> {
    const order = this.shuffle ? new Generator(this.seed + this.epoch).permutation(this.samples.length) : this.samples.map((_, i) => i);
    const mine = order.filter((_, i) => i % this.shard.worldSize === this.shard.rank).map((i) => this.samples[i]!);
    return new LabelledImageLoader(mine, this.imageSize, this.batchSize)[Symbol.asyncIterator]();
  }
}

/** ImageFolder classification data (`--folder` = one subfolder per class; optional `--val_folder`). */
export class ImageFolderClassificationDataModule extends LightningDataModule<LabelledImageBatch> {
  private train: LabelledImage[] = [];
  private val: LabelledImage[] | null = null;
  classNames: string[] = [];
  constructor(private readonly o: { folder: string; valFolder?: string; imageSize: number; batchSize: number; seed: number }) {
    super();
  }
  override async setup(): Promise<void> {
    const scan = await scanImageFolder(this.o.folder, { flag: '--folder' });
    this.train = scan.samples;
    this.classNames = scan.classNames;
    if (this.o.valFolder) {
      const v = await scanImageFolder(this.o.valFolder, { flag: '--val_folder' });
      if (v.folders.join('\n') !== scan.folders.join('\n')) throw new MisconfigurationError('`--val_folder` must have the same class folders as `--folder`.');
      this.val = v.samples;
    }
  }
  override trainDataloader(): DataLoader<LabelledImageBatch> {
    return new ShuffledImageFolderLoader(this.train, this.o.imageSize, this.o.batchSize, this.o.seed, true);
  }
  override valDataloader(): DataLoader<LabelledImageBatch> | null {
    return this.val ? new ShuffledImageFolderLoader(this.val, this.o.imageSize, this.o.batchSize, this.o.seed, false) : null;
  }
}

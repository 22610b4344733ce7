#!/usr/bin/env node
/**
 * `train.ts`: train-CLIP's `train.py` in lightclip. Parses flags (and `--config file.yaml`),
 * resolves names through the registry, and calls `Trainer.fit`. Nothing else lives here.
 *
 *   node dist/train.js --model_name ViT-B/32 --folder data/ --batch_size 64 --max_epochs 32
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IsBoolean, IsIn, IsInt, IsNumber, IsOptional, IsString, Min } from 'class-validator';
import { selectBackend } from './core/backend.js';
import { Describe, renderConfigHelp, resolveConfig } from './core/config.js';
import { MisconfigurationError } from './core/errors.js';
import { seedEverything } from './core/random.js';
import { Trainer } from './core/trainer.js';
import { Callback, ModelCheckpoint, LearningRateMonitor } from './callbacks/index.js';
import { ImageTextFolderDataModule } from './datamodules/folder.js';
import { ClipTokenizer } from './modules/tokenizers/clipTokenizer.js';
import { createClip } from './modules/clip/factory.js';
import { isResNetConfig, resolveModelConfig } from './modules/clip/config.js';
import { ClipWrapper } from './modules/wrappers/clipWrapper.js';
import { buildZeroShotCallback } from './eval.js';
import './loggers/index.js';
import './callbacks/index.js';

/** Every flag of `train.ts` (train-CLIP's names; `--config` YAML/JSON files use the same keys). */
export class TrainConfig {
  @Describe('model name from configs/ (RN50, ViT-B/32, ...) or a path to a model JSON') @IsString() model_name = 'ViT-B/32';
  @Describe('folder of images and same-stem .txt caption files (searched recursively)') @IsString() folder = '';
  @Describe('validation folder (default: hold out --val_fraction of --folder)') @IsOptional() @IsString() val_folder?: string;
  @Describe('fraction of --folder held out for validation when no --val_folder') @IsNumber() @Min(0) val_fraction = 0;
  @Describe('image-text pairs per step (per process)') @IsInt() @Min(1) batch_size = 64;
  @Describe('gradient-caching chunk size (0: whole batch at once)') @IsInt() @Min(0) minibatch_size = 0;
  @Describe('image decoding worker threads (0: main thread)') @IsInt() @Min(0) num_workers = 2;
  @Describe('training image size (default: the model config resolution)') @IsOptional() @IsInt() @Min(8) image_size?: number;
  @Describe('epochs to train') @IsInt() @Min(-1) max_epochs = 32;
  @Describe('optimizer steps to train (-1: no limit)') @IsInt() @Min(-1) max_steps = -1;
  @Describe('peak learning rate') @IsNumber() @Min(0) lr = 5e-4;
  @Describe('linear warmup steps') @IsInt() @Min(0) warmup_steps = 2000;
  @Describe('AdamW weight decay') @IsNumber() @Min(0) weight_decay = 0.2;
  @Describe("numeric precision: '32' (tfjs has no float16/bfloat16)") @IsIn(['32', '32-true']) precision = '32';
  @Describe('auto | cpu | gpu') @IsIn(['auto', 'cpu', 'gpu']) accelerator: 'auto' | 'cpu' | 'gpu' = 'auto';
  @Describe('processes per node (with --strategy ddp)') @IsInt() @Min(1) devices = 1;
  @Describe('auto | single | ddp') @IsString() strategy = 'auto';
  @Describe('nodes (with --strategy ddp)') @IsInt() @Min(1) num_nodes = 1;
  @Describe('rank of this node') @IsInt() @Min(0) node_rank = 0;
  @Describe('address of the rank-0 node') @IsString() master_addr = '127.0.0.1';
  @Describe('port of the rank-0 rendezvous') @IsInt() @Min(1) master_port = 29500;
  @Describe('where logs and checkpoints go') @IsString() default_root_dir = '.';
  @Describe("resume from a checkpoint path, or 'last'") @IsOptional() @IsString() resume?: string;
  @Describe('random seed') @IsInt() @Min(0) seed = 42;
  @Describe('log every n steps') @IsInt() @Min(1) log_every_n_steps = 50;
  @Describe('also save a checkpoint every n steps (0: per epoch only)') @IsInt() @Min(0) checkpoint_every_n_steps = 0;
  @Describe('run n batches of everything to check the setup') @IsInt() @Min(0) fast_dev_run = 0;
  @Describe('ImageNet-style folder for zero-shot evaluation after each epoch') @IsOptional() @IsString() zeroshot_data?: string;
  @Describe('JSON file of class names for --zeroshot_data') @IsOptional() @IsString() zeroshot_class_names?: string;
  @Describe('JSON file of prompt templates (default: the 80 OpenAI templates)') @IsOptional() @IsString() zeroshot_templates?: string;
  @Describe('show the progress bar') @IsBoolean() progress_bar = true;
}

const USAGE = 'node dist/train.js --model_name ViT-B/32 --folder data/ [options]';

/** Parses `argv`, builds everything and trains. Returns the Trainer (for tests). */
export async function main(argv: readonly string[]): Promise<Trainer | null> {
  const resolved = resolveConfig(TrainConfig, argv);
  if (resolved.help) {
    console.log(renderConfigHelp(TrainConfig, { usage: USAGE }));
    return null;
  }
  const cfg = resolved.config;
  if (!cfg.folder) throw new MisconfigurationError('`--folder` is required: a folder of images with same-stem .txt captions.');
  const modelConfig = resolveModelConfig(cfg.model_name);
  const imageSize = cfg.image_size ?? modelConfig.vision.imageSize;
  await selectBackend({ accelerator: cfg.accelerator });
  seedEverything(cfg.seed);

  const tokenizer = ClipTokenizer.default();
  const datamodule = new ImageTextFolderDataModule({
    folder: cfg.folder,
    valFolder: cfg.val_folder,
    valFraction: cfg.val_fraction,
    batchSize: cfg.batch_size,
    numWorkers: cfg.num_workers,
    imageSize,
    seed: cfg.seed,
    tokenizer,
    contextLength: modelConfig.text.contextLength,
  });
  const model = new ClipWrapper(createClip(modelConfig, { imageSize }), {
    minibatchSize: cfg.minibatch_size,
    lr: cfg.lr,
    warmupSteps: cfg.warmup_steps,
    weightDecay: cfg.weight_decay,
    resnet: isResNetConfig(modelConfig),
    hparams: { ...cfg, image_size: imageSize },
  });
  const callbacks: Callback[] = [
    new ModelCheckpoint({ saveLast: true, everyNTrainSteps: cfg.checkpoint_every_n_steps || null }),
    new LearningRateMonitor({ loggingInterval: 'step' }),
  ];
  if (cfg.zeroshot_data) {
    callbacks.push(
      await buildZeroShotCallback({
        data: cfg.zeroshot_data,
        classNames: cfg.zeroshot_class_names,
        templates: cfg.zeroshot_templates,
        tokenizer,
        contextLength: modelConfig.text.contextLength,
        imageSize,
        batchSize: cfg.batch_size,
      }),
    );
  }
  const trainer = new Trainer({
    maxEpochs: cfg.max_epochs,
    maxSteps: cfg.max_steps,
    precision: cfg.precision,
    strategy: cfg.strategy,
    defaultRootDir: path.resolve(cfg.default_root_dir),
    seed: cfg.seed,
    logEveryNSteps: cfg.log_every_n_steps,
    fastDevRun: cfg.fast_dev_run,
    enableProgressBar: cfg.progress_bar,
    callbacks,
  });
  await trainer.fit(model, datamodule, { ckptPath: cfg.resume ?? null });
  return trainer;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    if (err instanceof MisconfigurationError) {
      console.error(`error: ${err.message}`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  });
}

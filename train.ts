#!/usr/bin/env node
/**
 * `train.ts`: train-CLIP's `train.py` in lightclip. Parses flags (and `--config file.yaml`),
 * resolves names through the registry, and calls `Trainer.fit`. Nothing else lives here.
 *
 *   node dist/train.js --model_name ViT-B/32 --folder data/ --batch_size 64 --max_epochs 32
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IsBoolean, IsIn, IsInt, IsNumber, IsOptional, IsString, Min } from 'class-validator';
import { selectBackend } from './core/backend.js';
import { tf } from './core/tf.js';
import { Describe, renderConfigHelp, resolveConfig } from './core/config.js';
import { runIfMain } from './core/cli.js';
import { MisconfigurationError } from './core/errors.js';
import { seedEverything } from './core/random.js';
import { Trainer } from './core/trainer.js';
import { create } from './core/registry.js';
import type { LightningDataModule } from './core/datamodule.js';
import type { Strategy } from './core/strategy.js';
import type { LightningModule } from './core/module.js';
import { DDPStrategy } from './strategies/ddp/ddpStrategy.js';
import { launchDdp, planDdpLaunch } from './strategies/ddp/launcher.js';
import './strategies/index.js';
import { Callback, ModelCheckpoint, LearningRateMonitor } from './callbacks/index.js';
import { ImageTextFolderDataModule } from './datamodules/folder.js';
import { ClipTokenizer } from './modules/tokenizers/clipTokenizer.js';
import { createClip } from './modules/clip/factory.js';
import { isResNetConfig, resolveModelConfig } from './modules/clip/config.js';
import { ClipWrapper } from './modules/wrappers/clipWrapper.js';
import { CustomClipWrapper } from './modules/wrappers/customClipWrapper.js';
import { HfTokenizer } from './modules/text/hfTokenizer.js';
import { loadHfTextEncoder } from './modules/text/pretrained.js';
import { ResNet, resnet18, resnet34, resnet50, resnet101, resnet152 } from './modules/vision/resnet.js';
import { loadTorchvisionResnet } from './modules/weights/torchvisionResnet.js';
import { readWeightsAsTensors } from './modules/weights/readWeights.js';
import type { TextTokenizer } from './modules/tokenizers/types.js';
import { buildZeroShotCallback } from './eval.js';
import './loggers/index.js';
import './callbacks/index.js';
import { EMA } from './callbacks/ema.js';
import './modules/catlip/model.js';
import { CatlipTransferModule, ImageFolderClassificationDataModule } from './modules/catlip/transfer.js';
import { scanImageFolder } from './datamodules/imageFolder.js';
import { translateCorenetArgv } from './modules/corenet/config.js';

/** Image encoders of `--image_encoder` (torchvision's ResNets, classifier head removed). */
const RESNETS = { resnet18, resnet34, resnet50, resnet101, resnet152 } as const;

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
  @Describe('port of the rank-0 rendezvous (default: MASTER_PORT, else a free port on one node)') @IsOptional() @IsInt() @Min(1) master_port?: number;
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
  @Describe('a LightningModule registered by name (`@registerClass(\'model\', name)`) instead of CLIP') @IsOptional() @IsString() model?: string;
  @Describe('JSON options passed to --model\'s constructor') @IsOptional() @IsString() model_args?: string;
  @Describe('a LightningDataModule registered by name (default: folder, built from --folder ...)') @IsOptional() @IsString() datamodule?: string;
  @Describe('JSON options passed to --datamodule\'s constructor') @IsOptional() @IsString() datamodule_args?: string;
  @Describe('JavaScript module(s) to import first, so their decorators register models/datamodules') @IsOptional() @IsString({ each: true }) import?: string[];
  @Describe('fine-tuning: image encoder (resnet18|resnet34|resnet50|resnet101|resnet152) instead of a CLIP tower') @IsOptional() @IsIn(Object.keys(RESNETS)) image_encoder?: string;
  @Describe('fine-tuning: torchvision weights for --image_encoder (.pth/.bin/.safetensors)') @IsOptional() @IsString() image_weights?: string;
  @Describe('fine-tuning: Hugging Face text encoder (hub id or local directory)') @IsOptional() @IsString() text_encoder?: string;
  @Describe('fine-tuning: mean-pool word embeddings over the attention mask (else the CLS token)') @IsBoolean() avg_word_embs = false;
  @Describe('fine-tuning: shared embedding size (default: the text hidden size)') @IsOptional() @IsInt() @Min(1) embed_dim?: number;
  @Describe('fine-tuning: learning rate of the pretrained towers (default: --lr)') @IsOptional() @IsNumber() @Min(0) encoder_lr?: number;
  @Describe('fine-tuning: freeze the image tower (LiT)') @IsBoolean() lock_image = false;
  @Describe('fine-tuning: freeze the text tower') @IsBoolean() lock_text = false;
  @Describe('fine-tuning: add self-distillation from an EMA teacher') @IsBoolean() self_distillation = false;
  @Describe('fine-tuning: weight of the self-distillation KL term') @IsNumber() @Min(0) kl_coeff = 1.0;
  @Describe('fine-tuning: text length in tokens') @IsInt() @Min(2) context_length = 77;
  // CatLIP (`--model catlip`): synset vocabulary, CoreNet's EMA and gradient clipping.
  @Describe('CatLIP: CoreNet synset vocabulary pickle (build one with `lightclip catlip vocab`)') @IsOptional() @IsString() vocab?: string;
  @Describe('CatLIP: keep the first N synsets of --vocab (CoreNet vocab_size)') @IsOptional() @IsInt() @Min(1) vocab_size?: number;
  @Describe('CatLIP: EMA decay of the weights (0: no EMA)') @IsNumber() @Min(0) ema_decay = 0.9995;
  @Describe('CatLIP: clip the global gradient norm (0: off)') @IsNumber() @Min(0) gradient_clip_val = 1.0;
  @Describe('CatLIP transfer (--model catlip_transfer): pre-trained --model catlip checkpoint; --folder is an ImageFolder') @IsOptional() @IsString() init_from?: string;
}


/** The fine-tuning model (train-CLIP's train_finetune.py): any image encoder + a HF text encoder. */
async function buildFinetune(cfg: TrainConfig): Promise<{ model: ClipWrapper; tokenizer: TextTokenizer; imageSize: number }> {
  if (!cfg.image_encoder || !cfg.text_encoder) {
    throw new MisconfigurationError('Fine-tuning needs both `--image_encoder` (e.g. resnet50) and `--text_encoder` (a hub id or a local directory).');
  }
  const makeImage = async (): Promise<ResNet> => {
    const net = RESNETS[cfg.image_encoder as keyof typeof RESNETS]({ numClasses: 0 });
    if (cfg.image_weights) {
      const sd = await readWeightsAsTensors(cfg.image_weights);
      try {
        loadTorchvisionResnet(net, sd);
      } finally {
        tf.dispose(Object.values(sd));
      }
    }
    return net;
  };
  const text = (await loadHfTextEncoder(cfg.text_encoder)).model;
  const tokenizer = await HfTokenizer.fromPretrained(cfg.text_encoder, { contextLength: cfg.context_length });
  const image = await makeImage();
  const teacher = cfg.self_distillation ? { imageEncoder: await makeImage(), textEncoder: (await loadHfTextEncoder(cfg.text_encoder)).model } : undefined;
  const model = new CustomClipWrapper(image, text, {
    imageDim: image.numFeatures,
    textDim: text.hiddenSize,
    embedDim: cfg.embed_dim,
    avgWordEmbs: cfg.avg_word_embs,
    padTokenId: tokenizer.padTokenId,
    minibatchSize: cfg.minibatch_size,
    lr: cfg.lr,
    encoderLr: cfg.encoder_lr,
    warmupSteps: cfg.warmup_steps,
    weightDecay: cfg.weight_decay,
    lockImage: cfg.lock_image,
    lockText: cfg.lock_text,
    selfDistillation: cfg.self_distillation,
    klCoeff: cfg.kl_coeff,
    teacher,
    hparams: { ...cfg },
  });
  return { model, tokenizer, imageSize: cfg.image_size ?? 224 };
}

const USAGE = 'node dist/train.js --model_name ViT-B/32 --folder data/ [options]';

/** Parses `argv`, builds everything and trains. Returns the Trainer (for tests). */
export async function main(argv: readonly string[]): Promise<Trainer | null> {
  // CoreNet-style `--common.config-file` / `--common.override-kwargs` / `--ddp.*` → train.ts flags.
  const resolved = resolveConfig(TrainConfig, translateCorenetArgv(argv));
  if (resolved.help) {
    console.log(renderConfigHelp(TrainConfig, { usage: USAGE }));
    return null;
  }
  const cfg = resolved.config;
  for (const file of toArray(cfg.import)) await import(pathToFileURL(path.resolve(file)).href);
  const custom = cfg.datamodule !== undefined && cfg.datamodule !== 'folder';
  if (!cfg.folder && !custom) throw new MisconfigurationError('`--folder` is required: a folder of images with same-stem .txt captions.');
  // As Lightning: several devices or nodes with the 'auto' strategy mean DDP.
  const ddp = cfg.strategy === 'ddp' || (cfg.strategy === 'auto' && cfg.devices * cfg.num_nodes > 1);
  let strategy: string | Strategy = cfg.strategy;
  if (ddp) {
    const flags = { devices: cfg.devices, numNodes: cfg.num_nodes, nodeRank: cfg.node_rank, masterAddr: cfg.master_addr, masterPort: cfg.master_port };
    const plan = planDdpLaunch(flags);
    if (plan.kind === 'spawn') {
      // This process becomes the launcher: it starts one worker per device running this
      // same script with the same flags, and exits with the first failure's code.
      const result = await launchDdp({ ...plan.options, script: fileURLToPath(import.meta.url), args: [...argv] });
      console.log(result.message);
      process.exitCode = result.exitCode;
      return null;
    }
    strategy = new DDPStrategy({ devices: cfg.devices, numNodes: cfg.num_nodes });
  }
  await selectBackend({ accelerator: cfg.accelerator, quiet: typeof strategy !== 'string' && !strategy.isGlobalZero });
  seedEverything(cfg.seed);
  const finetune = cfg.image_encoder !== undefined || cfg.text_encoder !== undefined;
  let model: LightningModule;
  let tokenizer: TextTokenizer;
  let imageSize: number;
  let contextLength: number;
  if (cfg.model === 'catlip_transfer') {
    // CatLIP transfer: the pre-trained tower of --init_from, a fresh head over --folder's classes.
    if (!cfg.init_from) throw new MisconfigurationError('`--model catlip_transfer` needs `--init_from catlip.ckpt` (a `--model catlip` checkpoint).');
    const classes = (await scanImageFolder(cfg.folder, { flag: '--folder' })).folders.length;
    const transfer = await CatlipTransferModule.fromCatlipCheckpoint(cfg.init_from, { numClasses: classes, lr: cfg.lr, warmupSteps: cfg.warmup_steps, weightDecay: cfg.weight_decay, hparams: { ...cfg } });
    model = transfer;
    tokenizer = ClipTokenizer.default();
    imageSize = transfer.net.options.imageSize;
    contextLength = cfg.context_length;
  } else if (cfg.model !== undefined) {
    // Any registered LightningModule (Lightning's `--model`); its own hparams, its own loss.
    const catlip = cfg.model === 'catlip'
      ? { vocab: cfg.vocab, vocabSize: cfg.vocab_size, modelName: cfg.model_name, imageSize: cfg.image_size, lr: cfg.lr, warmupSteps: cfg.warmup_steps, weightDecay: cfg.weight_decay, hparams: { ...cfg } }
      : {};
    model = create<LightningModule>('model', cfg.model, { ...catlip, ...jsonArgs(cfg.model_args, '--model_args') }, '--model');
    tokenizer = ClipTokenizer.default();
    imageSize = cfg.image_size ?? (cfg.model === 'catlip' ? (model as unknown as { net: { options: { imageSize: number } } }).net.options.imageSize : 224);
    contextLength = cfg.context_length;
  } else if (finetune) {
    ({ model, tokenizer, imageSize } = await buildFinetune(cfg));
    contextLength = cfg.context_length;
  } else {
    const modelConfig = resolveModelConfig(cfg.model_name);
    imageSize = cfg.image_size ?? modelConfig.vision.imageSize;
    contextLength = modelConfig.text.contextLength;
    tokenizer = ClipTokenizer.default();
    model = new ClipWrapper(createClip(modelConfig, { imageSize }), {
      minibatchSize: cfg.minibatch_size,
      lr: cfg.lr,
      warmupSteps: cfg.warmup_steps,
      weightDecay: cfg.weight_decay,
      resnet: isResNetConfig(modelConfig),
      hparams: { ...cfg, image_size: imageSize },
    });
  }
  const datamodule = cfg.model === 'catlip_transfer'
    ? new ImageFolderClassificationDataModule({ folder: cfg.folder, valFolder: cfg.val_folder, imageSize, batchSize: cfg.batch_size, seed: cfg.seed })
    : custom
    ? create<LightningDataModule>('datamodule', cfg.datamodule!, jsonArgs(cfg.datamodule_args, '--datamodule_args'), '--datamodule')
    : new ImageTextFolderDataModule({
        folder: cfg.folder,
        valFolder: cfg.val_folder,
        valFraction: cfg.val_fraction,
        batchSize: cfg.batch_size,
        numWorkers: cfg.num_workers,
        imageSize,
        seed: cfg.seed,
        tokenizer,
        contextLength,
      });
  const callbacks: Callback[] = [
    new ModelCheckpoint({ saveLast: true, everyNTrainSteps: cfg.checkpoint_every_n_steps || null }),
    new LearningRateMonitor({ loggingInterval: 'step' }),
  ];
  if (cfg.model === 'catlip' && cfg.ema_decay > 0) callbacks.push(new EMA({ decay: cfg.ema_decay }));
  if (cfg.zeroshot_data) {
    if (!(tokenizer instanceof ClipTokenizer)) throw new MisconfigurationError('`--zeroshot_data` is supported with CLIP models (`--model_name`), not with `--text_encoder` yet.');
    callbacks.push(
      await buildZeroShotCallback({
        data: cfg.zeroshot_data,
        classNames: cfg.zeroshot_class_names,
        templates: cfg.zeroshot_templates,
        tokenizer,
        contextLength,
        imageSize,
        batchSize: cfg.batch_size,
      }),
    );
  }
  const trainer = new Trainer({
    maxEpochs: cfg.max_epochs,
    maxSteps: cfg.max_steps,
    precision: cfg.precision,
    strategy,
    defaultRootDir: path.resolve(cfg.default_root_dir),
    seed: cfg.seed,
    logEveryNSteps: cfg.log_every_n_steps,
    fastDevRun: cfg.fast_dev_run,
    enableProgressBar: cfg.progress_bar,
    callbacks,
    ...(cfg.model === 'catlip' && cfg.gradient_clip_val > 0 ? { gradientClipVal: cfg.gradient_clip_val } : {}),
  });
  await trainer.fit(model, datamodule, { ckptPath: cfg.resume ?? null });
  return trainer;
}

function toArray(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function jsonArgs(text: string | undefined, flag: string): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new MisconfigurationError(`\`${flag}\` must be a JSON object such as '{"hidden": 16}', got ${JSON.stringify(text)}.`);
}

runIfMain(import.meta.url, main);

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
import { DeepLakeDataModule } from './datamodules/deeplake/datamodule.js';
import { createStreamDataModule, StreamDataFlags, usesStreamData } from './datamodules/streamData.js';
import { ClipTokenizer } from './modules/tokenizers/clipTokenizer.js';
import { createClip } from './modules/clip/factory.js';
import { isResNetConfig, resolveModelConfig } from './modules/clip/config.js';
import { ClipWrapper } from './modules/wrappers/clipWrapper.js';
import { CustomClipWrapper } from './modules/wrappers/customClipWrapper.js';
import { LlipWrapper } from './modules/llip/wrapper.js';
import { resolveRecipe } from './modules/recipes.js';
import { lockImageTower, lockTextTower } from './modules/clip/lock.js';
import { loadOpenClipPretrained } from './modules/clip/openClipPretrained.js';
import { PatchDropout } from './modules/clip/patchDropout.js';
import { VisionTransformer } from './modules/clip/vit.js';
import type { CLIP } from './modules/clip/model.js';
import { HfTokenizer } from './modules/text/hfTokenizer.js';
import { loadHfTextEncoder } from './modules/text/pretrained.js';
import { RESNETS, loadTextTower, makeImageEncoder } from './modules/finetune.js';
import type { TextTokenizer } from './modules/tokenizers/types.js';
import { buildZeroShotCallback } from './eval.js';
import './loggers/index.js';
import './callbacks/index.js';
import { EMA } from './callbacks/ema.js';
import './modules/catlip/model.js';
import { CatlipTransferModule, ImageFolderClassificationDataModule } from './modules/catlip/transfer.js';
import { scanImageFolder } from './datamodules/imageFolder.js';
import { translateCorenetArgv } from './modules/corenet/config.js';

/**
 * Every flag of `train.ts` (train-CLIP's names; `--config` YAML/JSON files use the same keys).
 * The streamed-data flags (`--train_data`, `--dataset_type`, `--dataset` ...) come from StreamDataFlags.
 */
export class TrainConfig extends StreamDataFlags {
  @Describe('model name from configs/ (RN50, ViT-B/32, ...) or a path to a model JSON') @IsString() model_name = 'ViT-B/32';
  @Describe('folder of images and same-stem .txt caption files (searched recursively)') @IsString() folder = '';
  @Describe('validation folder (default: hold out --val_fraction of --folder)') @IsOptional() @IsString() val_folder?: string;
  @Describe('fraction of --folder held out for validation when no --val_folder (default: none)') @IsOptional() @IsNumber() @Min(0) val_fraction?: number;
  @Describe('image-text pairs per step (per process)') @IsInt() @Min(1) batch_size = 64;
  @Describe('gradient-caching chunk size (0: whole batch at once); exact gradient, dropout replayed per chunk; BatchNorm normalises each chunk by its own statistics') @IsInt() @Min(0) minibatch_size = 0;
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
  @Describe('DDP process-group backend: auto (mpi under mpirun, else gloo when built, else zmq) | gloo | mpi | zmq') @IsIn(['auto', 'gloo', 'mpi', 'zmq']) ddp_backend = 'auto';
  @Describe('DDP rendezvous through a shared directory, file:///path (gloo; default MASTER_ADDR:MASTER_PORT)') @IsOptional() @IsString() ddp_init?: string;
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
  // Lightning Trainer flags train-CLIP users pass (`Trainer.from_argparse_args`).
  @Describe('batches whose gradients are summed before each optimizer step') @IsInt() @Min(1) accumulate_grad_batches = 1;
  @Describe('clip gradients to this global norm (or value, see --gradient_clip_algorithm); default: no clipping') @IsOptional() @IsNumber() @Min(0) gradient_clip_val?: number;
  @Describe("'norm' (global L2 norm) or 'value'") @IsIn(['norm', 'value']) gradient_clip_algorithm: 'norm' | 'value' = 'norm';
  @Describe('validate every fraction (0, 1) of an epoch or every n training batches (default: once per epoch)') @IsOptional() @IsNumber() @Min(0) val_check_interval?: number;
  @Describe('validate every n epochs') @IsInt() @Min(1) check_val_every_n_epoch = 1;
  @Describe('training batches per epoch: a fraction (0, 1) or a count (default: all)') @IsOptional() @IsNumber() @Min(0) limit_train_batches?: number;
  @Describe('validation batches: a fraction (0, 1) or a count, 0 disables validation (default: all)') @IsOptional() @IsNumber() @Min(0) limit_val_batches?: number;
  @Describe('RandomResizedCrop: smallest crop area as a fraction of the image (train-CLIP\'s --resize_ratio)') @IsNumber() @Min(0) resize_ratio = 0.75;
  @Describe('reshuffle the training set every epoch') @IsBoolean() shuffle = true;
  @Describe('reproducible kernels: sets TF_DETERMINISTIC_OPS for tfjs-node(-gpu); the CPU backends already are') @IsBoolean() deterministic = false;
  // ---- SigLIP and Llip (issue 15) ----
  @Describe('sigmoid loss (SigLIP, open_clip\'s --siglip): logit scale init ln 10, learnable bias init -10') @IsBoolean() siglip = false;
  @Describe('how SigLIP moves text blocks under DDP: bidir | shift | reduce | gather (open_clip\'s dist_impl)') @IsIn(['bidir', 'shift', 'reduce', 'gather']) siglip_dist_impl: 'bidir' | 'shift' | 'reduce' | 'gather' = 'bidir';
  @Describe('Llip (--model llip): number K of mixture tokens') @IsOptional() @IsInt() @Min(1) num_mixture_tokens?: number;
  @Describe('Llip: softmax temperature of the text-conditioned cross-attention') @IsNumber() llip_temperature = 1;
  @Describe('Llip: cross-attention heads (default: embed_dim / 64)') @IsOptional() @IsInt() @Min(1) llip_heads?: number;
  @Describe('Llip: siglip (default) | infonce') @IsIn(['siglip', 'infonce']) llip_loss: 'siglip' | 'infonce' = 'siglip';
  // ---- open_clip's training options (CLIP towers; --lock_image/--lock_text also apply here) ----
  @Describe('open_clip: keep the last N image-tower groups trainable under --lock_image (ViT only)') @IsInt() @Min(0) lock_image_unlocked_groups = 0;
  @Describe('open_clip: BatchNorms of a locked image tower use and keep their running statistics') @IsBoolean() lock_image_freeze_bn_stats = false;
  @Describe('open_clip: keep the last N text-tower groups trainable under --lock_text') @IsInt() @Min(0) lock_text_unlocked_layers = 0;
  @Describe('open_clip: also freeze the LayerNorms of locked text layers') @IsBoolean() lock_text_freeze_layer_norm = false;
  @Describe('open_clip: fraction of image patches dropped in training (ViT; class token kept)') @IsNumber() @Min(0) force_patch_dropout = 0;
  @Describe('open_clip: weight decay (alias of --weight_decay)') @IsOptional() @IsNumber() @Min(0) wd?: number;
  @Describe('open_clip: AdamW beta1 (default 0.9)') @IsOptional() @IsNumber() beta1?: number;
  @Describe('open_clip: AdamW beta2 (default 0.98 ViT, 0.999 ResNet)') @IsOptional() @IsNumber() beta2?: number;
  @Describe('open_clip: AdamW eps (default 1e-6 ViT, 1e-8 ResNet)') @IsOptional() @IsNumber() eps?: number;
  @Describe('open_clip: learning-rate schedule after warmup: cosine | const | const-cooldown (default: the CLIP warmup+cosine)') @IsOptional() @IsIn(['cosine', 'const', 'const-cooldown']) lr_scheduler?: 'cosine' | 'const' | 'const-cooldown';
  @Describe('open_clip: epochs of the const-cooldown tail') @IsOptional() @IsNumber() @Min(0) epochs_cooldown?: number;
  @Describe('open_clip: learning rate at the end of the cooldown') @IsNumber() @Min(0) lr_cooldown_end = 0;
  @Describe('open_clip: power of the cooldown (1: linear)') @IsNumber() @Min(0) lr_cooldown_power = 1;
  @Describe('open_clip: clip gradients to this global 2-norm (after DDP averaging)') @IsOptional() @IsNumber() @Min(0) grad_clip_norm?: number;
  @Describe('open_clip: start from these CLIP weights (open_clip/OpenAI names: .safetensors, .bin, .pt)') @IsOptional() @IsString() pretrained?: string;
  @Describe("open_clip: contrast accum_freq batches together (run as --batch_size x N with gradient caching in chunks of --batch_size; see README)") @IsInt() @Min(1) accum_freq = 1;
  // Deep Lake (train-CLIP's Deep Lake fork): --path instead of --folder
  @Describe('Deep Lake dataset: local directory, s3://bucket/prefix or hub://org/dataset (instead of --folder)') @IsOptional() @IsString() path?: string;
  @Describe('Activeloop token for hub:// (else ACTIVELOOP_TOKEN; never logged or saved)') @IsOptional() @IsString() token?: string;
  @Describe("Deep Lake: keep NSFW == 'UNLIKELY' (and WIDTH between 50 and 450 when there is a WIDTH tensor)") @IsBoolean() filter_NSFW = false;
  @Describe("Deep Lake: TQL filter, e.g. \"SELECT * WHERE NSFW == 'UNLIKELY' and WIDTH between 50 and 450\"") @IsOptional() @IsString() query?: string;
  @Describe('Deep Lake branch to read (default main)') @IsOptional() @IsString() branch?: string;
  @Describe('Deep Lake commit id to read') @IsOptional() @IsString() commit?: string;
  @Describe('Deep Lake validation dataset (same keys)') @IsOptional() @IsString() val_path?: string;
  @Describe('Deep Lake chunk cache, MB') @IsNumber() @Min(1) deeplake_cache_mb = 256;
  @Describe("hub://: accept the dataset's licence agreement if the API asks") @IsBoolean() deeplake_agree = false;
  @Describe("train-CLIP's precision flag: 32, or 16 (runs in 32 until mixed precision lands)") @IsOptional() @IsIn(['16', '32']) fp?: string;
  // CatLIP (`--model catlip`): synset vocabulary, CoreNet's EMA and gradient clipping.
  @Describe('CatLIP: CoreNet synset vocabulary pickle (build one with `lightclip catlip vocab`)') @IsOptional() @IsString() vocab?: string;
  @Describe('CatLIP: keep the first N synsets of --vocab (CoreNet vocab_size)') @IsOptional() @IsInt() @Min(1) vocab_size?: number;
  @Describe('CatLIP: EMA decay of the weights (0: no EMA)') @IsNumber() @Min(0) ema_decay = 0.9995;
  @Describe('CatLIP transfer (--model catlip_transfer): pre-trained --model catlip checkpoint; --folder is an ImageFolder') @IsOptional() @IsString() init_from?: string;
}


/** The fine-tuning model (train-CLIP's train_finetune.py): any image encoder + a HF text encoder. */
async function buildFinetune(cfg: TrainConfig): Promise<{ model: ClipWrapper; tokenizer: TextTokenizer; imageSize: number; contextLength: number }> {
  if (!cfg.image_encoder || !cfg.text_encoder) {
    throw new MisconfigurationError('Fine-tuning needs both `--image_encoder` (e.g. resnet50) and `--text_encoder` (a hub id or a local directory).');
  }
  const { text, tokenizer, contextLength } = await loadTextTower(cfg.text_encoder, cfg.context_length);
  const image = await makeImageEncoder(cfg.image_encoder, cfg.image_weights);
  const teacher = cfg.self_distillation
    ? { imageEncoder: await makeImageEncoder(cfg.image_encoder, cfg.image_weights), textEncoder: (await loadHfTextEncoder(cfg.text_encoder)).model }
    : undefined;
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
    hparams: { ...cfg, context_length: contextLength },
  });
  return { model, tokenizer, imageSize: cfg.image_size ?? 224, contextLength };
}

const USAGE = '--model_name ViT-B/32 --folder data/ [options]';

/**
 * Parses `argv`, builds everything and trains. Returns the Trainer (for tests).
 * @param program how the user started it, for `--help` (`lightclip train` or `node dist/train.js`).
 */
export async function main(argv: readonly string[], program = 'node dist/train.js'): Promise<Trainer | null> {
  // CoreNet-style `--common.config-file` / `--common.override-kwargs` / `--ddp.*` → train.ts flags.
  const resolved = resolveConfig(TrainConfig, translateCorenetArgv(argv), { resolveConfigName: resolveRecipe });
  if (resolved.help) {
    console.log(renderConfigHelp(TrainConfig, { usage: `usage: ${program} ${USAGE}` }));
    return null;
  }
  const cfg = resolved.config;
  // Deep Lake: the token leaves cfg at once, so it never reaches hparams, logs or checkpoints.
  const deeplakeToken = cfg.token;
  delete cfg.token;
  if (cfg.fp === '16') console.warn('`--fp 16` (train-CLIP\'s mixed precision): lightclip has only 32-bit training so far; training with --precision 32.');
  if (cfg.path && cfg.folder) throw new MisconfigurationError('`--path` (Deep Lake) and `--folder` exclude each other: give one dataset.');
  for (const file of toArray(cfg.import)) await import(pathToFileURL(path.resolve(file)).href);
  const custom = cfg.datamodule !== undefined && cfg.datamodule !== 'folder';
  const streamed = !custom && !cfg.folder && !cfg.path && usesStreamData(cfg);
  if ((cfg.folder || cfg.path) && usesStreamData(cfg)) throw new MisconfigurationError('`--folder`/`--path` and `--train_data`/`--val_data`/`--dataset` exclude each other: give one source of training data.');
  if (cfg.folder && cfg.path) throw new MisconfigurationError('`--folder` and `--path` exclude each other: give one source of training data.');
  if (!cfg.folder && !cfg.path && !custom && !streamed) throw new MisconfigurationError('`--folder` is required: a folder of images with same-stem .txt captions (or `--path`, a Deep Lake dataset, or streamed data: `--train_data`, `--dataset`, `--dataset_type img_text_tar --metadata`).');
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
    strategy = new DDPStrategy({ devices: cfg.devices, numNodes: cfg.num_nodes, backend: cfg.ddp_backend, initMethod: cfg.ddp_init });
  }
  await selectBackend({ accelerator: cfg.accelerator, quiet: typeof strategy !== 'string' && !strategy.isGlobalZero });
  seedEverything(cfg.seed);
  const finetune = cfg.image_encoder !== undefined || cfg.text_encoder !== undefined;
  if (cfg.wd !== undefined) cfg.weight_decay = cfg.wd;
  if (cfg.accum_freq > 1) {
    // open_clip's feature-cached accumulation = one contrastive batch of N loader batches,
    // re-encoded chunk by chunk: lightclip's gradient caching over a N-times larger batch.
    if (cfg.model !== undefined || finetune) throw new MisconfigurationError('`--accum_freq` is supported for CLIP models (`--model_name`), not with `--model` or fine-tuning.');
    if (cfg.minibatch_size === 0) cfg.minibatch_size = cfg.batch_size;
    cfg.batch_size *= cfg.accum_freq;
  }
  const resnetLike = !cfg.model && !finetune && isResNetConfig(resolveModelConfig(cfg.model_name));
  const openClip = { lrScheduler: cfg.lr_scheduler, epochsCooldown: cfg.epochs_cooldown, lrCooldownEnd: cfg.lr_cooldown_end, lrCooldownPower: cfg.lr_cooldown_power, gradClipNorm: cfg.grad_clip_norm };
  const betas: [number, number] | undefined =
    cfg.beta1 !== undefined || cfg.beta2 !== undefined ? [cfg.beta1 ?? 0.9, cfg.beta2 ?? (resnetLike ? 0.999 : 0.98)] : undefined;
  let model: LightningModule;
  let tokenizer: TextTokenizer;
  let imageSize: number;
  let contextLength: number;
  if (cfg.model === 'llip') {
    const modelConfig = resolveModelConfig(cfg.model_name);
    imageSize = cfg.image_size ?? modelConfig.vision.imageSize;
    contextLength = modelConfig.text.contextLength;
    tokenizer = ClipTokenizer.default();
    model = new LlipWrapper({
      modelName: modelConfig, imageSize, numMixtureTokens: cfg.num_mixture_tokens, temperature: cfg.llip_temperature, heads: cfg.llip_heads,
      patchDropout: cfg.force_patch_dropout, betas, eps: cfg.eps, openClip,
      loss: cfg.llip_loss, lr: cfg.lr, warmupSteps: cfg.warmup_steps, weightDecay: cfg.weight_decay, hparams: { ...cfg, image_size: imageSize },
    });
  } else if (cfg.model === 'catlip_transfer') {
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
    ({ model, tokenizer, imageSize, contextLength } = await buildFinetune(cfg));
  } else {
    const modelConfig = resolveModelConfig(cfg.model_name);
    imageSize = cfg.image_size ?? modelConfig.vision.imageSize;
    contextLength = modelConfig.text.contextLength;
    tokenizer = ClipTokenizer.default();
    const clip = createClip(modelConfig, { imageSize });
    applyOpenClipTowerOptions(clip, cfg);
    model = new ClipWrapper(clip, {
      betas,
      openClip,
      eps: cfg.eps,
      minibatchSize: cfg.minibatch_size,
      lr: cfg.lr,
      warmupSteps: cfg.warmup_steps,
      weightDecay: cfg.weight_decay,
      resnet: isResNetConfig(modelConfig),
      loss: cfg.siglip ? 'siglip' : 'infonce',
      siglipDistImpl: cfg.siglip_dist_impl,
      hparams: { ...cfg, image_size: imageSize },
    });
    if (cfg.pretrained) await loadOpenClipPretrained(model as ClipWrapper, cfg.pretrained);
  }
  const datamodule = cfg.model === 'catlip_transfer'
    ? new ImageFolderClassificationDataModule({ folder: cfg.folder, valFolder: cfg.val_folder, imageSize, batchSize: cfg.batch_size, seed: cfg.seed })
    : custom
    ? create<LightningDataModule>('datamodule', cfg.datamodule!, jsonArgs(cfg.datamodule_args, '--datamodule_args'), '--datamodule')
    : cfg.path
    ? new DeepLakeDataModule({
        path: cfg.path,
        token: deeplakeToken,
        filterNsfw: cfg.filter_NSFW,
        query: cfg.query,
        imageKey: cfg.image_key,
        textKey: cfg.text_key,
        branch: cfg.branch,
        commit: cfg.commit,
        valPath: cfg.val_path,
        cacheMb: cfg.deeplake_cache_mb,
        s3Endpoint: cfg.s3_endpoint,
        acceptAgreements: cfg.deeplake_agree,
        batchSize: cfg.batch_size,
        numWorkers: cfg.num_workers,
        imageSize,
        seed: cfg.seed,
        tokenizer,
        contextLength,
      })
    : streamed
      ? createStreamDataModule(cfg, { batchSize: cfg.batch_size, numWorkers: cfg.num_workers, imageSize, seed: cfg.seed, tokenizer, contextLength })
      : new ImageTextFolderDataModule({
        folder: cfg.folder,
        valFolder: cfg.val_folder,
        valFraction: cfg.val_fraction,
        resizeRatio: cfg.resize_ratio,
        shuffle: cfg.shuffle,
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
    accumulateGradBatches: cfg.accumulate_grad_batches,
    gradientClipVal: cfg.gradient_clip_val ?? null,
    gradientClipAlgorithm: cfg.gradient_clip_algorithm,
    valCheckInterval: cfg.val_check_interval ?? null,
    checkValEveryNEpoch: cfg.check_val_every_n_epoch,
    limitTrainBatches: cfg.limit_train_batches ?? null,
    limitValBatches: cfg.limit_val_batches ?? null,
    deterministic: cfg.deterministic,
    callbacks,
    // CatLIP's recipe clips the global norm at 1.0 unless --gradient_clip_val says otherwise (0: off).
    ...(cfg.model === 'catlip' ? { gradientClipVal: (cfg.gradient_clip_val ?? 1.0) > 0 ? (cfg.gradient_clip_val ?? 1.0) : null } : {}),
  });
  await trainer.fit(model, datamodule, { ckptPath: cfg.resume ?? null });
  return trainer;
}

/** --lock_image*, --lock_text*, --force_patch_dropout on a CLIP model (open_clip's create_model + lock_*_tower). */
function applyOpenClipTowerOptions(clip: CLIP, cfg: TrainConfig): void {
  if (cfg.force_patch_dropout > 0) {
    if (!(clip.visual instanceof VisionTransformer)) throw new MisconfigurationError('`--force_patch_dropout` needs a ViT image tower.');
    clip.visual.patchDropout = new PatchDropout(cfg.force_patch_dropout);
  }
  if (cfg.lock_image) lockImageTower(clip.visual, { unlockedGroups: cfg.lock_image_unlocked_groups, freezeBnStats: cfg.lock_image_freeze_bn_stats });
  if (cfg.lock_text) lockTextTower(clip, { unlockedLayers: cfg.lock_text_unlocked_layers, freezeLayerNorm: cfg.lock_text_freeze_layer_norm });
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

/**
 * Training parity harness (issue 9 §1): trains the same tiny CLIP in lightclip and in PyTorch
 * from the same initial weights on the same batches, and compares per-step losses and the
 * final weights.
 *
 * lightclip side: `createClip` → `ClipWrapper` → `Trainer.fit` over an `ArrayDataLoader` of
 * fixed batches (the path a user's run takes: AdamW over ClipWrapper's parameter groups,
 * warmup + cosine, logit-scale clamp, gradient caching with `--minibatch_size`). The initial
 * weights, the batches and the config go to safetensors/JSON files that
 * scripts/parity/torch_train.py reads; it trains OpenAI's architecture in PyTorch with
 * open_clip's recipe and writes its losses and final weights back.
 *
 *   npm run build && node dist/scripts/parity/harness.js            # all four configs
 *   node dist/scripts/parity/harness.js --config vit --minibatch_size 4 --steps 50
 *
 * BatchNorm with gradient caching: each chunk's forward pass normalises with the chunk's
 * own statistics, so the loss is that of a model whose BatchNorm runs per chunk ("ghost
 * batch norm"), not the full-batch one. The PyTorch side therefore runs the image tower chunk
 * by chunk for the ResNet configs with `--minibatch_size` (one plain autograd graph, chunked
 * forward); for the ViT it always runs the full batch, which gradient caching must equal.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../core/backend.js';
import { Callback } from '../../core/callback.js';
import { readSafetensors, writeSafetensors } from '../../core/checkpoint/safetensors.js';
import { ArrayDataLoader } from '../../core/data.js';
import { seedEverything } from '../../core/random.js';
import { Trainer } from '../../core/trainer.js';
import { tf } from '../../core/tf.js';
import { isResNetConfig, parseClipConfig, type ClipConfig } from '../../modules/clip/config.js';
import { createClip } from '../../modules/clip/factory.js';
import { ClipWrapper } from '../../modules/wrappers/clipWrapper.js';

/** The two towers the harness trains (small enough for a CI test). */
export const PARITY_MODELS: Record<'vit' | 'rn', Record<string, unknown>> = {
  vit: {
    embed_dim: 32, image_resolution: 32, vision_layers: 2, vision_width: 64, vision_patch_size: 8, vision_heads: 2,
    context_length: 16, vocab_size: 512, transformer_width: 32, transformer_heads: 2, transformer_layers: 2,
  },
  rn: {
    embed_dim: 32, image_resolution: 32, vision_layers: [1, 1, 1, 1], vision_width: 8, vision_patch_size: null,
    context_length: 16, vocab_size: 512, transformer_width: 32, transformer_heads: 2, transformer_layers: 2,
  },
};

/** One harness run. */
export interface ParityOptions {
  model: 'vit' | 'rn';
  /** Gradient-caching chunk (0 = none). */
  minibatchSize: number;
  steps: number;
  /** The steps run over this many epochs of the same `steps/epochs` batches (epoch boundaries are part of the path). */
  epochs: number;
  batchSize: number;
  warmupSteps: number;
  lr: number;
  weightDecay: number;
  seed: number;
  /** Working directory for the exchanged files. */
  dir: string;
  python: string;
}

/** What a run measured. */
export interface ParityResult {
  name: string;
  lightclipLosses: number[];
  torchLosses: number[];
  /** max over steps of |a − b| / |b|. */
  maxLossRelDiff: number;
  /** max over every parameter and buffer of |a − b|, key biases excepted (see {@link keyBiasElements}). */
  maxWeightAbsDiff: number;
  /** max |a − b| over the key biases alone (reported, not a parity measure). */
  keyBiasAbsDiff: number;
  /** The same two measures between PyTorch float32 and PyTorch float64: float32's own rounding floor. */
  floorLossRelDiff: number;
  floorWeightAbsDiff: number;
  /** Tensor with the largest difference. */
  worstWeight: string;
  /** Largest |Δ| of the weights themselves over training (so the diff has a scale). */
  maxWeightChange: number;
}

export const DEFAULT_PARITY: Omit<ParityOptions, 'model' | 'minibatchSize' | 'dir'> = {
  steps: 50, epochs: 2, batchSize: 16, warmupSteps: 10, lr: 5e-4, weightDecay: 0.2, seed: 0, python: '/usr/bin/python3',
};

/**
 * Fixed batches: images N(0, 1) NHWC plus a smooth per-sample pattern (so the towers have
 * something to match), token ids in [1, vocab−2] with EOT (vocab−1) at a random position.
 */
function makeData(cfg: ClipConfig, n: number, seed: number): { images: tf.Tensor4D; texts: tf.Tensor2D } {
  const s = cfg.vision.imageSize;
  const ctx = cfg.text.contextLength;
  const vocab = cfg.text.vocabSize;
  const images = tf.tidy(() => tf.randomNormal([n, s, s, 3], 0, 1, 'float32', seed + 1)) as tf.Tensor4D;
  let st = (seed * 2654435761 + 12345) >>> 0 || 1;
  const rand = () => {
    st ^= st << 13; st >>>= 0; st ^= st >>> 17; st ^= st << 5; st >>>= 0;
    return st / 4294967296;
  };
  const ids = new Int32Array(n * ctx);
  for (let r = 0; r < n; r++) {
    const eot = 2 + Math.floor(rand() * (ctx - 2));
    for (let c = 0; c < eot; c++) ids[r * ctx + c] = 1 + Math.floor(rand() * (vocab - 2));
    ids[r * ctx + eot] = vocab - 1; // zeros after EOT, as tokenizers pad
  }
  return { images, texts: tf.tensor2d(ids, [n, ctx], 'int32') };
}

/**
 * The elements of `key`'s tensor that are attention *key* biases: the middle third of a
 * packed `in_proj_bias` and the attention pool's `k_proj.bias`. Adding b to every key adds
 * q·b to a whole row of scores, which softmax ignores, so their gradient is exactly zero in
 * exact arithmetic; in float32 it is rounding noise (~1e-9), which AdamW divides by its own
 * root-mean-square and turns into updates of up to lr per step in both frameworks alike.
 * Their final values are thus noise in both, and the harness reports them on their own.
 */
export function keyBiasElements(key: string, size: number): [number, number] | null {
  if (key.endsWith('attn.in_proj_bias')) return [size / 3, (2 * size) / 3];
  if (key.endsWith('attnpool.k_proj.bias')) return [0, size];
  return null;
}

function stateDictTensors(module: { stateDict(): Record<string, tf.Tensor> }): Record<string, tf.Tensor> {
  return module.stateDict();
}

/** Runs both sides of one config and compares them. */
export async function runParity(o: ParityOptions): Promise<ParityResult> {
  const name = `${o.model}${o.minibatchSize ? `-mb${o.minibatchSize}` : ''}`;
  const dir = path.join(o.dir, name);
  mkdirSync(dir, { recursive: true });
  await selectBackend({});
  seedEverything(o.seed);
  const cfg = parseClipConfig(PARITY_MODELS[o.model], `parity ${o.model}`);
  const model = createClip(cfg);
  if (o.steps % o.epochs !== 0) throw new Error(`--steps ${o.steps} must be a multiple of the epochs (${o.epochs})`);
  const n = (o.steps / o.epochs) * o.batchSize;
  const { images, texts } = makeData(cfg, n, o.seed);
  await writeSafetensors(path.join(dir, 'init.safetensors'), stateDictTensors(model));
  await writeSafetensors(path.join(dir, 'data.safetensors'), { images, texts });
  const resnet = isResNetConfig(cfg);
  const run = {
    steps: o.steps, epochs: o.epochs, batch_size: o.batchSize, warmup_steps: o.warmupSteps, lr: o.lr, weight_decay: o.weightDecay,
    minibatch_size: o.minibatchSize, betas: resnet ? [0.9, 0.999] : [0.9, 0.98], eps: resnet ? 1e-8 : 1e-6,
    model: {
      embed_dim: cfg.embedDim, image_size: cfg.vision.imageSize, patch_size: cfg.vision.patchSize ?? null,
      vision_width: cfg.vision.width, vision_layers: cfg.vision.layers, vision_heads: cfg.vision.heads,
      context_length: cfg.text.contextLength, vocab_size: cfg.text.vocabSize, text_width: cfg.text.width,
      text_heads: cfg.text.heads, text_layers: cfg.text.layers, quick_gelu: cfg.quickGelu,
    },
  };
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify(run, null, 1));

  // lightclip: the user's path.
  const wrapper = new ClipWrapper(model, {
    minibatchSize: o.minibatchSize, lr: o.lr, warmupSteps: o.warmupSteps, weightDecay: o.weightDecay, resnet, totalSteps: o.steps,
  });
  const losses: number[] = [];
  class RecordLoss extends Callback {
    override onTrainBatchEnd(_t: Trainer, _m: unknown, outputs: Record<string, number>): void {
      losses.push(outputs.loss!);
    }
  }
  const trainer = new Trainer({
    maxEpochs: o.epochs, logger: false, enableCheckpointing: false, enableProgressBar: false, numSanityValSteps: 0,
    defaultRootDir: dir, callbacks: [new RecordLoss()],
  });
  await trainer.fit(wrapper, { train: new ArrayDataLoader({ images, texts }, { batchSize: o.batchSize }) });
  const finalLc = stateDictTensors(model);
  await writeSafetensors(path.join(dir, 'lightclip_final.safetensors'), finalLc);
  writeFileSync(path.join(dir, 'lightclip.json'), JSON.stringify({ losses }));

  // PyTorch side.
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_train.py');
  const torchScript = script.includes(`${path.sep}dist${path.sep}`) ? script.replace(`${path.sep}dist${path.sep}`, path.sep) : script;
  for (const extra of [[], ['--float64']]) {
    const r = spawnSync(o.python, [torchScript, '--dir', dir, ...extra], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (r.status !== 0) throw new Error(`${torchScript} ${extra.join(' ')} failed (exit ${r.status}): ${r.stderr || r.error}`);
  }
  const readLosses = (f: string) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { losses: number[] }).losses;
  const torchLosses = readLosses('torch.json');
  const torch64Losses = readLosses('torch64.json');
  const finalTorch = (await readSafetensors(path.join(dir, 'torch_final.safetensors'))).tensors;
  const finalTorch64 = (await readSafetensors(path.join(dir, 'torch64_final.safetensors'))).tensors;
  const init = (await readSafetensors(path.join(dir, 'init.safetensors'))).tensors;
  let floorW = 0;
  for (const [key, t] of Object.entries(finalTorch)) {
    const a = t.data;
    const b = finalTorch64[key]!.data;
    const kb = keyBiasElements(key, a.length);
    for (let i = 0; i < a.length; i++) if (!(kb && i >= kb[0] && i < kb[1])) floorW = Math.max(floorW, Math.abs(Number(a[i]) - Number(b[i])));
  }

  let maxW = 0;
  let keyBias = 0;
  let worst = '';
  let maxChange = 0;
  for (const [key, t] of Object.entries(finalLc)) {
    const a = t.dataSync();
    const b = finalTorch[key]?.data;
    if (!b) throw new Error(`PyTorch's final weights have no ${key}`);
    const i0 = init[key]!.data;
    const kb = keyBiasElements(key, a.length);
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(Number(a[i]) - Number(b[i]));
      if (kb && i >= kb[0] && i < kb[1]) {
        keyBias = Math.max(keyBias, d);
        continue;
      }
      if (d > maxW) [maxW, worst] = [d, key];
      // Weight change of float tensors only (num_batches_tracked counts steps).
      if (t.dtype === 'float32') maxChange = Math.max(maxChange, Math.abs(Number(a[i]) - Number(i0[i])));
    }
  }
  let maxRel = 0;
  let floorRel = 0;
  for (let i = 0; i < o.steps; i++) {
    maxRel = Math.max(maxRel, Math.abs(losses[i]! - torchLosses[i]!) / Math.abs(torchLosses[i]!));
    floorRel = Math.max(floorRel, Math.abs(torchLosses[i]! - torch64Losses[i]!) / Math.abs(torch64Losses[i]!));
  }
  tf.dispose([images, texts]);
  wrapper.dispose();
  return { name, lightclipLosses: losses, torchLosses, maxLossRelDiff: maxRel, maxWeightAbsDiff: maxW, keyBiasAbsDiff: keyBias, floorLossRelDiff: floorRel, floorWeightAbsDiff: floorW, worstWeight: worst, maxWeightChange: maxChange };
}

/** The four configs of issue 9. */
export const PARITY_CONFIGS: Array<Pick<ParityOptions, 'model' | 'minibatchSize'> & { batchSize?: number }> = [
  { model: 'vit', minibatchSize: 0 },
  { model: 'vit', minibatchSize: 4 },
  // The BatchNorm ResNet is chaotic at float32 rounding level (zero-initialised bn3 gains,
  // eps 1e-8): PyTorch float32 vs float64 alone differs by ~1e-3 in its weights (the
  // `floor*` fields); at batch 32 in chunks of 8 the floor is 3.6e-3, above the target.
  { model: 'rn', minibatchSize: 0 },
  { model: 'rn', minibatchSize: 4 },
];

async function main(argv: string[]): Promise<void> {
  const arg = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = arg('config');
  const mb = arg('minibatch_size');
  const configs = only ? [{ model: only as 'vit' | 'rn', minibatchSize: Number(mb ?? 0) }] : PARITY_CONFIGS;
  const dir = path.resolve(arg('dir') ?? 'parity_runs');
  const steps = Number(arg('steps') ?? DEFAULT_PARITY.steps);
  const verbose = argv.includes('--verbose');
  const rows: ParityResult[] = [];
  for (const c of configs) {
    const res = await runParity({ ...DEFAULT_PARITY, ...c, steps, dir });
    if (verbose) {
      console.log(`${res.name}: step  lightclip  pytorch`);
      res.lightclipLosses.forEach((l, i) => console.log(`  ${String(i).padStart(3)}  ${l.toFixed(7)}  ${res.torchLosses[i]!.toFixed(7)}`));
    }
    rows.push(res);
  }
  console.log('lightclip vs PyTorch (float32); floor = PyTorch float32 vs float64');
  console.log('config     max loss rel diff  max weight abs diff  key-bias abs diff  floor loss  floor weights  (worst tensor; largest weight change)');
  for (const r of rows) {
    const e = (x: number, w: number) => x.toExponential(2).padStart(w);
    console.log(`${r.name.padEnd(10)} ${e(r.maxLossRelDiff, 17)}  ${e(r.maxWeightAbsDiff, 19)}  ${e(r.keyBiasAbsDiff, 17)}  ${e(r.floorLossRelDiff, 10)}  ${e(r.floorWeightAbsDiff, 13)}  (${r.worstWeight}; ${r.maxWeightChange.toExponential(2)})`);
  }
  const ok = rows.every((r) => r.maxLossRelDiff < 1e-4 && r.maxWeightAbsDiff < 1e-3);
  console.log(ok ? 'PARITY OK: every config within 1e-4 relative loss and 1e-3 absolute weights' : 'PARITY FAILED');
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exitCode = 2;
  });
}

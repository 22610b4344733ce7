/**
 * The CLIP training-step benchmarks: the real lightclip model (`createClip`) inside the real
 * `ClipWrapper`, stepped as the Trainer steps it (zeroGrad, `computeGradients` = forward +
 * symmetric InfoNCE + backward, AdamW over ClipWrapper's own param groups, LR scheduler step,
 * logit-scale clamp) minus the hooks and logging, which need a Trainer.
 * scripts/bench/torch_clip.py builds the same architecture in PyTorch; both report their
 * parameter count so the bench can check that the two models are the same size.
 */
import { tf, type Tensor } from '../../core/tf.js';
import type { Optimizer } from '../../core/optim/optimizer.js';
import type { LRScheduler } from '../../core/optim/lrScheduler.js';
import { isResNetConfig, parseClipConfig, type ClipConfig } from '../../modules/clip/config.js';
import { createClip } from '../../modules/clip/factory.js';
import { ClipWrapper } from '../../modules/wrappers/clipWrapper.js';

/**
 * A small ViT CLIP (OpenAI's flat config keys) for the per-op overhead end of the range:
 * 64 px images in 8 px patches (65 tokens), width 256, 4 layers per tower, full 77-token text.
 * Kept here rather than in configs/ so that it does not become a registered model name.
 */
export const SMALL_VIT_CONFIG = {
  embed_dim: 256,
  image_resolution: 64,
  vision_layers: 4,
  vision_width: 256,
  vision_patch_size: 8,
  context_length: 77,
  vocab_size: 49408,
  transformer_width: 256,
  transformer_heads: 4,
  transformer_layers: 4,
};

/** One CLIP step benchmark: model, batch size. */
export interface ClipStepSpec {
  name: string;
  description: string;
  model: string | ClipConfig;
  batch: number;
}

/** The CLIP step benchmarks; torch_clip.py has an entry of the same name for each. */
export const CLIP_STEPS: ClipStepSpec[] = [
  { name: 'clip-vit-b32-b16', description: 'CLIP ViT-B/32 at 224 px, batch 16, full training step', model: 'ViT-B/32', batch: 16 },
  { name: 'clip-rn50-b8', description: 'CLIP RN50 (ModifiedResNet) at 224 px, batch 8, full training step', model: 'RN50', batch: 8 },
  { name: 'clip-small-vit-b16', description: 'small CLIP ViT (64 px, patch 8, width 256, 4+4 layers), batch 16', model: parseClipConfig(SMALL_VIT_CONFIG, 'small ViT bench config'), batch: 16 },
];

/**
 * Deterministic random token ids `[batch, context]`: ids in [1, 49406], the EOT token 49407
 * (the largest id, which the text tower pools at) at a random position per row and at the
 * last position in row 0. Row 0 keeps lightclip's padding trim from shortening the batch, so
 * both sides encode all 77 positions, as PyTorch's CLIP always does.
 */
export function randomTokens(batch: number, context: number, vocab: number, seed = 3): Tensor {
  const ids = new Int32Array(batch * context);
  let s = seed >>> 0;
  const rand = () => {
    // xorshift32: a fixed sequence without touching tfjs' RNG state
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  for (let r = 0; r < batch; r++) {
    for (let c = 0; c < context; c++) ids[r * context + c] = 1 + Math.floor(rand() * (vocab - 2));
    const eot = r === 0 ? context - 1 : Math.floor(rand() * context);
    ids[r * context + eot] = vocab - 1;
  }
  return tf.tensor2d(ids, [batch, context], 'int32');
}

/** A built CLIP training step. */
export interface ClipStepInstance {
  /** Trainable parameters (the bench compares this with PyTorch's count). */
  paramCount: number;
  step(): Promise<number>;
  dispose(): void;
}

/** Build the model, wrapper, optimizer and a fixed random batch on the active backend. */
export function setupClipStep(spec: ClipStepSpec): ClipStepInstance {
  const model = createClip(spec.model);
  const wrapper = new ClipWrapper(model, { warmupSteps: 10, totalSteps: 1000, resnet: isResNetConfig(model.config) });
  const cfg = wrapper.configureOptimizers() as { optimizer: Optimizer; lrScheduler: { scheduler: LRScheduler } };
  const opt = cfg.optimizer;
  const sched = cfg.lrScheduler.scheduler;
  const size = model.config.vision.imageSize;
  const images = tf.randomNormal([spec.batch, size, size, 3], 0, 1, 'float32', 7);
  const texts = randomTokens(spec.batch, model.config.text.contextLength, model.config.text.vocabSize);
  const paramCount = wrapper.parameters().reduce((n, p) => n + p.size, 0);
  return {
    paramCount,
    async step() {
      opt.zeroGrad();
      const { loss, logits } = await wrapper.computeGradients({ images, texts });
      opt.step();
      sched.step();
      wrapper.clampLogitScale();
      const value = (await loss.data())[0]!;
      tf.dispose([loss, logits]);
      return value;
    },
    dispose() {
      opt.zeroGrad();
      opt.dispose();
      tf.dispose([images, texts]);
      wrapper.dispose();
    },
  };
}

/**
 * The transformer-block training-step benchmarks: each entry builds one CLIP residual block
 * from tf ops, runs one step and disposes. torch_bench.py has an entry of the same name for the
 * same architecture. The whole-model CLIP steps (the real model in ClipWrapper) are in
 * clip_step.ts, with their PyTorch side in torch_clip.py.
 */
import { tf } from '../../core/tf.js';
import type { BlockConfig } from './transformer_block.js';
import { disposeTrainer, makeBlockParams, makeTrainer, trainStep } from './transformer_block.js';

/** A runnable training step. */
export interface StepInstance {
  step(): void;
  dispose(): void;
}

/** One training-step benchmark. */
export interface StepBenchmark {
  name: string;
  description: string;
  /** Image-text pairs (or samples) consumed by one step. */
  pairsPerStep: number;
  /** Whether tfjs' own cpu backend is fast enough to be timed on it. */
  runOnTfjsCpu: boolean;
  /** Build the model on the active backend; `fused` selects the fused native ops. */
  setup(fused: boolean): StepInstance;
}

function blockBenchmark(name: string, description: string, cfg: BlockConfig, runOnTfjsCpu: boolean): StepBenchmark {
  return {
    name,
    description,
    pairsPerStep: cfg.batch,
    runOnTfjsCpu,
    setup(fused) {
      const tr = makeTrainer(makeBlockParams(cfg, 1));
      const x = tf.randomNormal([cfg.batch, cfg.tokens, cfg.width], 0, 1, 'float32', 2);
      return {
        step: () => { trainStep(tr, x, cfg, fused, 1e-4); },
        dispose: () => { x.dispose(); disposeTrainer(tr); },
      };
    },
  };
}

/** Every step benchmark, in report order. */
export const STEP_BENCHMARKS: StepBenchmark[] = [
  blockBenchmark('vit-b32-block', 'one ViT-B/32 vision block (50 tokens, width 768, 12 heads), batch 32',
    { batch: 32, tokens: 50, width: 768, heads: 12, causal: false }, false),
  blockBenchmark('text-block', 'one CLIP text block (77 tokens, width 512, 8 heads, causal), batch 32',
    { batch: 32, tokens: 77, width: 512, heads: 8, causal: true }, false),
  blockBenchmark('vit-b32-block-b2', 'the ViT-B/32 block at batch 2 (small enough for tfjs cpu)',
    { batch: 2, tokens: 50, width: 768, heads: 12, causal: false }, true),
];

/**
 * `Trainer({ deterministic: true })` (Lightning's `deterministic=True`, which calls
 * `torch.use_deterministic_algorithms`). lightclip's CPU backends are deterministic for a
 * given thread count already: the native kernels split reductions by thread and add the
 * parts in thread order, and decoded batches arrive in sample order. What is not:
 * libtensorflow's GPU/cuDNN kernels (tfjs-node-gpu), which read `TF_DETERMINISTIC_OPS`
 * and `TF_CUDNN_DETERMINISTIC` when they load — set here before the backend is chosen — and
 * an unseeded run, which starts from different weights each time (a warning).
 */
export function applyDeterminism(deterministic: boolean, seed: number | null, env: NodeJS.ProcessEnv = process.env): string[] {
  if (!deterministic) return [];
  env.TF_DETERMINISTIC_OPS ??= '1';
  env.TF_CUDNN_DETERMINISTIC ??= '1';
  const warnings: string[] = [];
  if (seed === null) warnings.push('`deterministic: true` without a `seed`: each run starts from different random weights and data order; pass `seed` (`--seed`) to repeat a run exactly.');
  return warnings;
}

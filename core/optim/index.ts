/** Optimizers, gradient clipping, parameter groups and learning-rate schedules. */
export { Optimizer, type BaseHyperparams, type ParamGroup, type ParamGroupInput, type ParamState, type OptimizerStateDict, type OptimizerStateJson } from './optimizer.js';
export { Adam, type AdamHyperparams, type AdamOptions } from './adam.js';
export { AdamW } from './adamw.js';
export { SGD, type SGDHyperparams, type SGDOptions } from './sgd.js';
export { clipGradNorm, clipGradValue } from './clip.js';
export { weightDecayParamGroups, defaultNoDecay, type WeightDecayGroup, type WeightDecayGroupOptions } from './paramGroups.js';
export {
  LRScheduler,
  CosineWarmupScheduler,
  ConstantLR,
  StepLR,
  LambdaLR,
  type LRSchedulerState,
  type CosineWarmupOptions,
  type ConstantLROptions,
  type StepLROptions,
  type LrLambda,
} from './lrScheduler.js';

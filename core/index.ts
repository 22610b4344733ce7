/**
 * lightclip's core: the Trainer and LightningModule, `nn`, `optim`, checkpoints, configs,
 * the registry and backend selection. Everything above (`modules/`, `datamodules/`,
 * `callbacks/`, `strategies/`, `loggers/`) builds on these.
 */
export { tf, type Tensor, type Variable } from './tf.js';
export { Trainer, type TrainerOptions, type Loaders } from './trainer.js';
export { LightningModule, type GradientContext, type ManualOptimizer } from './module.js';
export { LightningDataModule, type DataLoader, type Stage } from './datamodule.js';
export { ArrayDataLoader, type ArrayDataLoaderOptions } from './data.js';
export { Callback, type TensorState } from './callback.js';
export { Logger } from './logger.js';
export { Strategy, SingleDeviceStrategy } from './strategy.js';
export { MisconfigurationError } from './errors.js';
export { register, registerClass, create, getEntry, isRegistered, listRegistered, type RegistryEntry } from './registry.js';
export { Generator, defaultGenerator, seedEverything } from './random.js';
export { RecordedForward, backward } from './autograd.js';
export { selectBackend, registerNativeBackendProvider, type Accelerator, type BackendSelection } from './backend.js';
export { Describe, parseCliFlags, loadConfigFile, parseConfig, resolveConfig, renderConfigHelp } from './config.js';
export { readSafetensors, writeSafetensors, loadSafetensorsAsTensors, encodeSafetensors, decodeSafetensors, SafetensorsError } from './checkpoint/safetensors.js';
export { saveCheckpointFile, loadCheckpointFile } from './checkpoint/io.js';
export type { LogOptions } from './connectors/results.js';
export type { OptimizerConfig, OptimizerLike, LRSchedulerLike, LRSchedulerConfig, TrainingStepOutput } from './types.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';

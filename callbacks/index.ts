/** Built-in callbacks; importing this module registers them by name. */
export { Callback, type TensorState } from './callback.js';
export { ModelCheckpoint, type ModelCheckpointOptions } from './modelCheckpoint.js';
export { EarlyStopping, type EarlyStoppingOptions } from './earlyStopping.js';
export { LearningRateMonitor, type LearningRateMonitorOptions } from './lrMonitor.js';
export { ProgressBar, type ProgressBarOptions } from './progressBar.js';
export { EMA, type EMAOptions } from './ema.js';
export { ZeroShotEval, zeroShotAccuracy, zeroShotClassifier, type ZeroShotEvalOptions, type ZeroShotEncoders, type ZeroShotBatch, type TopKResult } from './zeroShot.js';

import * as path from 'node:path';
import { tf, type Tensor } from './tf.js';
import type { Callback } from './callback.js';
import { buildCallbacks, mergeModuleCallbacks } from './connectors/callbackConnector.js';
import { CheckpointConnector } from './connectors/checkpointConnector.js';
import { LoggerConnector } from './connectors/loggerConnector.js';
import type { LogOptions } from './connectors/results.js';
import { LightningDataModule, type DataLoader, type Stage } from './datamodule.js';
import { MisconfigurationError } from './errors.js';
import { callCallbackHooks, callModuleHook } from './hooks/call.js';
import type { Logger } from './logger.js';
import { FitLoop } from './loops/fitLoop.js';
import { runEvaluationLoop } from './loops/evaluationLoop.js';
import { checkLimit, limitBatches } from './loops/limits.js';
import { manualBackward, verifyManualOptimizationSupport } from './loops/optimization.js';
import type { LightningModule } from './module.js';
import type { Parameter } from './nn/module.js';
import { clipGradNorm, clipGradValue } from './optim/clip.js';
import { seedEverything } from './random.js';
import { ensureBackend } from './backend.js';
import { applyDeterminism } from './deterministic.js';
import { create, isRegistered } from './registry.js';
import { SingleDeviceStrategy, type Strategy } from './strategy.js';
import { normalizeOptimizerConfig, type OptimizerLike, type OptimizersAndSchedulers } from './types.js';
import { TrainerOptionsSchema, validateTrainerOptions, type TrainerOptions } from './trainerOptions.js';

export type { TrainerOptions } from './trainerOptions.js';

/** Loaders given directly instead of a DataModule. */
export interface Loaders {
  train?: DataLoader;
  val?: DataLoader | null;
  test?: DataLoader | null;
  predict?: DataLoader | null;
}

/**
 * Lightning's `Trainer`: it only coordinates. Options are validated in the constructor;
 * `fit()` runs one linear sequence (Lightning's `_run` order): strategy setup →
 * `prepareData` → `setup` → loaders → `configureOptimizers` → restore checkpoint →
 * broadcast weights → `onFitStart` → sanity check → `onTrainStart` → fit loop →
 * `onTrainEnd` → `onFitEnd` → teardown. Counters live in the loops; the Trainer exposes
 * read-only getters.
 *
 * @example
 * ```ts
 * const trainer = new Trainer({ maxEpochs: 3, accumulateGradBatches: 2, gradientClipVal: 1 });
 * await trainer.fit(model, datamodule);
 * await trainer.fit(model, datamodule, { ckptPath: 'last' }); // resume
 * ```
 */
export class Trainer {
  readonly options: Required<Omit<TrainerOptions, 'logger' | 'callbacks' | 'strategy' | 'seed'>> & { seed: number | null };
  readonly strategy: Strategy;
  readonly loggers: Logger[];
  callbacks: Callback[];
  readonly loggerConnector: LoggerConnector;
  readonly checkpointConnector: CheckpointConnector;
  readonly fitLoop: FitLoop;
  /** The hook being dispatched (read by `log()`). */
  currentHookName: string | null = null;
  /** Set by callbacks (EarlyStopping) or the module to end training. */
  shouldStop = false;
  optimizers: OptimizerLike[] = [];
  lrSchedulerConfigs: OptimizersAndSchedulers['schedulers'] = [];
  datamodule: LightningDataModule | null = null;
  trainDataloader: DataLoader | null = null;
  valDataloader: DataLoader | null = null;
  /** Training batches per epoch after limits (Infinity when the loader has no length). */
  numTrainingBatches = Infinity;
  /** Batches seen by the last evaluation loop. */
  evalBatchesSeen = 0;
  /** True while validation or test runs; `testing` tells which. */
  evaluating = false;
  testing = false;
  sanityChecking = false;
  stage: Stage | null = null;
  private module: LightningModule | null = null;
  private userCallbacks: Callback[];

  constructor(options: TrainerOptions = {}) {
    const o = validateTrainerOptions(options);
    this.options = o.resolved;
    this.strategy = options.strategy instanceof Object ? options.strategy : resolveStrategy(options.strategy ?? 'auto');
    this.loggers = resolveLoggers(options.logger ?? true, o.resolved.defaultRootDir, o.resolved.fastDevRun > 0);
    this.userCallbacks = options.callbacks ?? [];
    this.callbacks = buildCallbacks(this.userCallbacks, {
      enableProgressBar: o.resolved.enableProgressBar,
      enableCheckpointing: o.resolved.enableCheckpointing && o.resolved.fastDevRun === 0,
      defaultRootDir: o.resolved.defaultRootDir,
    });
    this.loggerConnector = new LoggerConnector(this);
    this.checkpointConnector = new CheckpointConnector(this);
    this.fitLoop = new FitLoop(this);
    if (o.resolved.seed !== null) seedEverything(o.resolved.seed);
  }

  /** The schema of the options (for `--help` and config validation). */
  static readonly optionsSchema = TrainerOptionsSchema;

  // ---- read-only state ----
  get lightningModule(): LightningModule {
    if (!this.module) throw new Error('No LightningModule is attached to this Trainer (call fit/validate/test first).');
    return this.module;
  }
  get globalStep(): number {
    return this.fitLoop.globalStep;
  }
  get currentEpoch(): number {
    return this.fitLoop.epoch;
  }
  get maxEpochs(): number {
    return this.options.maxEpochs;
  }
  get minEpochs(): number {
    return this.options.minEpochs;
  }
  get maxSteps(): number {
    return this.options.maxSteps;
  }
  get accumulateGradBatches(): number {
    return this.options.accumulateGradBatches;
  }
  get gradientClipVal(): number | null {
    return this.options.gradientClipVal;
  }
  get gradientClipAlgorithm(): 'norm' | 'value' {
    return this.options.gradientClipAlgorithm;
  }
  get limitTrainBatches(): number | null {
    return this.options.limitTrainBatches;
  }
  get limitValBatches(): number | null {
    return this.options.limitValBatches;
  }
  get valCheckInterval(): number | null {
    return this.options.valCheckInterval;
  }
  get checkValEveryNEpoch(): number {
    return this.options.checkValEveryNEpoch;
  }
  get logEveryNSteps(): number {
    return this.options.logEveryNSteps;
  }
  get isGlobalZero(): boolean {
    return this.strategy.isGlobalZero;
  }
  get callbackMetrics(): Record<string, number> {
    return this.loggerConnector.callbackMetrics;
  }
  get progressBarMetrics(): Record<string, number> {
    return this.loggerConnector.progressBarMetrics;
  }
  get loggedMetrics(): Record<string, number> {
    return this.loggerConnector.loggedMetrics;
  }
  /** The first logger (Lightning's `trainer.logger`), or null. */
  get logger(): Logger | null {
    return this.loggers[0] ?? null;
  }
  /** Where checkpoints go by default: the first logger's version dir, else the root dir. */
  get logDir(): string {
    return this.sharedLogDir ?? this.logger?.logDir ?? this.options.defaultRootDir;
  }

  /** Rank 0's log directory on every rank (asking a logger on another rank would claim a new version). */
  private sharedLogDir: string | null = null;
  get defaultRootDir(): string {
    return this.options.defaultRootDir;
  }

  /**
   * Optimizer steps the whole fit will take (Lightning's `estimated_stepping_batches`):
   * `maxSteps` when set, else ceil(batches per epoch / accumulateGradBatches) × maxEpochs.
   * LR schedules use this for their length.
   */
  get estimatedSteppingBatches(): number {
    if (this.maxSteps >= 0) return this.maxSteps;
    const length = this.trainDataloader?.length;
    const perEpoch = Math.min(limitBatches(this.limitTrainBatches, length), length ?? Infinity);
    if (!Number.isFinite(perEpoch) || this.maxEpochs < 0) {
      throw new MisconfigurationError('`estimatedSteppingBatches` needs `maxSteps`, or `maxEpochs` with a train loader of known `length`.');
    }
    return Math.ceil(perEpoch / this.accumulateGradBatches) * this.maxEpochs;
  }

  // ---- called by LightningModule ----
  logMetric(name: string, value: number, options: LogOptions): void {
    this.loggerConnector.log(name, value, options);
  }
  manualBackward(lossFn: () => Tensor): Tensor {
    return manualBackward(this, this.lightningModule, lossFn);
  }
  onManualOptimizerStep(): void {
    this.fitLoop.onManualOptimizerStep();
  }
  clipGradients(params: Parameter[], clipVal: number, algorithm: 'norm' | 'value'): number | null {
    if (algorithm === 'value') {
      clipGradValue(params, clipVal);
      return null;
    }
    return clipGradNorm(params, clipVal);
  }

  // ---- entry points ----
  /**
   * Trains `module`. `ckptPath` resumes from a checkpoint: a path, or `'last'` for the
   * latest `last.ckpt` under the log directory.
   * @throws MisconfigurationError when there is no train loader or the checkpoint is unusable.
   */
  async fit(module: LightningModule, data: LightningDataModule | Loaders, options: { ckptPath?: string | null } = {}): Promise<void> {
    await this.run('fit', module, data, async () => {
      // SET UP THE TRAINER
      this.trainDataloader = this.datamodule ? this.datamodule.trainDataloader() : ((data as Loaders).train ?? null);
      if (!this.trainDataloader) throw new MisconfigurationError('`fit` needs a train loader: a DataModule with `trainDataloader()` or `{ train }`.');
      this.valDataloader = this.datamodule ? this.datamodule.valDataloader() : ((data as Loaders).val ?? null);
      this.shardLoaders(this.trainDataloader, this.valDataloader);
      this.configureOptimizers();
      verifyManualOptimizationSupport(this);
      // Rank 0 decides which file every rank resumes from ('last' may differ across nodes).
      const ckpt = await this.strategy.broadcast(await this.resolveCkptPath(options.ckptPath ?? null));
      if (ckpt) await this.checkpointConnector.restore(ckpt);
      await this.strategy.broadcastParameters(module.parameters());
      await this.strategy.broadcastBuffers(module.namedBuffers().map(([, b]) => b));
      for (const logger of this.strategy.isGlobalZero ? this.loggers : []) logger.logHyperparams({ ...module.hparams, ...(this.datamodule?.hparams ?? {}) });
      // RUN THE TRAINER
      await callCallbackHooks(this, 'onFitStart');
      callModuleHook(this, 'onFitStart');
      await this.runSanityCheck();
      module.train();
      await callCallbackHooks(this, 'onTrainStart');
      callModuleHook(this, 'onTrainStart');
      await this.fitLoop.run();
      await callCallbackHooks(this, 'onTrainEnd');
      callModuleHook(this, 'onTrainEnd');
      await callCallbackHooks(this, 'onFitEnd');
      callModuleHook(this, 'onFitEnd');
    });
  }

  /** Runs one validation epoch; returns the logged metrics. */
  async validate(module: LightningModule, data: LightningDataModule | Loaders, options: { ckptPath?: string | null } = {}): Promise<Record<string, number>> {
    return this.evaluate('validate', module, data, options.ckptPath ?? null);
  }

  /** Runs one test epoch; returns the logged metrics. */
  async test(module: LightningModule, data: LightningDataModule | Loaders, options: { ckptPath?: string | null } = {}): Promise<Record<string, number>> {
    return this.evaluate('test', module, data, options.ckptPath ?? null);
  }

  /** Runs `predictStep` over the predict loader; returns the collected outputs. */
  async predict(module: LightningModule, data: LightningDataModule | Loaders): Promise<unknown[]> {
    const outputs: unknown[] = [];
    await this.run('predict', module, data, async () => {
      const loader = this.datamodule ? this.datamodule.predictDataloader() : ((data as Loaders).predict ?? null);
      if (!loader) throw new MisconfigurationError('`predict` needs a predict loader: a DataModule with `predictDataloader()` or `{ predict }`.');
      module.eval();
      await callCallbackHooks(this, 'onPredictStart');
      const max = limitBatches(this.options.limitPredictBatches, loader.length);
      let i = 0;
      for await (const batch of loader) {
        if (i >= max) {
          tf.dispose(batch as tf.TensorContainer);
          break;
        }
        const out = callModuleHook(this, 'predictStep', batch, i);
        await callCallbackHooks(this, 'onPredictBatchEnd', out, batch, i);
        outputs.push(out);
        tf.dispose(batch as tf.TensorContainer);
        i++;
      }
      await callCallbackHooks(this, 'onPredictEnd');
    });
    return outputs;
  }

  /** Writes a checkpoint of the current state (rank 0). */
  async saveCheckpoint(filePath: string, weightsOnly = false): Promise<void> {
    await this.checkpointConnector.save(filePath, weightsOnly);
  }

  /** Runs validation from inside training (called by the fit loop). */
  async runValidation(): Promise<void> {
    if (!this.valDataloader) return;
    this.evaluating = true;
    try {
      await runEvaluationLoop(this, this.valDataloader, 'validate', this.limitValBatches);
    } finally {
      this.evaluating = false;
    }
    this.loggerConnector.save();
  }

  // ---- internals ----
  private async evaluate(stage: 'validate' | 'test', module: LightningModule, data: LightningDataModule | Loaders, ckptPath: string | null): Promise<Record<string, number>> {
    let metrics: Record<string, number> = {};
    await this.run(stage, module, data, async () => {
      const loader = this.datamodule
        ? stage === 'test' ? this.datamodule.testDataloader() : this.datamodule.valDataloader()
        : ((stage === 'test' ? (data as Loaders).test : (data as Loaders).val) ?? null);
      if (!loader) throw new MisconfigurationError(`\`${stage}\` needs a ${stage === 'test' ? 'test' : 'validation'} loader.`);
      this.shardLoaders(loader);
      const ckpt = await this.strategy.broadcast(await this.resolveCkptPath(ckptPath));
      if (ckpt) await this.checkpointConnector.restore(ckpt, false);
      this.evaluating = true;
      this.testing = stage === 'test';
      const limit = stage === 'test' ? this.options.limitTestBatches : this.options.limitValBatches;
      metrics = await runEvaluationLoop(this, loader, stage, limit);
    });
    this.evaluating = false;
    this.testing = false;
    return metrics;
  }

  /** Attaches the module and data, sets everything up, runs `body`, tears down (also on error). */
  private async run(stage: Stage, module: LightningModule, data: LightningDataModule | Loaders, body: () => Promise<void>): Promise<void> {
    this.module = module;
    module.trainer = this;
    this.stage = stage;
    this.shouldStop = false;
    this.datamodule = data instanceof LightningDataModule ? data : null;
    this.callbacks = mergeModuleCallbacks(this.callbacks, module.configureCallbacks());
    for (const w of applyDeterminism(this.options.deterministic, this.options.seed)) if (this.strategy.isGlobalZero) console.warn(`lightclip: ${w}`);
    await ensureBackend({ accelerator: this.options.accelerator, quiet: !this.strategy.isGlobalZero });
    await this.strategy.setup();
    if (this.strategy.worldSize > 1) this.sharedLogDir = await this.strategy.broadcast(this.strategy.isGlobalZero ? this.logDir : null);
    let status: 'success' | 'failed' | 'interrupted' = 'success';
    let failure: unknown = undefined;
    try {
      if (this.datamodule) {
        if (this.strategy.localRank === 0) await this.datamodule.prepareData();
        await this.strategy.barrier('prepareData');
        await this.datamodule.setup(stage);
      }
      await callCallbackHooks(this, 'setup', stage);
      await body();
    } catch (err) {
      status = 'failed';
      failure = err;
      await callCallbackHooks(this, 'onException', err);
      throw err;
    } finally {
      await callCallbackHooks(this, 'teardown', stage);
      if (this.datamodule) await this.datamodule.teardown(stage);
      for (const logger of this.strategy.isGlobalZero ? this.loggers : []) logger.finalize(status);
      // Optimizer slots are tfjs tensors: free them when the run ends (a new fit calls
      // configureOptimizers again), or they would outlive every reference to them.
      for (const opt of this.optimizers) (opt as { dispose?: () => void }).dispose?.();
      this.optimizers = [];
      await this.strategy.teardown(failure);
      this.stage = null;
    }
  }

  /** Under DDP each rank reads its own shard of every loader (DistributedSampler semantics). */
  private shardLoaders(...loaders: Array<DataLoader | null>): void {
    if (this.strategy.worldSize <= 1) return;
    for (const loader of loaders) {
      if (!loader) continue;
      if (!loader.setDistributed) {
        throw new MisconfigurationError(
          `A loader without \`setDistributed\` cannot be sharded across the ${this.strategy.worldSize} processes of \`strategy=${this.strategy.name}\`: implement it or shard the data yourself.`,
        );
      }
      loader.setDistributed(this.strategy.distributedSamplerKwargs);
    }
  }

  private configureOptimizers(): void {
    const cfg = normalizeOptimizerConfig(callModuleHook(this, 'configureOptimizers'));
    if (cfg.optimizers.length === 0) throw new MisconfigurationError('`configureOptimizers` returned no optimizer.');
    this.optimizers = cfg.optimizers;
    this.lrSchedulerConfigs = cfg.schedulers;
  }

  private async runSanityCheck(): Promise<void> {
    const steps = this.options.numSanityValSteps;
    if (!this.valDataloader || steps === 0 || this.limitValBatches === 0) return;
    this.sanityChecking = true;
    this.evaluating = true;
    await callCallbackHooks(this, 'onSanityCheckStart');
    try {
      await runEvaluationLoop(this, this.valDataloader, 'sanity', steps < 0 ? null : steps);
    } finally {
      this.evaluating = false;
      this.sanityChecking = false;
    }
    await callCallbackHooks(this, 'onSanityCheckEnd');
    // Sanity results are discarded, as in Lightning.
    this.loggerConnector.callbackMetrics = {};
    this.loggerConnector.progressBarMetrics = {};
  }

  private async resolveCkptPath(ckptPath: string | null): Promise<string | null> {
    if (ckptPath === null) return null;
    if (ckptPath !== 'last') return ckptPath;
    const finder = this.callbacks.find((cb) => 'lastCheckpointPath' in cb) as { lastCheckpointPath?: (t: Trainer) => Promise<string | null> } | undefined;
    const found = finder?.lastCheckpointPath ? await finder.lastCheckpointPath(this) : null;
    if (!found) {
      console.warn(`lightclip: \`ckptPath='last'\` found no last checkpoint under ${path.resolve(this.logDir)}; starting from scratch.`);
    }
    return found;
  }
}

function resolveStrategy(name: string): Strategy {
  if (name === 'auto' || name === 'single' || name === 'single_device') {
    return isRegistered('strategy', name) ? create<Strategy>('strategy', name) : new SingleDeviceStrategy();
  }
  return create<Strategy>('strategy', name, undefined, '--strategy');
}

function resolveLoggers(logger: boolean | Logger | Logger[], rootDir: string, fastDevRun: boolean): Logger[] {
  if (fastDevRun || logger === false) return [];
  if (logger === true) {
    for (const name of ['tensorboard', 'csv']) {
      if (isRegistered('logger', name)) return [create<Logger>('logger', name, { saveDir: rootDir })];
    }
    return [];
  }
  return Array.isArray(logger) ? logger : [logger];
}

/**
 * A batch source for the Trainer: an async iterable, so decoding (in worker threads)
 * overlaps the training step. `length` is the number of batches per epoch when known
 * (needed for progress bars and for schedules sized in steps); `setEpoch` reshuffles
 * (DistributedSampler's `set_epoch`).
 *
 * Batches are plain objects/arrays of tensors (and other values); the Trainer disposes
 * every tensor in a batch after the step that used it.
 */
export interface DataLoader<B = unknown> extends AsyncIterable<B> {
  readonly length?: number;
  setEpoch?(epoch: number): void;
  /**
   * Restricts the loader to this process's shard (DistributedSampler semantics: disjoint,
   * equal-length shards of each epoch's permutation). The Trainer calls it under DDP.
   */
  setDistributed?(shard: { rank: number; worldSize: number }): void;
}

/** The stages a DataModule is set up for. */
export type Stage = 'fit' | 'validate' | 'test' | 'predict';

/**
 * Lightning's `LightningDataModule`: owns download/preparation (`prepareData`, once per
 * node), splits (`setup(stage)`, every process), the loaders and `teardown`. `stateDict`
 * is saved in checkpoints (e.g. a sampler position).
 */
export abstract class LightningDataModule<B = unknown> {
  /** Hyperparameters of the data (logged with the model's). */
  hparams: Record<string, unknown> = {};

  /** Called once before `setup`, on rank 0 only: download, unpack, generate. */
  prepareData(): Promise<void> | void {}
  /** Called on every process before the loaders are requested. */
  setup(_stage: Stage): Promise<void> | void {}
  trainDataloader(): DataLoader<B> {
    throw new Error(`${this.constructor.name} does not implement trainDataloader()`);
  }
  valDataloader(): DataLoader<B> | null {
    return null;
  }
  testDataloader(): DataLoader<B> | null {
    return null;
  }
  predictDataloader(): DataLoader<B> | null {
    return null;
  }
  /** Called at the end of fit/validate/test/predict. */
  teardown(_stage: Stage): Promise<void> | void {}
  stateDict(): Record<string, unknown> {
    return {};
  }
  loadStateDict(_state: Record<string, unknown>): void {}
}

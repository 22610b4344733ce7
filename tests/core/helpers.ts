import { tf, type Tensor } from '../../core/tf.js';
import { ArrayDataLoader } from '../../core/data.js';
import { LightningModule } from '../../core/module.js';
import { Linear } from '../../core/nn/linear.js';
import { SGD } from '../../core/optim/sgd.js';
import { Generator } from '../../core/random.js';
import type { OptimizerConfig } from '../../core/types.js';

export type XY = { x: Tensor; y: Tensor };

/** y = x·w* + noise, a regression problem a linear model solves exactly. */
export function regressionData(n: number, dim: number, seed = 1): XY {
  const g = new Generator(seed);
  const x = Array.from({ length: n * dim }, () => g.uniform(-1, 1));
  const w = Array.from({ length: dim }, (_, i) => (i % 2 ? 1 : -1) * (1 + i * 0.25));
  const y = Array.from({ length: n }, (_, r) => w.reduce((s, wi, c) => s + wi * x[r * dim + c]!, 0.5));
  return { x: tf.tensor2d(x, [n, dim]), y: tf.tensor2d(y, [n, 1]) };
}

/** A linear regressor trained with SGD; records every training loss. */
export class LinearRegressor extends LightningModule<XY> {
  readonly fc: Linear;
  losses: number[] = [];
  constructor(
    dim = 4,
    public lr = 0.1,
    public makeOptimizer?: (m: LinearRegressor) => OptimizerConfig,
  ) {
    super();
    this.fc = this.registerModule('fc', new Linear(dim, 1));
    this.saveHyperparameters({ dim, lr });
  }
  trainingStep(batch: XY): Tensor {
    const loss = tf.mean(tf.square(tf.sub(this.fc.forward(batch.x), batch.y)));
    this.log('train_loss', loss, { progBar: true });
    this.losses.push(loss.dataSync()[0]!);
    return loss;
  }
  override validationStep(batch: XY): void {
    const loss = tf.mean(tf.square(tf.sub(this.fc.forward(batch.x), batch.y)));
    this.log('val_loss', loss, { progBar: true, batchSize: batch.x.shape[0] });
  }
  override testStep(batch: XY): void {
    this.log('test_loss', tf.mean(tf.square(tf.sub(this.fc.forward(batch.x), batch.y))));
  }
  override predictStep(batch: XY): number[] {
    return Array.from(tf.tidy(() => this.fc.forward(batch.x)).dataSync());
  }
  configureOptimizers(): OptimizerConfig {
    return this.makeOptimizer ? this.makeOptimizer(this) : new SGD(this.parameters(), { lr: this.lr });
  }
}

export function loaders(n = 64, batchSize = 8, seed = 1): { train: ArrayDataLoader<'x' | 'y'>; val: ArrayDataLoader<'x' | 'y'> } {
  const d = regressionData(n, 4, seed);
  const v = regressionData(16, 4, seed + 100);
  return {
    train: new ArrayDataLoader(d, { batchSize, shuffle: true, seed }),
    val: new ArrayDataLoader(v, { batchSize: 8 }),
  };
}

import { selectBackend } from '../../core/backend.js';
import { Callback } from '../../core/callback.js';
import type { DataLoader } from '../../core/datamodule.js';
import { LightningModule } from '../../core/module.js';
import { Linear, ReLU, Sequential } from '../../core/nn/index.js';
import { SGD } from '../../core/optim/index.js';
import { seedEverything } from '../../core/random.js';
import { tf, type Tensor } from '../../core/tf.js';
import { Trainer } from '../../core/trainer.js';
import type { OptimizerConfig } from '../../core/types.js';
import { DDPStrategy } from '../../strategies/ddp/ddpStrategy.js';
import { detectClusterEnvironment } from '../../strategies/ddp/environment.js';
import { chooseBackend, connectProcessGroup } from '../../strategies/ddp/backend.js';

/**
 * The worker of `benchDdp` (bench.ts), run by `launchDdp` from `dist/`: `allreduce` times
 * all-reduces of a few sizes; `train` times Trainer steps of a small MLP under the ddp
 * strategy (world size 1 when not launched). Prints one `RESULT <json>` line per measurement
 * (rank 0 only).
 */

type XY = { x: Tensor; y: Tensor };

/** A 3-layer MLP regressor: large enough (≈ 0.4 M parameters) for the gradient all-reduce to matter. */
class Mlp extends LightningModule<XY> {
  readonly net: Sequential;
  constructor(width: number) {
    super();
    this.net = this.registerModule('net', new Sequential(new Linear(width, width), new ReLU(), new Linear(width, width), new ReLU(), new Linear(width, 1)));
  }
  trainingStep(batch: XY): Tensor {
    return tf.mean(tf.square(tf.sub(this.net.forward(batch.x), batch.y)));
  }
  configureOptimizers(): OptimizerConfig {
    return new SGD(this.parameters(), { lr: 1e-3 });
  }
}

/** The same random batch every step (data loading is not what is measured). */
class RandomLoader implements DataLoader<XY> {
  constructor(
    private readonly batch: number,
    private readonly width: number,
    readonly length: number,
  ) {}
  async *[Symbol.asyncIterator](): AsyncIterator<XY> {
    for (let i = 0; i < this.length; i++) yield { x: tf.randomNormal([this.batch, this.width], 0, 1, 'float32', i), y: tf.randomNormal([this.batch, 1], 0, 1, 'float32', i + 1) };
  }
  /** Random data is the same on every rank: the per-rank batch is already this rank's share. */
  setDistributed(): void {}
}

/** Times the steps after `warmup`. */
class StepTimer extends Callback {
  start = 0;
  end = 0;
  constructor(private readonly warmup: number) {
    super();
  }
  override onTrainBatchEnd(trainer: Trainer): void {
    if (trainer.globalStep === this.warmup) this.start = performance.now();
    this.end = performance.now();
  }
}

function result(obj: Record<string, unknown>): void {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
}

async function benchAllReduce(sizes: number[], repeats: number): Promise<void> {
  const ce = detectClusterEnvironment();
  const pg = await connectProcessGroup(chooseBackend(undefined).backend, { rank: ce.globalRank, worldSize: ce.worldSize, masterAddr: ce.mainAddress, masterPort: ce.mainPort ?? 0 });
  try {
    for (const n of sizes) {
      const a = new Float32Array(n).fill(1);
      const times: number[] = [];
      for (let r = 0; r < repeats + 1; r++) {
        await pg.barrier('bench');
        const t0 = performance.now();
        await pg.allReduce(a, 'sum');
        if (r > 0) times.push(performance.now() - t0); // the first round warms up JIT and sockets
      }
      times.sort((x, y) => x - y);
      if (ce.globalRank === 0) result({ kind: 'allreduce', backend: pg.backend, floats: n, processes: ce.worldSize, bestMs: times[0], medianMs: times[Math.floor(times.length / 2)] });
    }
  } finally {
    await pg.close();
  }
}

async function benchTrain(width: number, batch: number, steps: number, warmup: number): Promise<void> {
  await selectBackend({ quiet: true });
  seedEverything(0);
  const timer = new StepTimer(warmup);
  const strategy = new DDPStrategy();
  const trainer = new Trainer({ strategy, maxSteps: steps, logger: false, enableCheckpointing: false, enableProgressBar: false, numSanityValSteps: 0, callbacks: [timer] });
  await trainer.fit(new Mlp(width), { train: new RandomLoader(batch, width, steps) });
  const seconds = (timer.end - timer.start) / 1000;
  const samples = (steps - warmup) * batch * strategy.worldSize;
  if (strategy.isGlobalZero) result({ kind: 'train', processes: strategy.worldSize, batchPerProcess: batch, width, steps: steps - warmup, samplesPerSecond: samples / seconds, msPerStep: (seconds * 1000) / (steps - warmup) });
}

/**
 * ClipWrapper training steps of a CLIP model on random pairs, timing the gradient all-reduce
 * separately (DDP overhead = its share of the step time).
 */
async function benchClip(modelName: string, batch: number, steps: number, warmup: number): Promise<void> {
  await selectBackend({ quiet: true });
  seedEverything(0);
  const { createClip } = await import('../../modules/clip/factory.js');
  const { ClipWrapper } = await import('../../modules/wrappers/clipWrapper.js');
  const clip = createClip(modelName);
  const size = clip.config.vision.imageSize;
  const ctx = clip.config.text.contextLength;
  const timer = new StepTimer(warmup);
  const strategy = new DDPStrategy();
  let commMs = 0;
  let backend = 'none';
  const reduce = strategy.reduceGradients.bind(strategy);
  strategy.reduceGradients = async (params) => {
    if (strategy.worldSize > 1) backend = strategy.processGroup.backend;
    const t0 = performance.now();
    await reduce(params);
    if (timer.start > 0) commMs += performance.now() - t0;
  };
  const loader: DataLoader<{ images: Tensor; texts: Tensor }> & { setDistributed(): void } = {
    length: steps,
    setDistributed() {},
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < steps; i++) yield { images: tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', i), texts: tf.randomUniform([batch, ctx], 1, 1000, 'int32', i) };
    },
  };
  const trainer = new Trainer({ strategy, maxSteps: steps, logger: false, enableCheckpointing: false, enableProgressBar: false, numSanityValSteps: 0, callbacks: [timer] });
  await trainer.fit(new ClipWrapper(clip, { warmupSteps: 1 }), { train: loader });
  const timed = steps - warmup;
  const seconds = (timer.end - timer.start) / 1000;
  if (strategy.isGlobalZero) {
    result({ kind: 'clip', model: modelName, backend, processes: strategy.worldSize, batchPerProcess: batch, steps: timed, pairsPerSecond: (timed * batch * strategy.worldSize) / seconds, msPerStep: (seconds * 1000) / timed, allReduceMsPerStep: commMs / timed });
  }
}

const [mode, ...rest] = process.argv.slice(2);
const num = (i: number, fallback: number): number => (rest[i] !== undefined ? Number(rest[i]) : fallback);
if (mode === 'allreduce') await benchAllReduce((rest[0] ?? '1000000,10000000').split(',').map(Number), num(1, 5));
else if (mode === 'train') await benchTrain(num(0, 384), num(1, 64), num(2, 40), num(3, 5));
else if (mode === 'clip') await benchClip(rest[0] ?? 'ViT-B/32', num(1, 32), num(2, 4), num(3, 1));
else {
  console.error('usage: ddpWorker.js allreduce [sizes] [repeats] | train [width] [batch] [steps] [warmup]');
  process.exitCode = 2;
}

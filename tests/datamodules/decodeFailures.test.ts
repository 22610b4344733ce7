import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LightningModule } from '../../core/module.js';
import { Linear } from '../../core/nn/linear.js';
import { SGD } from '../../core/optim/sgd.js';
import { tf, type Tensor } from '../../core/tf.js';
import { Trainer } from '../../core/trainer.js';
import { DecodeInfrastructureError, DecodePool } from '../../datamodules/decodePool.js';
import { ImageTextFolderDataModule } from '../../datamodules/folder.js';
import { clipEvalTransform } from '../../datamodules/transforms.js';
import type { ImageTextBatch } from '../../datamodules/types.js';
import { fakeTokenizer, noise, fromRaw, put, removeDir, tempDir } from './helpers.js';

let root: string;
beforeAll(async () => {
  root = await tempDir('lc-decode-fail-');
  for (let i = 0; i < 24; i++) {
    await put(root, `img${String(i).padStart(2, '0')}.png`, await fromRaw(32, 32, noise(32, 32, i + 1)));
    await put(root, `img${String(i).padStart(2, '0')}.txt`, `picture ${i}`);
  }
});
afterAll(async () => removeDir(root));

function datamodule(lines: string[]): ImageTextFolderDataModule {
  return new ImageTextFolderDataModule({ folder: root, batchSize: 2, imageSize: 16, numWorkers: 2, seed: 1, tokenizer: fakeTokenizer(8), log: (l) => lines.push(l) });
}

/** Fails in its second training step, while the loader reads the next batches ahead. */
class FailsAtStep2 extends LightningModule<ImageTextBatch> {
  readonly fc = this.registerModule('fc', new Linear(3, 1));
  trainingStep(batch: ImageTextBatch, batchIdx: number): Tensor {
    if (batchIdx === 1) throw new Error('boom: the training step failed');
    return tf.mean(this.fc.forward(tf.mean(batch.images, [1, 2])));
  }
  configureOptimizers(): SGD {
    return new SGD(this.parameters(), { lr: 0.1 });
  }
}

describe('decode failures that are not the image', () => {
  it('a crashed run reports its own error; pending decodes are not "corrupt images"', async () => {
    const lines: string[] = [];
    const dm = datamodule(lines);
    const trainer = new Trainer({ maxEpochs: 1, logger: false, enableProgressBar: false, enableCheckpointing: false, numSanityValSteps: 0 });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(trainer.fit(new FailsAtStep2(), dm)).rejects.toThrow(/^boom: the training step failed$/);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(lines.filter((l) => /corrupt/.test(l))).toEqual([]);
    expect(dm.skippedCorrupt).toBe(0);
  });

  it('a pool closed under a reading loader ends the epoch with the cause, counting nothing as corrupt', async () => {
    const lines: string[] = [];
    const dm = datamodule(lines);
    await dm.setup('fit');
    const it = dm.trainDataloader()[Symbol.asyncIterator]();
    tf.dispose((await it.next()).value as unknown as tf.TensorContainer);
    await dm.teardown('fit');
    // Batches already decoded still arrive; the first one that needed the closed pool fails.
    let err: unknown = null;
    for (let i = 0; i < 12 && err === null; i++) {
      const r = await it.next().catch((e: unknown) => ({ error: e }));
      if ('error' in r) err = r.error;
      else if (r.done) break;
      else tf.dispose(r.value as unknown as tf.TensorContainer);
    }
    expect(err).toBeInstanceOf(DecodeInfrastructureError);
    expect((err as Error).message).toMatch(/decoding stopped while reading epoch 0 \(decode pool closed\)/);
    expect(dm.skippedCorrupt).toBe(0);
    expect(lines.filter((l) => /corrupt/.test(l))).toEqual([]);
  });

  it('a worker that dies fails its task as fatal, not as a bad image; a truly corrupt file is a plain failure', async () => {
    const pool = new DecodePool(1);
    const plan = clipEvalTransform(16).plan();
    const bad = await pool.decode(Buffer.from('not an image at all'), plan);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect([bad.fatal ?? false, bad.cancelled ?? false]).toEqual([false, false]);
    const inFlight = pool.decode(`${root}/img00.png`, plan);
    const slots = (pool as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots;
    await slots[0]!.worker.terminate();
    const died = await inFlight;
    expect(died.ok).toBe(false);
    if (!died.ok) expect([died.fatal, died.error]).toEqual([true, expect.stringMatching(/decode worker died/)]);
    await pool.close();
  });
});

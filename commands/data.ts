/**
 * `lightclip data show <the data flags of train.ts> [--limit N] [--split train|val]
 *   [--rank r --world_size w] [--worker i --num_workers n] [--epoch e] [--json]`
 *
 * Prints the samples the loader yields, in order, one per line: `__key__`/`__url__` (or the
 * dataset index and file), the caption drawn, the decoded image shape and the sha256 of the
 * encoded image bytes. This is the loader train.ts builds, restricted to one rank (and,
 * with --worker, to the batches of one loader worker), so a user can check a dataset, its
 * splitting and its shuffling before a long run.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { IsBoolean, IsIn, IsInt, IsOptional, Min } from 'class-validator';
import { Describe, renderConfigHelp, resolveConfig } from '../core/config.js';
import type { DataLoader } from '../core/datamodule.js';
import { MisconfigurationError } from '../core/errors.js';
import { tf } from '../core/tf.js';
import type { StreamBatch } from '../datamodules/stream/batcher.js';
import { createStreamDataModule, StreamDataFlags, usesStreamData } from '../datamodules/streamData.js';
import type { CaptionTokenizer } from '../datamodules/types.js';

export const description = 'Inspect a dataset: `data show <train.ts data flags> --json` prints the samples the loader yields';

class ShowConfig extends StreamDataFlags {
  @Describe('samples to print (0: the whole epoch)') @IsInt() @Min(0) limit = 20;
  @Describe('train | val: which loader') @IsIn(['train', 'val']) split = 'train';
  @Describe('rank of the process to show') @IsInt() @Min(0) rank = 0;
  @Describe('world size (processes)') @IsInt() @Min(1) world_size = 1;
  @Describe('show only the batches of this loader worker') @IsOptional() @IsInt() @Min(0) worker?: number;
  @Describe('loader workers (and decode threads)') @IsInt() @Min(0) num_workers = 0;
  @Describe('epoch (seeds the shuffles)') @IsInt() @Min(0) epoch = 0;
  @Describe('batch size (shapes the epoch as in training)') @IsInt() @Min(1) batch_size = 1;
  @Describe('decoded image side') @IsInt() @Min(1) image_size = 224;
  @Describe('seed, as train.ts --seed') @IsInt() @Min(0) seed = 42;
  @Describe('one JSON object per line') @IsBoolean() json = false;
}

const USAGE = 'lightclip data show --train_data "shards/{000000..000009}.tar" [--limit N] [--rank r --world_size w] [--worker i --num_workers n] [--epoch e] --json';

/** Tokens are not shown: a tokenizer that returns zeros keeps the command fast. */
const NO_TOKENS: CaptionTokenizer = {
  contextLength: 1,
  tokenize: (texts, ctx = 1) => ({ ids: new Int32Array(texts.length * ctx), shape: [texts.length, ctx] }),
};

export async function run(argv: string[], print: (line: string) => void = console.log): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    print(renderConfigHelp(ShowConfig, { usage: USAGE }));
    return 0;
  }
  if (sub !== 'show') throw new MisconfigurationError(`Unknown \`data\` command ${JSON.stringify(sub)}; expected \`show\`. usage: ${USAGE}`);
  const r = resolveConfig(ShowConfig, rest);
  if (r.help) {
    print(renderConfigHelp(ShowConfig, { usage: USAGE }));
    return 0;
  }
  const c = r.config;
  if (!usesStreamData(c)) throw new MisconfigurationError('Name the data: `--train_data`, `--val_data`, `--dataset` with `--root`/`--metadata`, or `--dataset_type img_text_tar --metadata`.');
  if (c.rank >= c.world_size) throw new MisconfigurationError(`\`--rank\` must be below \`--world_size\` ${c.world_size}, got ${c.rank}.`);
  if (c.worker !== undefined && c.worker >= Math.max(1, c.num_workers)) {
    throw new MisconfigurationError(`\`--worker\` must be below \`--num_workers\` ${Math.max(1, c.num_workers)}, got ${c.worker}.`);
  }
  const dm = createStreamDataModule(c, {
    batchSize: c.batch_size,
    numWorkers: c.num_workers,
    imageSize: c.image_size,
    seed: c.seed,
    tokenizer: NO_TOKENS,
    contextLength: 1,
    keepEncoded: true,
    log: c.json ? null : (line) => print(`# ${line}`),
  });
  await dm.setup(c.split === 'train' ? 'fit' : 'validate');
  const loader = (c.split === 'train' ? dm.trainDataloader() : dm.valDataloader()) as DataLoader<StreamBatch> | null;
  if (!loader) throw new MisconfigurationError('`--split val` needs `--val_data`.');
  if (c.world_size > 1) loader.setDistributed?.({ rank: c.rank, worldSize: c.world_size });
  loader.setEpoch?.(c.epoch);
  let n = 0;
  try {
    outer: for await (const b of loader) {
      const shape = b.images.shape.slice(1);
      tf.dispose([b.images, b.texts]);
      if (c.worker !== undefined && b.worker !== c.worker) continue;
      for (let i = 0; i < b.captions.length; i++) {
        const enc = b.encoded![i]!;
        const bytes = typeof enc === 'string' ? await readFile(enc) : enc;
        const row = { __key__: b.keys[i], __url__: b.urls[i], caption: b.captions[i], shape, sha256: createHash('sha256').update(bytes).digest('hex'), worker: b.worker };
        print(c.json ? JSON.stringify(row) : `${row.__url__}#${row.__key__}\t${row.shape.join('x')}\t${row.sha256.slice(0, 12)}\t${row.caption}`);
        if (c.limit > 0 && ++n >= c.limit) break outer;
      }
    }
  } finally {
    await dm.teardown(c.split === 'train' ? 'fit' : 'validate');
  }
  return 0;
}

/**
 * `lightclip wds write --folder data/ --out shards/ [--maxcount 10000] [--maxsize BYTES]`:
 * converts a stem-matched image/caption folder into WebDataset shards, as webdataset's
 * ShardWriter does, plus the sizes.json open_clip reads for the epoch length.
 *
 * Each sample is `<key>.<image ext>` (the original bytes), `<key>.txt` (the first caption)
 * and `<key>.json` ({"captions": [...all lines], "source": relative path}), so
 * `--json_text_key captions` draws among all captions as the folder datamodule does.
 * Keys are the pair's index, zero-padded (webdataset keys cannot contain dots).
 */
import 'reflect-metadata';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { IsBoolean, IsInt, IsOptional, IsString, Min } from 'class-validator';
import { Describe, renderConfigHelp, resolveConfig } from '../core/config.js';
import { MisconfigurationError } from '../core/errors.js';
import { Generator } from '../core/random.js';
import { scanImageTextFolder } from '../datamodules/folderDataset.js';
import { ShardWriter } from '../datamodules/stream/tarWriter.js';

export const description = 'WebDataset tools: `wds write --folder DIR --out SHARDS/` writes tar shards and sizes.json';

class WriteConfig {
  @Describe('folder of images and same-stem .txt captions') @IsString() folder = '';
  @Describe('output directory of the shards') @IsString() out = '';
  @Describe('samples per shard') @IsInt() @Min(1) maxcount = 10000;
  @Describe('bytes per shard before starting the next') @IsInt() @Min(1) maxsize = 3_000_000_000;
  @Describe('shard file name pattern (%06d = shard number)') @IsString() pattern = 'shard-%06d.tar';
  @Describe('shuffle the samples (seeded) before writing') @IsBoolean() shuffle = false;
  @Describe('seed of --shuffle') @IsInt() @Min(0) seed = 0;
  @Describe('print one line per shard') @IsOptional() @IsBoolean() quiet?: boolean;
}

const USAGE = 'lightclip wds write --folder data/ --out shards/ [--maxcount 10000]';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(`usage: ${USAGE}\n\n${renderConfigHelp(WriteConfig, { usage: USAGE })}`);
    return 0;
  }
  if (sub !== 'write') throw new MisconfigurationError(`Unknown \`wds\` command ${JSON.stringify(sub)}; expected \`write\`. usage: ${USAGE}`);
  const r = resolveConfig(WriteConfig, rest);
  if (r.help) {
    console.log(renderConfigHelp(WriteConfig, { usage: USAGE }));
    return 0;
  }
  const c = r.config;
  if (!c.folder) throw new MisconfigurationError('`--folder` is required: a folder of images with same-stem .txt captions.');
  if (!c.out) throw new MisconfigurationError('`--out` is required: the directory to write shards to.');
  if (/[/\\]/.test(c.pattern) || !/%0?\d*d/.test(c.pattern)) throw new MisconfigurationError(`\`--pattern\` must be a file name with a %06d-style number, got ${JSON.stringify(c.pattern)}.`);
  const log = c.quiet ? null : console.log;
  const scan = await scanImageTextFolder(c.folder, { flag: '--folder', log });
  const pairs = scan.pairs;
  if (pairs.length === 0) throw new MisconfigurationError(`\`--folder\` ${JSON.stringify(c.folder)} holds no image with a same-stem .txt caption.`);
  const order = c.shuffle ? new Generator(c.seed).permutation(pairs.length) : pairs.map((_, i) => i);
  await mkdir(c.out, { recursive: true });
  const writer = new ShardWriter(path.join(c.out, c.pattern), c.maxcount, c.maxsize);
  const width = Math.max(6, String(pairs.length - 1).length);
  for (let k = 0; k < order.length; k++) {
    const p = pairs[order[k]!]!;
    const ext = path.extname(p.image).slice(1).toLowerCase();
    await writer.write({
      __key__: String(k).padStart(width, '0'),
      files: {
        [ext]: await readFile(p.image),
        txt: p.captions[0] ?? '',
        json: JSON.stringify({ captions: p.captions, source: path.relative(c.folder, p.image) }),
      },
    });
  }
  const sizes = await writer.close();
  await writeFile(path.join(c.out, 'sizes.json'), JSON.stringify(sizes, null, 1) + '\n');
  log?.(`wrote ${pairs.length} samples into ${Object.keys(sizes).length} shard(s) under ${c.out} (sizes.json: ${Object.keys(sizes).length} entries)`);
  return 0;
}

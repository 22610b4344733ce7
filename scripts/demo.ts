/**
 * `npm run demo`: trains a tiny CLIP on the embedded shapes dataset (generated at first
 * run) and prints zero-shot accuracy on held-out images before and after training.
 *
 *   npm run demo                         # ~2.5 minutes on 2 CPU cores
 *   npm run demo -- --max_epochs 2       # quicker look
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { selectBackend } from '../core/backend.js';
import { parseCliFlags } from '../core/config.js';
import { MisconfigurationError } from '../core/errors.js';
import { seedEverything } from '../core/random.js';
import { Trainer } from '../core/trainer.js';
import { ModelCheckpoint, ZeroShotEval } from '../callbacks/index.js';
import { ImageTextFolderDataModule } from '../datamodules/folder.js';
import { LabelledImageLoader, scanImageFolder } from '../datamodules/imageFolder.js';
import { classPromptTokens } from '../eval.js';
import { resolveModelConfig } from '../modules/clip/config.js';
import { createClip } from '../modules/clip/factory.js';
import { ClipTokenizer } from '../modules/tokenizers/clipTokenizer.js';
import { ClipWrapper } from '../modules/wrappers/clipWrapper.js';
import '../loggers/index.js';
import { ensureDemoData } from './demoData.js';

const TEMPLATES = ['a {}.', 'a photo of a {}.', '{}', 'a drawing of a {}.'];

async function main(argv: string[]): Promise<void> {
  const flags = parseCliFlags(argv);
  const allowed = new Set(['max_epochs', 'root', 'batch_size', 'num_workers']);
  for (const k of Object.keys(flags)) if (!allowed.has(k)) throw new MisconfigurationError(`Unknown demo flag \`--${k}\`; allowed: ${[...allowed].map((a) => `--${a}`).join(', ')}.`);
  const maxEpochs = Number(flags.max_epochs ?? 36);
  const root = path.resolve(String(flags.root ?? 'demo_runs'));
  const batchSize = Number(flags.batch_size ?? 64);
  const started = performance.now();
  await selectBackend({});
  seedEverything(0);

  const data = await ensureDemoData(path.join(root, 'data'));
  const cfg = resolveModelConfig('tiny-ViT');
  const tokenizer = ClipTokenizer.default();
  const scan = await scanImageFolder(data.zeroshot, { flag: 'demo zero-shot folder' });
  const zeroShot = new ZeroShotEval({
    dataloader: new LabelledImageLoader(scan.samples, cfg.vision.imageSize, 128),
    classTokens: classPromptTokens(tokenizer, scan.classNames, TEMPLATES, cfg.text.contextLength),
  });
  const datamodule = new ImageTextFolderDataModule({
    folder: data.train,
    valFraction: 0.1,
    batchSize,
    numWorkers: Number(flags.num_workers ?? 1),
    imageSize: cfg.vision.imageSize,
    seed: 0,
    tokenizer,
    contextLength: cfg.text.contextLength,
    log: () => {},
  });
  const model = new ClipWrapper(createClip(cfg), { lr: 2e-3, warmupSteps: 30, weightDecay: 0.1, hparams: { model_name: 'tiny-ViT', demo: true } });
  const before = await zeroShot.evaluate(model);

  const trainer = new Trainer({
    maxEpochs,
    defaultRootDir: root,
    logEveryNSteps: 10,
    numSanityValSteps: 0,
    callbacks: [zeroShot, new ModelCheckpoint({ saveLast: true, monitor: 'zeroshot_top1', mode: 'max' })],
  });
  await trainer.fit(model, datamodule);
  const after = zeroShot.history[zeroShot.history.length - 1]!;
  const minutes = (performance.now() - started) / 60000;
  const chance = 1 / scan.classNames.length;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log('');
  console.log(`Zero-shot classification of ${after.count} held-out images into ${scan.classNames.length} classes ("a red circle", "a blue cross", ...):`);
  const row = (label: string, top1: number, top5: number) => console.log(`  ${label.padEnd(18)} top-1 ${pct(top1).padStart(6)}   top-5 ${pct(top5).padStart(6)}`);
  row('chance', chance, Math.min(1, 5 * chance));
  row('before training', before.top1, before.top5);
  row(`after ${trainer.currentEpoch} epochs`, after.top1, after.top5);
  console.log(`Trained ${trainer.globalStep} steps in ${minutes.toFixed(1)} min; logs and checkpoints in ${trainer.logDir}`);
  console.log(`TensorBoard: tensorboard --logdir ${path.join(root, 'lightning_logs')}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof MisconfigurationError ? `error: ${err.message}` : err);
  process.exit(err instanceof MisconfigurationError ? 2 : 1);
});

/** `lightclip train ...`: train.ts (train-CLIP's flags, `--config recipe.yaml`, DDP with `--devices`). */
import { main } from '../train.js';

export const description = 'train a CLIP model (train-CLIP/Lightning flags, --config recipe.yaml, --devices N for DDP)';

export async function run(argv: string[]): Promise<number> {
  await main(argv, 'lightclip train');
  // Under `--devices N` this process was the launcher: it set the workers' exit code.
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

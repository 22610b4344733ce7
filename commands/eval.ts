/** `lightclip eval zeroshot|embed ...`: eval.ts (zero-shot accuracy, embeddings as safetensors). */
import { main } from '../eval.js';

export const description = 'evaluate weights: `eval zeroshot` (top-1/top-5 on an ImageNet-style folder), `eval embed` (features to safetensors)';

export async function run(argv: string[]): Promise<number> {
  await main(argv, 'lightclip eval');
  return 0;
}

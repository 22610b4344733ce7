/**
 * `--pretrained FILE` (open_clip's `--pretrained` with a local file): open_clip saves CLIP
 * weights (`open_clip_model.safetensors`, `open_clip_pytorch_model.bin`, or a training
 * checkpoint's `state_dict`, whose `module.` prefix is detected) under OpenAI's names, which
 * lightclip's CLIP uses too; SigLIP models add a root `logit_bias`, which goes to the
 * wrapper's SigLIP loss (and is ignored, with a note, under InfoNCE).
 */
import { existsSync } from 'node:fs';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { tf } from '../../core/tf.js';
import { readWeightsAsTensors } from '../weights/readWeights.js';
import { SiglipPairLoss } from '../losses/pairLoss.js';
import type { ClipWrapper } from '../wrappers/clipWrapper.js';
import { loadClipWeights } from './factory.js';

export async function loadOpenClipPretrained(wrapper: ClipWrapper, file: string, log: (line: string) => void = console.log): Promise<void> {
  if (!existsSync(file)) throw new MisconfigurationError(`\`--pretrained\`: ${showValue(file)} does not exist; expected open_clip weights (.safetensors, .bin or .pt).`);
  const sd = await readWeightsAsTensors(file);
  try {
    const biasKey = Object.keys(sd).find((k) => k === 'logit_bias' || k.endsWith('.logit_bias'));
    const bias = biasKey ? sd[biasKey]! : null;
    if (biasKey) delete sd[biasKey];
    await loadClipWeights(wrapper.model, sd);
    if (bias) {
      if (wrapper.pairLoss instanceof SiglipPairLoss) tf.tidy(() => (wrapper.pairLoss as SiglipPairLoss).module.logitBias.variable.assign(tf.reshape(bias, [])));
      else log(`--pretrained: ${file} holds a SigLIP logit_bias; ignored (training with InfoNCE; add --siglip to use it).`);
      bias.dispose();
    }
  } finally {
    tf.dispose(Object.values(sd));
  }
}

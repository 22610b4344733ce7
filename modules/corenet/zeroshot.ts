/**
 * CoreNet's zero-shot image classification (shared/research/corenet.md §10) for a CoreNet CLIP:
 * prompts = each template filled with the lower-cased class name, run through CoreNet's caption
 * preprocessing, tokenized to 77; each prompt embedding L2-normalised, averaged per class,
 * normalised again; logits = 100 × image · class (the arg-max does not depend on the ×100).
 * Images: resize the short side and centre-crop to 224, RGB in [0, 1] without mean/std (the
 * loader's CLIP normalisation is undone exactly). The resize is the loader's bicubic, where
 * CoreNet uses PIL bilinear: a small difference in pixels, noted in the README.
 */
import { tf, type Tensor } from '../../core/tf.js';
import { zeroShotAccuracy, zeroShotClassifier, type TopKResult } from '../../callbacks/zeroShot.js';
import { LabelledImageLoader, type LabelledImage } from '../../datamodules/imageFolder.js';
import { CLIP_MEAN, CLIP_STD } from '../../datamodules/transforms.js';
import { cleanCaption } from '../catlip/captionClean.js';
import type { ClipTokenizer } from '../tokenizers/clipTokenizer.js';
import { existsSync } from 'node:fs';
import { MisconfigurationError } from '../../core/errors.js';
import { readWeightsAsTensors } from '../weights/readWeights.js';
import { CORENET_MODELS, loadCorenetStateDict, type CorenetClip } from './clip.js';

export interface CorenetZeroShotOptions {
  samples: readonly LabelledImage[];
  classNames: readonly string[];
  templates: readonly string[];
  tokenizer: ClipTokenizer;
  batchSize: number;
  imageSize?: number;
}

/** The model's encoders on CLIP-normalised images: the normalisation is undone first. */
export function corenetEncoders(model: CorenetClip): { encodeImage(images: Tensor): Tensor; encodeText(tokens: Tensor): Tensor; dispose(): void } {
  const mean = tf.tensor1d(CLIP_MEAN as number[]);
  const std = tf.tensor1d(CLIP_STD as number[]);
  return {
    encodeImage: (images) => tf.tidy(() => model.encodeImage(tf.add(tf.mul(images, std), mean))),
    encodeText: (tokens) => model.encodeText(tokens),
    dispose: () => tf.dispose([mean, std]),
  };
}

export async function corenetZeroShot(model: CorenetClip, o: CorenetZeroShotOptions): Promise<TopKResult> {
  const tokens = o.classNames.map((name) => o.tokenizer.tokenizeToTensor(o.templates.map((t) => cleanCaption(t.replaceAll('{}', name.toLowerCase()))), 77));
  const enc = corenetEncoders(model);
  const classifier = zeroShotClassifier(enc, tokens);
  tf.dispose(tokens);
  try {
    return await zeroShotAccuracy(enc, classifier, new LabelledImageLoader(o.samples, o.imageSize ?? 224, o.batchSize));
  } finally {
    classifier.dispose();
    enc.dispose();
  }
}

/** `eval.ts zeroshot --model_name corenet/clip_vit_base --weights clip_vit_base.pt`. */
export async function corenetZeroShotFromFile(modelName: string, weights: string, o: CorenetZeroShotOptions): Promise<TopKResult> {
  const make = (CORENET_MODELS as Record<string, (() => unknown) | undefined>)[modelName];
  if (!make || modelName.includes('catlip')) {
    throw new MisconfigurationError(`\`--model_name ${modelName}\`: CoreNet CLIP models are ${Object.keys(CORENET_MODELS).filter((k) => !k.includes('catlip')).join(', ')}.`);
  }
  if (!existsSync(weights)) throw new MisconfigurationError(`\`--weights\`: ${JSON.stringify(weights)} does not exist.`);
  const model = make() as CorenetClip;
  const sd = await readWeightsAsTensors(weights);
  try {
    loadCorenetStateDict(model, sd);
  } finally {
    tf.dispose(Object.values(sd));
  }
  model.eval();
  return corenetZeroShot(model, o);
}

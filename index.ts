/**
 * lightclip: train CLIP-family vision-language models in TypeScript, in the style of
 * PyTorch Lightning. Importing the package registers every built-in model, datamodule,
 * callback, logger and strategy by name.
 */
import 'reflect-metadata';

export * from './core/index.js';
export * from './callbacks/index.js';
export * from './loggers/index.js';
// Registers 'single' and 'ddp' for `new Trainer({ strategy: 'ddp' })`; exports DDPStrategy, launchDdp...
export * from './strategies/index.js';
export * from './datamodules/index.js';
export * from './modules/clip/index.js';
export * from './modules/tokenizers/index.js';
export { ClipWrapper, chunks, type ClipWrapperOptions, type ContrastiveTowers, type ImageTextPairs } from './modules/wrappers/clipWrapper.js';
export { ClipLoss, clipLossCore, retrievalAccuracy, type ClipLossOptions } from './modules/losses/clipLoss.js';
export { siglipLoss, siglipLossAndGrads, type SiglipDistImpl } from './modules/losses/siglip.js';
export { InfoNceLoss, SiglipPairLoss, type PairLoss } from './modules/losses/pairLoss.js';
export { LlipModel, type LlipOptions } from './modules/llip/model.js';
export { LlipWrapper, type LlipWrapperOptions } from './modules/llip/wrapper.js';
export { llipSimilarity, conditionedEmbeddings } from './modules/llip/similarity.js';
export { CustomClipWrapper, DualEncoder, type CustomClipWrapperOptions, type DualEncoderOptions, type ImageEncoder, type TextEncoder } from './modules/wrappers/customClipWrapper.js';
export { sinkhorn, klDivergence, distillationTargets, distillationLoss, type DistillationTargets } from './modules/losses/distillation.js';
export * from './modules/text/index.js';
export { ResNet, BasicBlock, resnet18, resnet34, resnet50, resnet101, resnet152, type ResNetOptions, type ResNetBlock } from './modules/vision/index.js';
export * from './modules/weights/index.js';

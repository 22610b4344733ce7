/**
 * OpenAI CLIP architectures with OpenAI's state-dict names (ViT and ModifiedResNet image
 * towers, the causal text transformer, the `CLIP` model), their configs, and the factory
 * that builds them by name and loads pretrained weights.
 */
export * from './config.js';
export { ResidualAttentionBlock, Transformer, type TransformerOptions } from './transformer.js';
export { VisionTransformer, type VisionTransformerOptions } from './vit.js';
export { AttentionPool2d, Bottleneck, ModifiedResNet, type ModifiedResNetOptions } from './modifiedResnet.js';
export {
  encodeTextTower,
  initTextTower,
  TextTransformer,
  type EncodeTextOptions,
  type TextTowerParts,
  type TextTransformerOptions,
} from './textTransformer.js';
export { CLIP, LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, type ClipOutput, type ClipVisual, type EncodeOptions } from './model.js';
export {
  createClip,
  loadClipWeights,
  parseClipOverrides,
  registerClipModels,
  type CreateClipOverrides,
  type LoadClipWeightsOptions,
} from './factory.js';

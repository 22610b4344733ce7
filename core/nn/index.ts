/**
 * lightclip's `nn`: PyTorch-style modules on top of tfjs variables, with PyTorch state-dict
 * names and weight layouts (images are NHWC, see `Conv2d`). `F` holds the pure functions
 * and `init` the initialisers, as `torch.nn.functional` and `torch.nn.init`.
 */
export { Module, Parameter, StateDictError, type StateDict, type TensorModule, type LoadStateDictOptions, type LoadStateDictResult } from './module.js';
export { Linear, Identity, Flatten, type LinearOptions } from './linear.js';
export { Conv2d, toTfPadding, type Conv2dOptions, type TfPadding } from './conv.js';
export { BatchNormBase, BatchNorm1d, BatchNorm2d, LayerNorm, type BatchNormOptions, type LayerNormOptions } from './norm.js';
export { Embedding, type EmbeddingOptions } from './embedding.js';
export { Dropout } from './dropout.js';
export { MultiheadAttention, type MultiheadAttentionOptions, type MultiheadAttentionForwardOptions } from './attention.js';
export { Sequential, ModuleList } from './containers.js';
export { GELU, QuickGELU, ReLU, Sigmoid, Tanh } from './activation.js';
export { AvgPool2d, AdaptiveAvgPool2d, type AvgPool2dOptions } from './pooling.js';
export * as F from './functional.js';
export * as init from './init.js';

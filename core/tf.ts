/**
 * The one place lightclip imports tfjs from. The `@tensorflow/tfjs` bundle registers the
 * gradients and chained ops (`x.square()`); tfjs-core alone does not, and its ESM files
 * cannot be imported by Node directly.
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
export type { Tensor, Variable, Rank, DataType, TensorLike, NamedTensorMap } from '@tensorflow/tfjs';

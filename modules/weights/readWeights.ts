import type { RawTensor } from '../../core/checkpoint/dtypes.js';
import { rawTensorsToTf, readSafetensors } from '../../core/checkpoint/safetensors.js';
import type { Tensor } from '../../core/tf.js';
import { readTorchCheckpoint } from './torchCheckpoint.js';
import { looksLikeZip, readFileHead } from './zip.js';

/** The formats {@link readWeights} recognises. */
export type WeightsFormat = 'safetensors' | 'torch';

/**
 * Tells a safetensors file from a torch checkpoint by its first bytes, not its name (HF
 * repositories hold both, and users rename files): zip (`PK\x03\x04`) or pickle (`\x80`)
 * means torch; otherwise safetensors, whose first 8 bytes are a little-endian header length.
 */
export async function detectWeightsFormat(file: string): Promise<WeightsFormat> {
  const head = await readFileHead(file);
  return looksLikeZip(head) || head[0] === 0x80 ? 'torch' : 'safetensors';
}

/**
 * Reads the tensors of a weights file, safetensors or PyTorch (never executing pickles).
 * @returns raw tensors by name, in the file's order.
 * @throws UnsafePickleError for a torch pickle naming a non-allowlisted global.
 */
export async function readWeights(file: string): Promise<Record<string, RawTensor>> {
  if ((await detectWeightsFormat(file)) === 'torch') return readTorchCheckpoint(file);
  return (await readSafetensors(file)).tensors;
}

/**
 * {@link readWeights} as tfjs tensors (F16/BF16/F64 → float32, I64/I8/U8 → int32); the
 * caller owns and disposes them.
 */
export async function readWeightsAsTensors(file: string): Promise<Record<string, Tensor>> {
  return rawTensorsToTf(await readWeights(file), file);
}

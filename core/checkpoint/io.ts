/**
 * Checkpoint byte I/O, and nothing else: `connector.ts` decides what goes into a checkpoint,
 * `ModelCheckpoint` decides when and under which name, and this file turns
 * `{tensors, json}` into one file and back.
 *
 * A `.ckpt` file is a plain safetensors file: the tensors (weights, optimizer slots) are its
 * tensors, and everything else (epoch, step, RNG state, hparams, callback states) is JSON
 * stored as the string `__metadata__.lightclip`. Any safetensors reader can therefore open a
 * lightclip checkpoint and load its weights by name.
 */
import { promises as fs } from 'node:fs';
import { MisconfigurationError } from '../errors.js';
import type { tf } from '../tf.js';
import { readSafetensors, rawTensorsToTf, writeSafetensors, type DecodedSafetensors, type SafetensorsInput } from './safetensors.js';

export { atomicWriteFile, type FileBytes } from './atomic.js';

/** The `__metadata__` key that marks a safetensors file as a lightclip checkpoint and holds its JSON. */
export const CHECKPOINT_METADATA_KEY = 'lightclip';

/** What a checkpoint file holds: named tensors, and any JSON-serializable record. */
export interface CheckpointContents<T = unknown> {
  tensors: SafetensorsInput;
  json: T;
}

/** A loaded checkpoint: tfjs tensors (owned by the caller, who disposes them) and the parsed JSON. */
export interface LoadedCheckpoint {
  tensors: Record<string, tf.Tensor>;
  json: unknown;
}

/**
 * Writes a checkpoint atomically: a crash or an exception midway leaves the previous file
 * at `filePath` untouched and no temporary file behind.
 * @param filePath destination, conventionally ending in `.ckpt`; its directory must exist.
 * @param contents `tensors` (tfjs tensors or raw typed arrays) and `json` (anything `JSON.stringify` accepts).
 * @throws Error when `json` cannot be serialized, or a tensor cannot be stored.
 */
export async function saveCheckpointFile(filePath: string, contents: CheckpointContents): Promise<void> {
  const text = JSON.stringify(contents.json);
  // JSON.stringify returns undefined (not a string) for undefined, functions and symbols.
  if (typeof text !== 'string') throw new Error(`Checkpoint ${filePath}: \`json\` must be JSON-serializable, got ${typeof contents.json}`);
  await writeSafetensors(filePath, contents.tensors, { [CHECKPOINT_METADATA_KEY]: text });
}

/**
 * Reads a checkpoint written by `saveCheckpointFile`.
 * @throws SafetensorsError when the file is not valid safetensors (truncated, corrupt).
 * @throws MisconfigurationError when the file is valid safetensors but not a lightclip
 *   checkpoint (e.g. a plain weights file passed as `--ckpt_path`), or it does not exist.
 */
export async function loadCheckpointFile(filePath: string): Promise<LoadedCheckpoint> {
  let decoded: DecodedSafetensors;
  try {
    decoded = await readSafetensors(filePath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MisconfigurationError(`Checkpoint file ${JSON.stringify(filePath)} does not exist`);
    throw err;
  }
  const text = decoded.metadata[CHECKPOINT_METADATA_KEY];
  if (text === undefined) {
    throw new MisconfigurationError(
      `${JSON.stringify(filePath)} is not a lightclip checkpoint: its safetensors metadata has no \`${CHECKPOINT_METADATA_KEY}\` entry. ` +
        'A plain weights file loads with `loadSafetensorsAsTensors` and `module.loadStateDict`, not as a checkpoint to resume from.',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MisconfigurationError(`${JSON.stringify(filePath)} is not a valid lightclip checkpoint: its \`${CHECKPOINT_METADATA_KEY}\` metadata is not JSON (${(err as Error).message})`);
  }
  return { tensors: rawTensorsToTf(decoded.tensors, filePath), json };
}

/** Deletes a checkpoint file; a file that is already gone is not an error (two callbacks may prune the same file). */
export async function removeCheckpoint(filePath: string): Promise<void> {
  await fs.rm(filePath, { force: true });
}

/**
 * `fromPretrained` for the HF text encoders: resolve the files (local directory or hub
 * cache), build the model from `config.json`, and load `model.safetensors` or
 * `pytorch_model.bin` (sharded or not) by name, as transformers' `AutoModel` does:
 *
 * - keys of task checkpoints carry the base-model prefix (`bert.`, `roberta.`,
 *   `distilbert.`), which is stripped; their heads (`cls.*`, `lm_head.*`, `vocab_*`,
 *   `classifier.*`) are reported as unexpected and skipped;
 * - TensorFlow-era names `LayerNorm.gamma`/`beta` become `weight`/`bias`;
 * - the stale `embeddings.position_ids` buffer of older checkpoints is skipped;
 * - a missing pooler (RoBERTa MLM checkpoints have none) keeps its fresh initialisation
 *   and is reported; any other missing or mis-shaped key is an error.
 */
import { join } from 'node:path';
import { StateDictError, type Module, type StateDict } from '../../core/nn/index.js';
import { MisconfigurationError } from '../../core/errors.js';
import { readWeightsAsTensors } from '../weights/readWeights.js';
import { BertModel } from './bert.js';
import { readHfTextConfig, type HfTextConfig } from './config.js';
import { DistilBertModel } from './distilbert.js';
import { resolveFiles, shardFiles, type HubFileSpec, type HubOptions } from './hub.js';
import { RobertaModel } from './roberta.js';
import type { HfTextEncoder } from './common.js';

/** Options of `fromPretrained`: where to find the files (see {@link HubOptions}). */
export type FromPretrainedOptions = HubOptions;

/** What loading matched, returned by {@link loadHfTextEncoder} beside the model. */
export interface PretrainedLoadReport {
  /** Directory the files came from. */
  dir: string;
  /** Weight files read. */
  weightFiles: string[];
  /** Model keys the checkpoint did not provide (only the pooler is tolerated). */
  missingKeys: string[];
  /** Checkpoint keys the model has no place for (task heads), skipped. */
  unexpectedKeys: string[];
}

/** The files a model needs: config, weights (safetensors preferred), and the tokenizer when present. */
export const MODEL_FILES: readonly HubFileSpec[] = [
  { anyOf: ['config.json'] },
  { anyOf: ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'] },
  { anyOf: ['tokenizer.json'], optional: true },
  { anyOf: ['tokenizer_config.json'], optional: true },
];

const PREFIXES: Record<HfTextConfig['modelType'], string> = { bert: 'bert.', roberta: 'roberta.', distilbert: 'distilbert.' };
const IGNORED = new Set(['embeddings.position_ids']);

/**
 * Renames checkpoint keys to the base model's: strips the task prefix and the TF-era
 * `gamma`/`beta` suffixes. Keys without the prefix in a prefixed checkpoint (its heads) keep
 * their names and end up unexpected.
 */
export function normaliseHfKeys(keys: readonly string[], modelType: HfTextConfig['modelType']): Map<string, string> {
  const prefix = PREFIXES[modelType];
  const out = new Map<string, string>();
  for (const key of keys) {
    let name = key.startsWith(prefix) ? key.slice(prefix.length) : key;
    name = name.replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
    out.set(key, name);
  }
  return out;
}

/**
 * Loads HF weights (already read as tensors) into `model`, taking ownership of `weights`
 * (all are disposed). Returns the missing and unexpected keys.
 * @throws StateDictError for missing non-pooler keys or shape mismatches, naming `source`.
 */
export function loadHfStateDict(model: Module & { config: HfTextConfig }, weights: StateDict, source: string): { missingKeys: string[]; unexpectedKeys: string[] } {
  const own = model.stateDict();
  const renamed = normaliseHfKeys(Object.keys(weights), model.config.modelType);
  const sd: StateDict = {};
  const unexpectedKeys: string[] = [];
  try {
    for (const [key, name] of renamed) {
      if (name in own) sd[name] = weights[key]!;
      else if (!IGNORED.has(name)) unexpectedKeys.push(key);
    }
    const missingKeys = Object.keys(own).filter((k) => !(k in sd));
    const fatal = missingKeys.filter((k) => !k.startsWith('pooler.'));
    if (fatal.length) {
      const shown = fatal.slice(0, 10).map((k) => `"${k}"`).join(', ');
      throw new StateDictError(
        `${source}: the checkpoint lacks ${fatal.length} weight(s) of ${model.constructor.name}: ${shown}${fatal.length > 10 ? ', ...' : ''}` +
          ` (does config.json's model_type "${model.config.modelType}" match the weights?)`,
        fatal,
        unexpectedKeys,
        [],
      );
    }
    try {
      model.loadStateDict(sd, { strict: false });
    } catch (err) {
      if (err instanceof StateDictError) throw new StateDictError(`${source}: ${err.message}`, err.missingKeys, err.unexpectedKeys, err.shapeMismatches);
      throw err;
    }
    return { missingKeys, unexpectedKeys };
  } finally {
    for (const t of Object.values(weights)) t.dispose();
  }
}

/** Reads every weight file of a resolved model (one file, or the shards of an index). */
async function readModelWeights(dir: string, weightsFile: string): Promise<{ files: string[]; weights: StateDict }> {
  const files = weightsFile.endsWith('.index.json') ? shardFiles(join(dir, weightsFile)).map((f) => join(dir, f)) : [join(dir, weightsFile)];
  const weights: StateDict = {};
  try {
    for (const f of files) Object.assign(weights, await readWeightsAsTensors(f));
  } catch (err) {
    for (const t of Object.values(weights)) t.dispose();
    throw err;
  }
  return { files, weights };
}

/** A loaded encoder together with its report. */
export interface PretrainedEncoder<M extends HfTextEncoder> {
  model: M;
  report: PretrainedLoadReport;
}

/**
 * Builds and loads the encoder `config.json` describes: `BertModel`, `RobertaModel` or
 * `DistilBertModel` by `model_type`.
 * @param idOrDir a local directory (`config.json` + `model.safetensors` or
 *   `pytorch_model.bin`) or a hub id (downloaded into the cache when online).
 * @param expected when given, the `model_type` family the caller needs (checked before any weights are read).
 * @throws MisconfigurationError for an unsupported or unexpected `model_type`, or missing files.
 * @throws StateDictError when the weights do not fit the config.
 * @throws UnsafePickleError for a `pytorch_model.bin` whose pickle names non-tensor globals.
 * @example
 * const { model, report } = await loadHfTextEncoder('johngiorgi/declutr-small');
 */
export async function loadHfTextEncoder(
  idOrDir: string,
  options: FromPretrainedOptions = {},
  expected?: HfTextConfig['modelType'],
): Promise<PretrainedEncoder<HfTextEncoder>> {
  const resolved = await resolveFiles(idOrDir, MODEL_FILES, options);
  const configFile = join(resolved.dir, 'config.json');
  const config = readHfTextConfig(configFile);
  if (expected !== undefined && config.modelType !== expected) {
    throw new MisconfigurationError(
      `${configFile}: \`model_type\` is "${config.modelType}", expected a ${expected} checkpoint; use loadHfTextEncoder() to pick the class from the config`,
    );
  }
  const model: HfTextEncoder =
    config.modelType === 'distilbert' ? new DistilBertModel(config) : config.modelType === 'roberta' ? new RobertaModel(config) : new BertModel(config);
  try {
    const { files, weights } = await readModelWeights(resolved.dir, resolved.files[1]!);
    const { missingKeys, unexpectedKeys } = loadHfStateDict(model as HfTextEncoder & { config: HfTextConfig }, weights, files.join(', '));
    return { model, report: { dir: resolved.dir, weightFiles: files, missingKeys, unexpectedKeys } };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

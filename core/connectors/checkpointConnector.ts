import { tf, type Tensor } from '../tf.js';
import { loadCheckpointFile, saveCheckpointFile } from '../checkpoint/io.js';
import { MisconfigurationError } from '../errors.js';
import { defaultGenerator } from '../random.js';
import { callCallbackHooks, callModuleHook } from '../hooks/call.js';
import type { FitLoopState } from '../loops/fitLoop.js';
import type { Trainer } from '../trainer.js';

/** lightclip's version, written into every checkpoint. */
export const LIGHTCLIP_VERSION = '0.1.0';

/** The JSON part of a checkpoint (Lightning's checkpoint dict minus the tensors). */
export interface CheckpointRecord {
  epoch: number;
  globalStep: number;
  loops: { fitLoop: FitLoopState };
  callbacks: Record<string, unknown>;
  /** Which callback owns which tensors: `callbacks.<i>.<name>` in the tensor section. */
  callbackTensors: Array<{ stateKey: string; names: string[] }>;
  optimizerStates: unknown[];
  lrSchedulers: object[];
  hparams: Record<string, unknown>;
  datamodule: Record<string, unknown>;
  rng: number[];
  lightclipVersion: string;
  [extra: string]: unknown;
}

/** Tensor-name prefix of the model weights inside a `.ckpt`. */
export const STATE_DICT_PREFIX = 'state_dict.';

/**
 * Decides what a checkpoint contains (Lightning's `_CheckpointConnector`): model weights
 * under `state_dict.<name>`, optimizer slots under `optimizer_states.<i>.<key>`, callback
 * tensors under `callbacks.<i>.<name>`, and the JSON record above. `ModelCheckpoint`
 * decides when and under which name; `checkpoint/io.ts` writes the bytes.
 */
export class CheckpointConnector {
  constructor(private readonly trainer: Trainer) {}

  /**
   * Builds the checkpoint's tensors and JSON. Weights are live references; `owned` lists
   * the copies made for the checkpoint (optimizer slots), which the caller disposes.
   */
  dump(weightsOnly = false): { tensors: Record<string, Tensor>; json: CheckpointRecord; owned: Tensor[] } {
    const t = this.trainer;
    const module = t.lightningModule;
    const tensors: Record<string, Tensor> = {};
    const owned: Tensor[] = [];
    for (const [name, v] of Object.entries(module.stateDict())) tensors[STATE_DICT_PREFIX + name] = v;
    const json: CheckpointRecord = {
      epoch: t.currentEpoch,
      globalStep: t.globalStep,
      loops: { fitLoop: t.fitLoop.stateDict() },
      callbacks: {},
      callbackTensors: [],
      optimizerStates: [],
      lrSchedulers: [],
      hparams: module.hparams,
      datamodule: t.datamodule?.stateDict() ?? {},
      rng: defaultGenerator.getState(),
      lightclipVersion: LIGHTCLIP_VERSION,
    };
    if (!weightsOnly) {
      t.optimizers.forEach((opt, i) => {
        const sd = opt.stateDict();
        json.optimizerStates.push(sd.json);
        for (const [k, v] of Object.entries(sd.tensors)) {
          tensors[`optimizer_states.${i}.${k}`] = v;
          owned.push(v);
        }
      });
      json.lrSchedulers = t.lrSchedulerConfigs.map((c) => c.scheduler.stateDict());
      for (const cb of t.callbacks) {
        json.callbacks[cb.stateKey] = cb.stateDict();
        const ts = cb.tensorStateDict();
        const names = Object.keys(ts);
        if (names.length) {
          const i = json.callbackTensors.length;
          json.callbackTensors.push({ stateKey: cb.stateKey, names });
          for (const n of names) tensors[`callbacks.${i}.${n}`] = ts[n]!;
        }
      }
    }
    return { tensors, json, owned };
  }

  /** Builds and writes a checkpoint (rank 0 only; every rank waits at a barrier). */
  async save(filePath: string, weightsOnly = false): Promise<void> {
    const t = this.trainer;
    if (t.strategy.isGlobalZero) {
      const { tensors, json, owned } = this.dump(weightsOnly);
      try {
        // Callbacks before the module, as every other hook (core/hooks/call.ts).
        await callCallbackHooks(t, 'onSaveCheckpoint', json);
        callModuleHook(t, 'onSaveCheckpoint', json);
        await saveCheckpointFile(filePath, { tensors, json });
      } finally {
        tf.dispose(owned);
      }
    }
    await t.strategy.barrier('saveCheckpoint');
  }

  /** Restores everything a resumed `fit` needs from `filePath`. */
  async restore(filePath: string, restoreTrainingState = true): Promise<CheckpointRecord> {
    const t = this.trainer;
    const { tensors, json } = await loadCheckpointFile(filePath);
    try {
      const record = json as CheckpointRecord;
      if (typeof record !== 'object' || record === null || !('loops' in record)) {
        throw new MisconfigurationError(`${JSON.stringify(filePath)} is not a lightclip training checkpoint (no \`loops\` entry).`);
      }
      const sd: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(tensors)) if (k.startsWith(STATE_DICT_PREFIX)) sd[k.slice(STATE_DICT_PREFIX.length)] = v;
      t.lightningModule.loadStateDict(sd);
      if (!restoreTrainingState) return record;
      if (record.optimizerStates.length !== t.optimizers.length) {
        throw new MisconfigurationError(`Checkpoint ${filePath} has ${record.optimizerStates.length} optimizer state(s) but \`configureOptimizers\` returned ${t.optimizers.length}.`);
      }
      t.optimizers.forEach((opt, i) => {
        const prefix = `optimizer_states.${i}.`;
        const ots: Record<string, Tensor> = {};
        for (const [k, v] of Object.entries(tensors)) if (k.startsWith(prefix)) ots[k.slice(prefix.length)] = v;
        opt.loadStateDict({ tensors: ots, json: record.optimizerStates[i] });
      });
      t.lrSchedulerConfigs.forEach((c, i) => {
        const s = record.lrSchedulers[i];
        if (s) c.scheduler.loadStateDict(s);
      });
      for (const cb of t.callbacks) {
        const s = record.callbacks[cb.stateKey];
        if (s && typeof s === 'object') cb.loadStateDict(s as Record<string, unknown>);
        const entry = record.callbackTensors.findIndex((e) => e.stateKey === cb.stateKey);
        if (entry >= 0) {
          const ts: Record<string, Tensor> = {};
          for (const n of record.callbackTensors[entry]!.names) ts[n] = tensors[`callbacks.${entry}.${n}`]!;
          cb.loadTensorStateDict(ts);
        }
      }
      t.datamodule?.loadStateDict(record.datamodule ?? {});
      defaultGenerator.setState(record.rng);
      t.fitLoop.loadStateDict(record.loops.fitLoop);
      await callCallbackHooks(t, 'onLoadCheckpoint', record);
      callModuleHook(t, 'onLoadCheckpoint', record);
      return record;
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }
}

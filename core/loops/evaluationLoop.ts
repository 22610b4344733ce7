import { tf } from '../tf.js';
import { callCallbackHooks, callModuleHook } from '../hooks/call.js';
import type { DataLoader } from '../datamodule.js';
import type { Trainer } from '../trainer.js';
import { limitBatches } from './limits.js';

/** Which evaluation a loop runs. */
export type EvalStage = 'validate' | 'test' | 'sanity';

/**
 * Validation and test loop (Lightning's `_EvaluationLoop`):
 *
 * ```
 * on{Validation,Test}Start; on{..}EpochStart
 * for batch in loader (up to the limit):
 *     on{..}BatchStart → {validation,test}Step under tf.tidy in eval mode → on{..}BatchEnd
 * on{..}EpochEnd (epoch metrics reduced and logged); on{..}End
 * ```
 * The module is put in eval mode for the loop and restored afterwards.
 * Returns the epoch metrics (Lightning's list of dicts, one per loader).
 */
export async function runEvaluationLoop(trainer: Trainer, loader: DataLoader, stage: EvalStage, limit: number | null): Promise<Record<string, number>> {
  const module = trainer.lightningModule;
  const isTest = stage === 'test';
  const results = isTest ? trainer.loggerConnector.testResults : trainer.loggerConnector.valResults;
  results.reset();
  const wasTraining = module.training;
  module.eval();
  const maxBatches = limitBatches(limit, loader.length);
  if (isTest) {
    await callCallbackHooks(trainer, 'onTestStart');
    await callCallbackHooks(trainer, 'onTestEpochStart');
    callModuleHook(trainer, 'onTestEpochStart');
  } else {
    await callCallbackHooks(trainer, 'onValidationStart');
    callModuleHook(trainer, 'onValidationStart');
    await callCallbackHooks(trainer, 'onValidationEpochStart');
    callModuleHook(trainer, 'onValidationEpochStart');
  }
  let batchIdx = 0;
  for await (const batch of loader) {
    if (batchIdx >= maxBatches) {
      tf.dispose(batch as tf.TensorContainer);
      break;
    }
    if (isTest) await callCallbackHooks(trainer, 'onTestBatchStart', batch, batchIdx);
    else {
      await callCallbackHooks(trainer, 'onValidationBatchStart', batch, batchIdx);
      callModuleHook(trainer, 'onValidationBatchStart', batch, batchIdx);
    }
    // No gradient tape here; tidy frees every intermediate of the step.
    tf.tidy(() => {
      const out = isTest ? callModuleHook(trainer, 'testStep', batch, batchIdx) : callModuleHook(trainer, 'validationStep', batch, batchIdx);
      if (out instanceof Promise) throw new Error(`\`${isTest ? 'testStep' : 'validationStep'}\` must be synchronous.`);
    });
    if (isTest) await callCallbackHooks(trainer, 'onTestBatchEnd', null, batch, batchIdx);
    else {
      await callCallbackHooks(trainer, 'onValidationBatchEnd', null, batch, batchIdx);
      callModuleHook(trainer, 'onValidationBatchEnd', null, batch, batchIdx);
    }
    tf.dispose(batch as tf.TensorContainer);
    batchIdx++;
  }
  // Epoch-end hooks may still log (onEpoch by default), so reduce after them.
  if (isTest) {
    await callCallbackHooks(trainer, 'onTestEpochEnd');
    callModuleHook(trainer, 'onTestEpochEnd');
  } else {
    await callCallbackHooks(trainer, 'onValidationEpochEnd');
    callModuleHook(trainer, 'onValidationEpochEnd');
  }
  const metrics = await results.epochMetrics();
  if (stage !== 'sanity') trainer.loggerConnector.updateEvalEpochMetrics(metrics);
  if (isTest) {
    await callCallbackHooks(trainer, 'onTestEnd');
  } else {
    await callCallbackHooks(trainer, 'onValidationEnd');
    callModuleHook(trainer, 'onValidationEnd');
  }
  module.train(wasTraining);
  trainer.evalBatchesSeen = batchIdx;
  return metrics.callback;
}

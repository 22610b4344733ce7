/** The restricted unpickler moved to core/pickle (datamodules read pickles too); re-exported for weights code. */
export * from '../../core/pickle/unpickler.js';

/** The unpickler's value model moved to core/pickle/types.ts; re-exported for weights code. */
export * from '../../core/pickle/types.js';

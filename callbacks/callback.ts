/** The callback base class lives in `core/` (the Trainer dispatches to it); re-exported here for users. */
export { Callback, type TensorState } from '../core/callback.js';

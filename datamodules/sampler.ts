/** The epoch order and DDP sharding live in core (the Trainer and in-memory loaders use them too). */
export { checkShard, epochOrder, numBatches, shardLength, type EpochOrder, type EpochOrderOptions } from '../core/sampler.js';

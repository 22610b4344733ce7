/**
 * Strategies: importing this folder registers 'single', 'single_device' and 'ddp' for
 * `new Trainer({ strategy: name })` and `--strategy name`.
 */
import './single.js';

export { Strategy, SingleDeviceStrategy } from './strategy.js';
export * from './ddp/index.js';

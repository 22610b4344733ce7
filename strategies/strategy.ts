/**
 * The strategy contract lives in core (the Trainer calls it); this re-export is where
 * strategy authors import it from, next to the implementations.
 */
export { Strategy, SingleDeviceStrategy } from '../core/strategy.js';

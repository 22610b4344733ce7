import { register } from '../core/registry.js';
import { SingleDeviceStrategy } from '../core/strategy.js';

// `--strategy single` / `single_device`: one process, every collective the identity.
for (const name of ['single', 'single_device']) {
  register('strategy', name, () => new SingleDeviceStrategy(), { description: 'one process on one device; collectives are the identity' });
}

export { SingleDeviceStrategy };

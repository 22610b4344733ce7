import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyDeterminism } from '../../core/deterministic.js';
import { Trainer } from '../../core/trainer.js';
import { LinearRegressor, loaders } from './helpers.js';

afterEach(() => vi.restoreAllMocks());

describe('deterministic', () => {
  it('sets the libtensorflow determinism switches before the backend loads, and warns without a seed', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(applyDeterminism(false, null, env)).toEqual([]);
    expect(env).toEqual({});
    expect(applyDeterminism(true, 3, env)).toEqual([]);
    expect(env).toEqual({ TF_DETERMINISTIC_OPS: '1', TF_CUDNN_DETERMINISTIC: '1' });
    expect(applyDeterminism(true, null, { TF_DETERMINISTIC_OPS: '0' })).toEqual([expect.stringMatching(/without a `seed`/)]);
  });

  it('two seeded deterministic runs end with bit-identical weights (CPU backends)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const run = async (): Promise<number[]> => {
      const trainer = new Trainer({ deterministic: true, seed: 5, maxEpochs: 2, logger: false, enableProgressBar: false, enableCheckpointing: false, numSanityValSteps: 0 });
      const model = new LinearRegressor();
      await trainer.fit(model, loaders(32, 8, 4));
      return [...model.fc.weight.variable.dataSync(), ...model.fc.bias!.variable.dataSync()];
    };
    const [a, b] = [await run(), await run()];
    expect(a).toEqual(b);
    expect(process.env.TF_DETERMINISTIC_OPS).toBeDefined();
    expect(warn).not.toHaveBeenCalledWith(expect.stringMatching(/without a `seed`/));
  });
});

import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GPU_INSTALL_HINT, registerNativeBackendProvider, selectBackend } from '../../core/backend.js';
import { MisconfigurationError } from '../../core/errors.js';
import { tf } from '../../core/tf.js';

// No provider and no tfjs-node here; a provider that declines keeps the chain deterministic
// even once core/native/backend.ts exists.
registerNativeBackendProvider(async () => false);

afterEach(() => vi.restoreAllMocks());

describe('selectBackend', () => {
  it('falls through to tfjs cpu, prints one line and silences the tfjs banner', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const lines: string[] = [];
    const chosen = await selectBackend({ accelerator: 'auto', log: (l) => lines.push(l), env: {} });
    expect(chosen.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(lines).toEqual(['lightclip: backend cpu (tfjs JavaScript kernels; install @tensorflow/tfjs-node or build the native addon for speed)']);
    tf.tensor([1, 2]).dispose();
    expect(warn.mock.calls.flat().join('\n')).not.toMatch(/Hi, looks like you are running TensorFlow\.js/);
  });

  it('prints to console.log by default and nothing when quiet', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    await selectBackend({ accelerator: 'cpu', env: {} });
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/^lightclip: backend cpu \(/));
    log.mockClear();
    await selectBackend({ accelerator: 'cpu', quiet: true, env: {} });
    expect(log).not.toHaveBeenCalled();
  });

  it('says how to install a GPU backend when accelerator is gpu', async () => {
    const err = await selectBackend({ accelerator: 'gpu', quiet: true, env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MisconfigurationError);
    expect((err as Error).message).toContain('`accelerator` is "gpu"');
    expect((err as Error).message).toContain('npm install @tensorflow/tfjs-node-gpu');
    expect((err as Error).message).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(GPU_INSTALL_HINT).toContain('cuDNN 8.1');
  });

  it('validates accelerator and LIGHTCLIP_BACKEND', async () => {
    await expect(selectBackend({ accelerator: 'tpu' as never, quiet: true, env: {} })).rejects.toThrow(/`accelerator` must be one of "auto", "cpu", "gpu", got "tpu"/);
    await expect(selectBackend({ quiet: true, env: { LIGHTCLIP_BACKEND: 'bogus' } })).rejects.toThrow(/LIGHTCLIP_BACKEND must be one of "tensorflow", "lightclip-cpu", .*"cpu".*got "bogus"/);
    await expect(selectBackend({ quiet: true, env: { LIGHTCLIP_BACKEND: 'tensorflow' } })).rejects.toThrow(/not available; install @tensorflow\/tfjs-node/);
    await expect(selectBackend({ accelerator: 'gpu', quiet: true, env: { LIGHTCLIP_BACKEND: 'cpu' } })).rejects.toThrow(/forces a CPU backend/);
    expect((await selectBackend({ quiet: true, env: { LIGHTCLIP_BACKEND: 'cpu' } })).name).toBe('cpu');
  });

  it('uses the native backend when its provider registers it', async () => {
    registerNativeBackendProvider(async () => {
      if (!tf.findBackendFactory('lightclip-cpu')) tf.registerBackend('lightclip-cpu', () => new MathBackendCPU(), 1);
      return true;
    });
    try {
      const lines: string[] = [];
      const chosen = await selectBackend({ log: (l) => lines.push(l), env: {} });
      expect(chosen.name).toBe('lightclip-cpu');
      expect(tf.getBackend()).toBe('lightclip-cpu');
      expect(lines).toEqual([`lightclip: backend lightclip-cpu (${chosen.description})`]);
      // Forcing cpu skips it even though it is available.
      expect((await selectBackend({ quiet: true, env: { LIGHTCLIP_BACKEND: 'cpu' } })).name).toBe('cpu');
    } finally {
      registerNativeBackendProvider(async () => false);
      await tf.setBackend('cpu');
      tf.removeBackend('lightclip-cpu');
    }
  });
});

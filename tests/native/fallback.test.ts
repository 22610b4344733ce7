import { describe, expect, it, vi } from 'vitest';

describe('without the addon', () => {
  it('loadAddon returns null with a reason and registerNativeBackend warns and returns false', async () => {
    vi.resetModules();
    const saved = process.env.LIGHTCLIP_NATIVE;
    process.env.LIGHTCLIP_NATIVE = '0';
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const addon = await import('../../core/native/addon.js');
      expect(addon.loadAddon()).toBeNull();
      expect(addon.addonLoadError()).toMatch(/LIGHTCLIP_NATIVE=0/);
      expect(addon.setNumThreads(2)).toBe(0);
      const backend = await import('../../core/native/backend.js');
      expect(backend.registerNativeBackend()).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/native CPU backend unavailable.*tfjs cpu/));
      const { tf } = await import('../../core/tf.js');
      expect(tf.findBackendFactory('lightclip-cpu')).toBeNull();
    } finally {
      warn.mockRestore();
      if (saved === undefined) delete process.env.LIGHTCLIP_NATIVE;
      else process.env.LIGHTCLIP_NATIVE = saved;
    }
  });

  it('a missing .node file is reported, not thrown', async () => {
    vi.resetModules();
    const saved = process.env.LIGHTCLIP_NATIVE_PATH;
    process.env.LIGHTCLIP_NATIVE_PATH = '/nonexistent/lightclip.node';
    try {
      const addon = await import('../../core/native/addon.js');
      // the explicit path is missing, so the search goes on to the built file if there is one
      const loaded = addon.loadAddon();
      if (loaded === null) expect(addon.addonLoadError()).toMatch(/not found/);
      else expect(addon.nativeInfo()).not.toBeNull();
    } finally {
      if (saved === undefined) delete process.env.LIGHTCLIP_NATIVE_PATH;
      else process.env.LIGHTCLIP_NATIVE_PATH = saved;
    }
  });
});

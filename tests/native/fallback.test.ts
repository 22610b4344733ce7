import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { buildForWorkers } from '../strategies/fixtures/build.js';
import { spawnNode } from '../strategies/helpers.js';

const BUILT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/lightclip.node');

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

  it('a missing explicit .node path falls through to the built addon; with none found, the reason says so', async () => {
    vi.resetModules();
    const saved = process.env.LIGHTCLIP_NATIVE_PATH;
    process.env.LIGHTCLIP_NATIVE_PATH = '/nonexistent/lightclip.node';
    try {
      const addon = await import('../../core/native/addon.js');
      const loaded = addon.loadAddon();
      // Decided by a fact the code under test does not control: is the addon built here?
      if (fs.existsSync(BUILT)) {
        expect(loaded, `${BUILT} exists, so the search must go on to it`).not.toBeNull();
        expect(addon.nativeInfo()).not.toBeNull();
      } else {
        expect(loaded).toBeNull();
      }
    } finally {
      if (saved === undefined) delete process.env.LIGHTCLIP_NATIVE_PATH;
      else process.env.LIGHTCLIP_NATIVE_PATH = saved;
    }
    // A process whose sources sit where no native/build is above them (the transpiled copy
    // under node_modules/.cache) and whose explicit path is missing: always "not found".
    const build = await buildForWorkers(['core']);
    const child = spawnNode(['--input-type=module', '-e', `const a = await import(${JSON.stringify(`${build}/core/native/addon.js`)}); console.log(JSON.stringify({ loaded: a.loadAddon() !== null, error: a.addonLoadError() }));`], {
      LIGHTCLIP_NATIVE_PATH: '/nonexistent/lightclip.node',
      LIGHTCLIP_NATIVE: undefined,
    });
    expect((await child.exit).code, child.err()).toBe(0);
    const r = JSON.parse(child.out().trim().split('\n').pop()!) as { loaded: boolean; error: string };
    expect(r.loaded).toBe(false);
    expect(r.error).toMatch(/lightclip\.node not found \(run `npm run build:native`\)/);
  });
});

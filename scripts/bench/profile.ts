/**
 * Kernel profile of one training step (tf.profile): which kernels take the time, and whether
 * each ran natively. `node dist/scripts/bench/profile.js [benchmark] [fused|unfused] [backend]`.
 * This is how the kernel list of the native backend was chosen; rerun it on the CLIP ViT step
 * once it exists.
 */
import { tf } from '../../core/tf.js';
import { nativeKernelNames, registerNativeBackend } from '../../core/native/backend.js';
import { STEP_BENCHMARKS } from './steps.js';

/** Per-kernel totals of one profiled step, slowest first. */
export async function profileStep(name: string, fused: boolean, backend: string): Promise<{ kernel: string; ms: number; calls: number; native: boolean }[]> {
  if (backend !== 'cpu') registerNativeBackend();
  await tf.setBackend(backend);
  const bench = STEP_BENCHMARKS.find((b) => b.name === name);
  if (!bench) throw new Error(`unknown benchmark ${name}`);
  const inst = bench.setup(fused);
  inst.step();
  const info = await tf.profile(() => { inst.step(); });
  inst.dispose();
  const native = new Set(nativeKernelNames());
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs);
    e.calls += 1;
    byName.set(k.name, e);
  }
  return [...byName.entries()]
    .map(([kernel, e]) => ({ kernel, ms: e.ms, calls: e.calls, native: backend !== 'cpu' && native.has(kernel) }))
    .sort((a, b) => b.ms - a.ms);
}

if (process.argv[1]?.endsWith('profile.js')) {
  const [name = 'vit-b32-block-b2', mode = 'fused', backend = 'lightclip-cpu'] = process.argv.slice(2);
  const rows = await profileStep(name, mode === 'fused', backend);
  const total = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`${name} ${mode} on ${backend}: ${total.toFixed(1)} ms in kernels`);
  for (const r of rows) {
    console.log(`${r.kernel.padEnd(24)} ${r.ms.toFixed(1).padStart(9)} ms ${String(r.calls).padStart(5)} calls ${(100 * r.ms / total).toFixed(1).padStart(5)}% ${r.native ? 'native' : 'cpu'}`);
  }
}

/**
 * Kernel profile of one training step (tf.profile): which kernels take the time, and whether
 * each ran natively. `node dist/scripts/bench/profile.js [benchmark] [fused|unfused] [backend]`,
 * where the benchmark is a block step of steps.ts or a CLIP step of clip_step.ts
 * (`clip-vit-b32-b16`, `clip-small-vit-b16`; `fused` does not apply to those). This is how the
 * kernel list of the native backend was chosen. The wall time of the profiled step is printed
 * beside the kernel total: the difference is tfjs bookkeeping (tape, tidy, output allocation)
 * and whatever the profiler itself adds.
 */
import { tf } from '../../core/tf.js';
import { nativeKernelNames, registerNativeBackend } from '../../core/native/backend.js';
import { CLIP_STEPS, setupClipStep } from './clip_step.js';
import { STEP_BENCHMARKS } from './steps.js';

/** One kernel's totals over a profiled step. */
export interface KernelProfileRow {
  kernel: string;
  ms: number;
  calls: number;
  native: boolean;
}

/** Per-kernel totals of one profiled step, slowest first, and the step's wall time. */
export async function profileStep(name: string, fused: boolean, backend: string): Promise<{ rows: KernelProfileRow[]; wallMs: number }> {
  if (backend !== 'cpu') registerNativeBackend();
  await tf.setBackend(backend);
  let run: () => Promise<unknown>;
  let dispose: () => void;
  const clip = CLIP_STEPS.find((s) => s.name === name);
  if (clip) {
    const inst = setupClipStep(clip);
    run = () => inst.step();
    dispose = () => inst.dispose();
  } else {
    const bench = STEP_BENCHMARKS.find((b) => b.name === name);
    if (!bench) throw new Error(`unknown benchmark ${name}`);
    const inst = bench.setup(fused);
    run = async () => { inst.step(); };
    dispose = () => inst.dispose();
  }
  await run();
  const t0 = performance.now();
  const info = await tf.profile(async () => { await run(); });
  const wallMs = performance.now() - t0;
  dispose();
  const native = new Set(nativeKernelNames());
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs);
    e.calls += 1;
    byName.set(k.name, e);
  }
  const rows = [...byName.entries()]
    .map(([kernel, e]) => ({ kernel, ms: e.ms, calls: e.calls, native: backend !== 'cpu' && native.has(kernel) }))
    .sort((a, b) => b.ms - a.ms);
  return { rows, wallMs };
}

if (process.argv[1]?.endsWith('profile.js')) {
  const [name = 'vit-b32-block-b2', mode = 'fused', backend = 'lightclip-cpu'] = process.argv.slice(2);
  const { rows, wallMs } = await profileStep(name, mode === 'fused', backend);
  const total = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`${name} ${mode} on ${backend}: ${total.toFixed(1)} ms in kernels, ${wallMs.toFixed(1)} ms wall (profiled)`);
  for (const r of rows) {
    console.log(`${r.kernel.padEnd(24)} ${r.ms.toFixed(1).padStart(9)} ms ${String(r.calls).padStart(5)} calls ${(100 * r.ms / total).toFixed(1).padStart(5)}% ${r.native ? 'native' : 'cpu'}`);
  }
}

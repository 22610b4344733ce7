/**
 * The measuring side of `npm run bench`: each measurement runs in its own Node process (so that
 * its peak RSS is its own), started by scripts/bench.ts with `--child ...` and printing JSON.
 */
import { tf } from '../../core/tf.js';
import { registerNativeBackend, setBlasEnabled, nativeInfo } from '../../core/native/backend.js';
import { STEP_BENCHMARKS } from './steps.js';
import { CLIP_STEPS, setupClipStep } from './clip_step.js';

/** One GEMM measurement. */
export interface GemmResult {
  size: string;
  gflops: number;
}

function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function parseSize(s: string): [number, number, number] {
  const p = s.split('x').map(Number);
  return p.length === 1 ? [p[0], p[0], p[0]] : [p[0], p[1], p[2]];
}

async function useBackend(name: string): Promise<void> {
  if (name !== 'cpu' && !registerNativeBackend()) throw new Error('native backend unavailable');
  if (!(await tf.setBackend(name))) throw new Error(`cannot set backend ${name}`);
}

/** GEMM GFLOP/s through tf.matMul (M x K times K x N), best of three timed rounds. */
async function gemmChild(backend: string, sizes: string[], budget: number): Promise<object> {
  await useBackend(backend);
  const results: GemmResult[] = [];
  for (const s of sizes) {
    const [m, n, k] = parseSize(s);
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    tf.matMul(a, b).dispose();
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      let reps = 0;
      const t0 = performance.now();
      let dt = 0;
      do {
        // Both backends compute synchronously, so the product is complete when matMul
        // returns. Its values are not read out: dataSync hands out the array itself, which
        // then can never go back to lightclip-cpu's buffer pool (core/native/pool.ts), so every
        // call would pay for fresh memory, which neither a training step nor torch.matmul
        // (the PyTorch side) does.
        const c = tf.matMul(a, b);
        c.dispose();
        reps++;
        dt = (performance.now() - t0) / 1000;
      } while (dt < budget || reps < 2);
      best = Math.min(best, dt / reps);
      if (dt > 20) break; // tfjs cpu on big sizes: one round is enough
    }
    a.dispose();
    b.dispose();
    results.push({ size: s, gflops: (2 * m * n * k) / best / 1e9 });
  }
  return { results, peakRssMB: peakRssMB(), native: nativeInfo() };
}

/** Median and minimum seconds of `reps` training steps after two warm-up steps. */
async function stepChild(backend: string, name: string, fused: boolean, reps: number): Promise<object> {
  await useBackend(backend);
  const bench = STEP_BENCHMARKS.find((b) => b.name === name);
  if (!bench) throw new Error(`unknown step benchmark ${name}`);
  const inst = bench.setup(fused);
  for (let i = 0; i < 2; i++) inst.step();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    inst.step();
    times.push((performance.now() - t0) / 1000);
  }
  inst.dispose();
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)];
  return {
    name, pairsPerStep: bench.pairsPerStep, medianSec: median, minSec: times[0],
    pairsPerSec: bench.pairsPerStep / median, peakRssMB: peakRssMB(), native: nativeInfo(),
  };
}

/**
 * Median and minimum seconds of `reps` CLIP training steps (clip_step.ts) after two warm-up
 * steps, with the parameter count for the comparison with PyTorch's model.
 */
async function clipChild(backend: string, name: string, reps: number): Promise<object> {
  await useBackend(backend);
  const spec = CLIP_STEPS.find((s) => s.name === name);
  if (!spec) throw new Error(`unknown CLIP step benchmark ${name}`);
  const inst = setupClipStep(spec);
  for (let i = 0; i < 2; i++) await inst.step();
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    loss = await inst.step();
    times.push((performance.now() - t0) / 1000);
  }
  const paramCount = inst.paramCount;
  inst.dispose();
  const sorted = [...times].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)];
  return {
    name, pairsPerStep: spec.batch, medianSec: median, minSec: sorted[0], pairsPerSec: spec.batch / median,
    times, loss, paramCount, peakRssMB: peakRssMB(), native: nativeInfo(),
  };
}

/** Entry point of a child process: `--child gemm|step|clip key=value...`. */
export async function runChild(argv: string[]): Promise<void> {
  const opts = Object.fromEntries(argv.filter((a) => a.includes('=')).map((a) => a.split('=', 2) as [string, string]));
  if (opts.gemm === 'builtin') setBlasEnabled(false);
  const kind = argv[0];
  let out: object;
  if (kind === 'gemm') out = await gemmChild(opts.backend, opts.sizes.split(','), Number(opts.budget ?? 0.3));
  else if (kind === 'clip') out = await clipChild(opts.backend, opts.name, Number(opts.reps ?? 5));
  else out = await stepChild(opts.backend, opts.name, opts.fused === 'true', Number(opts.reps ?? 5));
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import type { BackendName } from '../../strategies/ddp/group.js';
import { launchDdp } from '../../strategies/ddp/launcher.js';

/** One all-reduce measurement. */
export interface AllReduceBench {
  backend: BackendName;
  floats: number;
  processes: number;
  bestMs: number;
  medianMs: number;
  /** Array bytes / best time (NCCL's "algbw"). */
  algBandwidthMBs: number;
  /** algbw × 2(N−1)/N: the bytes each rank actually sends (NCCL's "busbw"). */
  busBandwidthMBs: number;
}

/** One training-throughput measurement. */
export interface TrainBench {
  processes: number;
  batchPerProcess: number;
  width: number;
  steps: number;
  samplesPerSecond: number;
  msPerStep: number;
}

/** ClipWrapper training throughput (pairs/s), with the gradient all-reduce timed separately. */
export interface ClipTrainBench {
  model: string;
  backend: string;
  processes: number;
  batchPerProcess: number;
  steps: number;
  pairsPerSecond: number;
  msPerStep: number;
  /** Time in the gradient all-reduce per step (DDP overhead = this / msPerStep). */
  allReduceMsPerStep: number;
}

/** What {@link benchDdp} measured. */
export interface DdpBenchResult {
  allReduce: AllReduceBench[];
  training: TrainBench[];
  clip: ClipTrainBench[];
  /** Backends not measured, and why. */
  skipped: string[];
  /** Gloo ÷ zmq speed at 10M floats (best times), when both ran. */
  glooOverZmqAt10M: number | null;
}

/** Options of {@link benchDdp}. */
export interface DdpBenchOptions {
  /** All-reduce sizes in floats (default 1M and 10M). */
  sizes?: number[];
  /** Timed all-reduces per size (default 5; the best and the median are kept). */
  repeats?: number;
  /** Process counts for the all-reduce (default [2]). */
  allReduceProcesses?: number[];
  /** Training steps timed after 5 warm-up steps (default 40). */
  trainSteps?: number;
  /** Samples per process per step (default 64). */
  batchPerProcess?: number;
  /** Backends for the all-reduce (default: every one available here). */
  backends?: BackendName[];
  /** CLIP model of the ClipWrapper bench (default ViT-B/32), its batch per process (32) and timed steps (3); null skips it. */
  clip?: { model: string; batch: number; steps: number } | null;
}

async function runBenchWorkers(devices: number, args: string[], backend?: BackendName): Promise<Record<string, unknown>[]> {
  // The worker is the compiled sibling file: benchDdp runs from dist/ (npm run bench).
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ddpWorker.js');
  if (backend === 'mpi') return runMpiBench(devices, script, args);
  let stdout = '';
  let stderr = '';
  const r = await launchDdp({
    devices,
    script,
    args,
    env: { ...process.env, ...(backend ? { LIGHTCLIP_DDP_BACKEND: backend } : {}) },
    stdio: 'pipe',
    forwardSignals: false,
    log: (l) => (stderr += `${l}\n`),
    onSpawn: ({ process: p }) => {
      p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    },
  });
  if (r.exitCode !== 0) throw new Error(`DDP benchmark workers failed (${r.message}):\n${stderr.slice(-3000)}`);
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice(7)) as Record<string, unknown>);
}

/** The bench workers under mpirun (the mpi backend's ranks come from mpirun). */
async function runMpiBench(devices: number, script: string, args: string[]): Promise<Record<string, unknown>[]> {
  const env = { ...process.env, LIGHTCLIP_DDP_BACKEND: 'mpi', OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' };
  const proc = spawn('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(devices), '--mca', 'btl', 'self,vader,tcp', process.execPath, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  if (code !== 0) throw new Error(`mpirun bench workers failed (code ${code}):\n${stderr.slice(-3000)}`);
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice(7)) as Record<string, unknown>);
}

/**
 * `npm run bench`'s DDP section: all-reduce bandwidth on loopback (2 processes by default)
 * and training throughput of a small MLP with 1 process vs 2 DDP processes (same batch per
 * process, so 2 processes do twice the samples per step). Each measurement runs in fresh
 * worker processes. Must run from `dist/` (it launches `ddpWorker.js`).
 */
export async function benchDdp(options: DdpBenchOptions = {}): Promise<DdpBenchResult> {
  const { glooStatus } = await import('../../strategies/ddp/gloo.js');
  const { mpiStatus } = await import('../../strategies/ddp/mpi.js');
  const sizes = options.sizes ?? [1_000_000, 10_000_000, 100_000_000];
  const repeats = options.repeats ?? 5;
  const skipped: string[] = [];
  let backends = options.backends;
  if (!backends) {
    backends = [];
    const g = glooStatus();
    if (g.available) backends.push('gloo');
    else skipped.push(`gloo: ${g.reason}`);
    const m = mpiStatus();
    if (m.available) backends.push('mpi');
    else skipped.push(`mpi: ${m.reason}`);
    backends.push('zmq');
  }
  const allReduce: AllReduceBench[] = [];
  for (const backend of backends) {
    for (const n of options.allReduceProcesses ?? [2]) {
      for (const row of await runBenchWorkers(n, ['allreduce', sizes.join(','), String(repeats)], backend)) {
        const floats = Number(row.floats);
        const bestMs = Number(row.bestMs);
        const alg = (floats * 4) / 1e6 / (bestMs / 1000);
        allReduce.push({ backend, floats, processes: n, bestMs, medianMs: Number(row.medianMs), algBandwidthMBs: alg, busBandwidthMBs: (alg * 2 * (n - 1)) / n });
      }
    }
  }
  const steps = options.trainSteps ?? 40;
  const batch = options.batchPerProcess ?? 64;
  const training: TrainBench[] = [];
  for (const n of [1, 2]) {
    for (const row of await runBenchWorkers(n, ['train', '384', String(batch), String(steps + 5), '5'])) training.push(row as unknown as TrainBench);
  }
  const clip: ClipTrainBench[] = [];
  const c = options.clip === undefined ? { model: 'ViT-B/32', batch: 32, steps: 3 } : options.clip;
  if (c) {
    for (const n of [1, 2]) {
      for (const row of await runBenchWorkers(n, ['clip', c.model, String(c.batch), String(c.steps + 1), '1'])) clip.push(row as unknown as ClipTrainBench);
    }
  }
  const at = (b: BackendName): AllReduceBench | undefined => allReduce.find((a) => a.backend === b && a.floats === 10_000_000 && a.processes === 2);
  const g10 = at('gloo');
  const z10 = at('zmq');
  return { allReduce, training, clip, skipped, glooOverZmqAt10M: g10 && z10 ? z10.bestMs / g10.bestMs : null };
}

/** The bench as Markdown lines (for bench/results.md). */
export function renderDdpBench(r: DdpBenchResult): string[] {
  const lines = ['## DDP on loopback', '', '| backend | floats | processes | best ms | median ms | algbw MB/s | busbw MB/s |', '|---|---|---|---|---|---|---|'];
  for (const a of r.allReduce) lines.push(`| ${a.backend} | ${a.floats} | ${a.processes} | ${a.bestMs.toFixed(1)} | ${a.medianMs.toFixed(1)} | ${a.algBandwidthMBs.toFixed(0)} | ${a.busBandwidthMBs.toFixed(0)} |`);
  for (const s of r.skipped) lines.push('', `(not measured: ${s})`);
  if (r.glooOverZmqAt10M !== null) lines.push('', `Gloo is ${r.glooOverZmqAt10M.toFixed(1)}× the zeromq layer at 10M floats (target ≥ 5×: ${r.glooOverZmqAt10M >= 5 ? 'met' : 'not met'}).`);
  lines.push('', '| processes | batch/process | ms/step | samples/s |', '|---|---|---|---|');
  for (const t of r.training) lines.push(`| ${t.processes} | ${t.batchPerProcess} | ${t.msPerStep.toFixed(1)} | ${t.samplesPerSecond.toFixed(0)} |`);
  if (r.clip.length) {
    lines.push('', '| ClipWrapper model | backend | processes | batch/process | ms/step | all-reduce ms/step | DDP overhead | pairs/s |', '|---|---|---|---|---|---|---|---|');
    for (const c of r.clip) {
      lines.push(`| ${c.model} | ${c.backend} | ${c.processes} | ${c.batchPerProcess} | ${c.msPerStep.toFixed(0)} | ${c.allReduceMsPerStep.toFixed(0)} | ${((100 * c.allReduceMsPerStep) / c.msPerStep).toFixed(1)}% | ${c.pairsPerSecond.toFixed(2)} |`);
    }
  }
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const r = await benchDdp(quick ? { sizes: [1_000_000], repeats: 2, trainSteps: 10, clip: null } : { allReduceProcesses: [2, 3] });
  console.log(renderDdpBench(r).join('\n'));
}

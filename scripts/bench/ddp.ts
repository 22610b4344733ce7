import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchDdp } from '../../strategies/ddp/launcher.js';

/** One all-reduce measurement. */
export interface AllReduceBench {
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

/** What {@link benchDdp} measured. */
export interface DdpBenchResult {
  allReduce: AllReduceBench[];
  training: TrainBench[];
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
}

async function runBenchWorkers(devices: number, args: string[]): Promise<Record<string, unknown>[]> {
  // The worker is the compiled sibling file: benchDdp runs from dist/ (npm run bench).
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ddpWorker.js');
  let stdout = '';
  let stderr = '';
  const r = await launchDdp({
    devices,
    script,
    args,
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

/**
 * `npm run bench`'s DDP section: all-reduce bandwidth on loopback (2 processes by default)
 * and training throughput of a small MLP with 1 process vs 2 DDP processes (same batch per
 * process, so 2 processes do twice the samples per step). Each measurement runs in fresh
 * worker processes. Must run from `dist/` (it launches `ddpWorker.js`).
 */
export async function benchDdp(options: DdpBenchOptions = {}): Promise<DdpBenchResult> {
  const sizes = options.sizes ?? [1_000_000, 10_000_000];
  const repeats = options.repeats ?? 5;
  const allReduce: AllReduceBench[] = [];
  for (const n of options.allReduceProcesses ?? [2]) {
    for (const row of await runBenchWorkers(n, ['allreduce', sizes.join(','), String(repeats)])) {
      const floats = Number(row.floats);
      const bestMs = Number(row.bestMs);
      const alg = (floats * 4) / 1e6 / (bestMs / 1000);
      allReduce.push({ floats, processes: n, bestMs, medianMs: Number(row.medianMs), algBandwidthMBs: alg, busBandwidthMBs: (alg * 2 * (n - 1)) / n });
    }
  }
  const steps = options.trainSteps ?? 40;
  const batch = options.batchPerProcess ?? 64;
  const training: TrainBench[] = [];
  for (const n of [1, 2]) {
    for (const row of await runBenchWorkers(n, ['train', '384', String(batch), String(steps + 5), '5'])) training.push(row as unknown as TrainBench);
  }
  return { allReduce, training };
}

/** The bench as Markdown lines (for bench/results.md). */
export function renderDdpBench(r: DdpBenchResult): string[] {
  const lines = ['## DDP on loopback', '', '| floats | processes | best ms | median ms | algbw MB/s | busbw MB/s |', '|---|---|---|---|---|---|'];
  for (const a of r.allReduce) lines.push(`| ${a.floats} | ${a.processes} | ${a.bestMs.toFixed(1)} | ${a.medianMs.toFixed(1)} | ${a.algBandwidthMBs.toFixed(0)} | ${a.busBandwidthMBs.toFixed(0)} |`);
  lines.push('', '| processes | batch/process | ms/step | samples/s |', '|---|---|---|---|');
  for (const t of r.training) lines.push(`| ${t.processes} | ${t.batchPerProcess} | ${t.msPerStep.toFixed(1)} | ${t.samplesPerSecond.toFixed(0)} |`);
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const r = await benchDdp(quick ? { sizes: [1_000_000], repeats: 2, trainSteps: 10 } : { allReduceProcesses: [2, 3] });
  console.log(renderDdpBench(r).join('\n'));
}

/**
 * `npm run bench`: (a) GEMM GFLOP/s by size for tfjs cpu, lightclip-cpu (BLAS and built-in GEMM)
 * and PyTorch; (b) training steps (scripts/bench/steps.ts) in pairs per second for lightclip-cpu
 * and PyTorch (and tfjs cpu where it is fast enough); (c) the peak RSS of each, every
 * measurement in its own process. Writes bench/results.json and bench/results.md.
 *
 * Options: --quick (fewer sizes and steps), --no-torch. PyTorch runs with /usr/bin/python3 when
 * `import torch` works there (Debian: apt-get install python3-torch); otherwise it is skipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runChild } from './bench/children.js';
import { renderMarkdown } from './bench/report.js';
import type { BenchResults, GemmRow, StepRow } from './bench/report.js';
import { STEP_BENCHMARKS } from './bench/steps.js';
import { defaultNumThreads } from '../core/native/addon.js';

const PYTHON = '/usr/bin/python3';

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Record<string, unknown> | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const line = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !line) {
    console.warn(`  failed: ${cmd} ${args.join(' ')}\n${r.stderr?.slice(-2000)}`);
    return null;
  }
  return JSON.parse(line) as Record<string, unknown>;
}

function node(args: string[], env: NodeJS.ProcessEnv = {}): Record<string, unknown> | null {
  return runJson(process.execPath, [fileURLToPath(import.meta.url), '--child', ...args], env);
}

function torchAvailable(): boolean {
  if (process.argv.includes('--no-torch') || !existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const threads = defaultNumThreads();
  const root = projectRoot();
  const torchScript = join(root, 'scripts', 'bench', 'torch_bench.py');
  const haveTorch = torchAvailable();
  if (!haveTorch) console.log('PyTorch not available (/usr/bin/python3 -c "import torch" failed): skipping its side');
  const sizes = quick ? ['128', '512', '1024'] : ['64', '128', '256', '512', '1024', '2048', '1600x2304x768', '1600x3072x768', '1600x768x3072'];
  const tfjsSizes = sizes.filter((s) => Number(s.split('x')[0]) <= 512);
  const env = { LIGHTCLIP_NUM_THREADS: String(threads) };
  // The machine may be shared with other work: every measurement is repeated `rounds` times,
  // the backends alternating, and the best round is kept, so that a burst of outside load
  // does not land on one backend only.
  const rounds = quick ? 1 : 2;
  const gemm: GemmRow[] = [];
  const addGemm = (backend: string, r: Record<string, unknown> | null) => {
    for (const row of (r?.results as { size: string; gflops: number }[] | undefined) ?? []) {
      const prev = gemm.find((g) => g.backend === backend && g.size === row.size);
      const rss = Number(r?.peakRssMB);
      if (!prev) gemm.push({ backend, size: row.size, gflops: row.gflops, peakRssMB: rss });
      else if (row.gflops > prev.gflops) Object.assign(prev, { gflops: row.gflops, peakRssMB: rss });
    }
  };
  let nativeReport: Record<string, unknown> | null = null;
  for (let round = 0; round < rounds; round++) {
    console.log(`GEMM (${threads} threads), round ${round + 1}/${rounds}...`);
    const nat = node(['gemm', 'backend=lightclip-cpu', `sizes=${sizes.join(',')}`], env);
    nativeReport ??= (nat?.native as Record<string, unknown> | undefined) ?? null;
    const blasName = nativeReport?.blas as string | null | undefined;
    addGemm(`lightclip-cpu (${blasName ?? 'built-in GEMM'})`, nat);
    if (blasName) addGemm('lightclip-cpu (built-in GEMM)', node(['gemm', 'backend=lightclip-cpu', 'gemm=builtin', `sizes=${sizes.join(',')}`], env));
    if (haveTorch) addGemm('pytorch', runJson(PYTHON, [torchScript, 'gemm', `--threads=${threads}`, `--sizes=${sizes.join(',')}`]));
    if (round === 0) addGemm('tfjs cpu', node(['gemm', 'backend=cpu', `sizes=${tfjsSizes.join(',')}`, 'budget=0.2'], env));
  }

  const steps: StepRow[] = [];
  const reps = quick ? 3 : 5;
  for (const b of STEP_BENCHMARKS) {
    if (quick && b.name !== 'vit-b32-block') continue;
    const add = (backend: string, r: Record<string, unknown> | null) => {
      if (!r) return;
      const row: StepRow = { name: b.name, backend, pairsPerStep: b.pairsPerStep, medianSec: Number(r.medianSec), minSec: Number(r.minSec), pairsPerSec: Number(r.pairsPerSec), peakRssMB: Number(r.peakRssMB) };
      const prev = steps.find((x) => x.name === b.name && x.backend === backend);
      if (!prev) steps.push(row);
      else if (row.medianSec < prev.medianSec) Object.assign(prev, row);
    };
    for (let round = 0; round < rounds; round++) {
      console.log(`step ${b.name}, round ${round + 1}/${rounds}...`);
      add('lightclip-cpu (fused)', node(['step', 'backend=lightclip-cpu', `name=${b.name}`, 'fused=true', `reps=${reps}`], env));
      if (haveTorch) add('pytorch', runJson(PYTHON, [torchScript, 'step', `--threads=${threads}`, `--name=${b.name}`, `--reps=${reps}`]));
      add('lightclip-cpu (unfused)', node(['step', 'backend=lightclip-cpu', `name=${b.name}`, 'fused=false', `reps=${reps}`], env));
      if (b.runOnTfjsCpu && round === 0) add('tfjs cpu', node(['step', 'backend=cpu', `name=${b.name}`, 'fused=false', 'reps=2'], env));
    }
  }

  const results: BenchResults = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, threads, loadavg: loadavg(), node: process.version },
    native: nativeReport,
    gemm,
    steps,
  };
  const outDir = join(root, 'bench');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'results.md'), renderMarkdown(results));
  console.log(renderMarkdown(results));
}

if (process.argv[2] === '--child') {
  await runChild(process.argv.slice(3));
} else {
  await main();
}

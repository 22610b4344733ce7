/**
 * `npm run bench`: (a) GEMM GFLOP/s by size for tfjs cpu, lightclip-cpu (BLAS and built-in GEMM)
 * and PyTorch; (b) CLIP training steps (scripts/bench/clip_step.ts: the real model in the real
 * ClipWrapper with AdamW) against the same architecture in PyTorch (torch_clip.py), and
 * transformer-block steps (steps.ts), in pairs per second; (c) the peak RSS of each, every
 * measurement in its own process; (d) DDP on loopback (scripts/bench/ddp.ts). Writes
 * bench/results.json and bench/results.md.
 *
 * Options: --quick (fewer sizes and steps, small CLIP only), --no-torch, --no-ddp,
 * --only=clip|gemm|steps|ddp|deeplake (one section; repeatable). PyTorch runs with /usr/bin/python3
 * when `import torch` works there (Debian: apt-get install python3-torch); otherwise it is
 * skipped with a message.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runChild } from './bench/children.js';
import { renderMarkdown } from './bench/report.js';
import type { BenchResults, ClipStepRow, GemmRow, StepRow } from './bench/report.js';
import { CLIP_STEPS } from './bench/clip_step.js';
import { STEP_BENCHMARKS } from './bench/steps.js';
import { defaultNumThreads } from '../core/native/addon.js';
import { benchDdp } from './bench/ddp.js';
import type { DdpBenchResult } from './bench/ddp.js';
import { benchDeeplake, renderDeeplakeMarkdown, type DeeplakeBenchResult } from './bench/deeplake.js';
import { benchData, renderDataBench, type DataBenchResult } from './bench/data.js';

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

/** PyTorch's version when `import torch` works under /usr/bin/python3, else null. */
function torchVersion(): string | null {
  if (process.argv.includes('--no-torch') || !existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Whether a section runs (`--only=` limits them; none given = all). */
function wanted(section: string): boolean {
  const only = process.argv.filter((a) => a.startsWith('--only=')).map((a) => a.slice(7));
  return only.length === 0 || only.includes(section);
}

/**
 * CLIP steps: each benchmark alternates lightclip and PyTorch for `rounds` rounds (a burst of
 * outside load then hits both), keeping each side's best median.
 */
function benchClip(root: string, threads: number, haveTorch: boolean, quick: boolean, env: NodeJS.ProcessEnv): ClipStepRow[] {
  const rows: ClipStepRow[] = [];
  const torchScript = join(root, 'scripts', 'bench', 'torch_clip.py');
  const rounds = quick ? 1 : 2;
  const add = (spec: (typeof CLIP_STEPS)[number], backend: string, r: Record<string, unknown> | null) => {
    if (!r) return;
    const row: ClipStepRow = {
      name: spec.name, description: spec.description, backend, batch: spec.batch, paramCount: Number(r.paramCount),
      medianSec: Number(r.medianSec), minSec: Number(r.minSec), pairsPerSec: Number(r.pairsPerSec),
      peakRssMB: Number(r.peakRssMB), times: (r.times as number[] | undefined) ?? [],
    };
    const prev = rows.find((x) => x.name === spec.name && x.backend === backend);
    if (!prev) rows.push(row);
    else {
      if (row.medianSec < prev.medianSec) Object.assign(prev, { ...row, minSec: Math.min(row.minSec, prev.minSec) });
      else prev.minSec = Math.min(row.minSec, prev.minSec);
    }
  };
  for (const spec of CLIP_STEPS) {
    if (quick && spec.name !== 'clip-small-vit-b16') continue;
    const reps = quick ? 3 : spec.name.includes('small') ? 10 : 5;
    for (let round = 0; round < rounds; round++) {
      console.log(`CLIP step ${spec.name}, round ${round + 1}/${rounds}...`);
      add(spec, 'lightclip-cpu', node(['clip', 'backend=lightclip-cpu', `name=${spec.name}`, `reps=${reps}`], env));
      if (haveTorch) add(spec, 'pytorch', runJson(PYTHON, [torchScript, `--name=${spec.name}`, `--threads=${threads}`, `--reps=${reps}`]));
    }
  }
  return rows;
}

/** Names of the CLIP benchmarks whose two models differ in parameter count. */
function paramMismatches(rows: ClipStepRow[]): string[] {
  const out: string[] = [];
  for (const name of new Set(rows.map((r) => r.name))) {
    const counts = new Set(rows.filter((r) => r.name === name).map((r) => r.paramCount));
    if (counts.size > 1) out.push(`${name} (${[...counts].join(' vs ')})`);
  }
  return out;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const threads = defaultNumThreads();
  const root = projectRoot();
  const torchScript = join(root, 'scripts', 'bench', 'torch_bench.py');
  const torch = torchVersion();
  const haveTorch = torch !== null;
  if (!haveTorch) console.log('PyTorch not available (/usr/bin/python3 -c "import torch" failed or --no-torch): skipping its side');
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
  const clip = wanted('clip') ? benchClip(root, threads, haveTorch, quick, env) : [];
  const mismatches = paramMismatches(clip);
  if (mismatches.length) {
    console.error(`ERROR: lightclip and PyTorch CLIP models differ in parameter count: ${mismatches.join(', ')}`);
    process.exitCode = 1;
  } else if (clip.length && haveTorch) {
    console.log('CLIP parameter counts equal on both sides');
  }
  for (let round = 0; round < (wanted('gemm') ? rounds : 0); round++) {
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
    if ((quick && b.name !== 'vit-b32-block') || !wanted('steps')) continue;
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

  let ddp: DdpBenchResult | null = null;
  let ddpError: string | null = null;
  if (wanted('ddp') && !process.argv.includes('--no-ddp')) {
    console.log('DDP on loopback...');
    try {
      ddp = await benchDdp(quick ? { sizes: [1_000_000], repeats: 2, trainSteps: 10, clip: null } : {});
    } catch (err) {
      // reported in the results rather than losing the other sections
      ddpError = (err as Error).message.split('\n').find((l) => l.includes('Error:')) ?? (err as Error).message.split('\n')[0];
      console.warn(`  DDP bench failed: ${ddpError}`);
    }
  }

  // Deep Lake reading (scripts/bench/deeplake.ts)
  const deeplake: DeeplakeBenchResult | null = wanted('deeplake') ? await benchDeeplake({ quick }) : null;
  // Data readers and the YFCC15M index (scripts/bench/data.ts); only with --only=data or a full run.
  let data: DataBenchResult | null = null;
  if (wanted('data')) {
    console.log('data readers...');
    data = await benchData(quick ? { images: 96, entries: 1_000_000 } : {});
  }

  // without the GEMM section, one tiny GEMM child still reports the addon's ISA and BLAS
  nativeReport ??= (node(['gemm', 'backend=lightclip-cpu', 'sizes=64', 'budget=0.01'], env)?.native as Record<string, unknown> | undefined) ?? null;
  const results: BenchResults & { deeplake: DeeplakeBenchResult | null } = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, threads, loadavg: loadavg(), node: process.version, torch },
    native: nativeReport,
    gemm,
    steps,
    clip,
    paramMismatches: mismatches,
    ddp,
    ddpError,
    deeplake,
    data,
  };
  const outDir = join(root, 'bench');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const vitB32 = clip.find((c) => c.name === 'clip-vit-b32-b16' && c.backend === 'lightclip-cpu')?.pairsPerSec;
  const md = renderMarkdown(results) + renderDeeplakeMarkdown(deeplake) + (data ? `${renderDataBench(data, vitB32).join('\n')}\n` : '');
  writeFileSync(join(outDir, 'results.md'), md);
  console.log(md);
}

if (process.argv[2] === '--child') {
  await runChild(process.argv.slice(3));
} else {
  await main();
}

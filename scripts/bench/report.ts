/**
 * bench/results.json's shape and its markdown rendering (bench/results.md).
 */
import type { DdpBenchResult } from './ddp.js';
import { renderDdpBench } from './ddp.js';

/** One GEMM measurement. */
export interface GemmRow {
  backend: string;
  size: string;
  gflops: number;
  peakRssMB: number;
}

/** One training-step measurement. */
export interface StepRow {
  name: string;
  backend: string;
  pairsPerStep: number;
  medianSec: number;
  minSec: number;
  pairsPerSec: number;
  peakRssMB: number;
}

/** One CLIP training-step measurement (clip_step.ts / torch_clip.py). */
export interface ClipStepRow {
  name: string;
  description: string;
  /** 'lightclip-cpu' or 'pytorch'. */
  backend: string;
  batch: number;
  /** Trainable parameters of the model (the two sides must agree). */
  paramCount: number;
  medianSec: number;
  minSec: number;
  pairsPerSec: number;
  peakRssMB: number;
  /** Every timed step of the kept round, in seconds. */
  times: number[];
}

/** Everything `npm run bench` measured. */
export interface BenchResults {
  date: string;
  machine: { cpu: string; cores: number; threads: number; loadavg: number[]; node: string; torch?: string | null };
  native: Record<string, unknown> | null;
  gemm: GemmRow[];
  steps: StepRow[];
  clip: ClipStepRow[];
  /** Benchmarks whose lightclip and PyTorch models differ in parameter count (should be empty). */
  paramMismatches: string[];
  ddp: DdpBenchResult | null;
  /** Why the DDP section is missing, when it is. */
  ddpError: string | null;
  /** Data readers and YFCC indexing (scripts/bench/data.ts), when run. */
  data?: import('./data.js').DataBenchResult | null;
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

/**
 * The CLIP step table: both sides of each benchmark with pairs/s, the time ratio to PyTorch
 * (median and min: the machine may be shared) and peak RSS. Also what the README shows.
 */
export function renderClipTable(r: BenchResults): string[] {
  const lines = ['| benchmark | backend | parameters | s/step (median) | s/step (min) | pairs/s | time vs PyTorch (median / min) | peak RSS MB |',
    '|---|---|---:|---:|---:|---:|---:|---:|'];
  for (const s of r.clip) {
    const torch = r.clip.find((t) => t.name === s.name && t.backend === 'pytorch');
    const ratio = torch ? `${fmt(s.medianSec / torch.medianSec, 2)} / ${fmt(s.minSec / torch.minSec, 2)}` : '–';
    lines.push(`| ${s.name} | ${s.backend} | ${s.paramCount.toLocaleString('en-US')} | ${fmt(s.medianSec, 3)} | ${fmt(s.minSec, 3)} | ` +
      `${fmt(s.pairsPerSec, 2)} | ${ratio} | ${fmt(s.peakRssMB, 0)} |`);
  }
  return lines;
}

/** The machine line of the report. */
export function machineLine(r: BenchResults): string {
  const torch = r.machine.torch ? ` · PyTorch ${r.machine.torch}` : ' · PyTorch not available';
  return `${r.date} · ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.threads} threads · Node ${r.machine.node}${torch}` +
    ` · load average at the end ${r.machine.loadavg.map((l) => l.toFixed(2)).join(' ')}`;
}

/** GEMM table: sizes x backends, GFLOP/s, then each process's peak RSS. */
function renderGemm(r: BenchResults): string[] {
  const lines = ['## GEMM (GFLOP/s through tf.matMul / torch.matmul, best of 3 timings × 2 rounds; size = M×N×K, or N for square)', ''];
  const backends = [...new Set(r.gemm.map((g) => g.backend))];
  const sizes = [...new Set(r.gemm.map((g) => g.size))];
  lines.push(`| size | ${backends.join(' | ')} |`, `|---|${backends.map(() => '---:').join('|')}|`);
  for (const s of sizes) {
    const cells = backends.map((b) => {
      const row = r.gemm.find((g) => g.backend === b && g.size === s);
      return row ? fmt(row.gflops) : '–';
    });
    lines.push(`| ${s} | ${cells.join(' | ')} |`);
  }
  lines.push('', `Peak RSS of the GEMM processes (MB): ${backends.map((b) => `${b} ${fmt(r.gemm.find((g) => g.backend === b)?.peakRssMB ?? NaN, 0)}`).join(', ')}`);
  return lines;
}

/** One-block training steps with time ratios to PyTorch. */
function renderBlockSteps(r: BenchResults): string[] {
  const lines = ['## Transformer-block training steps (one block: forward + backward + AdamW; median of 5 timed steps, best of 2 alternating rounds)', ''];
  lines.push('| benchmark | backend | s/step (median) | s/step (min) | pairs/s | vs PyTorch (time ratio) | peak RSS MB |', '|---|---|---:|---:|---:|---:|---:|');
  for (const s of r.steps) {
    const torch = r.steps.find((t) => t.name === s.name && t.backend === 'pytorch');
    const ratio = torch ? fmt(s.medianSec / torch.medianSec, 2) : '–';
    lines.push(`| ${s.name} | ${s.backend} | ${fmt(s.medianSec, 3)} | ${fmt(s.minSec, 3)} | ${fmt(s.pairsPerSec, 2)} | ${ratio} | ${fmt(s.peakRssMB, 0)} |`);
  }
  lines.push('', 'Ratios above 1 mean slower than PyTorch. The machine may be shared: compare the minimum columns too.');
  return lines;
}

/** The markdown report: CLIP steps, GEMM table (sizes x backends), block steps, DDP. */
export function renderMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  lines.push('# lightclip benchmarks', '');
  lines.push(machineLine(r));
  if (r.native) lines.push(`native addon: ISA ${String(r.native.isa)}, BLAS ${String(r.native.blas ?? 'none (built-in GEMM)')}`);
  if (r.clip.length) {
    lines.push('', '## CLIP training step (ClipWrapper: forward, symmetric InfoNCE, backward, AdamW; PyTorch: the same architecture)', '');
    lines.push(...renderClipTable(r));
    lines.push('', 'Median of the timed steps after 2 warm-ups, best of the alternating rounds; each side in its own process ' +
      '(peak RSS is that process\'s). Time ratios below 1 mean lightclip is faster.');
    if (r.paramMismatches.length) lines.push(`**Parameter counts differ: ${r.paramMismatches.join(', ')}**`);
    else if (r.clip.some((c) => c.backend === 'pytorch')) lines.push('Parameter counts are equal on both sides for every benchmark.');
  }
  if (r.gemm.length) lines.push('', ...renderGemm(r));
  if (r.steps.length) lines.push('', ...renderBlockSteps(r));
  lines.push('');
  if (r.ddp) lines.push(...renderDdpBench(r.ddp), '');
  else if (r.ddpError) lines.push('## DDP on loopback', '', `Not measured: ${r.ddpError}`, '');
  return lines.join('\n');
}

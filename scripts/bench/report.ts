/**
 * bench/results.json's shape and its markdown rendering (bench/results.md).
 */

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

/** Everything `npm run bench` measured. */
export interface BenchResults {
  date: string;
  machine: { cpu: string; cores: number; threads: number; loadavg: number[]; node: string };
  native: Record<string, unknown> | null;
  gemm: GemmRow[];
  steps: StepRow[];
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** The markdown report: GEMM table (sizes x backends), step table with ratios to PyTorch. */
export function renderMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  lines.push('# lightclip benchmarks', '');
  lines.push(`${r.date} · ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.threads} threads · Node ${r.machine.node}` +
    ` · load average at the end ${r.machine.loadavg.map((l) => l.toFixed(2)).join(' ')}`);
  if (r.native) lines.push(`native addon: ISA ${String(r.native.isa)}, BLAS ${String(r.native.blas ?? 'none (built-in GEMM)')}`);
  lines.push('', '## GEMM (GFLOP/s through tf.matMul / torch.matmul, best of 3 timings × 2 rounds; size = M×N×K, or N for square)', '');
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
  lines.push('', '## Training steps (forward + backward + AdamW; median of 5 timed steps, best of 2 alternating rounds)', '');
  lines.push('| benchmark | backend | s/step (median) | s/step (min) | pairs/s | vs PyTorch (time ratio) | peak RSS MB |', '|---|---|---:|---:|---:|---:|---:|');
  for (const s of r.steps) {
    const torch = r.steps.find((t) => t.name === s.name && t.backend === 'pytorch');
    const ratio = torch ? fmt(s.medianSec / torch.medianSec, 2) : '–';
    lines.push(`| ${s.name} | ${s.backend} | ${fmt(s.medianSec, 3)} | ${fmt(s.minSec, 3)} | ${fmt(s.pairsPerSec, 2)} | ${ratio} | ${fmt(s.peakRssMB, 0)} |`);
  }
  lines.push('', 'Ratios above 1 mean slower than PyTorch. The machine may be shared: compare the minimum columns too.', '');
  return lines.join('\n');
}

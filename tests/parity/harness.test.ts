import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PARITY, PARITY_CONFIGS, runParity } from '../../scripts/parity/harness.js';

// PyTorch is an independent reference here only: the harness needs Debian's python3-torch.
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const torchMissing = probe.status === 0 ? null : `${PYTHON} -c "import torch, numpy" failed (${(probe.stderr || String(probe.error)).trim().split('\n').pop()})`;
if (torchMissing) console.log(`tests/parity/harness.test.ts skipped: ${torchMissing}; install python3-torch to run it`);

describe.skipIf(torchMissing !== null)('training parity with PyTorch (50 AdamW steps, warmup + cosine, clamp)', () => {
  // LIGHTCLIP_PARITY_DIR keeps the exchanged files for a look (torch.json, *.safetensors).
  const keep = process.env.LIGHTCLIP_PARITY_DIR;
  const dir = keep ?? mkdtempSync(path.join(tmpdir(), 'lightclip-parity-'));
  afterAll(() => (keep ? undefined : rmSync(dir, { recursive: true, force: true })));
  for (const c of PARITY_CONFIGS) {
    it(`${c.model}${c.minibatchSize ? ` with --minibatch_size ${c.minibatchSize}` : ''}: losses within 1e-4 relative, weights within 1e-3`, async () => {
      const r = await runParity({ ...DEFAULT_PARITY, ...c, dir, python: PYTHON });
      console.log(`${r.name}: max loss rel diff ${r.maxLossRelDiff.toExponential(2)}, max weight abs diff ${r.maxWeightAbsDiff.toExponential(2)} (${r.worstWeight}), key biases ${r.keyBiasAbsDiff.toExponential(2)}; PyTorch float32 vs float64: ${r.floorLossRelDiff.toExponential(2)} / ${r.floorWeightAbsDiff.toExponential(2)}; largest weight change ${r.maxWeightChange.toExponential(2)}`);
      console.log(`  first steps lightclip ${r.lightclipLosses.slice(0, 4).map((l) => l.toFixed(6)).join(' ')} | pytorch ${r.torchLosses.slice(0, 4).map((l) => l.toFixed(6)).join(' ')}`);
      expect(r.lightclipLosses).toHaveLength(DEFAULT_PARITY.steps);
      expect(r.torchLosses).toHaveLength(DEFAULT_PARITY.steps);
      // Training moved the weights far more than the tolerance, so the comparison means something.
      expect(r.maxWeightChange).toBeGreaterThan(5e-3);
      expect(r.maxLossRelDiff).toBeLessThan(1e-4);
      expect(r.maxWeightAbsDiff).toBeLessThan(1e-3);
    }, 600_000);
  }
});

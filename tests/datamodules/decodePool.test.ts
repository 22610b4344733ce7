import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator } from '../../core/random.js';
import { decodeKernel, type TransformPlan } from '../../datamodules/decodeKernel.js';
import { DecodePool } from '../../datamodules/decodePool.js';
import { applyTransformPlan, clipEvalTransform, randomResizedCrop } from '../../datamodules/transforms.js';
import { fromRaw, noise, put, removeDir, solid, tempDir } from './helpers.js';

describe('DecodePool', () => {
  let root: string;
  let files: string[];
  const pool = new DecodePool(2);

  beforeAll(async () => {
    root = await tempDir();
    files = [
      await put(root, 'a.png', await fromRaw(40, 30, noise(40, 30, 1))),
      await put(root, 'b.jpg', await solid(30, 40, [10, 200, 90], 'jpeg')),
      await put(root, 'c.png', await fromRaw(25, 25, noise(25, 25, 2))),
      await put(root, 'bad.jpg', new Uint8Array(300).map((_, i) => (i * 131 + 7) & 255)),
    ];
  });
  afterAll(async () => {
    await pool.close();
    await removeDir(root);
  });

  it('the kernel shipped to workers is plain, self-contained JavaScript', () => {
    const src = decodeKernel.toString();
    expect(src.startsWith('async function decodeKernel(')).toBe(true);
    expect(src).not.toMatch(/_async_to_generator|_object_spread|__awaiter|import\(|require\(/);
  });

  it('workers produce exactly the tensors of main-thread decoding, for both transforms', async () => {
    const rng = new Generator(42);
    const plans: TransformPlan[] = [];
    for (let i = 0; i < 3; i++) plans.push(randomResizedCrop(16, { scale: [0.5, 1], ratio: [0.75, 4 / 3] }, rng).plan());
    plans.push(clipEvalTransform(16).plan());
    const jobs = files.slice(0, 3).flatMap((f) => plans.map((p) => ({ f, p })));
    const viaWorkers = await Promise.all(jobs.map(({ f, p }) => pool.decode(f, p)));
    const inline = new DecodePool(0);
    for (let i = 0; i < jobs.length; i++) {
      const w = viaWorkers[i]!;
      const m = await inline.decode(jobs[i]!.f, jobs[i]!.p);
      const direct = await applyTransformPlan(jobs[i]!.f, jobs[i]!.p);
      if (!w.ok || !m.ok) throw new Error(`decode failed: ${JSON.stringify(w.ok ? m : w)}`);
      expect(w.image.data.length).toBe(16 * 16 * 3);
      expect(Buffer.from(w.image.data.buffer).equals(Buffer.from(m.image.data.buffer))).toBe(true);
      expect(Buffer.from(w.image.data.buffer).equals(Buffer.from(direct.data.buffer))).toBe(true);
    }
    await inline.close();
  });

  it('a corrupt image resolves as a failure (not a rejection) and the pool keeps working', async () => {
    const plan = clipEvalTransform(8).plan();
    const bad = await pool.decode(files[3]!, plan);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/unsupported image format|corrupt|Invalid|premature/i);
    const missing = await pool.decode(`${root}/does-not-exist.png`, plan);
    expect(missing.ok).toBe(false);
    const good = await pool.decode(files[0]!, plan);
    expect(good.ok).toBe(true);
    const inline = await new DecodePool(0).decode(files[3]!, plan);
    expect(inline.ok).toBe(false);
  });

  it('accepts bytes as input and drops queued tasks when their signal aborts', async () => {
    const bytes = await solid(12, 12, [1, 2, 3]);
    const ok = await pool.decode(bytes, clipEvalTransform(12).plan());
    expect(ok.ok).toBe(true);
    const ac = new AbortController();
    const many = Array.from({ length: 8 }, () => pool.decode(files[0]!, clipEvalTransform(16).plan(), ac.signal));
    ac.abort();
    const outcomes = await Promise.all(many);
    // Up to one task per worker had started; the rest were dropped.
    expect(outcomes.filter((o) => !o.ok && o.cancelled).length).toBeGreaterThanOrEqual(6);
    expect(pool.pending).toBe(0);
  });

  it('rejects a negative worker count naming --num_workers', () => {
    expect(() => new DecodePool(-1)).toThrow(/--num_workers/);
  });
});

import { Generator } from '../../core/random.js';

/**
 * webdataset's `_shuffle(data, bufsize, initial, rng)`: fill a buffer (two items admitted per
 * step while below `bufsize`), and once it holds `initial` items emit a random one each step
 * (swap with the last, pop); drain at the end. Memory is bounded by `bufsize` items.
 */
export async function* bufferShuffle<T>(items: AsyncIterable<T>, bufsize: number, initial: number, rng: Generator): AsyncGenerator<T, void, undefined> {
  const it = items[Symbol.asyncIterator]();
  const buf: T[] = [];
  const start = Math.min(initial, bufsize);
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    buf.push(r.value);
    if (buf.length < bufsize) {
      const r2 = await it.next();
      if (!r2.done) buf.push(r2.value);
      else {
        if (buf.length >= start) yield pick(buf, rng);
        break;
      }
    }
    if (buf.length >= start) yield pick(buf, rng);
  }
  while (buf.length > 0) yield pick(buf, rng);
}

/** The same shuffle over an array (shard lists), synchronously. */
export function bufferShuffleList<T>(items: readonly T[], bufsize: number, initial: number, rng: Generator): T[] {
  const out: T[] = [];
  const buf: T[] = [];
  const start = Math.min(initial, bufsize);
  let i = 0;
  while (i < items.length) {
    buf.push(items[i++]!);
    if (buf.length < bufsize && i < items.length) buf.push(items[i++]!);
    if (buf.length >= start) out.push(pick(buf, rng));
  }
  while (buf.length > 0) out.push(pick(buf, rng));
  return out;
}

function pick<T>(buf: T[], rng: Generator): T {
  const k = rng.randint(buf.length);
  const v = buf[k]!;
  buf[k] = buf[buf.length - 1]!;
  buf.pop();
  return v;
}

/** A 32-bit seed from several integers (seed, epoch, rank, worker...), order-sensitive. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let x = (p | 0) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
    h = Math.imul(h ^ x, 0x01000193) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
  }
  return h >>> 0;
}

/**
 * The subset of Deep Lake's TQL the train-CLIP fork uses:
 *
 *   SELECT * WHERE NSFW == 'UNLIKELY' [AND WIDTH BETWEEN 50 AND 450] [AND ...]
 *
 * Conditions: `<col> == '<string>'` (case-sensitive; `=` also accepted), `<col> == <number>`,
 * `<col> BETWEEN <a> AND <b>` (inclusive), joined by AND. Keywords are case-insensitive.
 * Evaluated by scanning the named columns once, chunk by chunk; the matching indices are a
 * sorted Uint32Array, cached in memory and on disk (keyed by dataset, commit, chunk index).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { toNumbers, type NumericArray } from './decode.js';
import { DeepLakeError, type DeepLakeDataset, type DeepLakeTensor } from './dataset.js';

export type Condition =
  | { kind: 'eq'; column: string; value: string | number }
  | { kind: 'between'; column: string; lo: number; hi: number };

/** The fork's `--filter_NSFW` (2023: NSFW only; since 2024-07 with the width bound). */
export const NSFW_QUERY = "SELECT * WHERE NSFW == 'UNLIKELY'";
export const NSFW_WIDTH_QUERY = "SELECT * WHERE NSFW == 'UNLIKELY' and WIDTH between 50 and 450";

const SUPPORTED = "supported: SELECT * WHERE <col> == '<text>' | <col> == <number> | <col> BETWEEN <a> AND <b>, joined by AND";

/** Parses the supported subset; anything else is an error naming what is supported. */
export function parseQuery(query: string): Condition[] {
  const q = query.trim();
  const m = /^select\s+\*\s+where\s+([\s\S]+)$/i.exec(q);
  if (!m) throw new DeepLakeError(`--query ${JSON.stringify(query)}: expected "SELECT * WHERE ..." (${SUPPORTED})`);
  let rest = m[1]!.trim();
  const conds: Condition[] = [];
  const ident = String.raw`([A-Za-z_][A-Za-z0-9_/]*)`;
  const num = String.raw`(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)`;
  const str = String.raw`'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"`;
  const eq = new RegExp(`^${ident}\\s*==?\\s*(?:${str}|${num})`);
  const between = new RegExp(`^${ident}\\s+between\\s+${num}\\s+and\\s+${num}`, 'i');
  for (;;) {
    let mm: RegExpExecArray | null;
    if ((mm = between.exec(rest))) {
      conds.push({ kind: 'between', column: mm[1]!, lo: Number(mm[2]), hi: Number(mm[3]) });
    } else if ((mm = eq.exec(rest))) {
      const s = mm[2] ?? mm[3];
      conds.push({ kind: 'eq', column: mm[1]!, value: s !== undefined ? s.replace(/\\(.)/g, '$1') : Number(mm[4]) });
    } else {
      throw new DeepLakeError(`--query ${JSON.stringify(query)}: cannot parse ${JSON.stringify(rest.slice(0, 40))} (${SUPPORTED})`);
    }
    rest = rest.slice(mm[0].length).trim();
    if (!rest) break;
    const and = /^and\s+/i.exec(rest);
    if (!and) throw new DeepLakeError(`--query ${JSON.stringify(query)}: expected AND or the end after ${JSON.stringify(mm[0])}, got ${JSON.stringify(rest.slice(0, 20))} (${SUPPORTED}; OR, NOT, ORDER BY, LIMIT... are not)`);
    rest = rest.slice(and[0].length);
  }
  return conds;
}

const decoder = new TextDecoder();

/** Calls `visit(i, value)` for every sample of a text or scalar numeric column, chunk by chunk. */
async function scanColumn(t: DeepLakeTensor, n: number, visit: (i: number, v: string | number | null) => void): Promise<void> {
  const text = t.meta.htype === 'text' || t.meta.is_link;
  if (!text && t.dtype === null) throw new DeepLakeError(`${t.dataset.root}: tensor ${JSON.stringify(t.name)} (htype ${t.meta.htype}) cannot be compared in --query: expected text or a numeric scalar`);
  for (let i = 0; i < n; i++) {
    const raw = await t.raw(i);
    if (text) visit(i, decoder.decode(raw.bytes));
    else {
      const v = (await t.value(i)) as { data: NumericArray };
      const nums = toNumbers(v.data);
      visit(i, nums.length === 1 ? nums[0]! : null);
    }
  }
}

/** Indices (sorted) of the samples matching `query`, from the cache when the dataset has not changed. */
export async function selectIndices(ds: DeepLakeDataset, query: string, options: { cacheDir?: string | null; log?: ((l: string) => void) | null } = {}): Promise<Uint32Array> {
  const conds = parseQuery(query);
  const n = ds.length;
  const columns = [...new Set(conds.map((c) => c.column))];
  const tensors = columns.map((c) => {
    if (!ds.hasTensor(c)) throw new DeepLakeError(`${ds.root}: --query names tensor ${JSON.stringify(c)}, which does not exist (tensors: ${[...ds.tensors.keys()].join(', ')})`);
    return ds.tensor(c);
  });
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ root: ds.root, commit: ds.commitId, n, conds, cols: tensors.map((t) => [t.name, t.length, t.numChunks, t.index.names[t.numChunks - 1] ?? '']) }))
    .digest('hex')
    .slice(0, 32);
  const cacheDir = options.cacheDir === undefined ? path.join(process.env.LIGHTCLIP_CACHE_DIR || path.join(tmpdir(), 'lightclip-cache'), 'deeplake-query') : options.cacheDir;
  const file = cacheDir ? path.join(cacheDir, `${fingerprint}.u32`) : null;
  if (file) {
    const cached = await fs.readFile(file).catch(() => null);
    if (cached && cached.length % 4 === 0) return new Uint32Array(cached.buffer.slice(cached.byteOffset, cached.byteOffset + cached.length));
  }
  const keep = new Uint8Array(n).fill(1);
  for (const [k, col] of columns.entries()) {
    const mine = conds.filter((c) => c.column === col);
    await scanColumn(tensors[k]!, n, (i, v) => {
      if (!keep[i]) return;
      for (const c of mine) {
        const ok = c.kind === 'eq' ? (typeof c.value === 'number' ? typeof v === 'number' && v === c.value : v === c.value) : typeof v === 'number' && v >= c.lo && v <= c.hi;
        if (!ok) {
          keep[i] = 0;
          return;
        }
      }
    });
  }
  let count = 0;
  for (let i = 0; i < n; i++) count += keep[i]!;
  const out = new Uint32Array(count);
  for (let i = 0, j = 0; i < n; i++) if (keep[i]) out[j++] = i;
  options.log?.(`${ds.root}: ${JSON.stringify(query)} keeps ${count} of ${n} samples`);
  if (file) {
    // write-then-rename: concurrent ranks never read a partial file
    await fs.mkdir(cacheDir!, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, out);
    await fs.rename(tmp, file);
  }
  return out;
}

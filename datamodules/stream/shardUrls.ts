import { MisconfigurationError } from '../../core/errors.js';

/**
 * webdataset's URL expansion (`expand_urls`, open_clip's `expand_urls`): a spec is split on
 * `::` into sources, `${X}` is replaced from the environment (`WDS_X` first, as webdataset's
 * `envlookup`, then `X`), and each source is brace-expanded like Python's `braceexpand`
 * (`{000..999}` zero-padded to the longer bound when either bound has a leading zero,
 * `{a,b}` alternatives, `{1..9..2}` steps, `{a..e}` letters, nesting). Returns one list of
 * shard URLs per `::` source (so per-source weights can be attached).
 */
export function expandShardSources(spec: string, flag = '--train_data', env: NodeJS.ProcessEnv = process.env): string[][] {
  if (typeof spec !== 'string' || spec.trim() === '') throw new MisconfigurationError(`\`${flag}\` must name shards, e.g. "/data/{00000..00099}.tar", got ${JSON.stringify(spec)}.`);
  return spec.split('::').map((source) => {
    const substituted = source.replace(/\$\{(\w+)\}/g, (_, name: string) => {
      const v = env[`WDS_${name}`] ?? env[name];
      if (v === undefined) throw new MisconfigurationError(`\`${flag}\`: \${${name}} is not set in the environment (looked up WDS_${name} and ${name}).`);
      return v;
    });
    const urls = braceExpand(substituted);
    if (urls.length === 0 || urls.some((u) => u === '')) throw new MisconfigurationError(`\`${flag}\`: the source ${JSON.stringify(source)} expands to an empty shard name.`);
    return urls;
  });
}

/** All shard URLs of a spec, in order. */
export function expandShardUrls(spec: string, flag = '--train_data', env: NodeJS.ProcessEnv = process.env): string[] {
  return expandShardSources(spec, flag, env).flat();
}

/** Python braceexpand (the subset webdataset users write; unbalanced braces are literal). */
export function braceExpand(pattern: string): string[] {
  // Find the first top-level balanced {...} that is a list or a range.
  for (let start = pattern.indexOf('{'); start >= 0; start = pattern.indexOf('{', start + 1)) {
    let depth = 0;
    let end = -1;
    const commas: number[] = [];
    for (let i = start; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === '\\') {
        i++;
        continue;
      }
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          end = i;
          break;
        }
      } else if (c === ',' && depth === 1) commas.push(i);
    }
    if (end < 0) break;
    const head = pattern.slice(0, start);
    const tail = pattern.slice(end + 1);
    const body = pattern.slice(start + 1, end);
    let items: string[] | null = null;
    if (commas.length > 0) {
      const cuts = [start, ...commas, end];
      items = [];
      for (let k = 0; k + 1 < cuts.length; k++) items.push(...braceExpand(pattern.slice(cuts[k]! + 1, cuts[k + 1])));
    } else {
      items = expandRange(body);
    }
    if (items === null) continue; // `{x}` alone is literal
    const tails = braceExpand(tail);
    const out: string[] = [];
    for (const item of items) for (const t of tails) out.push(head + item + t);
    return out;
  }
  return [pattern.replace(/\\([{},\\])/g, '$1')];
}

function expandRange(body: string): string[] | null {
  const int = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(body);
  if (int) {
    const [lo, hi] = [int[1]!, int[2]!];
    const a = Number(lo);
    const b = Number(hi);
    const step = Math.abs(Number(int[3] ?? '1')) || 1;
    const padded = [lo, hi].some((x) => x.replace('-', '').length > 1 && x.replace('-', '')[0] === '0');
    const width = padded ? Math.max(lo.length, hi.length) : 0;
    const out: string[] = [];
    const dir = a <= b ? 1 : -1;
    for (let v = a; dir > 0 ? v <= b : v >= b; v += dir * step) {
      const s = String(Math.abs(v)).padStart(width - (v < 0 ? 1 : 0), '0');
      out.push(v < 0 ? `-${s}` : s);
    }
    return out;
  }
  const chr = /^([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?$/.exec(body);
  if (chr) {
    const a = chr[1]!.charCodeAt(0);
    const b = chr[2]!.charCodeAt(0);
    const step = Math.abs(Number(chr[3] ?? '1')) || 1;
    const dir = a <= b ? 1 : -1;
    const out: string[] = [];
    for (let v = a; dir > 0 ? v <= b : v >= b; v += dir * step) out.push(String.fromCharCode(v));
    return out;
  }
  return null;
}

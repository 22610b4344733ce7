/**
 * `lightclip catlip labels|vocab`: CatLIP's caption → WordNet-synset labels and vocabulary.
 *
 *   lightclip catlip labels --vocab vocab.pkl --captions captions.txt [--json] [--explain] [--size N]
 *   lightclip catlip vocab (--path captions.txt | --folder data/ | --train_data data.csv) --out vocab.pkl [--size 24320]
 *
 * `labels` prints one line per caption (a caption is the text between two `\n`, verbatim):
 * its sorted vocabulary indices, space separated, or a JSON array with --json; --explain prints
 * a JSON object per caption with the cleaned text, sentences, tokens, lemmas and the reason each
 * token was kept or dropped. `vocab` mines every caption and writes CoreNet's pickle.
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SynsetMiner } from '../modules/catlip/labeler.js';
import { SynsetVocabulary } from '../modules/catlip/vocabulary.js';
import { scanImageTextFolder } from '../datamodules/folderDataset.js';

export const description = 'CatLIP: mine WordNet-synset labels from captions (labels), build a vocabulary pickle (vocab)';

const USAGE = `usage:
  lightclip catlip labels --vocab vocab.pkl --captions captions.txt [--json] [--explain] [--size N]
  lightclip catlip vocab (--path captions.txt | --folder DIR | --train_data FILE.csv) --out vocab.pkl [--size 24320]
      [--csv_caption_key title] [--csv_separator TAB]`;

/** Captions of a file: the pieces between `\n` (a final newline ends the last caption). */
export function splitCaptionLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Caption column of a CSV/TSV with a header row (no quoted separators inside fields except "…" quoting). */
export function readCsvCaptions(file: string, key: string, sep: string): string[] {
  const rows = splitCaptionLines(readFileSync(file, 'utf8').replace(/\r\n/g, '\n'));
  if (rows.length === 0) throw new Error(`--train_data ${file}: empty file, expected a header row with a '${key}' column`);
  const split = (row: string): string[] => {
    const out: string[] = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < row.length; i++) {
      const c = row[i]!;
      if (quoted) {
        if (c === '"' && row[i + 1] === '"') (cur += '"'), i++;
        else if (c === '"') quoted = false;
        else cur += c;
      } else if (c === '"' && cur === '') quoted = true;
      else if (row.startsWith(sep, i)) out.push(cur), (cur = ''), (i += sep.length - 1);
      else cur += c;
    }
    out.push(cur);
    return out;
  };
  const header = split(rows[0]!);
  const col = header.indexOf(key);
  if (col < 0) throw new Error(`--train_data ${file}: no column '${key}' (--csv_caption_key); header has ${header.join(', ')}`);
  return rows.slice(1).map((r) => split(r)[col] ?? '');
}

function fail(message: string): number {
  console.error(`lightclip catlip: ${message}`);
  return 2;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'labels' && sub !== 'vocab') {
    if (sub === '--help' || sub === '-h' || sub === undefined) {
      console.log(USAGE);
      return sub === undefined ? 2 : 0;
    }
    return fail(`unknown subcommand '${sub}' (expected labels or vocab)\n${USAGE}`);
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      options: {
        vocab: { type: 'string' },
        captions: { type: 'string' },
        json: { type: 'boolean', default: false },
        explain: { type: 'boolean', default: false },
        size: { type: 'string' },
        path: { type: 'string' },
        folder: { type: 'string' },
        train_data: { type: 'string' },
        csv_caption_key: { type: 'string', default: 'title' },
        csv_separator: { type: 'string', default: '\t' },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    return fail(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let size: number | undefined;
  if (values.size !== undefined) {
    size = Number(values.size);
    if (!Number.isInteger(size) || size <= 0) return fail(`--size ${String(values.size)}: expected a positive integer`);
  }
  try {
    const miner = new SynsetMiner();
    if (sub === 'labels') {
      if (typeof values.vocab !== 'string') return fail('labels needs --vocab vocab.pkl (CoreNet vocabulary pickle)');
      if (typeof values.captions !== 'string') return fail('labels needs --captions FILE (one caption per line)');
      const vocab = SynsetVocabulary.read(values.vocab, size);
      const captions = splitCaptionLines(readFileSync(values.captions, 'utf8'));
      const out: string[] = [];
      for (const caption of captions) {
        if (values.explain) out.push(JSON.stringify(miner.explain(caption, vocab)));
        else {
          const labels = miner.labels(caption, vocab);
          out.push(values.json ? JSON.stringify(labels) : labels.join(' '));
        }
      }
      process.stdout.write(out.length ? out.join('\n') + '\n' : '');
      return 0;
    }
    // vocab
    if (typeof values.out !== 'string') return fail('vocab needs --out vocab.pkl');
    const sources = ['path', 'folder', 'train_data'].filter((k) => typeof values[k] === 'string');
    if (sources.length !== 1) return fail(`vocab needs exactly one of --path, --folder, --train_data (got ${sources.length})`);
    let captions: string[];
    if (typeof values.path === 'string') captions = splitCaptionLines(readFileSync(values.path, 'utf8'));
    else if (typeof values.folder === 'string') {
      const scan = await scanImageTextFolder(values.folder, { flag: '--folder', log: (l) => console.error(l) });
      captions = scan.pairs.flatMap((p) => p.captions);
    } else captions = readCsvCaptions(values.train_data as string, values.csv_caption_key as string, values.csv_separator as string);
    const t0 = performance.now();
    const vocab = SynsetVocabulary.build(captions, miner, size);
    const seconds = (performance.now() - t0) / 1000;
    vocab.write(values.out);
    console.error(
      `catlip vocab: ${captions.length} captions mined in ${seconds.toFixed(2)} s (${Math.round(captions.length / Math.max(seconds, 1e-9))} captions/s); ` +
        `${vocab.size} synsets written to ${values.out}` +
        (size !== undefined && vocab.size < size ? ` (fewer than --size ${size}: the corpus has only ${vocab.size} distinct synsets)` : ''),
    );
    return 0;
  } catch (e) {
    return fail((e as Error).message);
  }
}

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MisconfigurationError } from '../core/errors.js';
import { register } from '../core/registry.js';
import type { IndexedSource } from './stream/indexedLoader.js';
import { IndexedDataModule, type IndexedDataOptions } from './stream/indexedDataModule.js';
import { camelKeys } from './webdataset.js';

/**
 * Parses delimited text as pandas' `read_csv(sep=...)` does for the files open_clip reads:
 * the first row is the header, `"` quotes fields (a doubled `""` is a quote, quoted fields may
 * span lines), `\r\n` or `\n` end rows, blank lines are skipped. Returns the columns asked for.
 */
export function parseDelimited(text: string, sep: string, columns: readonly string[], file: string): string[][] {
  if (sep.length !== 1) throw new MisconfigurationError(`\`--csv_separator\` must be one character, got ${JSON.stringify(sep)}.`);
  const out: string[][] = columns.map(() => []);
  let header: string[] | null = null;
  let idx: number[] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let i = 0;
  const endRow = (): void => {
    row.push(field);
    field = '';
    if (row.length === 1 && row[0] === '') {
      row = [];
      return;
    }
    if (!header) {
      header = row;
      idx = columns.map((c) => header!.indexOf(c));
      const missing = columns.filter((_, k) => idx[k]! < 0);
      if (missing.length > 0) {
        throw new MisconfigurationError(
          `${file}: no column ${missing.map((m) => JSON.stringify(m)).join(', ')} (columns: ${header.map((h) => JSON.stringify(h)).join(', ')}); set --csv_img_key / --csv_caption_key${sep === '\t' ? ', or --csv_separator "," for a comma-separated file' : ''}.`,
        );
      }
    } else {
      for (let k = 0; k < columns.length; k++) out[k]!.push(row[idx[k]!] ?? '');
    }
    row = [];
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') quoted = true;
    else if (c === sep) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
    } else field += c;
  }
  if (quoted) throw new MisconfigurationError(`${file}: a quoted field opened before line ${line} is never closed.`);
  if (field !== '' || row.length > 0) endRow();
  if (!header) throw new MisconfigurationError(`${file}: empty file; expected a header row with the columns ${columns.join(', ')}.`);
  return out;
}

/** Options of {@link CsvDataModule} (open_clip's CsvDataset flags). */
export interface CsvOptions extends IndexedDataOptions {
  trainData?: string;
  valData?: string;
  /** `--csv_img_key` (default "filepath"), `--csv_caption_key` ("title"), `--csv_separator` ("\t"). */
  csvImgKey?: string;
  csvCaptionKey?: string;
  csvSeparator?: string;
}

/** `"\\t"` as typed on a command line → a tab. */
function unescapeSeparator(s: string): string {
  return s === '\\t' ? '\t' : s;
}

/**
 * open_clip's `CsvDataset`: a CSV/TSV with an image-path column and a caption column.
 * Relative image paths resolve against the working directory, as open_clip opens them.
 * A row whose image cannot be read or decoded is skipped and counted; an empty caption is
 * skipped as incomplete.
 */
export class CsvDataModule extends IndexedDataModule {
  private readonly csv: { train?: string; val?: string; img: string; caption: string; sep: string };

  constructor(options: CsvOptions) {
    super(options, 0.9);
    if (!options.trainData && !options.valData) throw new MisconfigurationError('`--train_data` (or `--val_data`) is required: a CSV/TSV file with image paths and captions.');
    this.csv = {
      train: options.trainData,
      val: options.valData,
      img: options.csvImgKey ?? 'filepath',
      caption: options.csvCaptionKey ?? 'title',
      sep: unescapeSeparator(options.csvSeparator ?? '\t'),
    };
    this.hparams = { dataset_type: 'csv', ...this.csv };
  }

  protected override async openSources(): Promise<void> {
    if (this.csv.train) this.train = await this.open(this.csv.train, '--train_data');
    if (this.csv.val) this.val = await this.open(this.csv.val, '--val_data');
  }

  private async open(file: string, flag: string): Promise<IndexedSource> {
    const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new MisconfigurationError(`\`${flag}\`: cannot read ${JSON.stringify(file)} (${err.code ?? err.message}).`);
    });
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new MisconfigurationError(`\`${flag}\`: ${JSON.stringify(file)} is not UTF-8 text.`);
    }
    const [images, captions] = parseDelimited(text, this.csv.sep, [this.csv.img, this.csv.caption], file) as [string[], string[]];
    if (images.length === 0) throw new MisconfigurationError(`\`${flag}\`: ${JSON.stringify(file)} has a header but no rows.`);
    this.log?.(`${flag}: ${images.length} rows from ${file}`);
    return {
      size: images.length,
      load: (i) => {
        const image = images[i]!;
        const caption = captions[i]!.trim();
        if (!image || !caption) return { ok: false, kind: 'incomplete', what: `${file} row ${i + 2}`, why: image ? 'empty caption' : 'empty image path' };
        return { ok: true, item: { key: String(i), url: path.resolve(image), image: path.resolve(image), captions: [caption] } };
      },
    };
  }
}

register<CsvDataModule>('datamodule', 'csv', (options) => new CsvDataModule(camelKeys(options ?? {}) as unknown as CsvOptions), {
  description: 'open_clip CSV/TSV: --train_data file.csv with --csv_img_key / --csv_caption_key / --csv_separator',
});

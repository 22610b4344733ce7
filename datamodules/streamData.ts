import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Min } from 'class-validator';
import type { LightningDataModule } from '../core/datamodule.js';
import { Describe } from '../core/config.js';
import { MisconfigurationError } from '../core/errors.js';
import type { CaptionTokenizer } from './types.js';
import { ClipRocketDataModule, type ClipRocketDataset } from './cliprocket.js';
import { CorenetImgTextTarDataModule } from './corenet.js';
import { CsvDataModule } from './csv.js';
import { WebDatasetDataModule } from './webdataset.js';

/**
 * The data flags of open_clip, CoreNet and clip-rocket that train.ts, eval.ts and
 * `lightclip data show` share (a config class the CLIs extend), and the one function that
 * builds the datamodule they name.
 */
export class StreamDataFlags {
  @Describe('training data: WebDataset shards ("/data/{00000..01023}.tar", "::" lists, pipe:, http(s), s3://) or a CSV/TSV file') @IsOptional() @IsString() train_data?: string;
  @Describe('validation data, same forms as --train_data') @IsOptional() @IsString() val_data?: string;
  @Describe('auto | webdataset | csv | img_text_tar (auto: csv/tsv by extension, else webdataset)') @IsIn(['auto', 'webdataset', 'csv', 'img_text_tar']) dataset_type = 'auto';
  @Describe('WebDataset: draw shards with replacement (no splitting; needs --train_num_samples or sizes.json)') @IsBoolean() dataset_resampled = false;
  @Describe('WebDataset resampling weights, one per "::" source of --train_data ("1::2")') @IsOptional() @IsString() train_data_upsampling_factors?: string;
  @Describe('training samples per epoch (default: sizes.json / __len__ beside the shards)') @IsOptional() @IsInt() @Min(1) train_num_samples?: number;
  @Describe('validation samples (default: sizes.json / __len__; else one pass)') @IsOptional() @IsInt() @Min(1) val_num_samples?: number;
  // Shared with Deep Lake (--path), where they name tensors: each source has its own default.
  @Describe('image key: WebDataset extensions, first present wins (default jpg;png;jpeg;webp); Deep Lake tensor (default URL, else image)') @IsOptional() @IsString() image_key?: string;
  @Describe('caption key: WebDataset extension (default txt); Deep Lake tensor (default TEXT, else caption)') @IsOptional() @IsString() text_key?: string;
  @Describe('WebDataset: caption field of the .json member (reads --text_key json)') @IsOptional() @IsString() json_text_key?: string;
  @Describe('CSV column of image paths') @IsString() csv_img_key = 'filepath';
  @Describe('CSV column of captions') @IsString() csv_caption_key = 'title';
  @Describe('CSV separator ("\\t" for TSV)') @IsString() csv_separator = '\t';
  @Describe('metadata file: CoreNet metadata.pkl, cc3m/cc12m .npy, yfcc15m.pkl') @IsOptional() @IsString() metadata?: string;
  @Describe('clip-rocket dataset: cc3m | cc12m | yfcc15m | merged_opendata (with --root and --metadata)') @IsOptional() @IsIn(['cc3m', 'cc12m', 'yfcc15m', 'merged_opendata']) dataset?: string;
  @Describe('image root of --dataset (merged_opendata: three roots joined with ---)') @IsOptional() @IsString() root?: string;
  @Describe('S3 endpoint for s3:// data (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL)') @IsOptional() @IsString() s3_endpoint?: string;
}

/** What the CLI decides outside the data flags. */
export interface StreamCommon {
  batchSize: number;
  numWorkers: number;
  imageSize: number;
  seed: number;
  tokenizer: CaptionTokenizer;
  contextLength: number;
  keepEncoded?: boolean;
  log?: ((line: string) => void) | null;
}

/** True when the flags name streamed data (then `--folder` is not needed). */
export function usesStreamData(f: Partial<StreamDataFlags>): boolean {
  return Boolean(f.train_data || f.val_data || f.dataset || (f.dataset_type === 'img_text_tar' && f.metadata));
}

/** The `--dataset_type` a data spec resolves to (open_clip's `auto`: csv/tsv by extension). */
export function resolveDatasetType(f: Partial<StreamDataFlags>): 'webdataset' | 'csv' | 'img_text_tar' {
  const t = f.dataset_type ?? 'auto';
  if (t !== 'auto') return t as 'webdataset' | 'csv' | 'img_text_tar';
  const spec = f.train_data ?? f.val_data ?? '';
  return /\.(csv|tsv)$/i.test(spec) ? 'csv' : 'webdataset';
}

/** Builds the datamodule the data flags name. */
export function createStreamDataModule(f: Partial<StreamDataFlags>, c: StreamCommon): LightningDataModule {
  const common = { batchSize: c.batchSize, numWorkers: c.numWorkers, imageSize: c.imageSize, seed: c.seed, tokenizer: c.tokenizer, contextLength: c.contextLength, log: c.log };
  if (f.dataset !== undefined) {
    return new ClipRocketDataModule({ ...common, dataset: f.dataset as ClipRocketDataset, root: f.root ?? '', metadata: f.metadata ?? '', keepEncoded: c.keepEncoded });
  }
  const type = resolveDatasetType(f);
  if (type === 'webdataset') {
    return new WebDatasetDataModule({
      ...common,
      trainData: f.train_data,
      valData: f.val_data,
      datasetResampled: f.dataset_resampled,
      trainDataUpsamplingFactors: f.train_data_upsampling_factors,
      trainNumSamples: f.train_num_samples,
      valNumSamples: f.val_num_samples,
      imageKey: f.image_key ?? 'jpg;png;jpeg;webp',
      textKey: f.json_text_key !== undefined && (f.text_key === undefined || f.text_key === 'txt') ? 'json' : (f.text_key ?? 'txt'),
      jsonTextKey: f.json_text_key,
      s3Endpoint: f.s3_endpoint,
      keepEncoded: c.keepEncoded,
    });
  }
  if (type === 'csv') {
    return new CsvDataModule({
      ...common,
      trainData: f.train_data,
      valData: f.val_data,
      csvImgKey: f.csv_img_key,
      csvCaptionKey: f.csv_caption_key,
      csvSeparator: f.csv_separator,
      keepEncoded: c.keepEncoded,
    });
  }
  if (!f.metadata) throw new MisconfigurationError('`--dataset_type img_text_tar` needs `--metadata DIR/metadata.pkl`.');
  return new CorenetImgTextTarDataModule({ ...common, metadata: f.metadata, keepEncoded: c.keepEncoded });
}

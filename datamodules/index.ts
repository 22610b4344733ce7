/**
 * lightclip's datamodules. Importing this module registers `--datamodule folder`.
 */
export { CLIP_MEAN, CLIP_STD, applyTransformPlan, clipEvalTransform, randomResizedCrop } from './transforms.js';
export type { ImageInput, ImageTransform, NormalizeOptions, RandomResizedCropOptions } from './transforms.js';
export { RANDOM_RESIZED_CROP_DRAWS, decodeKernel } from './decodeKernel.js';
export type { DecodedImage, SharpFactory, TransformPlan } from './decodeKernel.js';
export { DecodePool } from './decodePool.js';
export type { DecodeOutcome } from './decodePool.js';
export { CAPTION_EXTENSION, IMAGE_EXTENSIONS, formatScanSummary, parseCaptions, scanImageTextFolder } from './folderDataset.js';
export type { DuplicateStem, FolderScan, FolderScanReport, ImageTextPair, ScanOptions } from './folderDataset.js';
export { checkShard, epochOrder, numBatches, shardLength } from './sampler.js';
export type { EpochOrder, EpochOrderOptions } from './sampler.js';
export { ImageTextLoader, drawCaption } from './imageTextLoader.js';
export type { EpochState, ImageTextLoaderOptions, ImageTextSample } from './imageTextLoader.js';
export { ImageTextFolderDataModule } from './folder.js';
export type { ImageTextFolderOptions } from './folder.js';
export type { CaptionTokenizer, ImageTextBatch } from './types.js';
export { LabelledImageLoader, scanImageFolder, type LabelledImage, type LabelledImageBatch } from './imageFolder.js';
export { WebDatasetDataModule, type WebDatasetOptions } from './webdataset.js';
export { StreamDataFlags, createStreamDataModule, usesStreamData } from './streamData.js';
export { ShardedLoader, type ShardSource, type ShardedLoaderOptions } from './stream/shardedLoader.js';
export type { StreamBatch, StreamItem } from './stream/batcher.js';
export { expandShardUrls, braceExpand } from './stream/shardUrls.js';
export { readTar, TarFormatError, type TarEntry } from './stream/tarReader.js';
export { ShardWriter, tarArchive } from './stream/tarWriter.js';
export { CsvDataModule, parseDelimited, type CsvOptions } from './csv.js';
export { IndexedLoader, type IndexedSource } from './stream/indexedLoader.js';
export { IndexedDataModule, type IndexedDataOptions } from './stream/indexedDataModule.js';
export { ClipRocketDataModule, yfccImagePath, type ClipRocketOptions, type ClipRocketDataset } from './cliprocket.js';
export { readNpyObjectArray, parseNpyHeader, NpyFormatError } from './cliprocket/npy.js';
export { YfccIndex, buildYfccIndex } from './cliprocket/yfccIndex.js';
export { cleanYfccCaption, yfccCandidates } from './cliprocket/captions.js';
export { CorenetImgTextTarDataModule, cleanCorenetCaption, parseCorenetSample, type CorenetOptions } from './corenet.js';
export { extractTarSafely, ensureExtracted, UnsafeArchiveError } from './corenet/extract.js';

/**
 * Experiment loggers. Importing this module registers them by name in the registry:
 * `logger:tensorboard` and `logger:csv` (for `--logger tensorboard`).
 */
export { TensorBoardLogger, type TensorBoardLoggerOptions, type ImageInput as TensorBoardImage, type ImagePixels } from './tensorboard.js';
export { CSVLogger, type CSVLoggerOptions } from './csv.js';
export type { VersionedLoggerOptions } from './common.js';
export { EventFileWriter, frameRecord, readRecords, type EventFileWriterOptions } from './tensorboard/eventWriter.js';
export { crc32c, maskCrc32c, maskedCrc32c, unmaskCrc32c } from './tensorboard/crc32c.js';
export { computeHistogram, defaultTensorflowEdges, type HistogramBins } from './tensorboard/histogram.js';
export { encodePng, readPngInfo, type RawImage, type PngInfo } from './tensorboard/png.js';
export { HPARAMS_TAGS, SessionStatus, type HistogramData, type HParamValue } from './tensorboard/summary.js';
export { ProtoMessage, ProtoWriter, decodeFields, WireType, type ProtoField } from './tensorboard/protobuf.js';

/**
 * Encoders for TensorBoard's `Event` and `Summary` protos and the plugin payloads lightclip
 * writes. Field numbers follow the .proto files (checked against tensorflow/tensorboard):
 * - tensorboard/compat/proto/event.proto: Event{wall_time=1 double, step=2 int64,
 *   file_version=3 string, summary=5}
 * - tensorboard/compat/proto/summary.proto: Summary{value=1 repeated}; Summary.Value{tag=1,
 *   simple_value=2 float, image=4, histo=5, tensor=8, metadata=9}; Summary.Image{height=1,
 *   width=2, colorspace=3, encoded_image_string=4}; SummaryMetadata{plugin_data=1};
 *   SummaryMetadata.PluginData{plugin_name=1, content=2 bytes}
 * - tensorboard/compat/proto/histogram.proto: HistogramProto{min=1, max=2, num=3, sum=4,
 *   sum_squares=5, bucket_limit=6 packed double, bucket=7 packed double}
 * - tensorboard/compat/proto/tensor.proto: TensorProto{dtype=1, tensor_shape=2, string_val=8};
 *   tensor_shape.proto: TensorShapeProto{dim=2}, Dim{size=1}; types.proto: DT_STRING=7
 * - tensorboard/plugins/hparams/plugin_data.proto: HParamsPluginData{version=1, experiment=2,
 *   session_start_info=3, session_end_info=4}; SessionStartInfo{hparams=1 map<string, Value>,
 *   group_name=4, start_time_secs=5}; SessionEndInfo{status=1, end_time_secs=2}
 * - tensorboard/plugins/hparams/api.proto: Experiment{hparam_infos=4, metric_infos=5};
 *   HParamInfo{name=1, type=4}; MetricInfo{name=1}; MetricName{group=1, tag=2};
 *   DataType{STRING=1, BOOL=2, FLOAT64=3}; Status{UNKNOWN=0, SUCCESS=1, FAILURE=2, RUNNING=3}
 * - google/protobuf/struct.proto: Value{number_value=2, string_value=3, bool_value=4}
 *
 * Scalar fields equal to their proto3 default are omitted (as protobuf's own serializer
 * does), except `oneof` members, which must be written to count as set.
 */
import { ProtoWriter } from './protobuf.js';

/** The fields of an `Event` lightclip writes. */
export interface EventFields {
  /** Seconds since the epoch. */
  readonly wallTime: number;
  readonly step?: number;
  /** Only on the first event of a file: "brain.Event:2". */
  readonly fileVersion?: string;
  /** An encoded `Summary` (see {@link encodeSummary}). */
  readonly summary?: Uint8Array;
}

/** Encodes an `Event`. */
export function encodeEvent(event: EventFields): Uint8Array {
  const w = new ProtoWriter().double(1, event.wallTime);
  if (event.step !== undefined && event.step !== 0) w.varint(2, event.step);
  if (event.fileVersion !== undefined) w.string(3, event.fileVersion);
  if (event.summary !== undefined) w.message(5, event.summary);
  return w.finish();
}

/** Encodes a `Summary` from encoded `Summary.Value`s. */
export function encodeSummary(values: readonly Uint8Array[]): Uint8Array {
  const w = new ProtoWriter();
  for (const v of values) w.message(1, v);
  return w.finish();
}

/** `SummaryMetadata{plugin_data{plugin_name, content}}`. */
function pluginMetadata(pluginName: string, content?: Uint8Array): ProtoWriter {
  const data = new ProtoWriter().string(1, pluginName);
  if (content !== undefined && content.length > 0) data.bytes(2, content);
  return new ProtoWriter().message(1, data);
}

/**
 * A scalar as `Summary.Value{tag, simple_value}`: the old-style scalar torch's
 * `add_scalar` writes. The value is stored as float32.
 */
export function scalarValue(tag: string, value: number): Uint8Array {
  return new ProtoWriter().string(1, tag).float(2, value).finish();
}

/** The statistics and buckets of a `HistogramProto`. */
export interface HistogramData {
  readonly min: number;
  readonly max: number;
  readonly num: number;
  readonly sum: number;
  readonly sumSquares: number;
  /** Right edge of each bucket (bucket 0 spans from -DBL_MAX). */
  readonly bucketLimit: readonly number[];
  /** Count of each bucket, parallel to `bucketLimit`. */
  readonly bucket: readonly number[];
}

/** Encodes a `HistogramProto`. */
export function encodeHistogram(h: HistogramData): Uint8Array {
  const w = new ProtoWriter();
  if (h.min !== 0) w.double(1, h.min);
  if (h.max !== 0) w.double(2, h.max);
  if (h.num !== 0) w.double(3, h.num);
  if (h.sum !== 0) w.double(4, h.sum);
  if (h.sumSquares !== 0) w.double(5, h.sumSquares);
  if (h.bucketLimit.length > 0) w.packedDoubles(6, h.bucketLimit);
  if (h.bucket.length > 0) w.packedDoubles(7, h.bucket);
  return w.finish();
}

/** A histogram as `Summary.Value{tag, histo}`. */
export function histogramValue(tag: string, histogram: HistogramData): Uint8Array {
  return new ProtoWriter().string(1, tag).message(5, encodeHistogram(histogram)).finish();
}

/** The fields of a `Summary.Image`. */
export interface EncodedImage {
  readonly height: number;
  readonly width: number;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (summary.proto). */
  readonly colorspace: number;
  /** PNG (or JPEG) file bytes. */
  readonly encoded: Uint8Array;
}

/** An image as `Summary.Value{tag, image}`. */
export function imageValue(tag: string, image: EncodedImage): Uint8Array {
  const img = new ProtoWriter().varint(1, image.height).varint(2, image.width);
  if (image.colorspace !== 0) img.varint(3, image.colorspace);
  img.bytes(4, image.encoded);
  return new ProtoWriter().string(1, tag).message(4, img).finish();
}

/** tensorflow/core/framework/types.proto `DT_STRING`. */
const DT_STRING = 7;

/**
 * Text as the text plugin reads it: `Summary.Value{tag, tensor: TensorProto{DT_STRING,
 * shape [1], string_val}, metadata{plugin_name: "text"}}`. The plugin content would be an
 * empty `TextPluginData{version: 0}`, which serializes to no bytes, so it is left out, as
 * torch's `summary.text` ends up doing.
 */
export function textValue(tag: string, text: string): Uint8Array {
  const shape = new ProtoWriter().message(2, new ProtoWriter().varint(1, 1));
  const tensor = new ProtoWriter().varint(1, DT_STRING).message(2, shape).string(8, text);
  return new ProtoWriter().string(1, tag).message(8, tensor).message(9, pluginMetadata('text')).finish();
}

/** A hyperparameter value the hparams plugin can show. */
export type HParamValue = number | string | boolean;

/** tensorboard/plugins/hparams/api.proto `Status`. */
export const SessionStatus = { Unknown: 0, Success: 1, Failure: 2, Running: 3 } as const;
/** One of the {@link SessionStatus} values. */
export type SessionStatus = (typeof SessionStatus)[keyof typeof SessionStatus];

/** Tags read by the hparams plugin (tensorboard/plugins/hparams/metadata.py). */
export const HPARAMS_TAGS = {
  experiment: '_hparams_/experiment',
  sessionStartInfo: '_hparams_/session_start_info',
  sessionEndInfo: '_hparams_/session_end_info',
} as const;

/** Options of {@link hparamsValues}. */
export interface HParamsSummaryOptions {
  /** SessionStartInfo.start_time_secs; omitted when not given. */
  readonly startTimeSecs?: number;
  /** SessionStartInfo.group_name; empty means "the session is its own group". */
  readonly groupName?: string;
  /** SessionEndInfo.status; torch writes STATUS_SUCCESS up front, and so do we by default. */
  readonly status?: SessionStatus;
  /** SessionEndInfo.end_time_secs; omitted when not given. */
  readonly endTimeSecs?: number;
}

/** `google.protobuf.Value` for one hyperparameter. */
function protoValue(v: HParamValue): ProtoWriter {
  const w = new ProtoWriter();
  if (typeof v === 'number') return w.double(2, v);
  if (typeof v === 'string') return w.string(3, v);
  return w.bool(4, v);
}

/** api.proto DataType of a value. */
function dataType(v: HParamValue): number {
  return typeof v === 'number' ? 3 : typeof v === 'string' ? 1 : 2;
}

/**
 * Wraps one member of the `HParamsPluginData.data` oneof. `version` stays 0 (so it is not
 * written): the plugin rejects any other PLUGIN_DATA_VERSION.
 */
function hparamsPluginValue(tag: string, oneofField: number, data: ProtoWriter): Uint8Array {
  const content = new ProtoWriter().message(oneofField, data).finish();
  return new ProtoWriter().string(1, tag).message(9, pluginMetadata('hparams', content)).finish();
}

/**
 * The three `Summary.Value`s of the hparams plugin, in the order torch's
 * `torch.utils.tensorboard.summary.hparams` returns them (experiment, session start,
 * session end); each goes in its own `Summary`/`Event` as Lightning writes them.
 * @param hparams flat hyperparameters (nested values must be flattened first)
 * @param metricTags tags of the scalar metrics shown in the hparams table
 */
export function hparamsValues(
  hparams: Readonly<Record<string, HParamValue>>,
  metricTags: readonly string[],
  options: HParamsSummaryOptions = {},
): { experiment: Uint8Array; sessionStartInfo: Uint8Array; sessionEndInfo: Uint8Array } {
  const experiment = new ProtoWriter();
  const start = new ProtoWriter();
  for (const [name, value] of Object.entries(hparams)) {
    experiment.message(4, new ProtoWriter().string(1, name).varint(4, dataType(value)));
    // map<string, Value> is encoded as repeated entry messages {key = 1, value = 2}.
    start.message(1, new ProtoWriter().string(1, name).message(2, protoValue(value)));
  }
  for (const tag of metricTags) experiment.message(5, new ProtoWriter().message(1, new ProtoWriter().string(2, tag)));
  if (options.groupName) start.string(4, options.groupName);
  if (options.startTimeSecs !== undefined) start.double(5, options.startTimeSecs);

  const end = new ProtoWriter();
  const status = options.status ?? SessionStatus.Success;
  if (status !== 0) end.varint(1, status);
  if (options.endTimeSecs !== undefined) end.double(2, options.endTimeSecs);

  return {
    experiment: hparamsPluginValue(HPARAMS_TAGS.experiment, 2, experiment),
    sessionStartInfo: hparamsPluginValue(HPARAMS_TAGS.sessionStartInfo, 3, start),
    sessionEndInfo: hparamsPluginValue(HPARAMS_TAGS.sessionEndInfo, 4, end),
  };
}

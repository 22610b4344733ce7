/**
 * Weight import without executing code: PyTorch checkpoints through a restricted
 * unpickler, safetensors through core's reader, and name mappings onto lightclip models.
 */
export { readTorchCheckpoint, TorchCheckpointError, TORCH_ALLOWED_GLOBALS } from './torchCheckpoint.js';
export {
  unpickle,
  UnsafePickleError,
  PickleFormatError,
  PickleDict,
  PickleTuple,
  PickleGlobal,
  PickleObject,
  type PickleValue,
  type PickleKey,
  type UnpicklerHooks,
  type UnpickleResult,
} from './unpickler.js';
export { ZipArchive, ZipFormatError, looksLikeZip, type ZipEntry } from './zip.js';
export { readWeights, readWeightsAsTensors, detectWeightsFormat, type WeightsFormat } from './readWeights.js';
export {
  torchvisionResnetToLightclip,
  loadTorchvisionResnet,
  type TorchvisionResnetMapOptions,
  type TorchvisionResnetMapResult,
  type TorchvisionResnetLoadReport,
} from './torchvisionResnet.js';

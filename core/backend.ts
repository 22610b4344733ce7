/**
 * Chooses the tensor backend once at start and says which one it chose. Best first:
 *
 * 1. `tensorflow` from `@tensorflow/tfjs-node-gpu` (libtensorflow + CUDA), for `gpu`/`auto`;
 * 2. `tensorflow` from `@tensorflow/tfjs-node` (libtensorflow on the CPU);
 * 3. `lightclip-cpu`, lightclip's native addon (a BLAS GEMM when one loads, else its own kernels);
 * 4. tfjs `cpu`, plain JavaScript kernels (about 0.5 GFLOP/s on a 1024³ matmul).
 *
 * The tfjs-node packages download libtensorflow when installed, so they cannot be
 * dependencies (machines without internet could not install lightclip); they are loaded
 * with a dynamic `import()` when present. `LIGHTCLIP_BACKEND` forces one backend by name.
 */
import { MisconfigurationError, showValue } from './errors.js';
import { tf } from './tf.js';

/** Values of `--accelerator`. */
export type Accelerator = 'auto' | 'cpu' | 'gpu';

/** The backend in use and a one-line description of it. */
export interface BackendSelection {
  /** tfjs backend name: `tensorflow`, `lightclip-cpu`, `cpu`... */
  name: string;
  description: string;
}

/** Options of `selectBackend`. */
export interface SelectBackendOptions {
  /** `auto` takes the best available; `gpu` insists on CUDA; `cpu` never uses a GPU. Default `auto`. */
  accelerator?: Accelerator;
  /** Print nothing (non-zero ranks, tests). */
  quiet?: boolean;
  /** Where the line goes; default `console.log`. */
  log?: (line: string) => void;
  /** Environment to read `LIGHTCLIP_BACKEND` from; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** Environment variable that forces a backend (`tensorflow`, `lightclip-cpu`, `cpu`, or any registered tfjs backend). */
export const BACKEND_ENV_VAR = 'LIGHTCLIP_BACKEND';
/** The name lightclip's native addon registers its backend under. */
export const NATIVE_BACKEND_NAME = 'lightclip-cpu';
/** What to do when a GPU was asked for and none is available. */
export const GPU_INSTALL_HINT =
  'install it with `npm install @tensorflow/tfjs-node-gpu` on a machine with an NVIDIA GPU, CUDA 11.2 and cuDNN 8.1 ' +
  '(it downloads libtensorflow during install, so it needs internet access)';

const ACCELERATORS: readonly Accelerator[] = ['auto', 'cpu', 'gpu'];
const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const CPU_PACKAGE = '@tensorflow/tfjs-node';
// A variable, not a literal: the file is written by another part of the project and may not
// exist yet, and a literal would make tsc fail to resolve it.
const NATIVE_MODULE = './native/backend.js';

const DESCRIPTIONS: Record<string, string> = {
  gpu: `libtensorflow with CUDA, from ${GPU_PACKAGE}`,
  tensorflow: `libtensorflow CPU kernels, from ${CPU_PACKAGE}`,
  // Replaced by `describeNativeBackend` once the addon has said which GEMM it runs.
  [NATIVE_BACKEND_NAME]: 'lightclip native addon: native GEMM and elementwise kernels',
  cpu: `tfjs JavaScript kernels; install ${CPU_PACKAGE} or build the native addon for speed`,
};

let nativeProvider: (() => Promise<boolean>) | undefined;
let current: BackendSelection | null = null;

/** The backend `selectBackend` chose in this process, or null before the first selection. */
export function currentBackend(): BackendSelection | null {
  return current;
}

/**
 * Selects a backend once per process: the Trainer calls it at the start of every run, so
 * scripts get the best backend without calling `selectBackend` themselves, and a CLI that
 * already selected one keeps it.
 */
export async function ensureBackend(options: SelectBackendOptions = {}): Promise<BackendSelection> {
  if (current !== null) {
    if ((options.accelerator ?? 'auto') === 'gpu' && current.description !== DESCRIPTIONS['gpu']) {
      throw new MisconfigurationError(`\`accelerator\` is "gpu" but this process already runs on ${current.name}; select the backend before creating any model.`);
    }
    return current;
  }
  return selectBackend(options);
}

/**
 * Lets the native addon make its backend available. `provider` registers the
 * `lightclip-cpu` backend with tfjs (if it can: the addon may not be built) and resolves to
 * whether it did. Without a provider, `selectBackend` imports `core/native/backend.js` if
 * that module exists. The last registration wins.
 */
export function registerNativeBackendProvider(provider: () => Promise<boolean>): void {
  nativeProvider = provider;
}

/** Why an optional module could not be used, or `undefined` when it simply is not installed. */
function loadFailure(err: unknown, specifier: string): string | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const target = specifier.replace(/^\.\//, '');
  // "Not installed" is the normal case and stays silent; a module that exists but fails to
  // load (missing libtensorflow, a native build for another Node) is worth a warning.
  if (/Cannot find (module|package)/.test(message) && message.includes(target)) return undefined;
  return message.split('\n')[0];
}

async function tryImport(specifier: string, warnings: string[]): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    const why = loadFailure(err, specifier);
    if (why !== undefined) warnings.push(`${specifier} is present but failed to load: ${why}`);
    return undefined;
  }
}

async function activate(name: string, warnings: string[]): Promise<boolean> {
  if (!tf.findBackendFactory(name)) return false;
  try {
    if (await tf.setBackend(name)) return true;
    warnings.push(`backend ${name} is registered but failed to initialise`);
  } catch (err) {
    warnings.push(`backend ${name} failed to initialise: ${(err as Error).message}`);
  }
  return false;
}

/** Imports a tfjs-node package, which registers the `tensorflow` backend as a side effect, and switches to it. */
async function tryTensorflow(pkg: string, warnings: string[]): Promise<boolean> {
  return (await tryImport(pkg, warnings)) !== undefined && activate('tensorflow', warnings);
}

async function tryNative(warnings: string[]): Promise<boolean> {
  if (nativeProvider !== undefined) {
    try {
      if (!(await nativeProvider())) return false;
    } catch (err) {
      warnings.push(`the native backend provider failed: ${(err as Error).message}`);
      return false;
    }
  } else {
    const mod = await tryImport(NATIVE_MODULE, warnings);
    if (mod === undefined) return false;
    // The module may register on import, or export a function that registers on demand.
    const register = mod['registerNativeBackend'];
    if (typeof register === 'function' && (await (register as () => unknown)()) === false) return false;
  }
  return activate(NATIVE_BACKEND_NAME, warnings);
}

/** What the native addon reported at initialisation (the fields `describeNativeBackend` reads). */
export interface NativeGemmInfo {
  isa: string;
  blas: string | null;
  blasReason: string | null;
  threads: number;
}

const BLAS_NAMES: Record<string, string> = { openblas: 'OpenBLAS', mkl: 'MKL', blis: 'BLIS' };
const ISA_NAMES: Record<string, string> = { avx512: 'AVX-512', avx2: 'AVX2', base: 'portable' };

/**
 * The start-up line's account of the native backend: which GEMM runs (a BLAS library, or
 * the built-in AVX-512 / AVX2 / portable kernel and why no BLAS was loaded) and the threads.
 */
export function describeNativeBackend(info: NativeGemmInfo | null): string {
  if (info === null) return DESCRIPTIONS[NATIVE_BACKEND_NAME]!;
  const gemm = info.blas !== null
    ? `${BLAS_NAMES[info.blas] ?? info.blas} GEMM`
    : `built-in ${ISA_NAMES[info.isa] ?? info.isa} GEMM kernel${info.blasReason ? ` (no BLAS: ${info.blasReason})` : ''}`;
  return `lightclip native addon: ${gemm}, ${ISA_NAMES[info.isa] ?? info.isa} elementwise kernels, ${info.threads} thread${info.threads === 1 ? '' : 's'}`;
}

/** Asks the native module what it loaded (a registered provider may not be ours: then the generic text). */
async function nativeDescription(): Promise<string> {
  if (nativeProvider !== undefined) return DESCRIPTIONS[NATIVE_BACKEND_NAME]!;
  const mod = await tryImport(NATIVE_MODULE, []);
  const info = typeof mod?.['nativeInfo'] === 'function' ? (mod['nativeInfo'] as () => NativeGemmInfo | null)() : null;
  return describeNativeBackend(info);
}

/** The chain for `LIGHTCLIP_BACKEND=<forced>`, or the normal best-first chain. */
async function choose(accelerator: Accelerator, forced: string | undefined, warnings: string[]): Promise<BackendSelection | undefined> {
  const tfGpu = async (): Promise<BackendSelection | undefined> =>
    (await tryTensorflow(GPU_PACKAGE, warnings)) ? { name: 'tensorflow', description: DESCRIPTIONS['gpu']! } : undefined;
  const tfCpu = async (): Promise<BackendSelection | undefined> =>
    (await tryTensorflow(CPU_PACKAGE, warnings)) ? { name: 'tensorflow', description: DESCRIPTIONS['tensorflow']! } : undefined;
  const native = async (): Promise<BackendSelection | undefined> =>
    (await tryNative(warnings)) ? { name: NATIVE_BACKEND_NAME, description: await nativeDescription() } : undefined;
  const named = (name: string) => async (): Promise<BackendSelection | undefined> =>
    (await activate(name, warnings)) ? { name, description: DESCRIPTIONS[name] ?? `tfjs ${name} backend` } : undefined;

  let chain: (() => Promise<BackendSelection | undefined>)[];
  if (forced === 'tensorflow') chain = accelerator === 'cpu' ? [tfCpu] : accelerator === 'gpu' ? [tfGpu] : [tfGpu, tfCpu];
  else if (forced === NATIVE_BACKEND_NAME) chain = [native];
  else if (forced !== undefined) chain = [named(forced)];
  else if (accelerator === 'gpu') chain = [tfGpu];
  else chain = accelerator === 'cpu' ? [tfCpu, native, named('cpu')] : [tfGpu, tfCpu, native, named('cpu')];
  for (const attempt of chain) {
    const chosen = await attempt();
    if (chosen !== undefined) return chosen;
  }
  return undefined;
}

/**
 * Picks the best available backend for `accelerator`, makes it current and prints
 * `lightclip: backend <name> (<description>)`.
 * @throws MisconfigurationError for an unknown `accelerator`, `accelerator: 'gpu'` without
 *   `@tensorflow/tfjs-node-gpu` (saying how to install it), or a `LIGHTCLIP_BACKEND` that
 *   names an unknown or unavailable backend.
 * @example
 * await selectBackend({ accelerator: 'auto' });
 * // lightclip: backend cpu (tfjs JavaScript kernels; install @tensorflow/tfjs-node or build the native addon for speed)
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendSelection> {
  const accelerator = options.accelerator ?? 'auto';
  if (!ACCELERATORS.includes(accelerator)) {
    throw new MisconfigurationError(`\`accelerator\` must be one of ${ACCELERATORS.map(showValue).join(', ')}, got ${showValue(accelerator)}`);
  }
  const forced = (options.env ?? process.env)[BACKEND_ENV_VAR]?.trim() || undefined;
  if (forced !== undefined && accelerator === 'gpu' && forced !== 'tensorflow') {
    throw new MisconfigurationError(`\`accelerator\` is "gpu" but ${BACKEND_ENV_VAR}=${forced} forces a CPU backend; unset ${BACKEND_ENV_VAR} or set it to tensorflow`);
  }
  const known = ['tensorflow', NATIVE_BACKEND_NAME, ...Object.keys(tf.engine().registryFactory)];
  if (forced !== undefined && !known.includes(forced)) {
    throw new MisconfigurationError(`${BACKEND_ENV_VAR} must be one of ${[...new Set(known)].map(showValue).join(', ')}, got ${showValue(forced)}`);
  }

  const warnings: string[] = [];
  const chosen = await choose(accelerator, forced, warnings);
  const why = warnings.length > 0 ? ` (${warnings.join('; ')})` : '';
  if (chosen === undefined) {
    if (accelerator === 'gpu') throw new MisconfigurationError(`\`accelerator\` is "gpu" but no GPU backend is available: ${GPU_INSTALL_HINT}${why}`);
    const hint = forced === 'tensorflow' ? `; install ${CPU_PACKAGE} or ${GPU_PACKAGE}` : forced === NATIVE_BACKEND_NAME ? '; build the native addon (see native/)' : '';
    throw new MisconfigurationError(`${BACKEND_ENV_VAR}=${forced ?? ''} but that backend is not available${hint}${why}`);
  }

  // tfjs's CPU backend prints "Hi, looks like you are running TensorFlow.js in Node.js..."
  // the first time it stores a tensor. We print our own line (with a better hint), so clear
  // its private `firstUse` flag; the native backend extends MathBackendCPU and has it too.
  const instance = tf.backend() as unknown as { firstUse?: boolean };
  if ('firstUse' in instance) instance.firstUse = false;

  current = chosen;
  if (!options.quiet) {
    const log = options.log ?? ((line: string): void => console.log(line));
    for (const w of warnings) log(`lightclip: warning: ${w}`);
    log(`lightclip: backend ${chosen.name} (${chosen.description})`);
  }
  return chosen;
}

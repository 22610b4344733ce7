import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { MisconfigurationError, showValue } from '../core/errors.js';
import { decodeKernel, type DecodedImage, type TransformPlan } from './decodeKernel.js';
import { applyTransformPlan, type ImageInput } from './transforms.js';

/**
 * Result of one decode: the image, or why it failed. Only a failure of the sample itself
 * (a corrupt or unreadable file) is a plain failure, which loaders skip and count;
 * `cancelled` means the task was dropped (aborted, or the pool closed) and `fatal` that the
 * machinery failed (a worker died, the process ran out of file descriptors or memory):
 * neither says anything about the image, and loaders must not count them as corrupt.
 */
export type DecodeOutcome = { ok: true; image: DecodedImage } | { ok: false; error: string; cancelled?: boolean; fatal?: boolean };

/**
 * System error codes that are the machine's fault, not the file's (`errno` names Node
 * gives `fs` errors): such a failure ends the run instead of skipping the sample.
 */
export const FATAL_ERROR_CODES: readonly string[] = ['EMFILE', 'ENFILE', 'ENOMEM', 'EIO', 'ENOSPC', 'EAGAIN'];

/** Thrown by loaders when decoding failed for a reason other than the sample (see {@link DecodeOutcome}). */
export class DecodeInfrastructureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeInfrastructureError';
  }
}

function failureOf(err: unknown): DecodeOutcome {
  const code = (err as { code?: unknown } | null)?.code;
  const error = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && FATAL_ERROR_CODES.includes(code) ? { ok: false, error, fatal: true } : { ok: false, error };
}

interface Task {
  id: number;
  input: ImageInput;
  plan: TransformPlan;
  signal: AbortSignal | undefined;
  resolve: (outcome: DecodeOutcome) => void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

type WorkerReply = { id: number; ok: true; data: Float32Array; height: number; width: number } | { id: number; ok: false; error: string; fatal: boolean };

/**
 * Source of the decode worker. Why an `eval` worker: the worker must run the same code under
 * vitest (sources are `.ts`, transformed in memory by vite, so no `.js` file exists beside this
 * module and Node 20 cannot load `.ts`) and from compiled `dist/` JS. Shipping the kernel's
 * own function text (`decodeKernel.toString()`, already JavaScript in both cases) into a
 * CommonJS eval worker, with sharp required by its absolute path, works identically in both
 * and keeps a single source for the pixel pipeline (see decodeKernel.ts for the constraints
 * that places on the kernel). The source must not mention `import.meta` or use `import`
 * statements: Node would then treat it as an ES module, where `require` is missing.
 */
function workerSource(): string {
  return `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { readFile } = require('node:fs/promises');
const sharp = require(workerData.sharpPath);
const decodeKernel = (${decodeKernel.toString()});
parentPort.on('message', async (msg) => {
  try {
    const bytes = typeof msg.input === 'string' ? await readFile(msg.input) : msg.input;
    const out = await decodeKernel(sharp, bytes, msg.plan);
    parentPort.postMessage({ id: msg.id, ok: true, data: out.data, height: out.height, width: out.width }, [out.data.buffer]);
  } catch (err) {
    const fatal = !!err && workerData.fatalCodes.includes(err.code);
    parentPort.postMessage({ id: msg.id, ok: false, error: String(err && err.message ? err.message : err), fatal });
  }
});
`;
}

/**
 * Decodes images with sharp in `numWorkers` worker threads (0: on the calling thread), one
 * task per worker at a time, the rest queued in submission order. Outputs come back as
 * transferred ArrayBuffers (no copy). Failures resolve to `{ ok: false }` rather than
 * rejecting, so a corrupt file is a skipped sample, never an unhandled rejection; a worker
 * that dies is replaced and its current task fails as `fatal` (see {@link DecodeOutcome}).
 *
 * Idle workers are `unref`'d, so a pool nobody closed does not keep Node alive, while a
 * worker with a task in flight is `ref`'d, so awaiting a decode keeps the process running.
 */
export class DecodePool {
  /** Number of worker threads (0 = decode on the calling thread). */
  readonly numWorkers: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 0;
  private closed = false;
  private source: string | null = null;
  private sharpPath: string | null = null;

  constructor(numWorkers: number) {
    if (!Number.isInteger(numWorkers) || numWorkers < 0) {
      throw new MisconfigurationError(`\`--num_workers\` must be a non-negative integer, got ${showValue(numWorkers)}.`);
    }
    this.numWorkers = numWorkers;
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.task !== null).length;
  }

  /**
   * Decodes `input` (a path, read by the worker, or bytes) with `plan`. An aborted `signal`
   * drops the task if it has not started (resolving `{ ok: false, cancelled: true }`).
   */
  decode(input: ImageInput, plan: TransformPlan, signal?: AbortSignal): Promise<DecodeOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, error: 'decode pool is closed', cancelled: true });
    if (this.numWorkers === 0) {
      return applyTransformPlan(input, plan).then(
        (image): DecodeOutcome => ({ ok: true, image }),
        (err: unknown): DecodeOutcome => failureOf(err),
      );
    }
    return new Promise<DecodeOutcome>((resolve) => {
      // One abort signal serves a whole epoch of tasks: detach each listener when its task
      // settles, so listeners do not pile up on the signal (nor trip MaxListeners warnings).
      const onAbort = (): void => this.dropQueued(task);
      const task: Task = {
        id: this.nextId++,
        input,
        plan,
        signal,
        resolve: (outcome) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      this.queue.push(task);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pump();
    });
  }

  /** Terminates the workers; queued tasks resolve as cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.resolve({ ok: false, error: 'decode pool closed', cancelled: true });
    const slots = this.slots.splice(0);
    for (const slot of slots) slot.task?.resolve({ ok: false, error: 'decode pool closed', cancelled: true });
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private dropQueued(task: Task): void {
    const i = this.queue.indexOf(task);
    if (i >= 0) {
      this.queue.splice(i, 1);
      task.resolve({ ok: false, error: 'cancelled', cancelled: true });
    }
  }

  private spawn(): Slot {
    this.source ??= workerSource();
    this.sharpPath ??= createRequire(import.meta.url).resolve('sharp');
    const worker = new Worker(this.source, { eval: true, workerData: { sharpPath: this.sharpPath, fatalCodes: FATAL_ERROR_CODES } });
    worker.unref();
    const slot: Slot = { worker, task: null };
    worker.on('message', (reply: WorkerReply) => {
      const task = slot.task;
      if (!task || task.id !== reply.id) return;
      slot.task = null;
      task.resolve(reply.ok ? { ok: true, image: { data: reply.data, height: reply.height, width: reply.width } } : reply.fatal ? { ok: false, error: reply.error, fatal: true } : { ok: false, error: reply.error });
      this.pump();
    });
    const onDeath = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return; // already removed (closed or handled)
      this.slots.splice(i, 1);
      slot.task?.resolve({ ok: false, error: `decode worker died: ${why}`, fatal: true });
      slot.task = null;
      void slot.worker.terminate();
      this.pump();
    };
    worker.on('error', (err) => onDeath(err.message));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  private pump(): void {
    if (this.closed) return;
    while (this.slots.length < this.numWorkers) this.spawn();
    for (const slot of this.slots) {
      if (slot.task) continue;
      let task = this.queue.shift();
      while (task && task.signal?.aborted) {
        task.resolve({ ok: false, error: 'cancelled', cancelled: true });
        task = this.queue.shift();
      }
      if (!task) break;
      slot.task = task;
      slot.worker.postMessage({ id: task.id, input: task.input, plan: task.plan });
    }
    for (const slot of this.slots) {
      if (slot.task) slot.worker.ref();
      else slot.worker.unref();
    }
  }
}

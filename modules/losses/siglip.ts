/**
 * The sigmoid loss of SigLIP (Zhai et al. 2023, "Sigmoid Loss for Language Image
 * Pre-Training"), as open_clip's `SigLipLoss`: with logits = exp(θ)·I·Tᵀ + b and labels
 * y = +1 on the diagonal, −1 elsewhere, loss = −Σ log σ(y·logits) / N_images.
 * θ is initialised to ln 10 and b to −10 (the paper's choice, so that the many negatives
 * start with a small loss); θ is clamped to [0, ln 100] after each step like CLIP's scale.
 *
 * Under DDP each rank scores its images against every rank's texts: its own block with
 * the diagonal positives, the others negatives only. The mean over ranks of the per-rank
 * losses is the single-process loss of the global batch, and — because each rank sends the
 * gradient of every text block it received back to the block's owner — the DDP-averaged
 * gradient is the global-batch gradient. The four ways of moving the text blocks are
 * open_clip's `dist_impl`:
 *  - `bidir` (default): text blocks travel round the ring in both directions at once,
 *    ⌈(W−1)/2⌉ neighbour exchanges;
 *  - `shift`: one direction, W−1 neighbour exchanges;
 *  - `reduce`: W all-reduces, the k-th carrying rank k's block (zeros elsewhere);
 *  - `gather`: one all-gather of every block.
 * Neighbour exchanges use the process group's point-to-point `sendRecv`. tfjs cannot run
 * a collective inside its backward pass, so the backward communication (the reverse ring,
 * the all-reduce of block gradients) is written out explicitly here, mirroring what
 * torch.distributed.nn's autograd functions do in open_clip.
 */
import { tf, type Tensor } from '../../core/tf.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';

/** Initial log scale: exp(θ) = 10. */
export const SIGLIP_LOGIT_SCALE_INIT = Math.log(10);
/** Initial bias. */
export const SIGLIP_LOGIT_BIAS_INIT = -10;

/** open_clip's `dist_impl` of `SigLipLoss`. */
export type SiglipDistImpl = 'bidir' | 'shift' | 'reduce' | 'gather';
export const SIGLIP_DIST_IMPLS: readonly SiglipDistImpl[] = ['bidir', 'shift', 'reduce', 'gather'];

/**
 * The SigLIP loss of one block: image features `[Ni, D]` against text features `[Nt, D]`
 * (both L2-normalised), `logitScale` the log scale θ, `logitBias` b. With
 * `negativeOnly` every pair is a negative (another rank's texts); otherwise pair i↔i is
 * positive (requires Ni = Nt). Divided by Ni.
 */
export function siglipLoss(imageFeatures: Tensor, textFeatures: Tensor, logitScale: Tensor, logitBias: Tensor, negativeOnly = false): Tensor {
  return tf.tidy(() => {
    const ni = imageFeatures.shape[0]!;
    const nt = textFeatures.shape[0]!;
    if (!negativeOnly && ni !== nt) throw new MisconfigurationError(`siglipLoss: ${ni} images and ${nt} texts; positives need one text per image.`);
    const logits = tf.add(tf.mul(tf.matMul(imageFeatures, textFeatures, false, true), tf.exp(logitScale)), logitBias);
    return siglipFromLogits(logits, negativeOnly);
  });
}

/** −Σ log σ(y·logits) / rows, y = 2·eye − 1 (or −1 everywhere with `negativeOnly`). */
export function siglipFromLogits(logits: Tensor, negativeOnly = false): Tensor {
  return tf.tidy(() => {
    const [ni, nt] = logits.shape as [number, number];
    const labels = negativeOnly ? tf.fill([ni, nt], -1) : tf.sub(tf.mul(tf.eye(ni, nt), 2), 1);
    // log σ(z) = min(z, 0) − log(1 + e^−|z|), stable for large |z| (tf.logSigmoid's custom
    // gradient fails inside tf.grad on tfjs 4.22).
    const z = tf.mul(labels, logits);
    const logSig = tf.sub(tf.minimum(z, 0), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    return tf.div(tf.neg(tf.sum(logSig)), ni);
  });
}

/** The collectives the distributed loss needs (a `ProcessGroup` has them). */
export interface SiglipCollectives {
  readonly rank: number;
  readonly worldSize: number;
  allGather(data: Float32Array): Promise<Float32Array[]>;
  allReduce(data: Float32Array, op?: 'sum' | 'mean'): Promise<Float32Array>;
  /** Point-to-point exchange (the zeromq group has it); without it the exchange goes through `allGather`. */
  sendRecv?(sends: ReadonlyArray<{ to: number; data: Float32Array }>, recvFrom: readonly number[]): Promise<Float32Array[]>;
}

/**
 * `comm.sendRecv`, or the same exchange through one all-gather where the process group has
 * no point-to-point operation (Gloo and MPI groups): every rank packs its messages as
 * `[count, (to, length)×count, data…]`, and each keeps those addressed to it. Exact, at
 * world× the traffic of a neighbour exchange.
 */
async function exchange(comm: SiglipCollectives, sends: ReadonlyArray<{ to: number; data: Float32Array }>, recvFrom: readonly number[]): Promise<Float32Array[]> {
  if (comm.sendRecv) return comm.sendRecv(sends, recvFrom);
  const header = 1 + 2 * sends.length;
  const packed = new Float32Array(header + sends.reduce((a, m) => a + m.data.length, 0));
  packed[0] = sends.length;
  let at = header;
  sends.forEach((m, i) => {
    packed[1 + 2 * i] = m.to;
    packed[2 + 2 * i] = m.data.length;
    packed.set(m.data, at);
    at += m.data.length;
  });
  const all = await comm.allGather(packed);
  // Messages from one sender to this rank, in the order the sender listed them.
  const inbox = all.map((p) => {
    const mine: Float32Array[] = [];
    let off = 1 + 2 * p[0]!;
    for (let i = 0; i < p[0]!; i++) {
      const len = p[2 + 2 * i]!;
      if (p[1 + 2 * i] === comm.rank) mine.push(p.slice(off, off + len));
      off += len;
    }
    return mine;
  });
  return recvFrom.map((r) => {
    const msg = inbox[r]!.shift();
    if (!msg) throw new Error(`SigLIP exchange: rank ${r} sent nothing to rank ${comm.rank}.`);
    return msg;
  });
}

/** What {@link siglipLossAndGrads} returns; the caller owns every tensor. */
export interface SiglipGrads {
  /** This rank's loss (its images against all texts); the mean over ranks is the global loss. */
  loss: Tensor;
  /** ∂loss_r/∂(local image features). */
  gradImage: Tensor;
  /** Σ over ranks r' of ∂loss_r'/∂(local text features). */
  gradText: Tensor;
  /** ∂loss_r/∂θ and ∂loss_r/∂b. */
  gradScale: Tensor;
  gradBias: Tensor;
}

interface Acc {
  loss: Tensor;
  gI: Tensor;
  gS: Tensor;
  gB: Tensor;
}

/**
 * Loss and gradients of the distributed SigLIP loss for this rank's normalised features
 * (`[n, D]` each; every rank the same n). On one process (or `comm` undefined) it is
 * {@link siglipLoss} with its gradients. Averaging `gradImage`/`gradText` back-propagated
 * through the towers, and `gradScale`/`gradBias`, over ranks (DDP) gives the gradient of
 * the global-batch loss.
 */
export async function siglipLossAndGrads(
  imageFeatures: Tensor,
  textFeatures: Tensor,
  logitScale: Tensor,
  logitBias: Tensor,
  comm?: SiglipCollectives,
  impl: SiglipDistImpl = 'bidir',
): Promise<SiglipGrads> {
  if (!SIGLIP_DIST_IMPLS.includes(impl)) throw new MisconfigurationError(`\`--siglip_dist_impl\` must be one of ${SIGLIP_DIST_IMPLS.join(', ')}, got ${showValue(impl)}.`);
  const local = tf.valueAndGrads((zi: Tensor, zt: Tensor, s: Tensor, b: Tensor) => siglipLoss(zi, zt, s, b))([imageFeatures, textFeatures, logitScale, logitBias]);
  const [gI0, gT0, gS0, gB0] = local.grads as [Tensor, Tensor, Tensor, Tensor];
  const acc: Acc = { loss: local.value, gI: gI0, gS: gS0, gB: gB0 };
  const world = comm?.worldSize ?? 1;
  if (!comm || world === 1) return { loss: acc.loss, gradImage: acc.gI, gradText: gT0, gradScale: acc.gS, gradBias: acc.gB };
  const shape = textFeatures.shape as [number, number];
  const mine = Float32Array.from(textFeatures.dataSync() as Float32Array);
  /** Adds the negatives-only term of `block` to `acc`; returns ∂/∂block (to send back to its owner). */
  const negatives = (block: Float32Array): Float32Array => {
    const t = tf.tensor2d(block, shape);
    const r = tf.valueAndGrads((zi: Tensor, zt: Tensor, s: Tensor, b: Tensor) => siglipLoss(zi, zt, s, b, true))([imageFeatures, t, logitScale, logitBias]);
    const [gI, gT, gS, gB] = r.grads as [Tensor, Tensor, Tensor, Tensor];
    const sum = (a: Tensor, b: Tensor): Tensor => {
      const out = tf.add(a, b);
      a.dispose();
      b.dispose();
      return out;
    };
    acc.loss = sum(acc.loss, r.value);
    acc.gI = sum(acc.gI, gI);
    acc.gS = sum(acc.gS, gS);
    acc.gB = sum(acc.gB, gB);
    const g = Float32Array.from(gT.dataSync() as Float32Array);
    tf.dispose([t, gT]);
    return g;
  };
  const gradText = Float32Array.from(gT0.dataSync() as Float32Array);
  gT0.dispose();
  const addInto = (dst: Float32Array, src: Float32Array): void => {
    for (let i = 0; i < dst.length; i++) dst[i]! += src[i]!;
  };
  const { rank } = comm;
  if (impl === 'gather' || impl === 'reduce') {
    const blocks = impl === 'gather' ? await comm.allGather(mine) : await reduceBlocks(comm, mine);
    // Gradients of every other rank's block, laid out by owner; summed over ranks, each
    // owner takes its slice (all_gather's backward is a reduce-scatter; all_reduce's an all_reduce).
    const grads = new Float32Array(world * mine.length);
    blocks.forEach((b, k) => k !== rank && grads.set(negatives(b), k * mine.length));
    if (impl === 'gather') {
      await comm.allReduce(grads, 'sum');
      addInto(gradText, grads.subarray(rank * mine.length, (rank + 1) * mine.length));
    } else {
      for (let k = 0; k < world; k++) {
        const part = grads.slice(k * mine.length, (k + 1) * mine.length);
        await comm.allReduce(part, 'sum');
        if (k === rank) addInto(gradText, part);
      }
    }
  } else {
    await ringExchange(comm, mine, gradText, impl, negatives);
  }
  return { loss: acc.loss, gradImage: acc.gI, gradText: tf.tensor2d(gradText, shape), gradScale: acc.gS, gradBias: acc.gB };
}

/** open_clip's `reduce`: W all-reduces; the k-th carries rank k's block (zeros on the others). */
async function reduceBlocks(comm: SiglipCollectives, mine: Float32Array): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let k = 0; k < comm.worldSize; k++) {
    out.push(await comm.allReduce(k === comm.rank ? Float32Array.from(mine) : new Float32Array(mine.length), 'sum'));
  }
  return out;
}

/**
 * `shift` and `bidir`: blocks move one hop per exchange, to the right (received from the
 * left) and, for bidir, also to the left. The block a rank received at hop s came from its
 * neighbour's hop s−1, so in the backward pass the gradients go round the reverse way: at
 * hop s (from the last down) each rank sends its block's gradient, plus what came back
 * for hop s+1, to the neighbour it received that block from.
 */
async function ringExchange(
  comm: SiglipCollectives,
  mine: Float32Array,
  gradText: Float32Array,
  impl: 'shift' | 'bidir',
  negatives: (block: Float32Array) => Float32Array,
): Promise<void> {
  const { rank, worldSize: w } = comm;
  const left = (rank - 1 + w) % w;
  const right = (rank + 1) % w;
  // hops[d] = number of hops in direction d (0: rightwards, 1: leftwards).
  const hops = impl === 'shift' ? [w - 1, 0] : [Math.ceil((w - 1) / 2), Math.floor((w - 1) / 2)];
  const to = [right, left];
  const from = [left, right];
  const grads: Float32Array[][] = [[], []];
  const current = [mine, mine];
  for (let s = 0; s < Math.max(hops[0]!, hops[1]!); s++) {
    const dirs = [0, 1].filter((d) => s < hops[d]!);
    const got = await exchange(comm, dirs.map((d) => ({ to: to[d]!, data: current[d]! })), dirs.map((d) => from[d]!));
    dirs.forEach((d, i) => {
      current[d] = got[i]!;
      grads[d]!.push(negatives(got[i]!));
    });
  }
  // Backward: carry[d] = gradient of this rank's hop-s block, including every later hop.
  const carry: Array<Float32Array | null> = [null, null];
  for (let s = Math.max(hops[0]!, hops[1]!) - 1; s >= 0; s--) {
    const dirs = [0, 1].filter((d) => s < hops[d]!);
    const sends = dirs.map((d) => {
      const g = grads[d]![s]!;
      if (carry[d]) for (let i = 0; i < g.length; i++) g[i]! += carry[d]![i]!;
      return { to: from[d]!, data: g };
    });
    const back = await exchange(comm, sends, dirs.map((d) => to[d]!));
    dirs.forEach((d, i) => (carry[d] = back[i]!));
  }
  for (const c of carry) if (c) for (let i = 0; i < c.length; i++) gradText[i]! += c[i]!;
}

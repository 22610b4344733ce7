import { tf, type Tensor } from '../../core/tf.js';

/**
 * Sinkhorn–Knopp soft assignment (Cuturi 2013; as SwAV and train-CLIP's self-distillation
 * use it): `Q = exp(scores / ε)`, then `iterations` rounds of alternately normalising rows
 * and columns towards uniform marginals. Returns `[B, K]` targets whose rows each sum to 1
 * (the last normalisation is over rows, so that holds exactly) and whose columns sum to
 * B/K up to the convergence of the iterations. `scores` are similarities (higher = more
 * alike), i.e. minus the transport cost. Computed in log space, so ε = 0.05 on cosine
 * similarities cannot overflow.
 */
export function sinkhorn(scores: Tensor, epsilon = 0.05, iterations = 3): Tensor {
  return tf.tidy(() => {
    const [b, k] = scores.shape as [number, number];
    let logQ = tf.div(scores, epsilon);
    for (let i = 0; i < iterations; i++) {
      // columns → each sums to B/K·(1/B) … then rows → each sums to 1/B
      logQ = tf.sub(logQ, tf.logSumExp(logQ, 0, true));
      logQ = tf.sub(logQ, Math.log(k));
      logQ = tf.sub(logQ, tf.logSumExp(logQ, 1, true));
      logQ = tf.sub(logQ, Math.log(b));
    }
    return tf.mul(tf.exp(logQ), b);
  });
}

/**
 * KL(target ‖ softmax(logits)) averaged over rows (PyTorch's
 * `kl_div(log_softmax(logits), target, reduction='batchmean')`); 0·log 0 counts as 0.
 */
export function klDivergence(logits: Tensor, target: Tensor): Tensor {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const safeLogT = tf.log(tf.maximum(target, 1e-30));
    const terms = tf.mul(target, tf.sub(safeLogT, logp));
    return tf.div(tf.sum(terms), logits.shape[0]!);
  });
}

/** Teacher targets of self-distillation for one (global) batch. */
export interface DistillationTargets {
  image: Tensor;
  text: Tensor;
}

/**
 * Self-distillation targets (Cheng et al. 2021, "Data-Efficient Language-Supervised
 * Zero-Shot Learning with Self-Distillation", as train-CLIP's CustomCLIPWrapper): from the
 * teacher's normalised features, the image-side scores S_ii + S_tt + S_it and the text-side
 * scores S_ii + S_tt + S_ti, each turned into soft targets by Sinkhorn (ε 0.05, 3 rounds).
 */
export function distillationTargets(teacherImage: Tensor, teacherText: Tensor, epsilon = 0.05, iterations = 3): DistillationTargets {
  return tf.tidy(() => {
    const sii = tf.matMul(teacherImage, teacherImage, false, true);
    const stt = tf.matMul(teacherText, teacherText, false, true);
    const sit = tf.matMul(teacherImage, teacherText, false, true);
    const base = tf.add(sii, stt);
    return {
      image: sinkhorn(tf.add(base, sit), epsilon, iterations),
      text: sinkhorn(tf.add(base, tf.transpose(sit)), epsilon, iterations),
    };
  });
}

/**
 * The distillation term: the mean over both directions of KL(target ‖ softmax(s·L)), with
 * L the student's cosine-similarity logits `[B, B]` and s = exp(sinkTemp) a learnable
 * temperature (initialised at ln(1/0.07), like CLIP's logit scale).
 */
export function distillationLoss(studentImage: Tensor, studentText: Tensor, sinkTemp: Tensor, targets: DistillationTargets): Tensor {
  return tf.tidy(() => {
    const logits = tf.mul(tf.matMul(studentImage, studentText, false, true), tf.exp(sinkTemp));
    return tf.div(tf.add(klDivergence(logits, targets.image), klDivergence(tf.transpose(logits), targets.text)), 2);
  });
}

// ISA-generic inner loops. Included once per instruction set from isa_*.cc, each of which sets
// `#pragma GCC target(...)`, defines LC_VL (floats per SIMD register) and LC_MR (GEMM
// micro-tile rows) and wraps this file in its own namespace. Nothing here may use the C++
// standard library: an out-of-line copy of an inline std function compiled for AVX2 could be
// picked by the linker for the baseline code too.
#include "common.h"

namespace {

#include "kernels_math.h"

typedef float vf __attribute__((vector_size(LC_VL * 4), aligned(4)));
constexpr int MR = LC_MR;
constexpr int NR = 2 * LC_VL;

/** The GEMM micro-kernel: an MR x NR tile of C kept in 2*MR vector registers. */
void ukernel(int64_t k, const float* a, const float* b, float* c, int64_t ldc, float alpha,
             float beta, int mr, int nr) {
  vf acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) { acc[i][0] = (vf){}; acc[i][1] = (vf){}; }
  for (int64_t p = 0; p < k; p++) {
    vf b0 = *(const vf*)b;
    vf b1 = *(const vf*)(b + LC_VL);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      acc[i][0] += a[i] * b0;
      acc[i][1] += a[i] * b1;
    }
    a += MR;
    b += NR;
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      vf* row = (vf*)(c + i * ldc);
      if (beta == 0.0f) {
        row[0] = alpha * acc[i][0];
        row[1] = alpha * acc[i][1];
      } else {
        row[0] = alpha * acc[i][0] + beta * row[0];
        row[1] = alpha * acc[i][1] + beta * row[1];
      }
    }
    return;
  }
  float tile[MR][NR] __attribute__((aligned(64)));
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) { *(vf*)&tile[i][0] = acc[i][0]; *(vf*)&tile[i][LC_VL] = acc[i][1]; }
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) {
      float* dst = c + i * ldc + j;
      *dst = beta == 0.0f ? alpha * tile[i][j] : alpha * tile[i][j] + beta * *dst;
    }
}

#define LC_LOOP(expr) \
  _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { float v = x[i]; y[i] = (expr); }

void unary(int op, const float* x, float* y, int64_t n, float alpha) {
  using namespace lc;
  switch (op) {
    case U_EXP: LC_LOOP(lc_exp(v)); break;
    case U_LOG: LC_LOOP(lc_log(v)); break;
    case U_SQRT: LC_LOOP(__builtin_sqrtf(v)); break;
    case U_RSQRT: LC_LOOP(1.0f / __builtin_sqrtf(v)); break;
    case U_SQUARE: LC_LOOP(v * v); break;
    case U_SIGMOID: LC_LOOP(lc_sigmoid(v)); break;
    case U_TANH: LC_LOOP(lc_tanh(v)); break;
    case U_ERF: LC_LOOP(lc_erf(v)); break;
    case U_RELU: LC_LOOP(v > 0.0f ? v : (v != v ? v : 0.0f)); break;
    case U_NEG: LC_LOOP(-v); break;
    case U_ABS: LC_LOOP(v < 0.0f ? -v : v); break;
    case U_RELU6: LC_LOOP(v > 6.0f ? 6.0f : (v > 0.0f ? v : (v != v ? v : 0.0f))); break;
    case U_RECIPROCAL: LC_LOOP(1.0f / v); break;
    // tfjs' Step keeps NaN and maps x <= 0 to alpha
    case U_STEP: LC_LOOP(v != v ? v : (v > 0.0f ? 1.0f : alpha)); break;
    case U_LOG1P: LC_LOOP(lc_log1p(v)); break;
    case U_SOFTPLUS: LC_LOOP(v > 15.0f ? v : lc_log1p(lc_exp(v))); break;
    case U_ELU: LC_LOOP(v >= 0.0f ? v : lc_exp(v) - 1.0f); break;
    case U_EXPM1: LC_LOOP(lc_expm1(v)); break;
    default: break;
  }
}
#undef LC_LOOP

#define LC_BIN(A, B, expr)                                                              \
  _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { float u = (A); float w = (B); y[i] = (expr); }
#define LC_BIN_MODES(expr)                         \
  if (mode == 0) { LC_BIN(a[i], b[i], expr); }     \
  else if (mode == 1) { const float s = b[0]; LC_BIN(a[i], s, expr); } \
  else { const float s = a[0]; LC_BIN(s, b[i], expr); }

void binary(int op, int mode, const float* a, const float* b, float* y, int64_t n) {
  using namespace lc;
  switch (op) {
    case B_ADD: LC_BIN_MODES(u + w); break;
    case B_SUB: LC_BIN_MODES(u - w); break;
    case B_MUL: LC_BIN_MODES(u * w); break;
    case B_DIV: LC_BIN_MODES(u / w); break;
    // NaN wins, as in tfjs (Math.max/Math.min)
    case B_MAX: LC_BIN_MODES(u != u || w != w ? u + w : (u > w ? u : w)); break;
    case B_MIN: LC_BIN_MODES(u != u || w != w ? u + w : (u < w ? u : w)); break;
    case B_SQDIFF: LC_BIN_MODES((u - w) * (u - w)); break;
    default: break;
  }
}
#undef LC_BIN_MODES
#undef LC_BIN

float reduce(int op, const float* x, int64_t n) {
  using namespace lc;
  if (op == R_SUM) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
  }
  if (op == R_PROD) {
    float s = 1.0f;
#pragma omp simd reduction(* : s)
    for (int64_t i = 0; i < n; i++) s *= x[i];
    return s;
  }
  // max/min: NaN must propagate (tfjs compares with >, so a NaN first element sticks; we
  // propagate any NaN, which is what PyTorch does)
  float m = op == R_MAX ? -__builtin_inff() : __builtin_inff();
  int nan = 0;
  if (op == R_MAX) {
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int64_t i = 0; i < n; i++) { m = x[i] > m ? x[i] : m; nan |= x[i] != x[i]; }
  } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
    for (int64_t i = 0; i < n; i++) { m = x[i] < m ? x[i] : m; nan |= x[i] != x[i]; }
  }
  return nan ? __builtin_nanf("") : m;
}

void accumulate(int op, float* acc, const float* x, int64_t n) {
  using namespace lc;
  switch (op) {
    case R_SUM:
#pragma omp simd
      for (int64_t i = 0; i < n; i++) acc[i] += x[i];
      break;
    case R_PROD:
#pragma omp simd
      for (int64_t i = 0; i < n; i++) acc[i] *= x[i];
      break;
    case R_MAX:
#pragma omp simd
      for (int64_t i = 0; i < n; i++) acc[i] = (x[i] > acc[i] || x[i] != x[i]) ? x[i] : acc[i];
      break;
    case R_MIN:
#pragma omp simd
      for (int64_t i = 0; i < n; i++) acc[i] = (x[i] < acc[i] || x[i] != x[i]) ? x[i] : acc[i];
      break;
    default: break;
  }
}

/** y = softmax(scale*x) or log_softmax(scale*x) over one row. y may alias x. */
void softmaxRow(const float* x, float* y, int64_t n, int logMode, float scale) {
  float m = -__builtin_inff();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; i++) m = x[i] * scale > m ? x[i] * scale : m;
  if (m == -__builtin_inff()) m = 0.0f;  // fully masked row: exp gives 0s, sum 0, NaNs as torch
  float s = 0.0f;
  if (logMode) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += lc_exp(x[i] * scale - m);
    const float ls = m + lc_log(s);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale - ls;
    return;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) { float e = lc_exp(x[i] * scale - m); y[i] = e; s += e; }
  const float inv = 1.0f / s;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

/** dx = scale * y * (dy - <dy, y>), the gradient of softmax(scale*x) given its output y. */
void softmaxGradRow(const float* y, const float* dy, float* dx, int64_t n, float scale) {
  float d = 0.0f;
#pragma omp simd reduction(+ : d)
  for (int64_t i = 0; i < n; i++) d += dy[i] * y[i];
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dx[i] = scale * y[i] * (dy[i] - d);
}

void layerNormRow(const float* x, const float* g, const float* b, float* y, int64_t n, float eps,
                  float* mean, float* rstd) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += x[i];
  const float mu = s / (float)n;
  float v = 0.0f;  // two passes: the one-pass formula cancels badly for large means
#pragma omp simd reduction(+ : v)
  for (int64_t i = 0; i < n; i++) v += (x[i] - mu) * (x[i] - mu);
  const float r = 1.0f / __builtin_sqrtf(v / (float)n + eps);
  *mean = mu;
  *rstd = r;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float h = (x[i] - mu) * r;
    y[i] = (g ? h * g[i] : h) + (b ? b[i] : 0.0f);
  }
}

void layerNormGradRow(const float* x, const float* dy, const float* g, float mean, float rstd,
                      float* dx, float* dg, float* db, int64_t n) {
  float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t i = 0; i < n; i++) {
    float h = (x[i] - mean) * rstd;
    float dh = g ? dy[i] * g[i] : dy[i];
    s1 += dh;
    s2 += dh * h;
  }
  const float m1 = s1 / (float)n, m2 = s2 / (float)n;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float h = (x[i] - mean) * rstd;
    float dh = g ? dy[i] * g[i] : dy[i];
    dx[i] = rstd * (dh - m1 - h * m2);
    if (dg) dg[i] += dy[i] * h;
    if (db) db[i] += dy[i];
  }
}

void gelu(int kind, const float* x, float* y, int64_t n) {
  if (kind == lc::G_QUICK) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * lc_sigmoid(1.702f * x[i]);
  } else if (kind == lc::G_GELU_TANH) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      y[i] = 0.5f * v * (1.0f + lc_tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + lc_erf(x[i] * 0.70710678118654752f));
  }
}

void geluGrad(int kind, const float* x, const float* dy, float* dx, int64_t n) {
  if (kind == lc::G_QUICK) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float s = lc_sigmoid(1.702f * x[i]);
      dx[i] = dy[i] * (s + 1.702f * x[i] * s * (1.0f - s));
    }
  } else if (kind == lc::G_GELU_TANH) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      float t = lc_tanh(0.7978845608028654f * (v + 0.044715f * v * v * v));
      float dt = (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * v * v);
      dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      float cdf = 0.5f * (1.0f + lc_erf(v * 0.70710678118654752f));
      float pdf = 0.3989422804014327f * lc_exp(-0.5f * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
  }
}

/** One AdamW step in place (PyTorch's formulation: decoupled decay, then the Adam update). */
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const lc::AdamParams* hp) {
  const float b1 = hp->beta1, b2 = hp->beta2, decay = 1.0f - hp->lr * hp->weightDecay;
  const float stepSize = hp->lr / hp->bc1, invSqrtBc2 = 1.0f / __builtin_sqrtf(hp->bc2);
  const float eps = hp->eps;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - stepSize * mi / (__builtin_sqrtf(vi) * invSqrtBc2 + eps);
  }
}

void axpy(float a, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void bnAccSqDiff(float* acc, const float* x, const float* mean, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) acc[i] += (x[i] - mean[i]) * (x[i] - mean[i]);
}

void bnGradAcc(const float* x, const float* dy, const float* mean, float* sdy, float* sdyx,
               int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    sdy[i] += dy[i];
    sdyx[i] += dy[i] * (x[i] - mean[i]);
  }
}

void scaleShift(const float* x, const float* scale, const float* shift, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale[i] + shift[i];
}

void bnGradApply(const float* x, const float* dy, const float* mean, const float* c,
                 const float* mdy, const float* k, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dx[i] = c[i] * (dy[i] - mdy[i] - (x[i] - mean[i]) * k[i]);
}

}  // namespace

#define LC_TABLE_INIT(label)                                                               \
  {label,      MR,         NR,     ukernel,          unary, binary, reduce, accumulate,     \
   softmaxRow, softmaxGradRow, layerNormRow, layerNormGradRow, gelu, geluGrad, adamw, axpy, \
   bnAccSqDiff, bnGradAcc, scaleShift, bnGradApply}

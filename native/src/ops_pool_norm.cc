// Pooling (avg/max, forward and backward) and training-mode batch normalisation over
// channels-last data. The inner loops run over the channels, which NHWC keeps contiguous.
#include <string.h>

#include <vector>

#include "common.h"
#include "ops.h"
#include "threadpool.h"

namespace lc {
namespace {

constexpr int64_t kGrain = 16384;

inline int64_t rowGrain(int64_t cols) {
  const int64_t g = kGrain / (cols > 0 ? cols : 1);
  return g < 1 ? 1 : g;
}

// Per-thread column sums over row ranges: fn(part, r0, r1) fills part (cols floats, zeroed
// first); the parts are then added in thread order into out0 (and out1 for two-vector sums).
template <class F>
void columnPartials(int64_t rows, int64_t cols, int vectors, float* out0, float* out1, F&& fn) {
  const int64_t t = numThreads() < rows ? numThreads() : (rows > 0 ? rows : 1);
  std::vector<float> parts((size_t)(t * vectors * cols), 0.0f);
  parallel(t, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++)
      fn(parts.data() + p * vectors * cols, rows * p / t, rows * (p + 1) / t);
  });
  const KernelTable* kt = kernels();
  memset(out0, 0, (size_t)cols * 4);
  if (out1) memset(out1, 0, (size_t)cols * 4);
  for (int64_t p = 0; p < t; p++) {
    kt->axpy(1.0f, parts.data() + p * vectors * cols, out0, cols);
    if (out1) kt->axpy(1.0f, parts.data() + (p * vectors + 1) * cols, out1, cols);
  }
}

}  // namespace

void batchNormForward(const float* x, const float* g, const float* b, float* y, float* mean,
                      float* var, int64_t rows, int64_t cols, float eps) {
  const KernelTable* kt = kernels();
  // two passes (mean, then squared deviations): the one-pass formula cancels badly
  columnPartials(rows, cols, 1, mean, nullptr, [&](float* acc, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) kt->accumulate(R_SUM, acc, x + r * cols, cols);
  });
  // no rows: zero statistics, as tfjs' mean of nothing
  const float inv = rows > 0 ? 1.0f / (float)rows : 0.0f;
  for (int64_t c = 0; c < cols; c++) mean[c] *= inv;
  columnPartials(rows, cols, 1, var, nullptr, [&](float* acc, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) kt->bnAccSqDiff(acc, x + r * cols, mean, cols);
  });
  std::vector<float> scale((size_t)cols), shift((size_t)cols);
  for (int64_t c = 0; c < cols; c++) {
    var[c] *= inv;
    const float rstd = 1.0f / __builtin_sqrtf(var[c] + eps);
    scale[(size_t)c] = g ? rstd * g[c] : rstd;
    shift[(size_t)c] = (b ? b[c] : 0.0f) - mean[c] * scale[(size_t)c];
  }
  parallel(rows, rowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      kt->scaleShift(x + r * cols, scale.data(), shift.data(), y + r * cols, cols);
  });
}

void batchNormBackward(const float* x, const float* dy, const float* g, const float* mean,
                       const float* var, float* dx, float* dg, float* db, int64_t rows,
                       int64_t cols, float eps) {
  const KernelTable* kt = kernels();
  std::vector<float> sdy((size_t)cols), sdyx((size_t)cols);
  columnPartials(rows, cols, 2, sdy.data(), sdyx.data(), [&](float* acc, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      kt->bnGradAcc(x + r * cols, dy + r * cols, mean, acc, acc + cols, cols);
  });
  // xhat = (x - mean) * rstd; dx = rstd * g * (dy - mean(dy) - xhat * mean(dy * xhat))
  std::vector<float> c((size_t)cols), mdy((size_t)cols), k((size_t)cols);
  const float inv = rows > 0 ? 1.0f / (float)rows : 0.0f;
  for (int64_t j = 0; j < cols; j++) {
    const size_t u = (size_t)j;
    const float rstd = 1.0f / __builtin_sqrtf(var[j] + eps);
    c[u] = g ? rstd * g[j] : rstd;
    mdy[u] = sdy[u] * inv;
    k[u] = rstd * rstd * sdyx[u] * inv;
    if (dg) dg[j] = sdyx[u] * rstd;
    if (db) db[j] = sdy[u];
  }
  parallel(rows, rowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      kt->bnGradApply(x + r * cols, dy + r * cols, mean, c.data(), mdy.data(), k.data(),
                      dx + r * cols, cols);
  });
}

void pool2d(const float* x, float* out, const ConvGeom& g, int mode) {
  const int64_t c = g.c;
  parallel(g.n * g.oh, rowGrain(g.ow * c * g.kh * g.kw), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / g.oh, oy = r % g.oh;
      const int64_t y0 = oy * g.sh - g.padT;
      for (int64_t ox = 0; ox < g.ow; ox++) {
        const int64_t x0 = ox * g.sw - g.padL;
        float* o = out + ((b * g.oh + oy) * g.ow + ox) * c;
        for (int64_t ci = 0; ci < c; ci++) o[ci] = mode == 1 ? -__builtin_inff() : 0.0f;
        int64_t count = 0;
        for (int64_t ky = 0; ky < g.kh; ky++) {
          const int64_t iy = y0 + ky * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < g.kw; kx++) {
            const int64_t ix = x0 + kx * g.dw;
            if (ix < 0 || ix >= g.w) continue;
            const float* p = x + ((b * g.h + iy) * g.w + ix) * c;
            count++;
            if (mode == 1) {
#pragma omp simd
              for (int64_t ci = 0; ci < c; ci++) o[ci] = p[ci] > o[ci] ? p[ci] : o[ci];
            } else {
#pragma omp simd
              for (int64_t ci = 0; ci < c; ci++) o[ci] += p[ci];
            }
          }
        }
        if (mode == 0) {
          // 0/0 = NaN for a window entirely in the padding, as tfjs
          const float inv = 1.0f / (float)count;
          for (int64_t ci = 0; ci < c; ci++) o[ci] = count ? o[ci] * inv : o[ci] / 0.0f;
        }
      }
    }
  });
}

void pool2dGrad(const float* dy, const float* x, float* dx, const ConvGeom& g, int mode,
                float avgScale) {
  const int64_t c = g.c;
  // Windows overlap when the stride is below the filter: a task owns one image and a range of
  // channels, so that no two tasks ever add into the same dx element.
  const int64_t t = numThreads();
  int64_t pieces = 1;
  while (g.n * pieces < 4 * t && c / (pieces * 2) >= 16) pieces *= 2;
  parallel(g.n * pieces, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; task++) {
      const int64_t b = task / pieces, p = task % pieces;
      const int64_t c0 = c * p / pieces, c1 = c * (p + 1) / pieces, cn = c1 - c0;
      float* dxb = dx + b * g.h * g.w * c;
      for (int64_t i = 0; i < g.h * g.w; i++) memset(dxb + i * c + c0, 0, (size_t)cn * 4);
      for (int64_t oy = 0; oy < g.oh; oy++) {
        const int64_t y0 = oy * g.sh - g.padT;
        for (int64_t ox = 0; ox < g.ow; ox++) {
          const int64_t x0 = ox * g.sw - g.padL;
          const float* d = dy + ((b * g.oh + oy) * g.ow + ox) * c + c0;
          if (mode == 0) {
            for (int64_t ky = 0; ky < g.kh; ky++) {
              const int64_t iy = y0 + ky * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              for (int64_t kx = 0; kx < g.kw; kx++) {
                const int64_t ix = x0 + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                float* q = dxb + (iy * g.w + ix) * c + c0;
#pragma omp simd
                for (int64_t ci = 0; ci < cn; ci++) q[ci] += d[ci] * avgScale;
              }
            }
            continue;
          }
          // max: find pool2d's pick per channel, then route dy there
          for (int64_t ci = 0; ci < cn; ci++) {
            float best = -__builtin_inff();
            int64_t at = -1;
            for (int64_t ky = 0; ky < g.kh; ky++) {
              const int64_t iy = y0 + ky * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              for (int64_t kx = 0; kx < g.kw; kx++) {
                const int64_t ix = x0 + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                const int64_t off = ((b * g.h + iy) * g.w + ix) * c + c0 + ci;
                if (x[off] > best) { best = x[off]; at = off; }
              }
            }
            if (at >= 0) dx[at] += d[ci];
          }
        }
      }
    }
  });
}

}  // namespace lc

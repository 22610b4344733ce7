// Reductions, row-wise softmax and LayerNorm, convolution lowering and gather/scatter
// (pooling and batch norm: ops_pool_norm.cc).
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

float identity(int op) {
  return op == R_SUM ? 0.0f : op == R_PROD ? 1.0f : op == R_MAX ? -__builtin_inff() : __builtin_inff();
}

float combine(int op, float a, float b) {
  if (op == R_SUM) return a + b;
  if (op == R_PROD) return a * b;
  if (a != a || b != b) return a + b;
  return op == R_MAX ? (a > b ? a : b) : (a < b ? a : b);
}

// dst[o, i] = reduce_r src[o, r, i] (inner may be 1).
void reduceMiddle(int op, const float* src, float* dst, int64_t outer, int64_t r, int64_t inner) {
  const KernelTable* kt = kernels();
  if (r == 0) {
    // an empty max/min is NaN in tfjs (it reads past the row); sum 0 and prod 1
    const float v = op == R_MAX || op == R_MIN ? __builtin_nanf("") : identity(op);
    for (int64_t i = 0; i < outer * inner; i++) dst[i] = v;
    return;
  }
  if (inner == 1) {
    const int64_t t = numThreads();
    if (outer < t && r >= 4 * kGrain) {
      // one or few long rows: per-thread partial results, combined here
      for (int64_t o = 0; o < outer; o++) {
        std::vector<float> part((size_t)t, identity(op));
        const float* row = src + o * r;
        parallel(t, 1, [&](int64_t p0, int64_t p1) {
          for (int64_t p = p0; p < p1; p++) {
            const int64_t b = r * p / t, e = r * (p + 1) / t;
            part[(size_t)p] = kt->reduce(op, row + b, e - b);
          }
        });
        float acc = part[0];
        for (int64_t p = 1; p < t; p++) acc = combine(op, acc, part[(size_t)p]);
        dst[o] = acc;
      }
      return;
    }
    parallel(outer, rowGrain(r), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; o++) dst[o] = kt->reduce(op, src + o * r, r);
    });
    return;
  }
  // column-wise: accumulate whole rows of `inner`, split over (outer, inner pieces)
  const int64_t t = numThreads();
  const int64_t piece = outer >= t ? inner : (inner + t - 1) / t < 256 ? inner : (inner + t - 1) / t;
  const int64_t pieces = (inner + piece - 1) / piece;
  parallel(outer * pieces, rowGrain(r * piece), [&](int64_t t0, int64_t t1) {
    for (int64_t q = t0; q < t1; q++) {
      const int64_t o = q / pieces, i0 = (q % pieces) * piece;
      const int64_t cnt = inner - i0 < piece ? inner - i0 : piece;
      const float* s = src + o * r * inner + i0;
      float* d = dst + o * inner + i0;
      memcpy(d, s, (size_t)cnt * 4);
      for (int64_t k = 1; k < r; k++) kt->accumulate(op, d, s + k * inner, cnt);
    }
  });
}

}  // namespace

void reduceOp(int op, const float* x, float* out, const int64_t* shape, const uint8_t* reduced,
              int rank, float scale) {
  // merge adjacent dimensions of the same kind and drop size-1 ones
  std::vector<int64_t> dims;
  std::vector<uint8_t> red;
  int64_t total = 1;
  for (int d = 0; d < rank; d++) {
    total *= shape[d];
    if (shape[d] == 1) continue;
    if (!dims.empty() && red.back() == reduced[d]) dims.back() *= shape[d];
    else { dims.push_back(shape[d]); red.push_back(reduced[d]); }
  }
  const float* cur = x;
  std::vector<float> bufs[2];
  int which = 0;
  int64_t curSize = total;
  for (;;) {
    int g = -1, nred = 0;
    for (size_t d = 0; d < dims.size(); d++)
      if (red[d]) { g = (int)d; nred++; }
    if (g < 0) break;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < g; d++) outer *= dims[(size_t)d];
    for (size_t d = (size_t)g + 1; d < dims.size(); d++) inner *= dims[d];
    float* dst;
    if (nred == 1) dst = out;
    else { bufs[which].resize((size_t)(outer * inner)); dst = bufs[which].data(); which ^= 1; }
    reduceMiddle(op, cur, dst, outer, dims[(size_t)g], inner);
    cur = dst;
    curSize = outer * inner;
    dims.erase(dims.begin() + g);
    red.erase(red.begin() + g);
    // re-merge the kept neighbours that are now adjacent
    if (g > 0 && (size_t)g < dims.size() && !red[(size_t)g - 1] && !red[(size_t)g]) {
      dims[(size_t)g - 1] *= dims[(size_t)g];
      dims.erase(dims.begin() + g);
      red.erase(red.begin() + g);
    }
  }
  if (cur != out) memcpy(out, cur, (size_t)curSize * 4);
  if (scale != 1.0f)
    for (int64_t i = 0; i < curSize; i++) out[i] *= scale;
}

void softmaxRows(const float* x, float* y, int64_t rows, int64_t cols, bool logMode, float scale) {
  const KernelTable* kt = kernels();
  parallel(rows, rowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) kt->softmaxRow(x + r * cols, y + r * cols, cols, logMode, scale);
  });
}

void softmaxGradRows(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                     float scale) {
  const KernelTable* kt = kernels();
  parallel(rows, rowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      kt->softmaxGradRow(y + r * cols, dy + r * cols, dx + r * cols, cols, scale);
  });
}

void layerNormRows(const float* x, const float* g, const float* b, float* y, float* mean,
                   float* rstd, int64_t rows, int64_t cols, float eps) {
  const KernelTable* kt = kernels();
  parallel(rows, rowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      kt->layerNormRow(x + r * cols, g, b, y + r * cols, cols, eps, mean + r, rstd + r);
  });
}

void layerNormGradRows(const float* x, const float* dy, const float* g, const float* mean,
                       const float* rstd, float* dx, float* dg, float* db, int64_t rows,
                       int64_t cols) {
  const KernelTable* kt = kernels();
  const int64_t t = numThreads();
  // per-task partial sums of dgamma/dbeta, added up afterwards in a fixed order
  std::vector<float> pg((size_t)(t * cols), 0.0f), pb((size_t)(t * cols), 0.0f);
  parallel(t, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t r0 = rows * p / t, r1 = rows * (p + 1) / t;
      float* mg = dg ? pg.data() + p * cols : nullptr;
      float* mb = db ? pb.data() + p * cols : nullptr;
      for (int64_t r = r0; r < r1; r++)
        kt->layerNormGradRow(x + r * cols, dy + r * cols, g, mean[r], rstd[r], dx + r * cols, mg,
                             mb, cols);
    }
  });
  for (int64_t p = 0; p < t; p++) {
    if (dg) { if (p == 0) memset(dg, 0, (size_t)cols * 4); kt->axpy(1.0f, pg.data() + p * cols, dg, cols); }
    if (db) { if (p == 0) memset(db, 0, (size_t)cols * 4); kt->axpy(1.0f, pb.data() + p * cols, db, cols); }
  }
}

void im2col(const float* x, float* cols, const ConvGeom& g) {
  const int64_t rows = g.n * g.oh * g.ow, width = g.kh * g.kw * g.c;
  parallel(rows, rowGrain(width), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / (g.oh * g.ow), oy = (r / g.ow) % g.oh, ox = r % g.ow;
      float* dst = cols + r * width;
      for (int64_t ky = 0; ky < g.kh; ky++) {
        const int64_t iy = oy * g.sh - g.padT + ky * g.dh;
        for (int64_t kx = 0; kx < g.kw; kx++, dst += g.c) {
          const int64_t ix = ox * g.sw - g.padL + kx * g.dw;
          if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) memset(dst, 0, (size_t)g.c * 4);
          else memcpy(dst, x + ((b * g.h + iy) * g.w + ix) * g.c, (size_t)g.c * 4);
        }
      }
    }
  });
}

void col2im(const float* cols, float* dx, const ConvGeom& g) {
  const KernelTable* kt = kernels();
  const int64_t width = g.kh * g.kw * g.c;
  // images are independent; within one image the patches overlap, so it stays serial
  parallel(g.n, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++)
      for (int64_t oy = 0; oy < g.oh; oy++)
        for (int64_t ox = 0; ox < g.ow; ox++) {
          const float* src = cols + ((b * g.oh + oy) * g.ow + ox) * width;
          for (int64_t ky = 0; ky < g.kh; ky++) {
            const int64_t iy = oy * g.sh - g.padT + ky * g.dh;
            for (int64_t kx = 0; kx < g.kw; kx++, src += g.c) {
              const int64_t ix = ox * g.sw - g.padL + kx * g.dw;
              if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
              kt->axpy(1.0f, src, dx + ((b * g.h + iy) * g.w + ix) * g.c, g.c);
            }
          }
        }
  });
}

int64_t gatherRows(const float* x, const int32_t* idx, float* out, int64_t outer, int64_t n,
                   int64_t inner, int64_t m) {
  int64_t bad = 0;
  for (int64_t j = 0; j < m; j++) bad += idx[j] < 0 || idx[j] >= n;
  parallel(outer * m, rowGrain(inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t o = r / m, j = r % m;
      float* d = out + r * inner;
      const int32_t k = idx[j];
      if (k < 0 || k >= n) memset(d, 0, (size_t)inner * 4);
      else memcpy(d, x + (o * n + k) * inner, (size_t)inner * 4);
    }
  });
  return bad;
}

void segmentSum(const float* x, const int32_t* ids, float* out, int64_t m, int64_t inner,
                int64_t numSegments) {
  const KernelTable* kt = kernels();
  // split the columns, never the rows: two rows may land in the same segment
  const int64_t t = numThreads();
  const int64_t pieces = inner >= 256 * t && m * inner >= kGrain ? t : 1;
  parallel(pieces, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t c0 = inner * p / pieces, c1 = inner * (p + 1) / pieces;
      for (int64_t j = 0; j < m; j++) {
        const int32_t s = ids[j];
        if (s < 0 || s >= numSegments) continue;
        kt->axpy(1.0f, x + j * inner + c0, out + s * inner + c0, c1 - c0);
      }
    }
  });
}

}  // namespace lc

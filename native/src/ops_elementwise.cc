// Element-wise operations and strided copies (transpose, slice, concat, pad all become one).
#include <string.h>

#include "common.h"
#include "ops.h"
#include "threadpool.h"

namespace lc {
namespace {

// Below this many elements a parallel loop costs more than it saves.
constexpr int64_t kGrain = 16384;

// Splits `rows` rows of `len` elements into tasks: whole rows when there are enough of them,
// otherwise pieces of rows, so that both [1e6] and [1e4, 100] spread over the threads.
struct RowSplit {
  int64_t rows, len, piece, pieces;
  RowSplit(int64_t r, int64_t l) : rows(r), len(l) {
    const int64_t t = numThreads();
    piece = (r >= t || l <= kGrain) ? l : (l + t - 1) / t;
    if (piece < 1) piece = 1;
    pieces = (l + piece - 1) / piece;
    if (pieces < 1) pieces = 1;
  }
  int64_t tasks() const { return rows * pieces; }
  int64_t grain() const {
    const int64_t g = kGrain / (piece > 0 ? piece : 1);
    return g < 1 ? 1 : g;
  }
};

// Offsets of row `r` (the multi-index over all but the last dimension) for up to three strides.
inline void rowOffsets(int64_t r, const int64_t* shape, int rank, const int64_t* s0,
                       const int64_t* s1, int64_t* o0, int64_t* o1) {
  int64_t a = 0, b = 0;
  for (int d = rank - 2; d >= 0; d--) {
    const int64_t i = r % shape[d];
    r /= shape[d];
    a += i * s0[d];
    if (s1) b += i * s1[d];
  }
  *o0 = a;
  *o1 = b;
}

}  // namespace

void unaryOp(int op, const float* x, float* y, int64_t n, float alpha) {
  const KernelTable* kt = kernels();
  parallel(n, kGrain, [&](int64_t b, int64_t e) { kt->unary(op, x + b, y + b, e - b, alpha); });
}

void binaryOp(int op, const float* a, const float* b, float* out, const int64_t* shape,
              const int64_t* aStrides, const int64_t* bStrides, int rank) {
  const KernelTable* kt = kernels();
  if (rank == 0) return kt->binary(op, 0, a, b, out, 1);
  const int64_t len = shape[rank - 1];
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= shape[d];
  if (rows * len == 0) return;
  const int64_t sa = aStrides[rank - 1], sb = bStrides[rank - 1];
  // inner strides are 0 or 1 after the TS side's simplification; a length-1 row is mode 0
  const int mode = len == 1 ? 0 : (sa != 0 && sb != 0) ? 0 : (sb == 0 ? 1 : 2);
  RowSplit rs(rows, len);
  parallel(rs.tasks(), rs.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r = t / rs.pieces, p0 = (t % rs.pieces) * rs.piece;
      const int64_t cnt = len - p0 < rs.piece ? len - p0 : rs.piece;
      int64_t oa, ob;
      rowOffsets(r, shape, rank, aStrides, bStrides, &oa, &ob);
      const float* pa = a + oa + (mode == 2 ? 0 : p0);
      const float* pb = b + ob + (mode == 1 ? 0 : p0);
      kt->binary(op, mode, pa, pb, out + r * len + p0, cnt);
    }
  });
}

void copyStrided(const float* src, const int64_t* srcStrides, float* dst,
                 const int64_t* dstStrides, const int64_t* shape, int rank) {
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= shape[d];
  if (total == 0) return;
  const int last = rank - 1;
  // A transpose that moves the source's contiguous dimension away from the end: copy 32x32
  // tiles so that both the reads and the writes stay within a few cache lines.
  int p = -1;
  if (srcStrides[last] != 1)
    for (int d = 0; d < last; d++)
      if (srcStrides[d] == 1 && shape[d] > 1) p = d;
  if (p >= 0 && shape[last] >= 8) {
    int64_t outer = 1;
    for (int d = 0; d < last; d++)
      if (d != p) outer *= shape[d];
    const int64_t np = shape[p], nl = shape[last];
    const int64_t tilesP = (np + 31) / 32, tilesL = (nl + 31) / 32;
    parallel(outer * tilesP, 4, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        int64_t o = t / tilesP, so = 0, doff = 0;
        const int64_t ip0 = (t % tilesP) * 32;
        for (int d = last - 1; d >= 0; d--) {
          if (d == p) continue;
          const int64_t i = o % shape[d];
          o /= shape[d];
          so += i * srcStrides[d];
          doff += i * dstStrides[d];
        }
        const int64_t ip1 = ip0 + 32 < np ? ip0 + 32 : np;
        for (int64_t tl = 0; tl < tilesL; tl++) {
          const int64_t il0 = tl * 32, il1 = il0 + 32 < nl ? il0 + 32 : nl;
          for (int64_t ip = ip0; ip < ip1; ip++) {
            const float* s = src + so + ip * srcStrides[p];
            float* dd = dst + doff + ip * dstStrides[p];
            for (int64_t il = il0; il < il1; il++) dd[il * dstStrides[last]] = s[il * srcStrides[last]];
          }
        }
      }
    });
    return;
  }
  const int64_t len = shape[last], ss = srcStrides[last], ds = dstStrides[last];
  RowSplit rs(total / len, len);
  parallel(rs.tasks(), rs.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r = t / rs.pieces, p0 = (t % rs.pieces) * rs.piece;
      const int64_t cnt = len - p0 < rs.piece ? len - p0 : rs.piece;
      int64_t so, doff;
      rowOffsets(r, shape, rank, srcStrides, dstStrides, &so, &doff);
      const float* s = src + so + p0 * ss;
      float* d = dst + doff + p0 * ds;
      if (ss == 1 && ds == 1) {
        memcpy(d, s, (size_t)cnt * 4);
      } else if (ss == 0) {
        const float v = s[0];
        for (int64_t i = 0; i < cnt; i++) d[i * ds] = v;
      } else {
        for (int64_t i = 0; i < cnt; i++) d[i * ds] = s[i * ss];
      }
    }
  });
}

void geluOp(int kind, const float* x, float* y, int64_t n) {
  const KernelTable* kt = kernels();
  parallel(n, kGrain, [&](int64_t b, int64_t e) { kt->gelu(kind, x + b, y + b, e - b); });
}

void geluGradOp(int kind, const float* x, const float* dy, float* dx, int64_t n) {
  const KernelTable* kt = kernels();
  parallel(n, kGrain,
           [&](int64_t b, int64_t e) { kt->geluGrad(kind, x + b, dy + b, dx + b, e - b); });
}

void adamwOp(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
             float beta2, float eps, float weightDecay, float bc1, float bc2) {
  const KernelTable* kt = kernels();
  const AdamParams hp{lr, beta1, beta2, eps, weightDecay, bc1, bc2};
  parallel(n, kGrain,
           [&](int64_t b, int64_t e) { kt->adamw(p + b, g + b, m + b, v + b, e - b, &hp); });
}

}  // namespace lc

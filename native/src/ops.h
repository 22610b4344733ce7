// Whole-tensor operations built from the KernelTable loops and the thread pool. Shapes arrive
// already simplified by the TypeScript side (adjacent dimensions merged, broadcast dimensions
// given stride 0), so every function here works on a small rank (<= kMaxRank).
#pragma once
#include <stdint.h>

namespace lc {

constexpr int kMaxRank = 12;

void unaryOp(int op, const float* x, float* y, int64_t n, float alpha);

/** out[idx] = a[idx . aStrides] op b[idx . bStrides] over the dense output `shape`. */
void binaryOp(int op, const float* a, const float* b, float* out, const int64_t* shape,
              const int64_t* aStrides, const int64_t* bStrides, int rank);

/** dst[dstOff + idx . dstStrides] = src[srcOff + idx . srcStrides] for every idx < shape. */
void copyStrided(const float* src, const int64_t* srcStrides, float* dst,
                 const int64_t* dstStrides, const int64_t* shape, int rank);

/**
 * Reduce a dense tensor over the dimensions flagged in `reduced` (op: ReduceOp), then scale
 * (1/count for a mean). `out` receives the kept dimensions in order.
 */
void reduceOp(int op, const float* x, float* out, const int64_t* shape, const uint8_t* reduced,
              int rank, float scale);

void softmaxRows(const float* x, float* y, int64_t rows, int64_t cols, bool logMode, float scale);
void softmaxGradRows(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                     float scale);
void layerNormRows(const float* x, const float* g, const float* b, float* y, float* mean,
                   float* rstd, int64_t rows, int64_t cols, float eps);
void layerNormGradRows(const float* x, const float* dy, const float* g, const float* mean,
                       const float* rstd, float* dx, float* dg, float* db, int64_t rows,
                       int64_t cols);
void geluOp(int kind, const float* x, float* y, int64_t n);
void geluGradOp(int kind, const float* x, const float* dy, float* dx, int64_t n);
void adamwOp(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
             float beta2, float eps, float weightDecay, float bc1, float bc2);

/**
 * Training-mode batch normalisation of `rows` x `cols` channels-last data (statistics per
 * column, over the rows): mean, biased variance, y = (x - mean) / sqrt(var + eps) * g + b
 * (g, b may be null). Partial sums are per thread, combined in a fixed order.
 */
void batchNormForward(const float* x, const float* g, const float* b, float* y, float* mean,
                      float* var, int64_t rows, int64_t cols, float eps);
/** Its gradient: dx, and dg = sum(dy * xhat), db = sum(dy) (either may be null). */
void batchNormBackward(const float* x, const float* dy, const float* g, const float* mean,
                       const float* var, float* dx, float* dg, float* db, int64_t rows,
                       int64_t cols, float eps);

/** Convolution geometry (NHWC input, [kh, kw, cin, cout] filter), as tfjs' Conv2DInfo. */
struct ConvGeom {
  int64_t n, h, w, c, kh, kw, sh, sw, dh, dw, padT, padL, oh, ow;
};
/** cols[(b*oh+y)*ow+x, (ky*kw+kx)*c + ci] = x[b, y*sh-padT+ky*dh, x*sw-padL+kx*dw, ci] (0 outside). */
void im2col(const float* x, float* cols, const ConvGeom& g);
/** The adjoint of im2col: dx (zeroed by the caller) += scattered cols. */
void col2im(const float* cols, float* dx, const ConvGeom& g);

/**
 * 2-D pooling of NHWC images with tfjs' semantics (geometry as ConvGeom, filter [kh, kw]):
 * avg (mode 0) divides by the in-bounds pixel count; max (mode 1) keeps the first strictly
 * largest value, starting from -inf (so NaNs are skipped, as tfjs' cpu kernel does).
 */
void pool2d(const float* x, float* out, const ConvGeom& g, int mode);
/**
 * Gradient of pool2d: avg spreads dy * `avgScale` over each window's in-bounds pixels (tfjs
 * uses 1/(kh*kw) whatever the padding); max routes dy to the position pool2d picked in x.
 * dx is overwritten.
 */
void pool2dGrad(const float* dy, const float* x, float* dx, const ConvGeom& g, int mode,
                float avgScale);

/** out[o, j, i] = x[o, idx[j], i]; returns how many indices were out of range (rows zeroed). */
int64_t gatherRows(const float* x, const int32_t* idx, float* out, int64_t outer, int64_t n,
                   int64_t inner, int64_t m);
/** out[s, i] (zeroed by the caller) += x[j, i] for ids[j] == s; ids outside [0, S) are dropped. */
void segmentSum(const float* x, const int32_t* ids, float* out, int64_t m, int64_t inner,
                int64_t numSegments);

}  // namespace lc

// Shared declarations of the lightclip native addon.
//
// The hot inner loops live in kernels_impl.h, which is compiled three times (isa_base.cc,
// isa_avx2.cc, isa_avx512.cc), each time with a different `#pragma GCC target`; the driver
// code (threading, blocking, broadcasting, N-API) is compiled for the x86-64 baseline only
// and calls the loops through the KernelTable chosen at run time. That is what keeps the
// addon from executing an AVX2 instruction on a CPU without AVX2.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace lc {

/** Unary element-wise operations (codes shared with core/native/ops.ts). */
enum UnaryOp : int {
  U_EXP = 0, U_LOG, U_SQRT, U_RSQRT, U_SQUARE, U_SIGMOID, U_TANH, U_ERF, U_RELU, U_NEG,
  U_ABS, U_RELU6, U_RECIPROCAL, U_STEP, U_LOG1P, U_SOFTPLUS, U_ELU, U_EXPM1,
  U_COUNT
};

/** Binary element-wise operations (codes shared with core/native/ops.ts). */
enum BinaryOp : int {
  B_ADD = 0, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_SQDIFF,
  B_COUNT
};

/** Reductions. */
enum ReduceOp : int { R_SUM = 0, R_MAX, R_MIN, R_PROD };

/** Fused activation codes for GELU-family kernels. */
enum GeluKind : int { G_GELU_ERF = 0, G_QUICK = 1, G_GELU_TANH = 2 };

/** AdamW hyper-parameters, with the bias corrections already folded in by the caller. */
struct AdamParams {
  float lr, beta1, beta2, eps, weightDecay, bc1, bc2;
};

/**
 * Inner loops compiled for one instruction set. Every pointer argument refers to contiguous
 * float32 memory; the driver splits work into ranges and hands each range to one of these.
 */
struct KernelTable {
  const char* name;
  int mr, nr;  // GEMM micro-tile: MR rows by NR columns
  // C[mr x nr] (ldc) = alpha * Apacked(k x MR) * Bpacked(k x NR) + beta * C
  void (*ukernel)(int64_t k, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                  float beta, int mr, int nr);
  void (*unary)(int op, const float* x, float* y, int64_t n, float alpha);
  // y = a op b with a and b both vectors (mode 0), a vector & b scalar (1), a scalar & b vector (2)
  void (*binary)(int op, int mode, const float* a, const float* b, float* y, int64_t n);
  float (*reduce)(int op, const float* x, int64_t n);
  // acc[i] = acc[i] op x[i]
  void (*accumulate)(int op, float* acc, const float* x, int64_t n);
  void (*softmaxRow)(const float* x, float* y, int64_t n, int logMode, float scale);
  void (*softmaxGradRow)(const float* y, const float* dy, float* dx, int64_t n, float scale);
  void (*layerNormRow)(const float* x, const float* g, const float* b, float* y, int64_t n,
                       float eps, float* mean, float* rstd);
  // dx for one row; dg/db accumulated into the caller's (per-thread) partial sums
  void (*layerNormGradRow)(const float* x, const float* dy, const float* g, float mean,
                           float rstd, float* dx, float* dg, float* db, int64_t n);
  void (*gelu)(int kind, const float* x, float* y, int64_t n);
  void (*geluGrad)(int kind, const float* x, const float* dy, float* dx, int64_t n);
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, const AdamParams* hp);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a*x
  // Batch normalisation over channels-last rows, all per-channel vectors of length n:
  // acc += (x - mean)^2
  void (*bnAccSqDiff)(float* acc, const float* x, const float* mean, int64_t n);
  // sdy += dy; sdyx += dy * (x - mean)
  void (*bnGradAcc)(const float* x, const float* dy, const float* mean, float* sdy, float* sdyx,
                    int64_t n);
  // y = x * scale + shift
  void (*scaleShift)(const float* x, const float* scale, const float* shift, float* y, int64_t n);
  // dx = c * (dy - mdy - (x - mean) * k)
  void (*bnGradApply)(const float* x, const float* dy, const float* mean, const float* c,
                      const float* mdy, const float* k, float* dx, int64_t n);
};

extern const KernelTable kBaseTable;
extern const KernelTable kAvx2Table;
extern const KernelTable kAvx512Table;

/** The table in use (chosen once by selectIsa, overridable with LIGHTCLIP_ISA). */
const KernelTable* kernels();
/** Pick the best table the CPU supports, capped by `request` ("base", "avx2", "avx512" or ""). */
const char* selectIsa(const char* request);

}  // namespace lc

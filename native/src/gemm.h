// Single-precision GEMM: the BLAS when one is loaded and active, otherwise the built-in
// blocked kernel, multi-threaded over the pool; and a strided batched GEMM for attention.
#pragma once
#include <stdint.h>

namespace lc {

/** Row-major C[m,n] = alpha*op(A)*op(B) + beta*C; lda/ldb/ldc are row strides. */
void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

/** The built-in GEMM only (no BLAS), on `threads` threads of the pool (1 = the caller only). */
void sgemmBuiltin(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, int threads);

/**
 * Batched GEMM: for i in [0, batch): C_i = alpha*op(A + aOff[i]) * op(B + bOff[i]) + beta*C_i
 * with C_i = C + i*m*n, each operand densely packed (lda = cols of the stored matrix).
 * Many small problems are split over the threads (one whole GEMM per task); few large ones
 * run one after another, each multi-threaded.
 */
void sgemmBatched(int64_t batch, bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  float alpha, const float* a, const int64_t* aOff, const float* b,
                  const int64_t* bOff, float beta, float* c);

}  // namespace lc

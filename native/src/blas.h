// A CBLAS library found at run time with dlopen, so that building the addon needs no BLAS
// headers or libraries and a machine without one still gets the built-in GEMM.
#pragma once
#include <stdint.h>

namespace lc {

/**
 * Load a BLAS. `spec`: "" or "auto" (OpenBLAS, then MKL, then BLIS, then the reference
 * libblas.so.3 is *not* tried: it is slower than the built-in GEMM), "openblas", "mkl",
 * "blis", a path or soname, or "none" to use the built-in GEMM only. Returns the loaded
 * library's name, or nullptr; `why` receives the reason when nothing was loaded.
 */
const char* loadBlas(const char* spec, const char** why);
/** The loaded library ("openblas", "mkl", "blis" or the soname), or nullptr. */
const char* blasName();
/** Whether GEMMs currently go to the BLAS (false when none is loaded or it is switched off). */
bool blasActive();
/** Switch GEMM between the BLAS (if loaded) and the built-in kernel, for tests and benchmarks. */
void setBlasActive(bool on);
/** Set the BLAS library's own thread count. */
void setBlasThreads(int n);

/** Row-major C = alpha*op(A)*op(B) + beta*C through cblas_sgemm. */
void blasSgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);

}  // namespace lc

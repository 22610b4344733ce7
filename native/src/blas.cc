#include "blas.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

namespace lc {
namespace {

typedef void (*SgemmFn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                        const float* a, int lda, const float* b, int ldb, float beta, float* c,
                        int ldc);
typedef void (*SetThreadsFn)(int);
typedef void (*BliSetThreadsFn)(long);

void* gLib = nullptr;
SgemmFn gSgemm = nullptr;
SetThreadsFn gSetThreads = nullptr;       // openblas_set_num_threads / MKL_Set_Num_Threads
BliSetThreadsFn gBliSetThreads = nullptr;  // bli_thread_set_num_threads (dim_t = long)
bool gActive = false;
char gName[256] = {0};

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

const char* const kOpenBlas[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp-r0.so",
                                 "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
                                 nullptr};
const char* const kMkl[] = {"libmkl_rt.so.2", "libmkl_rt.so", nullptr};
const char* const kBlis[] = {"libblis.so.4", "libblis.so.3", "libblis.so", nullptr};

bool tryOpen(const char* soname, const char* label) {
  // RTLD_LOCAL: the BLAS's symbols must not interpose on anything else in the process
  void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) return false;
  SgemmFn f = (SgemmFn)dlsym(h, "cblas_sgemm");
  if (!f) {
    dlclose(h);
    return false;
  }
  gLib = h;
  gSgemm = f;
  gSetThreads = (SetThreadsFn)dlsym(h, "openblas_set_num_threads");
  if (!gSetThreads) gSetThreads = (SetThreadsFn)dlsym(h, "MKL_Set_Num_Threads");
  gBliSetThreads = (BliSetThreadsFn)dlsym(h, "bli_thread_set_num_threads");
  snprintf(gName, sizeof gName, "%s", label ? label : soname);
  gActive = true;
  return true;
}

bool tryList(const char* const* names, const char* label) {
  for (int i = 0; names[i]; i++)
    if (tryOpen(names[i], label)) return true;
  return false;
}

}  // namespace

const char* loadBlas(const char* spec, const char** why) {
  if (gLib) return gName;
  *why = nullptr;
  if (!spec || !*spec || strcmp(spec, "auto") == 0) {
    if (tryList(kOpenBlas, "openblas") || tryList(kMkl, "mkl") || tryList(kBlis, "blis"))
      return gName;
    *why = "no OpenBLAS, MKL or BLIS library found (apt-get install libopenblas0)";
    return nullptr;
  }
  if (strcmp(spec, "none") == 0 || strcmp(spec, "builtin") == 0) {
    *why = "disabled by LIGHTCLIP_BLAS";
    return nullptr;
  }
  bool ok = strcmp(spec, "openblas") == 0 ? tryList(kOpenBlas, "openblas")
            : strcmp(spec, "mkl") == 0    ? tryList(kMkl, "mkl")
            : strcmp(spec, "blis") == 0   ? tryList(kBlis, "blis")
                                          : tryOpen(spec, nullptr);
  if (!ok) *why = "the BLAS named by LIGHTCLIP_BLAS could not be loaded or has no cblas_sgemm";
  return ok ? gName : nullptr;
}

const char* blasName() { return gLib ? gName : nullptr; }
bool blasActive() { return gActive && gSgemm; }
void setBlasActive(bool on) { gActive = on && gSgemm; }

void setBlasThreads(int n) {
  if (gSetThreads) gSetThreads(n);
  if (gBliSetThreads) gBliSetThreads((long)n);
}

void blasSgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  gSgemm(kRowMajor, transA ? kTrans : kNoTrans, transB ? kTrans : kNoTrans, (int)m, (int)n,
         (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

}  // namespace lc

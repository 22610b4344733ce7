// Run-time choice of the KernelTable: the best instruction set the CPU (and OS) supports,
// optionally capped by LIGHTCLIP_ISA=base|avx2|avx512 (used by the tests to exercise the
// portable path on an AVX2 machine).
#include <string.h>

#include "common.h"

namespace lc {

static const KernelTable* gTable = nullptr;

static int rank(const char* name) {
  if (!name || !*name) return 99;
  if (strcmp(name, "base") == 0) return 0;
  if (strcmp(name, "avx2") == 0) return 1;
  return 2;
}

const char* selectIsa(const char* request) {
  const int cap = rank(request);
  const KernelTable* t = &kBaseTable;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks (xgetbv) that the OS saves the wide registers
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  if (avx512 && cap >= 2) t = &kAvx512Table;
  else if (avx2 && cap >= 1) t = &kAvx2Table;
#endif
  gTable = t;
  return t->name;
}

const KernelTable* kernels() {
  if (!gTable) selectIsa(nullptr);
  return gTable;
}

}  // namespace lc

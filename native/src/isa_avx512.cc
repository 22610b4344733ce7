// AVX-512F loops (Skylake-X and later, Zen 4). Only called when the CPU reports AVX-512F.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx2,fma")
#define LC_VL 16
#define LC_MR 12
#include "kernels_impl.h"
namespace lc { extern const KernelTable kAvx512Table = LC_TABLE_INIT("avx512"); }
#else
#include "common.h"
namespace lc { extern const KernelTable kAvx512Table = kBaseTable; }
#endif

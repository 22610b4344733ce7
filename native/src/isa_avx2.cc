// AVX2 + FMA loops (Haswell and later, Zen). Only called when the CPU reports both.
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#define LC_VL 8
#define LC_MR 6
#include "kernels_impl.h"
namespace lc { extern const KernelTable kAvx2Table = LC_TABLE_INIT("avx2"); }
#else
#include "common.h"
namespace lc { extern const KernelTable kAvx2Table = kBaseTable; }
#endif

// The portable baseline: plain x86-64 (SSE2) on x86, whatever the compiler defaults to elsewhere.
#define LC_VL 4
#define LC_MR 6
#include "kernels_impl.h"
namespace lc { extern const KernelTable kBaseTable = LC_TABLE_INIT("base"); }

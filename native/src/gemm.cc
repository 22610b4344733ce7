// The built-in GEMM follows the BLIS/Goto layout: B is packed into KC x NR column panels and A
// into MC x KC row panels of MR-row strips, and the ISA micro-kernel (kernels_impl.h) computes
// MR x NR tiles from them. Parallelism splits the output into one column (or row) slab per
// thread, each running the whole blocked algorithm; with few cores that beats sharing packed
// panels, and it needs no synchronisation.
#include "gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "common.h"
#include "threadpool.h"

namespace lc {
namespace {

// Cache blocking: a KC x NR panel of B stays in L1 across a column of micro-tiles, the MC x KC
// block of A in L2. LIGHTCLIP_GEMM_BLOCKS="kc,mc,nc" overrides them (for tuning on new CPUs).
int64_t KC = 256;
int64_t MC = 144;   // multiple of 6 and 12 (the MRs of the tables)
int64_t NC = 2048;

struct BlockInit {
  BlockInit() {
    const char* e = getenv("LIGHTCLIP_GEMM_BLOCKS");
    long kc = 0, mc = 0, nc = 0;
    if (e && sscanf(e, "%ld,%ld,%ld", &kc, &mc, &nc) == 3 && kc > 0 && mc > 0 && nc > 0) {
      KC = kc;
      MC = (mc + 11) / 12 * 12;
      NC = (nc + 31) / 32 * 32;
    }
  }
} gBlockInit;

// Packing buffers, one pair per thread, kept between calls.
struct PackBuffers {
  float* a = nullptr;
  float* b = nullptr;
  int64_t aCap = 0, bCap = 0;
  ~PackBuffers() { free(a); free(b); }
};
thread_local PackBuffers tBufs;

float* grow(float*& p, int64_t& cap, int64_t need) {
  if (need > cap) {
    free(p);
    p = (float*)aligned_alloc(64, (size_t)((need * 4 + 63) / 64 * 64));
    cap = need;
  }
  return p;
}

// A(i,k) = a[i*rs + k*cs]; packed as MR-row strips, each kc x MR, zero-padded.
void packA(const float* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc, int mr, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += mr) {
    const int64_t rows = mc - i0 < mr ? mc - i0 : mr;
    for (int64_t p = 0; p < kc; p++) {
      const float* src = a + i0 * rs + p * cs;
      for (int64_t r = 0; r < rows; r++) dst[r] = src[r * rs];
      for (int64_t r = rows; r < mr; r++) dst[r] = 0.0f;
      dst += mr;
    }
  }
}

// B(k,j) = b[k*rs + j*cs]; packed as NR-column strips, each kc x NR, zero-padded.
void packB(const float* b, int64_t rs, int64_t cs, int64_t kc, int64_t nc, int nr, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
    for (int64_t p = 0; p < kc; p++) {
      const float* src = b + p * rs + j0 * cs;
      if (cs == 1) {
        memcpy(dst, src, (size_t)cols * 4);
      } else {
        for (int64_t c = 0; c < cols; c++) dst[c] = src[c * cs];
      }
      for (int64_t c = cols; c < nr; c++) dst[c] = 0.0f;
      dst += nr;
    }
  }
}

void scaleC(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

// One thread's whole blocked GEMM on general strides.
void gemmSerial(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t ars,
                int64_t acs, const float* b, int64_t brs, int64_t bcs, float beta, float* c,
                int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scaleC(m, n, beta, c, ldc);
  const KernelTable* kt = kernels();
  const int mr = kt->mr, nr = kt->nr;
  const int64_t ncMax = n < NC ? (n + nr - 1) / nr * nr : NC;
  const int64_t kcMax = k < KC ? k : KC;
  const int64_t mcMax = m < MC ? (m + mr - 1) / mr * mr : MC;
  float* bp = grow(tBufs.b, tBufs.bCap, kcMax * ncMax);
  float* ap = grow(tBufs.a, tBufs.aCap, kcMax * mcMax);
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = n - jc < NC ? n - jc : NC;
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = k - pc < KC ? k - pc : KC;
      packB(b + pc * brs + jc * bcs, brs, bcs, kc, nc, nr, bp);
      const float betaEff = pc == 0 ? beta : 1.0f;
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = m - ic < MC ? m - ic : MC;
        packA(a + ic * ars + pc * acs, ars, acs, mc, kc, mr, ap);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int cols = (int)(nc - jr < nr ? nc - jr : nr);
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int rows = (int)(mc - ir < mr ? mc - ir : mr);
            kt->ukernel(kc, ap + ir * kc, bp + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, alpha,
                        betaEff, rows, cols);
          }
        }
      }
    }
  }
}

struct SlabJob {
  int64_t m, n, k, unit, parts;
  bool splitN;
  float alpha, beta;
  const float* a;
  int64_t ars, acs;
  const float* b;
  int64_t brs, bcs;
  float* c;
  int64_t ldc;
};

}  // namespace

void sgemmBuiltin(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, int threads) {
  const int64_t ars = transA ? 1 : lda, acs = transA ? lda : 1;
  const int64_t brs = transB ? 1 : ldb, bcs = transB ? ldb : 1;
  const KernelTable* kt = kernels();
  // below ~2 MFLOP a second thread costs more to wake than it saves
  if (threads > 1 && m * n * k < 1 << 20) threads = 1;
  if (threads <= 1) return gemmSerial(m, n, k, alpha, a, ars, acs, b, brs, bcs, beta, c, ldc);
  SlabJob j{m, n, k, 0, 0, n >= m, alpha, beta, a, ars, acs, b, brs, bcs, c, ldc};
  j.unit = j.splitN ? kt->nr : kt->mr;
  const int64_t units = ((j.splitN ? n : m) + j.unit - 1) / j.unit;
  // two slabs per thread, claimed dynamically, absorb a descheduled thread on a shared machine
  const int64_t want = 2 * (int64_t)threads;
  j.parts = units < want ? units : want;
  parallel(j.parts, 1, [&j, units](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t total = j.splitN ? j.n : j.m;
      const int64_t s = units * p / j.parts * j.unit;
      int64_t e = units * (p + 1) / j.parts * j.unit;
      if (e > total) e = total;
      if (e <= s) continue;
      if (j.splitN)
        gemmSerial(j.m, e - s, j.k, j.alpha, j.a, j.ars, j.acs, j.b + s * j.bcs, j.brs, j.bcs,
                   j.beta, j.c + s, j.ldc);
      else
        gemmSerial(e - s, j.n, j.k, j.alpha, j.a + s * j.ars, j.ars, j.acs, j.b, j.brs, j.bcs,
                   j.beta, j.c + s * j.ldc, j.ldc);
    }
  });
}

void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scaleC(m, n, beta, c, ldc);
  const int64_t lim = 0x7fffffff;
  if (blasActive() && m < lim && n < lim && k < lim && lda < lim && ldb < lim && ldc < lim)
    return blasSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  sgemmBuiltin(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, numThreads());
}

void sgemmBatched(int64_t batch, bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  float alpha, const float* a, const int64_t* aOff, const float* b,
                  const int64_t* bOff, float beta, float* c) {
  const int64_t lda = transA ? m : k, ldb = transB ? k : n;
  const int threads = numThreads();
  // Attention-sized problems: one whole GEMM per task, on the built-in kernel (a BLAS called
  // from several threads at once would start its own threads on top of ours).
  if (batch >= threads && threads > 1 && m * n * k <= (int64_t)1 << 24) {
    parallel(batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        sgemmBuiltin(transA, transB, m, n, k, alpha, a + aOff[i], lda, b + bOff[i], ldb, beta,
                     c + i * m * n, n, 1);
    });
    return;
  }
  for (int64_t i = 0; i < batch; i++)
    sgemm(transA, transB, m, n, k, alpha, a + aOff[i], lda, b + bOff[i], ldb, beta, c + i * m * n,
          n);
}

}  // namespace lc

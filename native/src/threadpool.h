// A small persistent thread pool shared by every native kernel (and sized together with the
// BLAS library's own threads, so that the two never oversubscribe the cores).
#pragma once
#include <stdint.h>

namespace lc {

/** A range task: process items [begin, end). */
typedef void (*RangeFn)(void* ctx, int64_t begin, int64_t end);

/** Number of threads parallel loops use (the caller counts as one). */
int numThreads();
/** Resize the pool (n >= 1). Not to be called from inside a parallel region. */
void setPoolThreads(int n);

/**
 * Run fn over [0, n) split into at most 3*numThreads() contiguous chunks of at least `grain`
 * items, which the threads (the caller included) claim one at a time. Nested calls run
 * serially. A task that must run exactly once per thread passes n = numThreads(), grain 1.
 */
void parallelFor(int64_t n, int64_t grain, RangeFn fn, void* ctx);

/** Lambda front-end for parallelFor (the lambda must outlive the call, which it does). */
template <class F>
inline void parallel(int64_t n, int64_t grain, F&& f) {
  parallelFor(n, grain, [](void* c, int64_t b, int64_t e) { (*static_cast<F*>(c))(b, e); }, &f);
}

}  // namespace lc

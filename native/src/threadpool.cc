// Persistent worker threads with a short spin before sleeping: kernels arrive back to back
// during a training step, and waking a thread from a condition variable costs tens of
// microseconds, more than many of the kernels themselves.
#include "threadpool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LC_PAUSE() _mm_pause()
#else
#define LC_PAUSE() std::this_thread::yield()
#endif

namespace lc {
namespace {

struct Job {
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  int64_t n = 0;
  int64_t chunks = 0;
};

// Claims carry the job's generation in their high half, so a worker that arrives late for a
// finished job can never take a chunk of the next one with the old job's function.
struct Pool {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<uint64_t> gen{0};
  std::atomic<uint64_t> ticket{0};
  std::atomic<int64_t> done{0};
  Job job;
  bool stop = false;
  std::vector<std::thread> workers;
};

Pool* gPool = nullptr;  // never freed: threads blocked at exit must not meet destructors
// One caller at a time (Node worker_threads could call in concurrently): others run serially.
std::atomic<bool> gBusy{false};
int gThreads = 1;
thread_local bool tInParallel = false;

inline void runChunk(const Job& j, int64_t c) {
  const int64_t b = j.n * c / j.chunks, e = j.n * (c + 1) / j.chunks;
  j.fn(j.ctx, b, e);
}

// Take and run chunks of job generation g until none is left.
void work(Pool* p, const Job& j, uint64_t g) {
  uint64_t t = p->ticket.load(std::memory_order_acquire);
  while ((t >> 32) == (g & 0xffffffffu) && (int64_t)(t & 0xffffffffu) < j.chunks) {
    if (p->ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) {
      runChunk(j, (int64_t)(t & 0xffffffffu));
      p->done.fetch_add(1, std::memory_order_acq_rel);
      t = p->ticket.load(std::memory_order_acquire);
    }
  }
}

void workerMain(Pool* p) {
  tInParallel = true;
  uint64_t seen = p->gen.load();
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    int spins = 0;
    while (p->gen.load(std::memory_order_acquire) == seen) {
      LC_PAUSE();
      if (++spins % 256 == 0 &&
          std::chrono::steady_clock::now() - start > std::chrono::microseconds(50)) {
        std::unique_lock<std::mutex> lk(p->mu);
        p->cv.wait(lk, [&] { return p->stop || p->gen.load() != seen; });
        break;
      }
    }
    Job j;
    uint64_t g;
    {
      std::lock_guard<std::mutex> lk(p->mu);
      if (p->stop) return;
      j = p->job;
      g = p->gen.load();
    }
    seen = g;
    work(p, j, g);
  }
}

void stopPool() {
  if (!gPool) return;
  {
    std::lock_guard<std::mutex> lk(gPool->mu);
    gPool->stop = true;
  }
  gPool->cv.notify_all();
  for (auto& t : gPool->workers) t.join();
  delete gPool;
  gPool = nullptr;
}

}  // namespace

int numThreads() { return gThreads; }

void setPoolThreads(int n) {
  if (n < 1) n = 1;
  if (n == gThreads && (n == 1 || gPool)) return;
  stopPool();
  gThreads = n;
  if (n == 1) return;
  gPool = new Pool();
  for (int i = 0; i < n - 1; i++) gPool->workers.emplace_back(workerMain, gPool);
}

void parallelFor(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  // Up to 3 chunks per thread, claimed dynamically: on a shared machine one thread is often
  // descheduled, and with exactly one chunk each the others would wait for it.
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks > 3 * (int64_t)gThreads) chunks = 3 * (int64_t)gThreads;
  bool idle = false;
  if (chunks <= 1 || !gPool || tInParallel || !gBusy.compare_exchange_strong(idle, true)) {
    fn(ctx, 0, n);
    return;
  }
  Pool* p = gPool;
  uint64_t g;
  {
    std::lock_guard<std::mutex> lk(p->mu);
    p->job = Job{fn, ctx, n, chunks};
    p->done.store(0);
    g = p->gen.load() + 1;
    p->ticket.store((g & 0xffffffffu) << 32, std::memory_order_release);
    p->gen.store(g, std::memory_order_release);
  }
  p->cv.notify_all();
  tInParallel = true;
  Job j{fn, ctx, n, chunks};
  work(p, j, g);
  tInParallel = false;
  while (p->done.load(std::memory_order_acquire) < chunks) LC_PAUSE();
  gBusy.store(false, std::memory_order_release);
}

}  // namespace lc

#include "lib/core/threadpool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define V4_CPU_RELAX() _mm_pause()
#else
#define V4_CPU_RELAX() std::this_thread::yield()
#endif

namespace v4 {
namespace {
// About 50 µs of spinning before a worker sleeps: long enough to catch the next op of a
// decode step, short enough not to burn a core between user requests.
constexpr int kSpinIterations = 20000;
}  // namespace

int ThreadPool::default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run(JobFn fn, void* ctx, int n) {
  n = std::clamp(n, 1, n_threads_);
  if (n == 1) {
    fn(ctx, 0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = fn;
    ctx_ = ctx;
    n_active_ = n;
    pending_.store(n - 1);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  fn(ctx, 0, n);
  // Spin while the others finish; yield if they take long (more threads than free
  // cores: a worker may be waiting for this very core).
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations / 10)
      V4_CPU_RELAX();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::worker(int ith) {
  uint64_t seen = 0;
  for (;;) {
    // Spin first, then sleep until the generation changes.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      if (spins % 64 == 63)
        std::this_thread::yield();
      else
        V4_CPU_RELAX();
      ++spins;
    }
    JobFn fn;
    void* ctx;
    int n;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (stop_.load()) return;
      fn = fn_;
      ctx = ctx_;
      n = n_active_;
    }
    if (ith < n) {
      fn(ctx, ith, n);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace v4

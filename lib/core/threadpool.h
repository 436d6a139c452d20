// A fixed set of worker threads that run one parallel job at a time. The caller's
// thread takes part as thread 0. Workers spin briefly after a job (decode issues jobs
// back to back) and then sleep, so an idle engine costs no CPU. Launching a job never
// allocates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace v4 {

// A job: called once per thread with (ith, nth); each call does its own share.
using JobFn = void (*)(void* ctx, int ith, int nth);

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads including the caller's
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn on n threads (1 <= n <= size()) and returns when all are done.
  void run(JobFn fn, void* ctx, int n);
  // Serialises users when one pool is shared by several contexts.
  std::mutex& user_mutex() { return user_mutex_; }

  static int default_thread_count();

 private:
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  JobFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int n_active_ = 0;
  std::mutex user_mutex_;
};

}  // namespace v4

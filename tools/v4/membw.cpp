#include "membw.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define V4_MEMBW_X86 1
#endif

namespace v4::cli {

namespace {

// Each kernel sums n bytes (a multiple of 256, 64-byte aligned) as 64-bit integers. Four
// independent accumulators keep several loads in flight; the sum is returned so that the
// loads cannot be removed.

uint64_t sum_scalar(const uint8_t* p, size_t n) {
  const auto* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (size_t i = 0; i < n / 8; i += 4) {
    a0 += q[i];
    a1 += q[i + 1];
    a2 += q[i + 2];
    a3 += q[i + 3];
  }
  return a0 + a1 + a2 + a3;
}

#ifdef V4_MEMBW_X86
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint8_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  // (A store, not _mm512_reduce_add_epi64, whose GCC 12 header trips -Wuninitialized.)
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  uint64_t s = 0;
  for (uint64_t x : lanes) s += x;
  return s;
}
#endif

using SumFn = uint64_t (*)(const uint8_t*, size_t);

SumFn pick(const char** name) {
#ifdef V4_MEMBW_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *name = "avx512";
    return sum_avx512;
  }
  if (__builtin_cpu_supports("avx2")) {
    *name = "avx2";
    return sum_avx2;
  }
#endif
  *name = "scalar";
  return sum_scalar;
}

struct Buffer {
  uint8_t* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t bytes) : n(bytes) {
    constexpr size_t kAlign = size_t{2} << 20;
    p = static_cast<uint8_t*>(std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign));
    if (!p) throw std::runtime_error("membw: cannot allocate " + std::to_string(bytes) + " bytes");
#ifdef MADV_HUGEPAGE
    (void)::madvise(p, bytes, MADV_HUGEPAGE);
#endif
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

volatile uint64_t g_sink;

}  // namespace

const char* membw_isa() {
  const char* name = "";
  (void)pick(&name);
  return name;
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

CpuSample cpu_sample() {
  CpuSample c;
  c.wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (tick <= 0) return c;
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return c;
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n < 8) return c;
  // user nice system idle iowait irq softirq steal
  c.all_busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
  f = std::fopen("/proc/self/stat", "r");
  if (!f) return c;
  char buf[1024];
  const size_t len = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[len] = '\0';
  // Fields after the command name (which may hold spaces, so start after the last ')'):
  // 3 state ... 14 utime 15 stime.
  const char* p = std::strrchr(buf, ')');
  if (!p) return c;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2)
    return c;
  c.self = static_cast<double>(utime + stime) / tick;
  c.n_cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  c.ok = c.n_cpus > 0;
  return c;
}

double others_cpu_fraction(const CpuSample& a, const CpuSample& b) {
  const double wall = b.wall - a.wall;
  if (!a.ok || !b.ok || wall < 0.5) return -1.0;
  const double others = (b.all_busy - a.all_busy) - (b.self - a.self);
  return std::clamp(others / (wall * a.n_cpus), 0.0, 1.0);
}

MembwResult measure_read_bandwidth(int n_threads, size_t bytes, int passes) {
  n_threads = std::max(1, n_threads);
  passes = std::max(1, passes);
  MembwResult r;
  const SumFn sum = pick(&r.isa);
  // Equal slices, each a multiple of 4 KiB (and so of every kernel's step).
  const size_t slice = std::max<size_t>(bytes / n_threads / 4096, 1) * 4096;
  bytes = slice * n_threads;
  Buffer buf(bytes);
  r.threads = n_threads;
  r.bytes = bytes;
  r.passes = passes;

  std::vector<double> seconds(static_cast<size_t>(passes), 0.0);
  std::barrier sync(n_threads);
  using Clock = std::chrono::steady_clock;
  auto worker = [&](int t) {
    uint8_t* mine = buf.p + static_cast<size_t>(t) * slice;
    // First touch by the thread that reads it; non-zero so no page is the shared zero page.
    std::memset(mine, 1 + t, slice);
    uint64_t acc = sum(mine, slice);  // warm-up pass (TLB, prefetchers)
    for (int pass = 0; pass < passes; ++pass) {
      sync.arrive_and_wait();
      const auto t0 = Clock::now();
      acc += sum(mine, slice);
      sync.arrive_and_wait();
      if (t == 0)
        seconds[static_cast<size_t>(pass)] =
            std::chrono::duration<double>(Clock::now() - t0).count();
    }
    g_sink = g_sink + acc;
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n_threads - 1));
  for (int t = 1; t < n_threads; ++t) threads.emplace_back(worker, t);
  worker(0);
  for (auto& th : threads) th.join();

  double best = 0, total = 0;
  for (double s : seconds) {
    const double gbs = s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0.0;
    best = std::max(best, gbs);
    total += gbs;
  }
  r.gbs = best;
  r.mean_gbs = total / passes;
  return r;
}

}  // namespace v4::cli

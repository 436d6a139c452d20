// Prefill matmul micro-benchmark: one TinyLlama-shaped matrix (2048x5632 and 5632x2048,
// regrouped Q4_0 or Q8_0 weights) times 512 activation columns, the matvec kernel
// (one weight row x up to 8 columns per call) against the GEMM kernel (register tiles),
// both in the same run, with 1 and 2 threads. Checks that both give the same bits.
//   gemm_bench [--type q4_0|q8_0|q4_k|q5_k|q6_k|f16|bf16|f32] [--layout x16|r4|plain] [--cols 512] [--reps 5]
// --layout picks the weight layout: x16 (the default where the loader uses it: AVX-512
// VNNI), r4 (128-value groups), plain (the file's blocks, what mmap'd weights use;
// --plain is the same).
// Prints one JSON object per measurement; GFLOP/s counts 2 k n m per matmul.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/gemm_kernels.h"
#include "lib/core/dtype.h"
#include "backends/cpu/weight_layout.h"
#include "lib/core/threadpool.h"

using namespace v4;

namespace {

struct Problem {
  int64_t k, n, m;
  std::vector<uint8_t> w;     // n rows, regrouped
  size_t w_stride;
  std::vector<float> x;       // m rows of k
  std::vector<uint8_t> xq;    // activations in the kernel's format
  size_t xq_stride;
  std::vector<float> out;     // m rows of n
  const cpu::DotKernel* dot;
  const cpu::GemmKernel* gemm;
};

// The backend's matvec loop (cpu_backend.cpp matmul_job) on a row range.
void matvec_job(void* ctx, int ith, int nth) {
  auto* p = static_cast<Problem*>(ctx);
  float res[cpu::kMaxCols];
  for (int64_t n = p->n * ith / nth; n < p->n * (ith + 1) / nth; ++n)
    for (int64_t j = 0; j < p->m; j += cpu::kMaxCols) {
      const int nc = static_cast<int>(std::min<int64_t>(cpu::kMaxCols, p->m - j));
      p->dot->dot(p->w.data() + n * p->w_stride, p->xq.data() + j * p->xq_stride, p->xq_stride, nc,
                  p->k, res);
      for (int c = 0; c < nc; ++c) p->out[(j + c) * p->n + n] = res[c];
    }
}

void gemm_job(void* ctx, int ith, int nth) {
  auto* p = static_cast<Problem*>(ctx);
  const int64_t units = (p->n + 15) / 16;
  cpu::GemmArgs a{p->w.data(), p->w_stride, p->xq.data(), p->xq_stride, p->out.data(),
                  static_cast<size_t>(p->n), p->k, p->m,
                  std::min(p->n, units * ith / nth * 16), std::min(p->n, units * (ith + 1) / nth * 16)};
  if (a.row_begin < a.row_end) p->gemm->gemm(a);
}

void quantize(Problem& p, bool gemm) {
  if (p.dot->act == cpu::ActFormat::f32) {  // float weights read the f32 rows as they are
    p.xq_stride = static_cast<size_t>(p.k) * sizeof(float);
    p.xq.resize(p.xq_stride * p.m);
    std::memcpy(p.xq.data(), p.x.data(), p.xq.size());
    return;
  }
  p.xq_stride = gemm ? p.gemm->act_row_bytes(p.k) : cpu::act_row_bytes(p.dot->act, p.k);
  p.xq.assign(p.xq_stride * p.m, 0);
  const auto fn = gemm ? p.gemm->quantize_row : cpu::act_quantizer(p.dot->act);
  for (int64_t r = 0; r < p.m; ++r) fn(p.x.data() + r * p.k, p.xq.data() + r * p.xq_stride, p.k);
}

struct Timing {
  double wall;  // seconds, best repetition
  double cpu;   // CPU seconds of the calling thread (thread 0), best repetition
};

// Thread 0's CPU time shows what a thread does while it runs, which a shared machine (other
// processes taking the cores) distorts less than the wall clock.
Timing best_time(ThreadPool& pool, JobFn fn, Problem& p, int threads, int reps) {
  Timing best{1e30, 1e30};
  for (int i = 0; i < reps; ++i) {
    timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(fn, &p, threads);
    const auto t1 = std::chrono::steady_clock::now();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    best.wall = std::min(best.wall, std::chrono::duration<double>(t1 - t0).count());
    best.cpu = std::min(best.cpu, (c1.tv_sec - c0.tv_sec) + 1e-9 * (c1.tv_nsec - c0.tv_nsec));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string type = "q4_0";
  int64_t cols = 512;
  int reps = 5;
  std::string layout = "x16";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--plain") layout = "plain";
    else if (a == "--layout" && has_value) layout = argv[++i];
    else if (a == "--type" && has_value) type = argv[++i];
    else if (a == "--cols" && has_value) cols = std::stoll(argv[++i]);
    else if (a == "--reps" && has_value) reps = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: gemm_bench [--type q4_0|q8_0|q4_k|q5_k|q6_k|f16|bf16|f32] [--layout x16|r4|plain] [--cols N] "
                   "[--reps N]\n");
      return 2;
    }
  }
  const DType* named = nullptr;
  static const std::pair<const char*, DType> kTypes[] = {{"q4_0", DType::Q4_0}, {"q8_0", DType::Q8_0},
                                                         {"f16", DType::F16}, {"bf16", DType::BF16},
                                                         {"f32", DType::F32}, {"q4_k", DType::Q4_K},
                                                         {"q5_k", DType::Q5_K}, {"q6_k", DType::Q6_K}};
  for (const auto& [name, t] : kTypes)
    if (type == name) named = &t;
  if (!named || (layout != "x16" && layout != "r4" && layout != "plain") ||
      cols < 1 || reps < 1) {
    std::fprintf(stderr, "gemm_bench: --type must be q4_0, q8_0, q4_k, q5_k, q6_k, f16, bf16 or f32, --layout x16, r4 or plain, "
                 "--cols and --reps positive\n");
    return 2;
  }
  const bool q8 = type == "q8_0";
  const DType file_type = *named;
  const bool blocks = file_type == DType::Q4_0 || file_type == DType::Q8_0;  // regroupable
  const DType run_type = layout == "plain" || !blocks ? file_type
                         : layout == "r4"  ? (q8 ? DType::Q8_0_R4 : DType::Q4_0_R4)
                                           : (q8 ? DType::Q8_0_X16 : DType::Q4_0_X16);
  Problem p{};
  p.dot = cpu::find_dot_kernel(run_type);
  p.gemm = cpu::find_gemm_kernel(run_type);
  if (!p.dot || !p.gemm) {
    std::fprintf(stderr, "gemm_bench: no %s GEMM kernel on this CPU (%s); nothing to compare\n",
                 type.c_str(), cpu::cpu_kernel_family());
    return 77;
  }
  ThreadPool pool(2);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const auto& [k, n] : {std::pair<int64_t, int64_t>{2048, 5632}, {5632, 2048}}) {
    p.k = k;
    p.n = n;
    p.m = cols;
    std::vector<float> wf(k * n);
    for (float& v : wf) v = dist(rng) * 0.02f;
    p.w_stride = row_bytes(file_type, k);
    p.w.assign(p.w_stride * n, 0);
    traits(file_type).from_f32(wf.data(), p.w.data(), k * n);
    if (run_type != file_type) cpu::convert_weight_layout(p.w.data(), file_type, run_type, k, n);
    p.x.resize(k * cols);
    for (float& v : p.x) v = dist(rng);
    p.out.assign(n * cols, 0.0f);
    const double flop = 2.0 * k * n * cols;
    for (int threads : {1, 2}) {
      quantize(p, false);
      const Timing t_old = best_time(pool, matvec_job, p, threads, reps);
      const std::vector<float> ref = p.out;
      quantize(p, true);
      const Timing t_new = best_time(pool, gemm_job, p, threads, reps);
      const bool same = std::memcmp(ref.data(), p.out.data(), ref.size() * 4) == 0;
      // *_thread_gflops: thread 0's share of the work (1 / threads) over its CPU time.
      std::printf("{\"test\":\"gemm\",\"type\":\"%s%s\",\"k\":%lld,\"n\":%lld,\"cols\":%lld,"
                  "\"threads\":%d,\"matvec_gflops\":%.1f,\"gemm_gflops\":%.1f,\"speedup\":%.2f,"
                  "\"matvec_thread_gflops\":%.1f,\"gemm_thread_gflops\":%.1f,\"bit_identical\":%s}\n",
                  type.c_str(), run_type == file_type ? "" : ("_" + layout).c_str(), static_cast<long long>(k), static_cast<long long>(n),
                  static_cast<long long>(cols), threads, flop / t_old.wall * 1e-9,
                  flop / t_new.wall * 1e-9, t_old.wall / t_new.wall,
                  flop / threads / t_old.cpu * 1e-9, flop / threads / t_new.cpu * 1e-9,
                  same ? "true" : "false");
      std::fflush(stdout);
      if (!same) return 1;
    }
  }
  return 0;
}

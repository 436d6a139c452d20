// Fast CPU kernels against the reference kernels: every weight type with a fast kernel,
// odd shapes (row lengths with tails, 1..9 activation rows), both thread counts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/dequant_avx2.h"
#include "backends/cpu/fast_elementwise.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/weight_layout.h"
#include "lib/core/graph.h"
#include "lib/core/threadpool.h"
#include "lib/exec/schedule.h"

using namespace v4;

namespace {

// y = w x on a backend; returns y.
std::vector<float> matmul(bool reference, DType t, const std::vector<uint8_t>& wq, int64_t k,
                          int64_t n, const std::vector<float>& x, int64_t m, int threads) {
  auto cpu = make_cpu_backend(reference);
  ThreadPool pool(2);
  Graph g;
  const int64_t ne[4] = {k, n, 1, 1};
  Tensor* w = g.weight(t, ne, wq.data(), "w");
  Tensor* xin = g.input(DType::F32, k, m);
  Tensor* y = g.mul_mat(w, xin);
  g.mark_output(y);
  Schedule s(g, {cpu.get()});
  std::vector<uint8_t> arena(s.arena_bytes() + 64);
  s.bind(arena.data());
  std::memcpy(xin->data, x.data(), x.size() * 4);
  ComputeEnv env;
  env.pool = &pool;
  env.n_threads = threads;
  REQUIRE(s.run(env));
  return std::vector<float>(y->as<float>(), y->as<float>() + n * m);
}

double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  double e = 0, r = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e += (a[i] - ref[i]) * double(a[i] - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return e / r;
}

}  // namespace

TEST_CASE("fast matmul kernels match the reference", "[cpu][kernels]") {
  INFO("kernel family " << cpu::cpu_kernel_family());
  // Tolerances: float weights differ only in summation order; quantised weights also
  // meet Q8_0-quantised activations (about 8 bits), which the reference does not do.
  struct Case {
    DType t;
    double max_nmse;
  };
  // Q4_K / Q5_K meet q8 activations where the CPU has the VNNI kernels, else the exact
  // fused-dequantisation kernel.
  const cpu::DotKernel* k4 = cpu::find_dot_kernel(DType::Q4_K);
  const double tol_k4 = !k4 || k4->act == cpu::ActFormat::f32 ? 1e-10 : 1e-4;
  for (const Case c : {Case{DType::F32, 1e-10}, Case{DType::F16, 1e-10}, Case{DType::BF16, 1e-10},
                       Case{DType::Q8_0, 1e-4}, Case{DType::Q4_0, 1e-4},
                       Case{DType::Q8_0_R4, 1e-4}, Case{DType::Q4_0_R4, 1e-4},
                       Case{DType::Q8_0_X16, 1e-4}, Case{DType::Q4_0_X16, 1e-4},
                       Case{DType::Q6_K, 1e-4}, Case{DType::Q4_K, tol_k4}, Case{DType::Q5_K, tol_k4},
                       Case{DType::Q4_1, 1e-10}, Case{DType::Q5_0, 1e-10}, Case{DType::Q5_1, 1e-10},
                       Case{DType::FP8_B32, 1e-10}}) {
    if (!cpu::find_dot_kernel(c.t)) {
      WARN("no fast kernel for " << type_name(c.t) << " on this CPU");
      continue;
    }
    const int64_t bs = traits(c.t).block_size;
    for (int64_t k : {bs * 3, bs * 8, int64_t{4096}, bs == 1 ? int64_t{61} : bs * 5}) {
      for (int64_t m : {1, 3, 4, 9}) {
        const int64_t n = 37;
        std::vector<float> wf(k * n), x(k * m);
        for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::sin(0.013f * i) * 0.5f;
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.007f * i + 1.0f);
        std::vector<uint8_t> wq(row_bytes(c.t, k) * n);
        traits(c.t).from_f32(wf.data(), wq.data(), k * n);
        const auto ref = matmul(true, c.t, wq, k, n, x, m, 1);
        const auto fast1 = matmul(false, c.t, wq, k, n, x, m, 1);
        const auto fast2 = matmul(false, c.t, wq, k, n, x, m, 2);
        INFO(type_name(c.t) << " k=" << k << " m=" << m);
        CHECK(nmse(fast1, ref) < c.max_nmse);
        CHECK(fast1 == fast2);  // thread count never changes a result
        // Each column equals the single-column result (prefill == decode).
        for (int64_t j = 0; j < m; ++j) {
          const std::vector<float> xj(x.begin() + j * k, x.begin() + (j + 1) * k);
          const auto one = matmul(false, c.t, wq, k, n, xj, 1, 1);
          for (int64_t i = 0; i < n; ++i) REQUIRE(one[i] == fast1[j * n + i]);
        }
      }
    }
  }
}

TEST_CASE("regrouped layouts compute the plain blocks' products", "[cpu][kernels][repack]") {
  // The same weights and the same quantised activations: the layouts differ only in the
  // order of the float sums, so results agree to a few ulps of the sums' magnitude (a lane
  // or scale mix-up would be off by whole percents).
  for (const auto& [t, layout] : {std::pair{DType::Q4_0, DType::Q4_0_X16}, std::pair{DType::Q8_0, DType::Q8_0_X16},
                                  std::pair{DType::Q4_0, DType::Q4_0_R4}, std::pair{DType::Q8_0, DType::Q8_0_R4}}) {
    if (!cpu::find_dot_kernel(layout) || !cpu::find_dot_kernel(t)) continue;
    const int64_t k = 2048, n = 19;
    std::vector<float> wf(k * n), x(k * 5);
    for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::sin(0.37f * i + 0.1f * (i % 13)) * 0.5f;
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.011f * i + 1.0f) * (1 + i % 5);
    std::vector<uint8_t> wq(row_bytes(t, k) * n);
    traits(t).from_f32(wf.data(), wq.data(), k * n);
    auto wl = wq;
    cpu::convert_weight_layout(wl.data(), t, layout, k, n);
    for (int64_t m : {1, 5}) {  // matvec and GEMM
      const std::vector<float> xm(x.begin(), x.begin() + k * m);
      const auto plain = matmul(false, t, wq, k, n, xm, m, 1);
      const auto got = matmul(false, layout, wl, k, n, xm, m, 2);
      for (int64_t c = 0; c < m; ++c)
        for (int64_t r = 0; r < n; ++r) {
          double mag = 0;  // the size of the terms, which bounds the rounding of their sum
          for (int64_t j = 0; j < k; ++j) mag += std::fabs(wf[r * k + j] * x[c * k + j]);
          const size_t i = static_cast<size_t>(c * n + r);
          INFO(type_name(layout) << " m=" << m << " row " << r << " col " << c << " magnitude " << mag);
          REQUIRE(std::fabs(got[i] - plain[i]) <= 1e-6 * mag);
        }
    }
  }
}

TEST_CASE("the AVX2 dequantiser gives the reference's floats", "[cpu][kernels]") {
  if (!cpu::cpu_features().avx2) {
    WARN("no AVX2 here: only the reference dequantisers exist");
    return;
  }
  const DType t = DType::Q6_K;
  const cpu::DequantFn fast = cpu::avx2_dequantizer(t);
  REQUIRE(fast != nullptr);
  const int64_t n = 256 * 9;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * i) * (1.0f + (i % 29)) - 0.3f;
  std::vector<uint8_t> q(row_bytes(t, n));
  traits(t).from_f32(x.data(), q.data(), n);
  // Also every bit pattern of the quant bytes (the scales stay as quantised, so no NaN).
  std::vector<uint8_t> scrambled = q;
  const size_t bb = traits(t).block_bytes;
  for (size_t i = 0; i < scrambled.size(); ++i)
    if (i % bb < 192) scrambled[i] = static_cast<uint8_t>(i * 2654435761u >> 13);  // ql, qh
  for (const auto* bytes : {&q, &scrambled}) {
    std::vector<float> ref(n), got(n);
    traits(t).to_f32(bytes->data(), ref.data(), n);
    fast(bytes->data(), got.data(), n);
    INFO(type_name(t));
    CHECK(std::memcmp(ref.data(), got.data(), n * sizeof(float)) == 0);
  }
}

TEST_CASE("the vectorised SwiGLU agrees with the reference", "[cpu][kernels]") {
  // Gates over the whole useful range, exact zeros, huge values both ways, a NaN; rows with a
  // tail (37 values: two vectors and 5 lanes).
  const int64_t n = 37, rows = 40;
  std::vector<float> g(n * rows), u(n * rows);
  for (int64_t i = 0; i < n * rows; ++i) {
    g[i] = (static_cast<float>(i) - 740.0f) * 0.031f;
    u[i] = std::cos(0.3f * static_cast<float>(i)) * 2.0f;
  }
  g[3] = 0.0f;
  g[4] = -0.0f;
  g[5] = 1e30f;
  g[6] = -1e30f;
  g[7] = 95.0f;
  g[8] = -95.0f;
  g[9] = std::numeric_limits<float>::quiet_NaN();
  const auto run = [&](bool reference) {
    auto cpu = make_cpu_backend(reference);
    ThreadPool pool(2);
    Graph gr;
    Tensor* a = gr.input(DType::F32, n, rows);
    Tensor* b = gr.input(DType::F32, n, rows);
    Tensor* y = gr.swiglu(a, b);
    gr.mark_output(y);
    // The fast path must really run where the CPU has it (else this compares the reference
    // with itself).
    if (!reference) CHECK((cpu::fast_elementwise_kernel(*y) != nullptr) == cpu::cpu_features().avx512);
    Schedule s(gr, {cpu.get()});
    std::vector<uint8_t> arena(s.arena_bytes() + 64);
    s.bind(arena.data());
    std::memcpy(a->data, g.data(), g.size() * 4);
    std::memcpy(b->data, u.data(), u.size() * 4);
    ComputeEnv env;
    env.pool = &pool;
    env.n_threads = 2;
    REQUIRE(s.run(env));
    return std::vector<float>(y->as<float>(), y->as<float>() + n * rows);
  };
  const auto ref = run(true), fast = run(false);
  for (int64_t i = 0; i < n * rows; ++i) {
    INFO("g " << g[i] << " u " << u[i] << " ref " << ref[i] << " fast " << fast[i]);
    if (std::isnan(ref[i])) {
      CHECK(std::isnan(fast[i]));
      continue;
    }
    CHECK(std::fabs(fast[i] - ref[i]) <= 4e-7f * std::fabs(ref[i]) + 1e-30f);
  }
}

TEST_CASE("the vector activation quantiser gives the scalar bytes", "[cpu][kernels]") {
  if (!cpu::cpu_features().avx2) {
    WARN("no AVX2 here: only the scalar quantiser exists");
    return;
  }
  const int64_t k = 320;
  std::vector<float> x(k);
  for (int64_t i = 0; i < k; ++i) x[i] = std::sin(0.37f * i) * (i % 7 + 0.5f);
  for (int i = 0; i < 32; ++i) x[64 + i] = 0.0f;           // an all-zero block
  x[100] = 0.5f * 127.0f / 127.0f;                          // ties exercise the rounding
  std::vector<uint8_t> a(cpu::q8_row_bytes(k)), b(cpu::q8_row_bytes(k));
  cpu::quantize_q8_row_scalar(x.data(), a.data(), k);
  cpu::quantize_q8_row_avx2(x.data(), b.data(), k);
  CHECK(a == b);
  // And it is a faithful quantisation: |x - d q| <= d / 2.
  const auto* q = reinterpret_cast<const int8_t*>(a.data());
  const auto* d = reinterpret_cast<const float*>(a.data() + cpu::q8_scales_offset(k));
  for (int64_t i = 0; i < k; ++i) CHECK(std::fabs(x[i] - d[i / 32] * q[i]) <= d[i / 32] * 0.5f + 1e-6f);
}

#include "backends/cpu/fast_attention.h"
#include "lib/kv/kv_cache.h"

namespace {

// Stores K/V for a batch spanning two sequences, then runs attention; returns the output.
std::vector<float> run_attention(bool reference, DType kv_type, int threads) {
  const int hd = 16, n_kv = 2, n_head = 6, n_tok = 23;
  KvCache kv({{"k", kv_type, hd * n_kv}, {"v", kv_type, hd * n_kv}}, 8, 64, 2);
  std::vector<int32_t> seq(n_tok), pos(n_tok);
  int32_t next[2] = {0, 0};
  for (int i = 0; i < n_tok; ++i) {
    seq[i] = i % 3 == 0 ? 1 : 0;
    pos[i] = next[seq[i]]++;
  }
  kv.begin_batch(n_tok, seq.data(), pos.data());
  std::vector<float> scratch(2 * 64 * 3);
  kv.view()->scratch = scratch.data();
  kv.view()->scratch_stride = 64 * 3;

  auto cpu = make_cpu_backend(reference);
  ThreadPool pool(2);
  Graph g;
  Tensor* q = g.input(DType::F32, hd, n_head, n_tok);
  Tensor* k = g.input(DType::F32, hd * n_kv, n_tok);
  Tensor* v = g.input(DType::F32, hd * n_kv, n_tok);
  Tensor* st = g.kv_store(k, v, kv.view(), 0, 1);
  Tensor* out = g.attention(q, st, kv.view(), 0, 1, n_kv, 0.25f);
  g.mark_output(out);
  Schedule s(g, {cpu.get()});
  std::vector<uint8_t> arena(s.arena_bytes() + 64);
  s.bind(arena.data());
  for (Tensor* t : {q, k, v})
    for (int64_t i = 0; i < t->n_elements(); ++i) t->as<float>()[i] = std::sin(0.1f * i + t->ne[0]);
  ComputeEnv env;
  env.pool = &pool;
  env.n_threads = threads;
  REQUIRE(s.run(env));
  return std::vector<float>(out->as<float>(), out->as<float>() + out->n_elements());
}

}  // namespace

TEST_CASE("fast attention matches the reference over pages, sequences and GQA", "[cpu][kernels][attention]") {
  if (!cpu::cpu_features().avx2) {
    WARN("no AVX2 here: the reference attention runs");
    return;
  }
  // FP8 rows hold 32 values per block, so the second KV head (16 values) starts inside a
  // block: both kernels must find it there.
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::FP8_KV}) {
    const auto ref = run_attention(true, t, 1);
    const auto fast1 = run_attention(false, t, 1);
    const auto fast2 = run_attention(false, t, 2);
    INFO(type_name(t));
    CHECK(nmse(fast1, ref) < 1e-10);
    CHECK(fast1 == fast2);
  }
}

namespace {

struct AttnCase {
  int hd, n_head, n_kv, page;
  DType type;
  int window = 0;  // FP8 only: rows read from the exact recent-row window
};

// Attention of n_tok tokens over two interleaved sequences (one token in three belongs to
// sequence 1), run in batches of `split` tokens: each batch stores its K/V with the reference
// kernel, then attention runs with `kernel` (nullptr: the reference) on `threads` threads
// (called one after the other, each with its own scratch). Token t's inputs depend only on t,
// so every split must give the same output. Returns every token's output row.
std::vector<float> attention_in_batches(const AttnCase& c, int n_tok, int split,
                                        cpu::AttentionFn kernel, int threads) {
  const int n_ctx = 128, group = c.n_head / c.n_kv;
  KvCache kv({{"k", c.type, int64_t{c.hd} * c.n_kv}, {"v", c.type, int64_t{c.hd} * c.n_kv}}, c.page,
             n_ctx, 2, {}, {}, c.window > 0 ? KvWindow{c.window, 128} : KvWindow{});
  std::vector<float> scratch(static_cast<size_t>(threads) * n_ctx * group * kAttentionTokenTile);
  auto ref = make_cpu_backend(true);
  ThreadPool pool(1);
  std::vector<float> result;
  int32_t next[2] = {0, 0};
  for (int t0 = 0; t0 < n_tok; t0 += split) {
    const int n = std::min(split, n_tok - t0);
    std::vector<int32_t> seq(n), pos(n);
    for (int i = 0; i < n; ++i) {
      seq[i] = (t0 + i) % 3 == 2 ? 1 : 0;
      pos[i] = next[seq[i]]++;
    }
    kv.begin_batch(n, seq.data(), pos.data());
    kv.view()->scratch = scratch.data();
    kv.view()->scratch_stride = static_cast<int64_t>(scratch.size()) / threads;
    Graph g;
    Tensor* q = g.input(DType::F32, c.hd, c.n_head, n);
    Tensor* k = g.input(DType::F32, int64_t{c.hd} * c.n_kv, n);
    Tensor* v = g.input(DType::F32, int64_t{c.hd} * c.n_kv, n);
    Tensor* st = g.kv_store(k, v, kv.view(), 0, 1);
    Tensor* out = g.attention(q, st, kv.view(), 0, 1, c.n_kv, 1.0f / std::sqrt(float(c.hd)));
    g.mark_output(out);
    Schedule s(g, {ref.get()});
    std::vector<uint8_t> arena(s.arena_bytes() + 64);
    s.bind(arena.data());
    for (Tensor* t : {q, k, v}) {
      const int64_t row = t->n_elements() / n;
      for (int i = 0; i < n; ++i)
        for (int64_t e = 0; e < row; ++e)
          t->as<float>()[i * row + e] = std::sin(0.37f * float(e) + 1.7f * float(t0 + i) + float(t->ne[0])) *
                                        (t == q ? 2.0f : 1.0f);
    }
    ComputeEnv env;
    env.pool = &pool;
    env.n_threads = 1;
    REQUIRE(s.run(env));
    if (kernel) {
      std::fill(out->as<float>(), out->as<float>() + out->n_elements(), NAN);
      for (int ith = 0; ith < threads; ++ith) kernel(out, ith, threads);
    }
    result.insert(result.end(), out->as<float>(), out->as<float>() + out->n_elements());
  }
  return result;
}

// The kernels this CPU has for a case's attention node (built on an empty cache); checks
// that the backend would pick the last (newest) of them.
std::vector<std::pair<const char*, cpu::AttentionFn>> kernels_for(const AttnCase& c) {
  KvCache kv({{"k", c.type, int64_t{c.hd} * c.n_kv}, {"v", c.type, int64_t{c.hd} * c.n_kv}}, c.page, 64, 1);
  Graph g;
  Tensor* q = g.input(DType::F32, c.hd, c.n_head, 1);
  const Tensor* node = g.attention(q, nullptr, kv.view(), 0, 1, c.n_kv, 1.0f);
  auto kernels = cpu::attention_kernels(*node);
  CHECK(cpu::fast_attention_kernel(*node) == (kernels.empty() ? nullptr : kernels.back().second));
  if (c.n_head / c.n_kv > cpu::kAvx512MaxGroup)  // too many query heads for one vector
    for (const auto& k : kernels) CHECK(std::string(k.first) != "avx512");
  return kernels;
}

}  // namespace

TEST_CASE("every attention kernel matches the reference and gives the same bits for any batch split",
          "[cpu][kernels][attention]") {
  INFO("kernel family " << cpu::cpu_kernel_family());
  const AttnCase cases[] = {
      {64, 32, 4, 32, DType::F16},    // TinyLlama: 8 query heads per KV head
      {64, 32, 4, 16, DType::BF16},
      {64, 32, 4, 32, DType::F32},
      {64, 32, 4, 32, DType::FP8_KV},
      {64, 32, 4, 32, DType::FP8_KV, 6},
      {8, 8, 4, 8, DType::F16},       // stories260K: 2 per KV head, head size below a vector
      {24, 6, 2, 4, DType::F16},      // 3 per KV head (padded to 4), head size 8 mod 16
      {40, 5, 1, 128, DType::BF16},   // 5 (padded to 8)
      {16, 16, 1, 16, DType::F32},    // 16: one lane per head
      {32, 12, 1, 32, DType::F16},    // 12 (padded to 16)
      {24, 2, 2, 8, DType::F32},      // 1: no grouping, head size 8 mod 16
      {24, 4, 4, 8, DType::FP8_KV},   // (FP8 rows are whole 32-value blocks)
      {32, 40, 2, 32, DType::F16},    // 20: more than one vector holds
      {128, 16, 4, 32, DType::F16},   // Llama-3-like head size, 4 per KV head
  };
  const int n_tok = 100;  // 67 and 33 rows in the two sequences: several pages and blocks
  bool any = false;
  for (const AttnCase& c : cases) {
    const auto kernels = kernels_for(c);
    if (kernels.empty()) continue;
    any = true;
    const auto ref = attention_in_batches(c, n_tok, n_tok, nullptr, 1);
    for (const auto& [name, fn] : kernels) {
      INFO("kernel " << name << " type " << type_name(c.type) << " head_dim " << c.hd << " heads " << c.n_head
                     << "/" << c.n_kv << " page " << c.page << " window " << c.window);
      const auto whole = attention_in_batches(c, n_tok, n_tok, fn, 1);
      CHECK(nmse(whole, ref) < 1e-10);
      CHECK(attention_in_batches(c, n_tok, n_tok, fn, 2) == whole);  // threads
      for (int split = 1; split <= 9; ++split) {
        INFO("split " << split);
        CHECK(attention_in_batches(c, n_tok, split, fn, split % 2 + 1) == whole);  // prefill = decode
      }
    }
  }
  if (!any) WARN("no vectorised attention kernel on this CPU: only the reference runs");
}

#include "lib/core/error.h"
#include "lib/model/gguf.h"

TEST_CASE("regrouped layouts hold the same values and are rejected in files", "[cpu][kernels][repack]") {
  for (const auto& [t, r4] : {std::pair{DType::Q4_0, DType::Q4_0_R4}, std::pair{DType::Q8_0, DType::Q8_0_R4},
                              std::pair{DType::Q4_0, DType::Q4_0_X16}, std::pair{DType::Q8_0, DType::Q8_0_X16}}) {
    INFO(type_name(r4));
    const int64_t k = 1024, rows = 3;
    std::vector<float> x(k * rows);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.21f * i) * 2.0f;
    std::vector<uint8_t> q(row_bytes(t, k) * rows);
    traits(t).from_f32(x.data(), q.data(), k * rows);
    std::vector<float> before(x.size()), after(x.size());
    traits(t).to_f32(q.data(), before.data(), k * rows);
    CHECK(row_bytes(r4, k) == row_bytes(t, k));
    auto q2 = q;
    cpu::convert_weight_layout(q2.data(), t, r4, k, rows);
    CHECK(q2 != q);  // the bytes moved
    traits(r4).to_f32(q2.data(), after.data(), k * rows);
    CHECK(after == before);
    // quantising straight to the regrouped layout gives the converted bytes
    std::vector<uint8_t> q3(q.size());
    traits(r4).from_f32(x.data(), q3.data(), k * rows);
    CHECK(q3 == q2);
    CHECK(traits(r4).internal);
    CHECK(cpu::preferred_weight_layout(t, 99 * 32) == t);  // not whole groups of 128
    // A file may not use an in-memory layout's id.
    gguf::Writer w;
    w.add_tensor("w", r4, {k, rows}, q2.data(), q2.size());
    const auto bytes = w.to_bytes();
    CHECK_THROWS_AS(gguf::File::from_memory(bytes.data(), bytes.size(), "r4.gguf"), Error);
  }
  // Rows of whole 512-value super-groups take X16 where this CPU has its kernels, rows of
  // 128-value groups R4.
  for (DType t : {DType::Q4_0, DType::Q8_0}) {
    const DType x16 = t == DType::Q4_0 ? DType::Q4_0_X16 : DType::Q8_0_X16;
    const DType r4 = t == DType::Q4_0 ? DType::Q4_0_R4 : DType::Q8_0_R4;
    if (cpu::find_dot_kernel(x16)) CHECK(cpu::preferred_weight_layout(t, 2048) == x16);
    if (cpu::find_dot_kernel(r4)) CHECK(cpu::preferred_weight_layout(t, 384) == r4);
  }
}

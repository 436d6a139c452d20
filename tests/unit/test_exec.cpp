// lib/exec and backends/cpu: the memory plan and the reference kernels.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "lib/core/graph.h"
#include "lib/core/threadpool.h"
#include "lib/exec/memory_planner.h"
#include "lib/exec/schedule.h"

using namespace v4;

namespace {

// Runs a built graph on the CPU with `threads` threads.
struct Runner {
  explicit Runner(bool reference_only = false) : cpu(make_cpu_backend(reference_only)) {}
  std::unique_ptr<Backend> cpu;
  ThreadPool pool{2};
  std::vector<uint8_t> arena;
  std::unique_ptr<Schedule> sched;
  void prepare(Graph& g) {
    sched = std::make_unique<Schedule>(g, std::vector<Backend*>{cpu.get()});
    arena.assign(sched->arena_bytes() + 64, 0);
    sched->bind(arena.data());
  }
  void run(int threads) {
    ComputeEnv env;
    env.pool = &pool;
    env.n_threads = threads;
    REQUIRE(sched->run(env));
  }
};

void fill(Tensor* t, float seed) {
  float* d = t->as<float>();
  for (int64_t i = 0; i < t->n_elements(); ++i) d[i] = std::sin(seed + 0.731f * i);
}

}  // namespace

TEST_CASE("the memory planner reuses dead intermediates", "[exec][planner]") {
  Graph g;
  Tensor* x = g.input(DType::F32, 1024, 1);
  Tensor* h = x;
  for (int i = 0; i < 10; ++i) h = g.scale(h, 0.5f);  // a chain: each result dies after use
  g.mark_output(h);
  const MemoryPlan plan = plan_memory(g);
  CHECK(plan.unshared_bytes == 11 * 4096);
  CHECK(plan.arena_bytes <= 3 * 4096);  // input + two alternating buffers
  // Live ranges never overlap: a node's output is distinct from its input.
  for (const Tensor* n : g.nodes())
    CHECK(plan.offsets[n->id] != plan.offsets[n->src[0]->id]);
}

TEST_CASE("planned graphs compute the same as an unplanned evaluation", "[exec][planner]") {
  Graph g;
  Tensor* x = g.input(DType::F32, 16, 3);
  Tensor* w = g.input(DType::F32, 16, 16);
  Tensor* a = g.mul_mat(w, x);
  Tensor* b = g.silu(a);
  Tensor* c = g.add(b, x);  // x stays alive across the chain
  Tensor* d = g.rms_norm(c, 1e-5f);
  g.mark_output(d);
  Runner r;
  r.prepare(g);
  fill(x, 1.0f);
  fill(w, 2.0f);
  // Inputs live only until their last reader, so keep copies for the check.
  const std::vector<float> xs(x->as<float>(), x->as<float>() + 48);
  const std::vector<float> ws(w->as<float>(), w->as<float>() + 256);
  r.run(2);
  // Recompute directly.
  for (int m = 0; m < 3; ++m) {
    std::vector<float> row(16);
    float ss = 0;
    for (int n = 0; n < 16; ++n) {
      float s = 0;
      for (int k = 0; k < 16; ++k) s += ws[n * 16 + k] * xs[m * 16 + k];
      row[n] = s / (1.0f + std::exp(-s)) + xs[m * 16 + n];
      ss += row[n] * row[n];
    }
    const float sc = 1.0f / std::sqrt(ss / 16 + 1e-5f);
    for (int n = 0; n < 16; ++n) CHECK(d->as<float>()[m * 16 + n] == Approx(row[n] * sc).epsilon(1e-5));
  }
}

TEST_CASE("rope rotates pairs in NORM and NEOX layouts, only inside the sub-range", "[exec][rope]") {
  for (RopeMode mode : {RopeMode::norm, RopeMode::neox}) {
    Graph g;
    const int hd = 12, nh = 2, nt = 3;
    Tensor* x = g.input(DType::F32, hd, nh, nt);
    Tensor* pos = g.input(DType::I32, nt);
    RopeParams p;
    p.n_dims = 8;
    p.dim_offset = 4;  // rotate the tail 8 of 12, as DeepSeek does
    p.mode = mode;
    p.freq_base = 10000.0f;
    Tensor* y = g.rope(x, pos, &p, nullptr);
    g.mark_output(y);
    Runner r;
    r.prepare(g);
    fill(x, 0.3f);
    const std::vector<float> xs(x->as<float>(), x->as<float>() + hd * nh * nt);
    const int32_t positions[nt] = {0, 5, 17};
    std::memcpy(pos->data, positions, sizeof positions);
    r.run(2);
    for (int t = 0; t < nt; ++t)
      for (int h = 0; h < nh; ++h) {
        const float* in = xs.data() + (t * nh + h) * hd;
        const float* out = y->as<float>() + (t * nh + h) * hd;
        for (int e = 0; e < 4; ++e) CHECK(out[e] == in[e]);  // untouched head
        for (int i = 0; i < 4; ++i) {
          const double theta = positions[t] * std::pow(10000.0, -2.0 * i / 8);
          const int a = 4 + (mode == RopeMode::neox ? i : 2 * i);
          const int b = a + (mode == RopeMode::neox ? 4 : 1);
          CHECK(out[a] == Approx(in[a] * std::cos(theta) - in[b] * std::sin(theta)).margin(1e-5));
          CHECK(out[b] == Approx(in[a] * std::sin(theta) + in[b] * std::cos(theta)).margin(1e-5));
        }
      }
  }
}

TEST_CASE("rope scaling: linear divides positions, YaRN keeps high frequencies", "[exec][rope]") {
  auto run = [](RopeParams p, int32_t position, std::vector<float>* out) {
    Graph g;
    Tensor* x = g.input(DType::F32, 64, 1, 1);
    Tensor* pos = g.input(DType::I32, 1);
    Tensor* y = g.rope(x, pos, &p, nullptr);
    g.mark_output(y);
    Runner r;
    r.prepare(g);
    fill(x, 0.1f);
    *static_cast<int32_t*>(pos->data) = position;
    r.run(1);
    out->assign(y->as<float>(), y->as<float>() + 64);
  };
  RopeParams plain;
  plain.n_dims = 64;
  RopeParams linear = plain;
  linear.freq_scale = 0.25f;
  std::vector<float> a, b;
  run(linear, 40, &a);
  run(plain, 10, &b);
  for (int i = 0; i < 64; ++i) CHECK(a[i] == Approx(b[i]).margin(1e-5));

  RopeParams yarn = linear;
  yarn.ext_factor = 1.0f;
  yarn.n_ctx_orig = 4096;
  yarn.attn_factor = 1.0f;
  std::vector<float> c, d;
  run(yarn, 40, &c);
  run(plain, 40, &d);
  // The first pairs (high frequency) are extrapolated: same angle as unscaled, times
  // YaRN's magnitude correction 1 + 0.1 ln(4).
  const float mscale = 1.0f + 0.1f * std::log(4.0f);
  CHECK(c[0] == Approx(d[0] * mscale).margin(1e-4));
  CHECK(c[1] == Approx(d[1] * mscale).margin(1e-4));
  // The last pairs (low frequency) are interpolated like linear scaling.
  CHECK(c[62] == Approx(a[62] * mscale).margin(1e-4));
}

TEST_CASE("causal softmax masks the future and sums to one", "[exec][softmax]") {
  Graph g;
  Tensor* x = g.input(DType::F32, 5, 5);
  Tensor* y = g.softmax(x, 0.5f, true);
  g.mark_output(y);
  Runner r;
  r.prepare(g);
  fill(x, 0.9f);
  r.run(2);
  for (int i = 0; i < 5; ++i) {
    float sum = 0;
    for (int j = 0; j < 5; ++j) {
      const float v = y->as<float>()[i * 5 + j];
      if (j > i) CHECK(v == 0.0f);
      sum += v;
    }
    CHECK(sum == Approx(1.0f).epsilon(1e-6));
  }
}

TEST_CASE("mul_mat on quantised weights matches dequantise-then-multiply", "[exec][matmul]") {
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    const int k = 96, n = 5, m = 3;
    std::vector<float> wf(k * n);
    for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::cos(0.11f * i);
    std::vector<uint8_t> wq(row_bytes(t, k) * n);
    traits(t).from_f32(wf.data(), wq.data(), k * n);
    std::vector<float> wd(k * n);
    traits(t).to_f32(wq.data(), wd.data(), k * n);

    Graph g;
    const int64_t ne[4] = {k, n, 1, 1};
    Tensor* w = g.weight(t, ne, wq.data(), "w");
    Tensor* x = g.input(DType::F32, k, m);
    Tensor* y = g.mul_mat(w, x);
    g.mark_output(y);
    Runner r(/*reference_only=*/true);
    r.prepare(g);
    fill(x, 0.5f);
    const std::vector<float> xs(x->as<float>(), x->as<float>() + k * m);
    r.run(2);
    for (int j = 0; j < m; ++j)
      for (int i = 0; i < n; ++i) {
        float s = 0;
        for (int e = 0; e < k; ++e) s += wd[i * k + e] * xs[j * k + e];
        CHECK(y->as<float>()[j * n + i] == Approx(s).epsilon(1e-5));
      }
  }
}

TEST_CASE("copy converts between types", "[exec][copy]") {
  Graph g;
  Tensor* x = g.input(DType::F32, 64, 2);
  Tensor* q = g.copy(x, DType::Q8_0);
  Tensor* back = g.copy(q, DType::F32);
  g.mark_output(back);
  Runner r;
  r.prepare(g);
  fill(x, 0.2f);
  const std::vector<float> xs(x->as<float>(), x->as<float>() + 128);
  r.run(2);
  for (int i = 0; i < 128; ++i) CHECK(back->as<float>()[i] == Approx(xs[i]).margin(0.01));
}

TEST_CASE("the schedule reports its plan", "[exec][plan]") {
  Graph g;
  Tensor* x = g.input(DType::F32, 8);
  g.mark_output(g.silu(g.scale(x, 2.0f)));
  Runner r;
  r.prepare(g);
  const std::string d = r.sched->describe();
  CHECK(d.find("on cpu") != std::string::npos);
  CHECK(d.find("arena") != std::string::npos);
}

// Activations quantised once for several matmuls that read them (q/k/v, gate/up) must give
// the bits of each matmul quantising its own input, whatever the kernel formats in between.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "lib/core/graph.h"
#include "lib/core/threadpool.h"
#include "lib/exec/schedule.h"

using namespace v4;

namespace {

std::vector<uint8_t> make_weights(DType t, int64_t k, int64_t n, float phase) {
  std::vector<float> wf(k * n);
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::sin(0.031f * i + phase) * 0.25f;
  std::vector<uint8_t> wq(row_bytes(t, k) * n);
  traits(t).from_f32(wf.data(), wq.data(), k * n);
  return wq;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

struct Layer {
  DType t;
  std::vector<uint8_t> w;
};

// Builds y_i = w_i x for every layer (all reading the one input x: k x m), runs it on the
// fast CPU backend and returns the outputs one after another.
std::vector<float> shared_input(const std::vector<Layer>& layers, int64_t k, int64_t n,
                                const std::vector<float>& x, int64_t m, int threads) {
  auto cpu = make_cpu_backend(false);
  ThreadPool pool(2);
  Graph g;
  const int64_t ne[4] = {k, n, 1, 1};
  Tensor* xin = g.input(DType::F32, k, m);
  std::vector<Tensor*> ys;
  for (size_t i = 0; i < layers.size(); ++i) {
    ys.push_back(g.mul_mat(g.weight(layers[i].t, ne, layers[i].w.data(), "w" + std::to_string(i)), xin));
    g.mark_output(ys.back());
  }
  Schedule s(g, {cpu.get()});
  std::vector<uint8_t> arena(s.arena_bytes() + 64);
  s.bind(arena.data());
  std::memcpy(xin->data, x.data(), x.size() * sizeof(float));
  ComputeEnv env;
  env.pool = &pool;
  env.n_threads = threads;
  REQUIRE(s.run(env));
  std::vector<float> out;
  for (Tensor* y : ys) out.insert(out.end(), y->as<float>(), y->as<float>() + n * m);
  return out;
}

}  // namespace

TEST_CASE("matmuls sharing an input give the bits of separate matmuls", "[cpu][kernels][decode]") {
  // q/k/v-like: two formats whose quantised activations differ (Q4_0_R4 re-centres by 8,
  // Q8_0_R4 by 128), in an order that must re-quantise, and a float weight in between.
  const int64_t k = 256, n = 40;
  const std::vector<Layer> layers = {{DType::Q4_0_R4, make_weights(DType::Q4_0_R4, k, n, 0.1f)},
                                     {DType::Q4_0_R4, make_weights(DType::Q4_0_R4, k, n, 0.2f)},
                                     {DType::Q8_0_R4, make_weights(DType::Q8_0_R4, k, n, 0.3f)},
                                     {DType::F16, make_weights(DType::F16, k, n, 0.4f)},
                                     {DType::Q4_0_R4, make_weights(DType::Q4_0_R4, k, n, 0.5f)},
                                     {DType::Q8_0, make_weights(DType::Q8_0, k, n, 0.6f)},
                                     {DType::Q4_0, make_weights(DType::Q4_0, k, n, 0.7f)}};
  for (int64_t m : {1, 2, 5}) {
    std::vector<float> x(k * m);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.05f * i + 0.5f) * (1 + i % 4);
    for (int threads : {1, 2}) {
      const auto together = shared_input(layers, k, n, x, m, threads);
      for (size_t i = 0; i < layers.size(); ++i) {
        const auto alone = shared_input({layers[i]}, k, n, x, m, threads);
        INFO(type_name(layers[i].t) << " (matmul " << i << ") m=" << m << " threads=" << threads);
        CHECK(same_bits(alone.data(), together.data() + i * n * m, n * m));
      }
    }
  }
}

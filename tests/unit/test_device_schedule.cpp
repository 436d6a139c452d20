// lib/exec with a device backend: a fake "device" that computes add and scale in its own
// memory (a mirror of the arena plus its own copies of weights). Any copy the schedule
// forgets leaves NaN behind (both memories start as NaN), so the results prove the plan.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "lib/core/graph.h"
#include "lib/core/threadpool.h"
#include "lib/exec/schedule.h"

using namespace v4;

namespace {

class FakeDevice final : public Backend {
 public:
  const char* name() const override { return "fake"; }
  std::vector<DeviceInfo> devices() const override { return {{"fake", "gpu", 1, 1, ""}}; }
  bool supports(const Tensor& n) const override {
    return n.op == Op::add || n.op == Op::scale || n.op == Op::view;
  }
  void* alloc(size_t, size_t) override { return nullptr; }
  void free(void*) override {}
  bool uses_host_memory() const override { return false; }
  void upload_weight(const Tensor& w) override {
    ++upload_calls;
    auto& copy = weights[w.data];
    copy.assign(static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(w.data) + w.nbytes());
  }
  void bind_arena(const uint8_t* host, size_t bytes) override {
    host_arena = host;
    if (mirror.size() < bytes) mirror.assign(bytes, 0xFF);  // NaN
  }
  void prepare_split(Tensor* const* nodes, size_t, const SplitCopies& c) override {
    copies[nodes] = c;
  }
  bool compute(Tensor* const* nodes, size_t n, const ComputeEnv&) override {
    const SplitCopies& c = copies.at(nodes);
    for (const Tensor* t : c.in) std::memcpy(dev(t), t->data, t->nbytes());
    for (size_t i = 0; i < n; ++i) {
      const Tensor* t = nodes[i];
      if (t->op == Op::view) continue;
      const float* a = dev(t->src[0]);
      float* o = dev(t);
      for (int64_t j = 0; j < t->n_elements(); ++j)
        o[j] = t->op == Op::scale ? a[j] * t->fparam[0] : a[j] + dev(t->src[1])[j % t->src[1]->n_elements()];
    }
    for (const Tensor* t : c.out) std::memcpy(t->data, dev(t), t->nbytes());
    return true;
  }

  int upload_calls = 0;

 private:
  float* dev(const Tensor* t) {
    const auto* p = static_cast<const uint8_t*>(t->data);
    if (p >= host_arena && p < host_arena + mirror.size())
      return reinterpret_cast<float*>(mirror.data() + (p - host_arena));
    return reinterpret_cast<float*>(weights.at(t->data).data());
  }
  const uint8_t* host_arena = nullptr;
  std::vector<uint8_t> mirror;
  std::map<const void*, std::vector<uint8_t>> weights;
  std::map<Tensor* const*, SplitCopies> copies;
};

std::vector<float> run_graph(Graph& g, const std::vector<Backend*>& backends, Tensor* x,
                             Tensor* out, std::string* plan = nullptr,
                             const std::vector<Backend*>& layer_backends = {}) {
  Schedule s(g, backends, layer_backends);
  std::vector<uint8_t> arena(s.arena_bytes(), 0xFF);  // NaN everywhere
  s.bind(arena.data());
  for (int64_t i = 0; i < x->n_elements(); ++i) x->as<float>()[i] = 0.25f * static_cast<float>(i) - 1.0f;
  ThreadPool pool(1);
  ComputeEnv env;
  env.pool = &pool;
  REQUIRE(s.run(env));
  if (plan) *plan = s.describe();
  return std::vector<float>(out->as<float>(), out->as<float>() + out->n_elements());
}

}  // namespace

TEST_CASE("a device split gets its weights once and copies at every boundary", "[exec][device]") {
  Graph g;
  std::vector<float> wdata(8);
  for (int i = 0; i < 8; ++i) wdata[i] = 0.5f * i;
  const int64_t ne[kMaxDims] = {8, 1, 1, 1};
  Tensor* w = g.weight(DType::F32, ne, wdata.data(), "w");
  Tensor* x = g.input(DType::F32, 8, 2, 1, "x");
  Tensor* a = g.add(x, w);           // device: x copied in, w uploaded
  Tensor* b = g.silu(a);             // cpu: a copied out
  Tensor* c = g.add(b, a);           // device: b copied in, a still there
  Tensor* d = g.scale(g.add(c, w), 2.0f);  // device, w again (uploaded already)
  g.mark_output(d);                  // copied out at the end

  auto cpu = make_cpu_backend(true);
  FakeDevice fake;
  std::string plan;
  const std::vector<float> got = run_graph(g, {&fake, cpu.get()}, x, d, &plan);
  const std::vector<float> want = run_graph(g, {cpu.get()}, x, d);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).epsilon(1e-6));
  CHECK(fake.upload_calls >= 1);
  CHECK(plan.find("copy in  (host -> fake)") != std::string::npos);
  CHECK(plan.find("copy out (fake -> host)") != std::string::npos);
  CHECK(plan.find("device weights: 1 tensors") != std::string::npos);
}

TEST_CASE("a layer split runs each layer on its device and crosses through the host",
          "[exec][device][layers]") {
  // Layer 0 on device A, layer 1 and the output layer on device B. B reads what A computed,
  // so the value must leave A (copy out) and enter B (copy in); without either, B reads NaN.
  Graph g;
  std::vector<float> wdata(8);
  for (int i = 0; i < 8; ++i) wdata[i] = 0.5f * i - 1.0f;
  const int64_t ne[kMaxDims] = {8, 1, 1, 1};
  Tensor* w = g.weight(DType::F32, ne, wdata.data(), "w");
  Tensor* x = g.input(DType::F32, 8, 2, 1, "x");
  Tensor* e = g.scale(x, 0.5f);        // no layer: the first backend that supports it
  g.set_layer(0);
  Tensor* a = g.add(e, w);             // A
  Tensor* a2 = g.scale(a, 3.0f);       // A
  g.set_layer(1);
  Tensor* b = g.add(a2, w);            // B: a2 crosses A -> host -> B
  Tensor* bs = g.silu(b);              // B lacks silu: the CPU (never A)
  Tensor* b2 = g.add(bs, a);           // B: a crosses too
  g.set_layer(2);
  Tensor* out = g.scale(b2, 2.0f);     // B (output layer)
  g.mark_output(out);

  auto cpu = make_cpu_backend(true);
  FakeDevice dev_a, dev_b;
  std::string plan;
  const std::vector<float> got =
      run_graph(g, {&dev_a, &dev_b, cpu.get()}, x, out, &plan, {&dev_a, &dev_b, &dev_b});
  const std::vector<float> want = run_graph(g, {cpu.get()}, x, out);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).epsilon(1e-6));
  CHECK(dev_a.upload_calls >= 1);
  CHECK(dev_b.upload_calls >= 1);  // each device holds its own copy of w
  // Layer 0's nodes ran on A, layer 1's on B or the CPU: four splits A, B, cpu, B.
  size_t splits = 0;
  for (size_t at = plan.find(" on "); at != std::string::npos; at = plan.find(" on ", at + 1)) ++splits;
  CHECK(splits == 4);
}

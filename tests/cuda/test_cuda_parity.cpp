// Op parity of the CUDA backend against the CPU reference kernels (backends/cpu/ref_kernels.h):
// every op the CUDA backend supports x weight types x shapes (odd sizes, tails, one and several
// activation columns, the matvec and the tensor-core paths), compared by normalised MSE
// sum((cuda - ref)^2) / sum(ref^2) with the thresholds of the Vulkan parity test: 1e-7 for f32
// ops, 5e-4 for quantised and 16-bit paths. Exits with 77 (CTest's SKIP_RETURN_CODE) and the
// reason when there is no CUDA device.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/cuda_backend.h"
#include "lib/core/error.h"
#include "lib/core/graph.h"
#include "lib/core/kv_view.h"
#include "lib/core/threadpool.h"

using namespace v4;

namespace {

constexpr double kF32 = 1e-7;    // f32 ops
constexpr double kQuant = 5e-4;  // quantised weights, 16-bit paths, f16 tensor cores

// Host memory the graph's leaves point at; lives as long as the case.
struct Store {
  std::vector<std::vector<uint8_t>> bufs;
  std::mt19937 rng{1234};

  void* bytes(size_t n) {
    bufs.emplace_back(n == 0 ? 1 : n);
    return bufs.back().data();
  }
  std::vector<float> normal(int64_t n, float sd = 1.0f) {
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    return v;
  }
  Tensor* f32_input(Graph& g, int64_t ne0, int64_t ne1 = 1, int64_t ne2 = 1, float sd = 1.0f) {
    Tensor* t = g.input(DType::F32, ne0, ne1, ne2);
    const std::vector<float> v = normal(ne0 * ne1 * ne2, sd);
    t->data = bytes(v.size() * 4);
    std::memcpy(t->data, v.data(), v.size() * 4);
    return t;
  }
  Tensor* i32_input(Graph& g, const std::vector<int32_t>& v) {
    Tensor* t = g.input(DType::I32, static_cast<int64_t>(v.size()));
    t->data = bytes(v.size() * 4);
    std::memcpy(t->data, v.data(), v.size() * 4);
    return t;
  }
  Tensor* weight(Graph& g, DType type, int64_t k, int64_t n) {
    const std::vector<float> v = normal(k * n, 0.5f);
    void* q = bytes(row_bytes(type, k) * static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r)
      traits(type).from_f32(v.data() + r * k, static_cast<uint8_t*>(q) + row_bytes(type, k) * r, k);
    const int64_t ne[4] = {k, n, 1, 1};
    return g.weight(type, ne, q, "w");
  }
};

std::vector<float> as_f32(const Tensor* t, const void* data) {
  std::vector<float> out(static_cast<size_t>(t->n_elements()));
  traits(t->type).to_f32(data, out.data(), t->n_elements());
  return out;
}

// Gives every computed node memory from `alloc` (views point into their source).
void bind_nodes(Graph& g, const std::function<void*(size_t)>& alloc) {
  for (Tensor* n : g.nodes())
    n->data = n->op == Op::view ? static_cast<uint8_t*>(n->src[0]->data) + n->view_offset
                                : alloc(n->nbytes());
}

struct Runner {
  std::unique_ptr<Backend> cpu = make_cpu_backend(true);
  std::unique_ptr<Backend> cuda;
  ThreadPool pool{1};
  int failures = 0, cases = 0;

  // Runs the nodes on CUDA the way the executor drives a device backend: intermediates and
  // inputs in one host arena mirrored on the device, weights uploaded, inputs copied in and
  // the output copied back around the split.
  std::vector<float> run_cuda(const std::vector<Tensor*>& nodes, Tensor* out,
                              const std::string& name) {
    std::vector<Tensor*> inputs, weights;
    auto add_leaf = [&](Tensor* t) {
      while (t->op == Op::view) t = t->src[0];
      if (t->op != Op::none) return;
      auto& list = t->is_input ? inputs : weights;
      if (std::find(list.begin(), list.end(), t) == list.end()) list.push_back(t);
    };
    for (Tensor* n : nodes)
      for (Tensor* s : n->src)
        if (s) add_leaf(s);
    size_t total = 0;
    auto place = [&](const Tensor* t) {
      const size_t at = total;
      total += (t->nbytes() + 255) / 256 * 256;
      return at;
    };
    std::vector<size_t> node_at, input_at;
    for (Tensor* n : nodes) node_at.push_back(n->op == Op::view ? 0 : place(n));
    for (Tensor* t : inputs) input_at.push_back(place(t));
    std::vector<uint8_t> arena_buf(total + 256);
    uint8_t* arena = reinterpret_cast<uint8_t*>(
        (reinterpret_cast<uintptr_t>(arena_buf.data()) + 255) / 256 * 256);
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::memcpy(arena + input_at[i], inputs[i]->data, inputs[i]->nbytes());
      inputs[i]->data = arena + input_at[i];
    }
    for (size_t i = 0; i < nodes.size(); ++i)
      nodes[i]->data = nodes[i]->op == Op::view
                           ? static_cast<uint8_t*>(nodes[i]->src[0]->data) + nodes[i]->view_offset
                           : arena + node_at[i];
    for (Tensor* n : nodes)
      if (!cuda->supports(*n))
        fail(Status::internal, "case {}: cuda does not support {}", name, op_name(n->op));
    for (Tensor* w : weights) cuda->upload_weight(*w);
    cuda->bind_arena(arena, total);
    SplitCopies copies;
    copies.in.assign(inputs.begin(), inputs.end());
    copies.out.push_back(out);
    cuda->prepare_split(nodes.data(), nodes.size(), copies);
    ComputeEnv env;
    env.pool = &pool;
    cuda->compute(nodes.data(), nodes.size(), env);
    cuda->release_split(nodes.data(), nodes.size());
    return as_f32(out, out->data);
  }

  // before_cuda runs between the CPU and the CUDA run (e.g. to point a KV view at device pages).
  void run(const std::string& name, double max_nmse,
           const std::function<Tensor*(Graph&, Store&)>& build,
           const std::function<void()>& before_cuda = {}) {
    Store store;
    Graph g;
    Tensor* out = build(g, store);
    ComputeEnv env;
    env.pool = &pool;
    bind_nodes(g, [&](size_t n) { return store.bytes(n); });
    std::vector<Tensor*> nodes(g.nodes().begin(), g.nodes().end());
    cpu->compute(nodes.data(), nodes.size(), env);
    const std::vector<float> ref = as_f32(out, out->data);

    if (before_cuda) before_cuda();
    const std::vector<float> got = run_cuda(nodes, out, name);

    double err = 0.0, norm = 0.0;
    bool finite = true;
    for (size_t i = 0; i < ref.size(); ++i) {
      finite = finite && std::isfinite(got[i]);
      err += (static_cast<double>(got[i]) - ref[i]) * (static_cast<double>(got[i]) - ref[i]);
      norm += static_cast<double>(ref[i]) * ref[i];
    }
    const double nmse = norm > 0.0 ? err / norm : err;
    const bool ok = finite && nmse <= max_nmse;
    ++cases;
    failures += ok ? 0 : 1;
    std::printf("%-4s %-44s nmse %.3g (max %.0e)\n", ok ? "ok" : "FAIL", name.c_str(), nmse,
                max_nmse);
  }
};

const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                              DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::FP8_B32};
// The CPU's regrouped layouts, which read-mode weights reach a CUDA context in.
const DType kRegroupedTypes[] = {DType::Q4_0_R4, DType::Q8_0_R4, DType::Q4_0_X16, DType::Q8_0_X16};

void matmul_cases(Runner& r) {
  struct Shape {
    int64_t k, n, m;
  };
  // m <= 8: matvec; m > 8: tensor cores (f32 weights always matvec). Odd n: partial tiles.
  const Shape shapes[] = {{256, 17, 1}, {512, 33, 3}, {256, 67, 8}, {256, 45, 9}, {768, 40, 33}};
  for (DType t : kWeightTypes)
    for (const Shape& s : shapes) {
      const double tol = t == DType::F32 ? kF32 : kQuant;
      r.run(fmt::format("mul_mat {} k{} n{} m{}", type_name(t), s.k, s.n, s.m), tol,
            [&](Graph& g, Store& st) {
              return g.mul_mat(st.weight(g, t, s.k, s.n), st.f32_input(g, s.k, s.m));
            });
    }
  for (DType t : kRegroupedTypes)
    for (const Shape& s : {Shape{512, 33, 1}, Shape{1024, 45, 9}})
      r.run(fmt::format("mul_mat {} k{} n{} m{}", type_name(t), s.k, s.n, s.m), kQuant,
            [&](Graph& g, Store& st) {
              return g.mul_mat(st.weight(g, t, s.k, s.n), st.f32_input(g, s.k, s.m));
            });
}

void get_rows_cases(Runner& r) {
  for (DType t : kWeightTypes)  // the element decoder is the reference's: exact
    r.run(fmt::format("get_rows {}", type_name(t)), kF32, [&](Graph& g, Store& st) {
      return g.get_rows(st.weight(g, t, 256, 11), st.i32_input(g, {3, 0, 10, 3, 7}));
    });
}

void elementwise_cases(Runner& r) {
  for (int64_t rows : {1, 5}) {
    const std::string shape = fmt::format(" 37x{}", rows);
    r.run("add" + shape, kF32, [&](Graph& g, Store& st) {
      return g.add(st.f32_input(g, 37, rows), st.f32_input(g, 37, rows));
    });
    r.run("add broadcast" + shape, kF32, [&](Graph& g, Store& st) {
      return g.add(st.f32_input(g, 37, rows), st.f32_input(g, 37));
    });
    r.run("mul broadcast" + shape, kF32, [&](Graph& g, Store& st) {
      return g.mul(st.f32_input(g, 37, rows), st.f32_input(g, 37));
    });
    r.run("scale" + shape, kF32,
          [&](Graph& g, Store& st) { return g.scale(st.f32_input(g, 37, rows), -0.37f); });
    r.run("silu" + shape, kF32,
          [&](Graph& g, Store& st) { return g.silu(st.f32_input(g, 37, rows, 1, 4.0f)); });
    r.run("swiglu" + shape, kF32, [&](Graph& g, Store& st) {
      return g.swiglu(st.f32_input(g, 37, rows, 1, 4.0f), st.f32_input(g, 37, rows));
    });
    r.run("rms_norm" + shape, kF32,
          [&](Graph& g, Store& st) { return g.rms_norm(st.f32_input(g, 1000 + 37, rows), 1e-5f); });
  }
  for (bool causal : {false, true})
    r.run(fmt::format("softmax 13x7x2 causal={}", causal), kF32, [&](Graph& g, Store& st) {
      return g.softmax(st.f32_input(g, 13, 7, 2, 3.0f), 0.125f, causal);
    });
  r.run("softmax 4100x3", kF32,
        [&](Graph& g, Store& st) { return g.softmax(st.f32_input(g, 4100, 3), 1.0f, false); });
}

void rope_cases(Runner& r) {
  static RopeParams norm, neox, yarn, tail;
  norm.n_dims = 64;
  neox = norm;
  neox.mode = RopeMode::neox;
  yarn = neox;
  yarn.freq_scale = 0.25f;
  yarn.ext_factor = 1.0f;
  yarn.n_ctx_orig = 4096;
  tail.n_dims = 32;
  tail.dim_offset = 32;  // DeepSeek-style: rotate the tail of the head
  const std::pair<const char*, const RopeParams*> modes[] = {
      {"norm", &norm}, {"neox", &neox}, {"neox yarn", &yarn}, {"norm tail", &tail}};
  for (const auto& [label, p] : modes)
    r.run(fmt::format("rope {} hd64 h3 t5", label), kF32, [&, p = p](Graph& g, Store& st) {
      return g.rope(st.f32_input(g, 64, 3, 5), st.i32_input(g, {0, 1, 7, 100, 4095}), p, nullptr);
    });
}

void copy_cases(Runner& r) {
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    r.run(fmt::format("copy f32 -> {}", type_name(t)), t == DType::F32 ? kF32 : kQuant,
          [&](Graph& g, Store& st) { return g.copy(st.f32_input(g, 67, 4), t); });
  r.run("copy f16 -> f32", kF32, [&](Graph& g, Store& st) {
    return g.copy(g.copy(st.f32_input(g, 64, 3), DType::F16), DType::F32);
  });
}

// kv_store of a batch, then attention over the paged cache: one long sequence (several
// split-K chunks, logical pages and pool slots out of order) decoding one token and a short one
// prefilling three tokens, GQA with two query heads per KV head. The CPU runs on host pages, CUDA
// on a copy of the same pages in device memory.
void attention_cases(Runner& r) {
  for (DType kv_type : {DType::F32, DType::F16}) {
    constexpr int kShift = 4, kPageRows = 1 << kShift, kHd = 64, kHeads = 4, kKvHeads = 2;
    constexpr int kRowElems = kHd * kKvHeads, kLongPos = 600, kPages = 41;
    const size_t row_b = row_bytes(kv_type, kRowElems);
    const size_t storage_b = size_t{kPages} * kPageRows * row_b;
    // The graph holds a pointer to the view; all of this lives until run() returns.
    KvView kv;
    KvComponentView comps_host[2], comps_dev[2];
    std::vector<uint32_t> seq0, seq1{40};
    for (int p = 0; p <= kLongPos >> kShift; ++p) seq0.push_back(static_cast<uint32_t>(39 - p));
    const uint32_t* tables[] = {seq0.data(), seq1.data()};
    std::vector<uint32_t> block_slot(kPages);  // one group (K and V): logical page -> slot
    for (uint32_t p = 0; p < kPages; ++p) block_slot[p] = (p * 7) % kPages;
    const int32_t tok_seq[] = {0, 1, 1, 1}, tok_pos[] = {kLongPos, 0, 1, 2};
    // The CPU's scratch: n_ctx scores per query head of a KV group (the CUDA kernel needs none).
    std::vector<float> scratch((kLongPos + 1) * (kHeads / kKvHeads));
    std::vector<void*> device_pages;
    r.run(
        fmt::format("kv_store + attention kv {} (split-K, GQA)", type_name(kv_type)),
        kv_type == DType::F32 ? kF32 : kQuant,
        [&](Graph& g, Store& st) {
          for (int c = 0; c < 2; ++c) {
            const std::vector<float> rows = st.normal(int64_t{kPages} * kPageRows * kRowElems);
            auto* host = static_cast<uint8_t*>(st.bytes(storage_b));
            traits(kv_type).from_f32(rows.data(), host, static_cast<int64_t>(rows.size()));
            void* dev = device_pages.emplace_back(cuda_device_alloc(storage_b));
            cuda_copy_to_device(dev, host, storage_b);
            comps_host[c] = {host, row_b, kv_type, kRowElems};
            comps_dev[c] = {static_cast<uint8_t*>(dev), row_b, kv_type, kRowElems};
          }
          kv.page_rows = kPageRows;
          kv.page_shift = kShift;
          kv.comps = comps_host;
          kv.seq_pages = tables;
          kv.slot_bytes = size_t{kPageRows} * row_b;
          kv.n_logical_pages = kPages;
          kv.block_slot = block_slot.data();
          kv.n_tokens = 4;
          kv.tok_seq = tok_seq;
          kv.tok_pos = tok_pos;
          kv.scratch = scratch.data();
          kv.scratch_stride = static_cast<int64_t>(scratch.size());
          Tensor* store =
              g.kv_store(st.f32_input(g, kRowElems, 4), st.f32_input(g, kRowElems, 4), &kv, 0, 1);
          return g.attention(st.f32_input(g, kHd, kHeads, 4), store, &kv, 0, 1, kKvHeads, 0.125f);
        },
        [&] { kv.comps = comps_dev; });
    for (void* p : device_pages) cuda_device_free(p);
  }
}

}  // namespace

int main() {
  const CudaProbe probe = probe_cuda();
  if (probe.device_count == 0) {
    std::printf("SKIPPED: %s\n", probe.reason.c_str());
    return 77;
  }
  const char* dev = std::getenv("V4_CUDA_DEVICE");
  try {
    Runner r;
    r.cuda = make_cuda_backend(dev ? std::atoi(dev) : 0);
    std::printf("device: %s\n", r.cuda->devices().at(0).name.c_str());
    matmul_cases(r);
    get_rows_cases(r);
    elementwise_cases(r);
    rope_cases(r);
    copy_cases(r);
    attention_cases(r);
    std::printf("%d of %d cases passed\n", r.cases - r.failures, r.cases);
    return r.failures == 0 ? 0 : 1;
  } catch (const Error& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
}

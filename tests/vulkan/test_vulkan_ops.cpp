// Op parity: every op the Vulkan backend runs, over its types and several shapes (odd
// sizes, tails, one and several rows), computed on Vulkan and by the CPU reference
// kernels (backends/cpu/ref_kernels.h), compared by normalised mean-squared error
// sum((v - r)^2) / sum(r^2) against the threshold written next to each case.
//
// Exits with CTest's skip code (77) and the reason when there is no Vulkan device.
// V4_VULKAN_FULL=1 runs the full matrix (ctest label `slow`; lavapipe is slow).
// With VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation, any validation error fails the run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/vulkan/vk_kv_ops.h"
#include "backends/vulkan/vulkan_backend.h"
#include "lib/core/dtype.h"
#include "lib/core/graph.h"
#include "lib/core/threadpool.h"
#include "lib/exec/schedule.h"
#include "lib/kv/kv_cache.h"
#include "lib/kv/kv_tier.h"

namespace v4 {
namespace {

// Thresholds (normalised MSE). Both sides dequantise weights identically and accumulate in
// f32; only the summation order differs, so even quantised and 16-bit weight paths are
// held to a tight bound. Conversions to f16 may round ties differently: the 16-bit bound.
constexpr double kF32Ops = 1e-7;
constexpr double kTight = 1e-10;      // elementwise ops: the same arithmetic, at most 1 ulp
constexpr double kQuantised = 5e-4;   // the bound for quantised / 16-bit outputs
constexpr double kMatmul = 1e-7;      // any weight type: same dequantisation, f32 sums

bool g_full = false;
Backend* g_vk = nullptr;

std::mt19937& rng() {
  static std::mt19937 r(1234);
  return r;
}
std::vector<float> random_floats(size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng());
  return v;
}

// A weight of any type made from random floats. Weights are kept for the whole run: the
// backend finds uploaded weights by host address, which must not be reused by another.
struct Blob {
  std::vector<uint8_t> bytes;
};
std::vector<std::unique_ptr<Blob>> g_weights;
Tensor* make_weight(Graph& g, DType type, int64_t ne0, int64_t ne1) {
  const std::vector<float> f = random_floats(static_cast<size_t>(ne0 * ne1));
  auto blob = std::make_unique<Blob>();
  blob->bytes.resize(row_bytes(type, ne0) * ne1);
  traits(type).from_f32(f.data(), blob->bytes.data(), ne0 * ne1);
  const int64_t ne[kMaxDims] = {ne0, ne1, 1, 1};
  Tensor* t = g.weight(type, ne, blob->bytes.data(), "w");
  g_weights.push_back(std::move(blob));
  return t;
}

using Filler = std::function<void(Tensor*)>;

// Runs the graph on `backends`, filling every input with `fill`, and returns `out` as f32.
std::vector<float> run(Graph& g, const std::vector<Backend*>& backends, Tensor* out,
                       const Filler& fill) {
  Schedule s(g, backends);
  std::vector<uint8_t> arena(s.arena_bytes() + 64);
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(arena.data()) + 63) & ~uintptr_t{63});
  s.bind(base);
  for (Tensor* leaf : g.leaves())
    if (leaf->is_input) fill(leaf);
  ThreadPool pool(1);
  ComputeEnv env;
  env.pool = &pool;
  REQUIRE(s.run(env));
  std::vector<float> v(static_cast<size_t>(out->n_elements()));
  traits(out->type).to_f32(out->data, v.data(), out->n_elements());
  return v;
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return num / std::max(den, 1e-30);
}

// Computes `out` on Vulkan and with the CPU reference and checks the error. The inputs
// get the same values both times (the filler is deterministic per call order).
void check(Graph& g, Tensor* out, double threshold, const Filler& fill, const std::string& what) {
  INFO(what);
  REQUIRE(g_vk->supports(*out));  // otherwise the CPU would run it and the test prove nothing
  g.mark_output(out);
  auto cpu_ref = make_cpu_backend(true);
  rng().seed(99);
  const std::vector<float> got = run(g, {g_vk, cpu_ref.get()}, out, fill);
  rng().seed(99);
  const std::vector<float> want = run(g, {cpu_ref.get()}, out, fill);
  for (float x : got)
    if (!std::isfinite(x)) FAIL("non-finite value from Vulkan");
  const double e = nmse(got, want);
  INFO("nmse " << e << " threshold " << threshold);
  CHECK(e <= threshold);
}

void fill_f32(Tensor* t) {
  const auto v = random_floats(static_cast<size_t>(t->n_elements()));
  std::memcpy(t->data, v.data(), v.size() * sizeof(float));
}

// Q4_0_R4 / Q8_0_R4 / Q4_0_X16 / Q8_0_X16: the layouts the CPU regroups Q4_0 / Q8_0 into
// when weights are read into memory (the default load mode), which a Vulkan context then
// receives.
const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16,  DType::F8_E4M3,
                              DType::F8_E5M2, DType::Q8_0,
                              DType::Q4_0, DType::Q4_1, DType::Q5_0,  DType::Q5_1,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K,  DType::FP8_B32,
                              DType::Q4_0_R4, DType::Q8_0_R4, DType::Q4_0_X16, DType::Q8_0_X16};

bool whole_blocks(DType t, int64_t k) { return k % traits(t).block_size == 0; }

// Whether the device runs Q8_0/Q4_0 matvecs with int8 dot products (mul_mat_dot.comp):
// they quantise the activations, so they are held to the quantised bound.
bool int_dot_used() {
  return g_vk->devices().front().details.find("int8 dot products") != std::string::npos;
}
const DType kIntDotTypes[] = {DType::Q8_0,    DType::Q4_0,     DType::Q4_0_R4,
                              DType::Q8_0_R4, DType::Q4_0_X16, DType::Q8_0_X16};
bool int_dot_case(DType t, int64_t m) {
  const auto* end = std::end(kIntDotTypes);
  return int_dot_used() && m < 16 && std::find(std::begin(kIntDotTypes), end, t) != end;
}

std::string name_of(DType t) { return type_name(t); }

}  // namespace

TEST_CASE("vulkan mul_mat matches the reference for every weight type", "[vulkan]") {
  struct Shape {
    int64_t k, n, m;
  };
  // M < 16: the matvec kernel (8 activation rows per workgroup); M >= 16: the tiled one.
  std::vector<Shape> shapes = {{32, 1, 1},     {64, 7, 1},    {96, 33, 3}, {288, 17, 9},
                               {256, 130, 16}, {96, 70, 40}, {288, 33, 17}};
  if (g_full)
    shapes.insert(shapes.end(), {{4096, 64, 1}, {1024, 300, 2}, {512, 70000, 1}, {768, 40, 33},
                                 {512, 70000, 20}, {1024, 257, 100}});
  for (DType type : kWeightTypes) {
    std::vector<Shape> all = shapes;
    if (traits(type).block_size == 1) all.insert(all.end(), {{33, 5, 2}, {7, 3, 10}, {45, 37, 19}});
    if (traits(type).block_size >= 128) all.insert(all.end(), {{512, 9, 1}, {768, 20, 11}, {384, 5, 3}});
    if (traits(type).block_size == 512) all.insert(all.end(), {{1024, 20, 11}, {512, 33, 17}, {1536, 5, 3}});
    for (const Shape& s : all) {
      if (!whole_blocks(type, s.k)) continue;
      Graph g;
      Tensor* w = make_weight(g, type, s.k, s.n);
      Tensor* x = g.input(DType::F32, s.k, s.m, 1, "x");
      check(g, g.mul_mat(w, x), int_dot_case(type, s.m) ? kQuantised : kMatmul, fill_f32,
            fmt::format("mul_mat {} K={} N={} M={}", name_of(type), s.k, s.n, s.m));
    }
  }
}

// Q8_0/Q4_0 matvecs (and the CPU's regrouped layouts of them) with packed int8 dot
// products: activations quantised per 32-block like
// the CPU's q8 rows, so the result is held to the quantised bound (5e-4) against
// the f32 reference, and to 1e-10 against the CPU's own q8 kernels, which round the same
// way (an f32-activation result is ~1e-5 from those: the bound tells the two apart).
// Without the feature (vulkan_ops_fallbacks hides it) the f32 matvec runs instead.
TEST_CASE("vulkan Q8_0/Q4_0 matvecs with integer dot products", "[vulkan]") {
  struct Shape {
    int64_t k, n, m;
  };
  // Blocks fewer than, equal to and more than the 128 invocations, odd N, M of 1, a
  // partial column group (M = 3, 9, 15) and full ones.
  // K = 4608: 9 X16 super-groups, 36 R4 groups, 144 blocks (more than the invocations).
  const std::vector<Shape> shapes = {{32, 1, 1},    {64, 7, 1},    {96, 33, 3},  {288, 17, 9},
                                     {512, 20, 11}, {1536, 5, 3},  {4608, 5, 1}, {4608, 9, 15},
                                     {1024, 130, 8}};
  const bool used = int_dot_used();
  for (DType type : kIntDotTypes) {
    for (const Shape& s : shapes) {
      if (!whole_blocks(type, s.k)) continue;
      const std::string what = fmt::format("{} K={} N={} M={} (int dot {})", name_of(type), s.k,
                                           s.n, s.m, used ? "on" : "off");
      INFO(what);
      const uint64_t dot_before = vulkan_dispatches_recorded("mul_mat_dot_");
      const uint64_t quantize_before = vulkan_dispatches_recorded("quantize_q8");
      Graph g;
      Tensor* w = make_weight(g, type, s.k, s.n);
      Tensor* x = g.input(DType::F32, s.k, s.m, 1, "x");
      Tensor* out = g.mul_mat(w, x);
      check(g, out, used ? kQuantised : kMatmul, fill_f32, what);
      CHECK((vulkan_dispatches_recorded("mul_mat_dot_") > dot_before) == used);
      CHECK((vulkan_dispatches_recorded("quantize_q8") > quantize_before) == used);
      if (!used) continue;
      auto cpu_fast = make_cpu_backend(false);
      rng().seed(99);
      const std::vector<float> got = run(g, {g_vk, cpu_fast.get()}, out, fill_f32);
      rng().seed(99);
      const std::vector<float> want = run(g, {cpu_fast.get()}, out, fill_f32);
      const double e = nmse(got, want);
      INFO("nmse against the CPU's q8 kernels " << e);
      CHECK(e <= 1e-10);
    }
  }
  // Two matvecs reading the same activations (as Q, K and V do) share one pre-pass.
  Graph g;
  Tensor* x = g.input(DType::F32, 256, 2, 1, "x");
  Tensor* out = g.add(g.mul_mat(make_weight(g, DType::Q8_0, 256, 40), x),
                      g.mul_mat(make_weight(g, DType::Q4_0, 256, 40), x));
  const uint64_t dot_before = vulkan_dispatches_recorded("mul_mat_dot_");
  const uint64_t quantize_before = vulkan_dispatches_recorded("quantize_q8");
  check(g, out, used ? kQuantised : kMatmul, fill_f32, "two matvecs of one activation");
  CHECK(vulkan_dispatches_recorded("mul_mat_dot_") - dot_before == (used ? 2u : 0u));
  CHECK(vulkan_dispatches_recorded("quantize_q8") - quantize_before == (used ? 1u : 0u));
}

TEST_CASE("vulkan get_rows matches the reference for every table type", "[vulkan]") {
  struct Shape {
    int64_t k, rows, n_ids;
  };
  std::vector<Shape> shapes = {{32, 11, 1}, {64, 11, 5}, {288, 11, 5}, {288, 11, 1}, {256, 11, 3},
                               {1024, 11, 5}};
  // A table larger than one binding on lavapipe (128 MiB): read in row ranges.
  if (g_full) shapes.push_back({1024, 40000, 9});
  for (DType type : kWeightTypes) {
    for (const Shape& s : shapes) {
      if (!whole_blocks(type, s.k)) continue;
      Graph g;
      Tensor* table = make_weight(g, type, s.k, s.rows);
      Tensor* ids = g.input(DType::I32, s.n_ids, 1, 1, "ids");
      const int64_t n_rows = s.rows;
      const Filler fill = [n_rows](Tensor* t) {
        auto* p = static_cast<int32_t*>(t->data);
        for (int64_t i = 0; i < t->ne[0]; ++i) p[i] = static_cast<int32_t>((i * 4957 + 3) % n_rows);
      };
      check(g, g.get_rows(table, ids), type == DType::F32 ? 0.0 : kTight, fill,
            fmt::format("get_rows {} K={} rows={} ids={}", name_of(type), s.k, s.rows, s.n_ids));
    }
  }
}

TEST_CASE("vulkan elementwise ops match the reference", "[vulkan]") {
  struct Shape {
    int64_t ne0, rows;
  };
  std::vector<Shape> shapes = {{1, 1}, {37, 5}, {300, 3}, {1000, 2}};
  if (g_full) shapes.insert(shapes.end(), {{4097, 3}, {64, 300}});
  for (const Shape& s : shapes) {
    for (int op = 0; op < 7; ++op) {
      Graph g;
      Tensor* a = g.input(DType::F32, s.ne0, s.rows, 1, "a");
      Tensor* b = g.input(DType::F32, s.ne0, s.rows, 1, "b");
      Tensor* row = g.input(DType::F32, s.ne0, 1, 1, "row");
      Tensor* out = nullptr;
      const char* name = "";
      switch (op) {
        case 0: out = g.add(a, b), name = "add"; break;
        case 1: out = g.add(a, row), name = "add broadcast"; break;
        case 2: out = g.mul(a, b), name = "mul"; break;
        case 3: out = g.mul(a, row), name = "mul broadcast"; break;
        case 4: out = g.scale(a, 0.37f), name = "scale"; break;
        case 5: out = g.silu(a), name = "silu"; break;
        default: out = g.swiglu(a, b), name = "swiglu"; break;
      }
      const double threshold = op >= 5 ? kF32Ops : 0.0;  // exp() may differ in the last bit
      check(g, out, threshold, fill_f32, fmt::format("{} {}x{}", name, s.ne0, s.rows));
    }
  }
}

TEST_CASE("vulkan rms_norm and softmax match the reference", "[vulkan]") {
  struct Shape {
    int64_t ne0, rows;
  };
  std::vector<Shape> shapes = {{7, 1}, {33, 4}, {288, 3}, {1000, 2}};
  if (g_full) shapes.insert(shapes.end(), {{4096, 2}, {130, 129}});
  for (const Shape& s : shapes) {
    {
      Graph g;
      Tensor* a = g.input(DType::F32, s.ne0, s.rows, 1, "a");
      check(g, g.rms_norm(a, 1e-5f), kF32Ops, fill_f32, fmt::format("rms_norm {}x{}", s.ne0, s.rows));
    }
    for (bool causal : {false, true}) {
      Graph g;
      Tensor* a = g.input(DType::F32, s.ne0, s.rows, 2, "a");
      check(g, g.softmax(a, 0.7f, causal), kF32Ops, fill_f32,
            fmt::format("softmax{} {}x{}x2", causal ? " causal" : "", s.ne0, s.rows));
    }
  }
}

TEST_CASE("vulkan rope matches the reference (norm, neox, partial, factors, YaRN)", "[vulkan]") {
  struct Case {
    int64_t head_dim, n_head, n_tok;
    RopeParams p;
    bool factors;
  };
  RopeParams norm;
  norm.n_dims = 8;
  RopeParams neox = norm;
  neox.mode = RopeMode::neox;
  RopeParams partial;
  partial.n_dims = 32;
  partial.dim_offset = 16;
  partial.mode = RopeMode::neox;
  RopeParams yarn;
  yarn.n_dims = 64;
  yarn.freq_scale = 0.25f;
  yarn.ext_factor = 1.0f;
  yarn.n_ctx_orig = 4096;
  yarn.freq_base = 500000.0f;
  std::vector<Case> cases = {{8, 3, 1, norm, false}, {8, 3, 4, neox, false},
                             {48, 2, 3, partial, false}, {64, 4, 2, yarn, true}};
  if (g_full) cases.push_back({128, 32, 7, neox, true});
  for (const Case& c : cases) {
    Graph g;
    Tensor* x = g.input(DType::F32, c.head_dim, c.n_head, c.n_tok, "x");
    Tensor* pos = g.input(DType::I32, c.n_tok, 1, 1, "pos");
    Tensor* freq = c.factors ? g.input(DType::F32, c.p.n_dims / 2, 1, 1, "factors") : nullptr;
    const Filler fill = [&](Tensor* t) {
      if (t == pos) {
        auto* p = static_cast<int32_t*>(t->data);
        for (int64_t i = 0; i < t->ne[0]; ++i) p[i] = static_cast<int32_t>(i * 97 % 501);
      } else if (t == freq) {
        const auto v = random_floats(static_cast<size_t>(t->n_elements()), 1.0f, 4.0f);
        std::memcpy(t->data, v.data(), v.size() * sizeof(float));
      } else {
        fill_f32(t);
      }
    };
    check(g, g.rope(x, pos, &c.p, freq), kF32Ops, fill,
          fmt::format("rope mode {} head_dim {} n_dims {} offset {} T {}{}{}",
                      static_cast<int>(c.p.mode), c.head_dim, c.p.n_dims, c.p.dim_offset, c.n_tok,
                      c.factors ? " factors" : "", c.p.ext_factor != 0.0f ? " yarn" : ""));
  }
}

TEST_CASE("vulkan copy converts like the reference", "[vulkan]") {
  struct Conv {
    DType from, to;
    double threshold;
  };
  const Conv convs[] = {{DType::F32, DType::F32, 0.0},    {DType::F32, DType::F16, kQuantised},
                        {DType::F16, DType::F32, 0.0},    {DType::BF16, DType::F32, 0.0},
                        {DType::Q8_0, DType::F32, kTight}, {DType::Q4_0, DType::F32, kTight},
                        {DType::Q4_K, DType::F32, kTight}, {DType::Q4_0_R4, DType::F32, kTight},
                        {DType::Q4_1, DType::F32, kTight}, {DType::Q5_0, DType::F32, kTight},
                        {DType::Q5_1, DType::F32, kTight}, {DType::Q5_K, DType::F32, kTight},
                        {DType::Q6_K, DType::F32, kTight}, {DType::FP8_B32, DType::F32, kTight},
                        {DType::F8_E4M3, DType::F32, 0.0}, {DType::F8_E5M2, DType::F32, 0.0},
                        {DType::Q8_0_R4, DType::F32, kTight}, {DType::Q4_0_X16, DType::F32, kTight},
                        {DType::Q8_0_X16, DType::F32, kTight}};
  for (const Conv& c : convs) {
    for (int64_t rows : {1, 3}) {
      Graph g;
      Tensor* src = make_weight(g, c.from, std::max<int64_t>(256, traits(c.from).block_size), rows);
      check(g, g.copy(src, c.to), c.threshold, fill_f32,
            fmt::format("copy {} -> {} rows {}", name_of(c.from), name_of(c.to), rows));
    }
  }
}

// ---- KV ops: kv_store and attention over KV pages in Vulkan memory -----------------
namespace {

// One layer's K and V, `n_kv` heads of `hd` values each, in group 0.
std::vector<KvComponentSpec> kv_layer(DType type, int64_t row) {
  return {{"blk.0.k", type, row, 0}, {"blk.0.v", type, row, 0}};
}

KvTierFactory vulkan_tier(DType type, int64_t hd) {
  return [type, hd](uint32_t n, size_t bytes) { return g_vk->make_kv_tier(type, hd, n, bytes); };
}

struct KvShape {
  DType type;
  int64_t hd, n_head, n_kv;
  int32_t page;
};

// Runs kv_store + attention for one batch on `cache` with `backends`; the values of q, k
// and v come from the seed, so every cache gets the same batch.
std::vector<float> kv_step(KvCache& cache, const KvShape& sh, const std::vector<Backend*>& backends,
                           const std::vector<int32_t>& seq, const std::vector<int32_t>& pos,
                           uint32_t seed, bool require_vulkan, const Filler& fill = fill_f32,
                           bool* split = nullptr) {
  const int32_t t = static_cast<int32_t>(seq.size());
  cache.begin_batch(t, seq.data(), pos.data());
  Graph g;
  KvView* view = cache.view();
  Tensor* q = g.input(DType::F32, sh.hd, sh.n_head, t, "q");
  Tensor* k = g.input(DType::F32, sh.hd * sh.n_kv, t, 1, "k");
  Tensor* v = g.input(DType::F32, sh.hd * sh.n_kv, t, 1, "v");
  Tensor* stored = g.kv_store(k, v, view, 0, 1);
  Tensor* out = g.attention(q, stored, view, 0, 1, static_cast<int>(sh.n_kv),
                            1.0f / std::sqrt(static_cast<float>(sh.hd)));
  if (require_vulkan) {
    REQUIRE(g_vk->supports(*stored));
    REQUIRE(g_vk->supports(*out));
  }
  if (split) *split = vk::attention_split_bytes(*out) > 0;
  g.mark_output(out);
  rng().seed(seed);
  return run(g, backends, out, fill);
}

std::vector<uint8_t> kv_rows(KvCache& cache, int32_t seq, size_t comp) {
  std::vector<uint8_t> rows(cache.components()[comp].row_bytes() * cache.seq_length(seq));
  cache.read_rows(seq, comp, cache.seq_length(seq), rows.data());
  return rows;
}

// FP8 pages always come with the recent-row window (as the context makes them): 16 exact
// rows in a ring of 64, which holds the window plus the 37-token prefill below.
KvWindow window_for(DType type, int32_t ring_rows = 64) {
  return type == DType::FP8_KV ? KvWindow{16, ring_rows} : KvWindow{};
}

// The rows `seq` holds exactly in its window ring, as bits (empty without a ring).
std::vector<uint32_t> ring_rows(KvCache& cache, int32_t seq, size_t comp) {
  if (cache.window() == 0) return {};
  const int32_t first = cache.window_first(seq), n = cache.seq_length(seq) - first;
  std::vector<float> f(static_cast<size_t>(n) * cache.components()[comp].row_elems);
  cache.read_window(seq, comp, first, n, f.data());
  std::vector<uint32_t> bits(f.size());
  std::memcpy(bits.data(), f.data(), f.size() * sizeof(float));
  return bits;
}

// Stored pages and ring rows of both sequences equal bit for bit.
void check_same_rows(KvCache& got, KvCache& want) {
  for (int32_t s = 0; s < 2; ++s) {
    REQUIRE(got.seq_length(s) == want.seq_length(s));
    REQUIRE(got.window_first(s) == want.window_first(s));
    for (size_t c = 0; c < 2; ++c) {
      CHECK(kv_rows(got, s, c) == kv_rows(want, s, c));
      CHECK(ring_rows(got, s, c) == ring_rows(want, s, c));
    }
  }
}

// The batches: a prefill of 37 tokens on sequence 0 (several pages, a partial tail), a
// decode step, then a batch mixing sequence 1's prefill with sequence 0's next token.
struct KvBatch {
  std::vector<int32_t> seq, pos;
};
std::vector<KvBatch> kv_batches(int32_t decode_steps) {
  std::vector<KvBatch> out;
  KvBatch prefill;
  for (int32_t i = 0; i < 37; ++i) {
    prefill.seq.push_back(0);
    prefill.pos.push_back(i);
  }
  out.push_back(prefill);
  out.push_back({{0}, {37}});
  KvBatch mixed;
  for (int32_t i = 0; i < 5; ++i) {
    mixed.seq.push_back(1);
    mixed.pos.push_back(i);
  }
  mixed.seq.push_back(0);
  mixed.pos.push_back(38);
  out.push_back(mixed);
  for (int32_t i = 0; i < decode_steps; ++i) out.push_back({{0, 1}, {39 + i, 5 + i}});
  return out;
}

}  // namespace

// Attention sums in another order (online softmax in chunks of 64): the f32 bound. Pages
// are written with the CPU's rounding, so stored rows must be identical bit for bit. FP8
// pages: both backends quantise to the same bytes, dequantise each value exactly and read
// the window's rows from the same f32 ring rows, so the f32 bound holds for them too, and
// pages and ring rows must be identical bit for bit.
TEST_CASE("vulkan kv_store and attention match the reference over device pages", "[vulkan]") {
  const KvShape shapes[] = {
      {DType::FP8_KV, 8, 8, 4, 4},    // the bundled model's heads: four per 32-value block
      {DType::FP8_KV, 48, 4, 2, 16},  // the second head starts inside a block
      {DType::FP8_KV, 64, 8, 2, 8},   // GQA 4:1
      {DType::FP8_KV, 96, 3, 1, 32},  // page 32, one KV head
      {DType::F32, 8, 8, 4, 4},     // the bundled model's heads, tiny pages
      {DType::F16, 8, 8, 4, 4},
      {DType::BF16, 8, 8, 4, 4},
      {DType::F32, 64, 8, 2, 16},   // GQA 4:1
      {DType::F16, 64, 6, 6, 32},   // no grouping, page 32
      {DType::BF16, 100, 3, 1, 8},  // odd head size, one KV head
      {DType::F16, 256, 2, 1, 16},  // the largest head the shader takes
  };
  for (const KvShape& sh : shapes) {
    INFO(fmt::format("{} hd {} heads {}/{} page {}", name_of(sh.type), sh.hd, sh.n_head, sh.n_kv,
                     sh.page));
    const auto comps = kv_layer(sh.type, sh.hd * sh.n_kv);
    const KvWindow win = window_for(sh.type);
    KvCache dev(comps, sh.page, 128, 2, {}, {}, win, vulkan_tier(sh.type, sh.hd));
    KvCache host(comps, sh.page, 128, 2, {}, {}, win);
    std::vector<float> scores(128 * static_cast<size_t>(sh.n_head));  // CPU attention scratch
    host.view()->scratch = scores.data();
    host.view()->scratch_stride = static_cast<int64_t>(scores.size());
    REQUIRE(dev.hot_on_device());
    REQUIRE_FALSE(host.hot_on_device());
    auto cpu_ref = make_cpu_backend(true);
    uint32_t seed = 7;
    for (const KvBatch& b : kv_batches(g_full ? 40 : 3)) {
      const auto got = kv_step(dev, sh, {g_vk, cpu_ref.get()}, b.seq, b.pos, seed, true);
      const auto want = kv_step(host, sh, {cpu_ref.get()}, b.seq, b.pos, seed, false);
      ++seed;
      for (float x : got)
        if (!std::isfinite(x)) FAIL("non-finite attention output from Vulkan");
      const double e = nmse(got, want);
      INFO("batch of " << b.seq.size() << ": nmse " << e << " threshold " << kF32Ops);
      CHECK(e <= kF32Ops);
    }
    // Sequence 1 becomes a copy of 0 (shared pages); both then append to the shared tail,
    // which is copied on write (in device memory through the host for `dev`).
    dev.copy(0, 1);
    host.copy(0, 1);
    const int32_t len = dev.seq_length(0);
    REQUIRE(len % sh.page != 0);
    check_same_rows(dev, host);  // the copy's ring rows too
    const auto got = kv_step(dev, sh, {g_vk, cpu_ref.get()}, {1, 0}, {len, len}, seed, true);
    const auto want = kv_step(host, sh, {cpu_ref.get()}, {1, 0}, {len, len}, seed, false);
    CHECK(nmse(got, want) <= kF32Ops);
    check_same_rows(dev, host);
  }
}

// FP8 quantisation of awkward blocks: all zeros, signed zeros, values whose scaled form
// is subnormal in E4M3 or ties between two E4M3 steps, maxima exactly 448 * 2^e and just
// above, huge and tiny magnitudes, infinities (saturate; the block keeps the smallest
// scale) and NaN (skipped by the block maximum). Pages must hold the CPU's bytes and the
// ring the exact inputs.
TEST_CASE("vulkan FP8 kv_store quantises awkward blocks like the CPU", "[vulkan]") {
  const KvShape sh{DType::FP8_KV, 32, 8, 8, 4};
  const auto comps = kv_layer(sh.type, sh.hd * sh.n_kv);
  const KvWindow win = window_for(sh.type);
  KvCache dev(comps, sh.page, 64, 2, {}, {}, win, vulkan_tier(sh.type, sh.hd));
  KvCache host(comps, sh.page, 64, 2, {}, {}, win);
  const Filler awkward = [](Tensor* t) {
    auto* p = static_cast<float*>(t->data);
    const int64_t n = t->n_elements();
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t blk = (i / 32) % 8, j = i % 32;
      const float u = static_cast<float>(static_cast<int>((i * 2654435761u) >> 16) % 2001 - 1000) / 1000.0f;
      float x = 0.0f;
      switch (blk) {
        case 0: x = j % 2 ? -0.0f : 0.0f; break;                          // zeros
        case 1: x = j == 0 ? 448.0f : u * 448.0f; break;                  // max exactly 448
        case 2: x = j == 0 ? std::nextafter(448.0f, inf) : u * 3.0f; break;  // just above
        case 3: x = std::ldexp(static_cast<float>(j) + 0.5f, -12); break;  // ties, subnormals
        case 4: x = u * 1e30f; break;                                     // huge
        case 5: x = u * 1e-20f + (j == 3 ? 1e-44f : 0.0f); break;         // tiny
        case 6: x = j == 5 ? inf : j == 6 ? -inf : u; break;              // infinities
        default: x = j == 7 ? std::numeric_limits<float>::quiet_NaN() : u * 7.0f; break;
      }
      p[i] = x;
    }
  };
  for (int32_t step = 0; step < 2; ++step) {
    std::vector<int32_t> seq, pos;
    for (int32_t i = 0; i < 5; ++i) {
      seq.push_back(step);
      pos.push_back(i);
    }
    const int32_t t = static_cast<int32_t>(seq.size());
    for (KvCache* c : {&dev, &host}) {
      c->begin_batch(t, seq.data(), pos.data());
      Graph gc;
      Tensor* k = gc.input(DType::F32, sh.hd * sh.n_kv, t, 1, "k");
      Tensor* v = gc.input(DType::F32, sh.hd * sh.n_kv, t, 1, "v");
      Tensor* stored = gc.kv_store(k, v, c->view(), 0, 1);
      if (c == &dev) REQUIRE(g_vk->supports(*stored));
      gc.mark_output(stored);
      auto cpu_ref = make_cpu_backend(true);
      if (c == &dev)
        run(gc, {g_vk, cpu_ref.get()}, stored, awkward);
      else
        run(gc, {cpu_ref.get()}, stored, awkward);
    }
  }
  check_same_rows(dev, host);
  // And the bytes are what quantize_fp8_kv makes of the values (not only the same on both).
  std::vector<float> x(static_cast<size_t>(sh.hd * sh.n_kv) * 5);
  Graph g;
  Tensor* probe = g.input(DType::F32, sh.hd * sh.n_kv, 5, 1, "k");
  probe->data = x.data();
  awkward(probe);
  std::vector<uint8_t> want(comps[0].row_bytes() * 5);
  traits(DType::FP8_KV).from_f32(x.data(), want.data(), static_cast<int64_t>(x.size()));
  CHECK(kv_rows(dev, 0, 0) == want);
}

// Small device and host budgets with a disk tier: blocks move between Vulkan memory, RAM
// and disk, and are staged back into device memory before attention; the outputs must
// equal those of an all-device cache bit for bit.
TEST_CASE("vulkan attention over tiered device pages equals all-device pages", "[vulkan]") {
  namespace fs = std::filesystem;
  struct ScratchDir {
    fs::path path = fs::current_path() / fmt::format("vkkv-{}", ::getpid());
    ScratchDir() {
      fs::remove_all(path);
      fs::create_directories(path);
    }
    ~ScratchDir() { fs::remove_all(path); }
  } dir;
  for (const KvShape sh : {KvShape{DType::F16, 8, 8, 4, 4}, KvShape{DType::FP8_KV, 8, 8, 4, 4}}) {
    INFO(name_of(sh.type));
    const auto comps = kv_layer(sh.type, sh.hd * sh.n_kv);
    const KvWindow win = window_for(sh.type);
    // A context of 1024 rows, so the budgets below do not hold it and a disk tier is made.
    KvCache all(comps, sh.page, 1024, 2, {}, {}, win, vulkan_tier(sh.type, sh.hd));
    KvBudgets small;
    small.hot_bytes = 8 * 4096;   // eight blocks (slots are padded to 4 KiB for disk)
    small.warm_bytes = 3 * 4096;  // three; the other pages go to disk
    small.disk.dir = dir.path.string();
    KvCache tiered(comps, sh.page, 1024, 2, small, {}, win, vulkan_tier(sh.type, sh.hd));
    REQUIRE(tiered.hot_on_device());
    auto cpu_ref = make_cpu_backend(true);
    uint32_t seed = 11;
    // Batches are cut to what the small device tier holds, as the context does.
    const size_t step = static_cast<size_t>(tiered.max_batch_tokens());
    REQUIRE(step < 37);
    for (const KvBatch& b : kv_batches(6)) {
      for (size_t i0 = 0; i0 < b.seq.size(); i0 += step) {
        const size_t i1 = std::min(b.seq.size(), i0 + step);
        const std::vector<int32_t> seq(b.seq.begin() + i0, b.seq.begin() + i1);
        const std::vector<int32_t> pos(b.pos.begin() + i0, b.pos.begin() + i1);
        const auto want = kv_step(all, sh, {g_vk, cpu_ref.get()}, seq, pos, seed, true);
        const auto got = kv_step(tiered, sh, {g_vk, cpu_ref.get()}, seq, pos, seed, true);
        ++seed;
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
      }
    }
    const KvStats st = tiered.stats();
    CHECK(st.hot_on_device);
    CHECK(st.tiers[0].bytes > 0);
    CHECK(st.tiers[1].blocks > 0);
    CHECK(st.tiers[2].blocks > 0);
    CHECK(st.disk_io.bytes_read > 0);
    check_same_rows(tiered, all);
  }
}

namespace {
// q, k and v values that depend only on the token's position (not on the batch it is in),
// so a sequence can be run as one prefill or as a prefill and decode steps.
Filler by_position(const std::vector<int32_t>& pos) {
  return [pos](Tensor* t) {
    auto* p = static_cast<float*>(t->data);
    const int64_t per_token = t->n_elements() / static_cast<int64_t>(pos.size());
    const uint32_t salt = static_cast<uint32_t>(t->name[0]);
    for (size_t r = 0; r < pos.size(); ++r)
      for (int64_t i = 0; i < per_token; ++i) {
        uint32_t h = (static_cast<uint32_t>(pos[r]) * 2654435761u) ^ (static_cast<uint32_t>(i) * 40503u) ^
                     (salt * 97u);
        h ^= h >> 15;
        h *= 0x2c1b3c6du;
        h ^= h >> 12;
        p[static_cast<int64_t>(r) * per_token + i] = static_cast<float>(h & 0xffff) / 32768.0f - 1.0f;
      }
  };
}
std::vector<int32_t> positions(int32_t from, int32_t to) {
  std::vector<int32_t> v;
  for (int32_t i = from; i < to; ++i) v.push_back(i);
  return v;
}
}  // namespace

// Long contexts: a 2000-row prefill (one workgroup per head and token, spans merged in the
// kernel) and decode steps after it (split over spans of 256 rows, then a merge pass)
// against the CPU reference; and decode steps must equal the same tokens computed in one
// batch (one pass) bit for bit: sequence 1, a copy of sequence 0's prefill, takes them as a
// batch of 5 (more than kSplitMaxTokens).
// FP8 pages: the window's last 16 rows from the ring (a ring of 2048 rows holds the
// 2000-row prefill batch), the rest dequantised, in the split and one-pass kernels alike.
TEST_CASE("vulkan split decode attention over long contexts", "[vulkan]") {
  const DType type = GENERATE(DType::F16, DType::FP8_KV);
  const KvShape sh{type, 32, 4, 2, 16};
  INFO(name_of(sh.type));
  const auto comps = kv_layer(sh.type, sh.hd * sh.n_kv);
  constexpr int32_t kCtx = 2048, kLong = 2000, kSteps = 5;
  static_assert(kSteps > vk::kSplitMaxTokens);
  const KvWindow win = window_for(sh.type, 2048);
  KvCache dev(comps, sh.page, kCtx, 2, {}, {}, win, vulkan_tier(sh.type, sh.hd));
  KvCache host(comps, sh.page, kCtx, 1, {}, {}, win);
  std::vector<float> scores(kCtx * static_cast<size_t>(sh.n_head));
  host.view()->scratch = scores.data();
  host.view()->scratch_stride = static_cast<int64_t>(scores.size());
  REQUIRE(dev.hot_on_device());
  auto cpu_ref = make_cpu_backend(true);
  const std::vector<Backend*> on_vk = {g_vk, cpu_ref.get()}, on_cpu = {cpu_ref.get()};

  const auto pre = positions(0, kLong);
  const std::vector<int32_t> seq0(pre.size(), 0);
  bool split = true;
  const auto got = kv_step(dev, sh, on_vk, seq0, pre, 0, true, by_position(pre), &split);
  CHECK_FALSE(split);  // a prefill: one pass
  const auto want = kv_step(host, sh, on_cpu, seq0, pre, 0, false, by_position(pre));
  INFO("prefill nmse " << nmse(got, want));
  CHECK(nmse(got, want) <= kF32Ops);
  dev.copy(0, 1);
  std::vector<float> decoded;
  for (int32_t p = kLong; p < kLong + kSteps; ++p) {
    const std::vector<int32_t> one = {p};
    const auto g1 = kv_step(dev, sh, on_vk, {0}, one, 0, true, by_position(one), &split);
    CHECK(split);  // a decode step over 8 spans: split, then merged
    const auto w1 = kv_step(host, sh, on_cpu, {0}, one, 0, false, by_position(one));
    INFO("decode at " << p << ": nmse " << nmse(g1, w1) << " threshold " << kF32Ops);
    CHECK(nmse(g1, w1) <= kF32Ops);
    decoded.insert(decoded.end(), g1.begin(), g1.end());
  }
  const auto steps = positions(kLong, kLong + kSteps);
  const auto batch = kv_step(dev, sh, on_vk, std::vector<int32_t>(kSteps, 1), steps, 0, true,
                             by_position(steps), &split);
  CHECK_FALSE(split);
  REQUIRE(batch.size() == decoded.size());
  CHECK(std::memcmp(batch.data(), decoded.data(), batch.size() * sizeof(float)) == 0);
}

TEST_CASE("unsupported heads keep host pages; FP8 pages need their window", "[vulkan]") {
  CHECK(g_vk->make_kv_tier(DType::FP8_KV, 64, 4, 4096) != nullptr);
  CHECK(g_vk->make_kv_tier(DType::FP8_KV, 512, 4, 4096) == nullptr);
  CHECK(g_vk->make_kv_tier(DType::F16, 512, 4, 4096) == nullptr);
  CHECK(g_vk->make_kv_tier(DType::F16, 64, 4, 4096) != nullptr);
  // FP8 pages in device memory without the window ring would not compute the CPU's
  // results (its kernels read the window's rows exactly): not run on Vulkan.
  const auto comps = kv_layer(DType::FP8_KV, 32);
  KvCache bare(comps, 4, 64, 1, {}, {}, {}, vulkan_tier(DType::FP8_KV, 8));
  REQUIRE(bare.hot_on_device());
  const int32_t seq = 0, pos = 0;
  bare.begin_batch(1, &seq, &pos);
  Graph g;
  Tensor* k = g.input(DType::F32, 32, 1, 1, "k");
  Tensor* v = g.input(DType::F32, 32, 1, 1, "v");
  CHECK_FALSE(g_vk->supports(*g.kv_store(k, v, bare.view(), 0, 1)));
}

TEST_CASE("ops without a Vulkan kernel stay on the CPU", "[vulkan]") {
  Graph g;
  Tensor* a = g.input(DType::F32, 64, 2, 1, "a");
  Tensor* q = g.copy(a, DType::Q8_0);  // quantising copy: CPU only
  CHECK_FALSE(g_vk->supports(*q));
}

}  // namespace v4

int main(int argc, char** argv) {
  std::string why;
  if (v4::vulkan_devices(&why).empty()) {
    std::printf("SKIP: no Vulkan device (%s)\n", why.c_str());
    return 77;
  }
  const char* full = std::getenv("V4_VULKAN_FULL");
  v4::g_full = full && *full && std::strcmp(full, "0") != 0;
  std::unique_ptr<v4::Backend> vk;
  try {
    vk = v4::make_vulkan_backend(std::getenv("V4_VULKAN_DEVICE") ? std::getenv("V4_VULKAN_DEVICE") : "", false);
  } catch (const std::exception& e) {
    std::printf("SKIP: no usable Vulkan device (%s)\n", e.what());
    return 77;
  }
  v4::g_vk = vk.get();
  std::printf("vulkan device: %s (%s matrix)\n  %s\n", vk->devices().front().name.c_str(),
              v4::g_full ? "full" : "quick", vk->devices().front().details.c_str());
  const int rc = Catch::Session().run(argc, argv);
  vk.reset();
  const uint64_t errors = v4::vulkan_validation_errors();
  if (errors) {
    std::printf("FAIL: %llu Vulkan validation errors\n", static_cast<unsigned long long>(errors));
    return 1;
  }
  return rc;
}

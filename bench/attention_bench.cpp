// CPU attention micro-benchmark: one sequence at context depth N (default 4096) in a
// TinyLlama-shaped paged cache (head_dim 64, 32 query heads over 4 KV heads, 32-row pages,
// one K and one V component per layer), T new tokens attending to it (T = 1: decode; T > 1:
// a prefill tile). Runs every kernel this CPU has (AVX2 and, where present, AVX-512) on the
// same cache, alternating between them repetition by repetition, and reports the calling
// thread's CPU time per token summed over all layers (so --layers 22 streams the cache from
// memory the way a 22-layer model does, while --layers 1 keeps it in cache). Also checks
// that the kernels agree with each other.
//   attention_bench [--depth 4096] [--tokens 1] [--layers 22] [--type f16|bf16|f32]
//                   [--head-dim 64] [--heads 32] [--kv-heads 4] [--page 32] [--reps 20]
// Prints one JSON object per kernel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/fast_attention.h"
#include "lib/core/dtype.h"
#include "lib/core/graph.h"
#include "lib/exec/schedule.h"
#include "lib/kv/kv_cache.h"

using namespace v4;

namespace {

struct Args {
  int depth = 4096, tokens = 1, layers = 22, head_dim = 64, heads = 32, kv_heads = 4, page = 32,
      reps = 20;
  DType type = DType::F16;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--depth") a.depth = std::atoi(v);
    else if (k == "--tokens") a.tokens = std::atoi(v);
    else if (k == "--layers") a.layers = std::atoi(v);
    else if (k == "--head-dim") a.head_dim = std::atoi(v);
    else if (k == "--heads") a.heads = std::atoi(v);
    else if (k == "--kv-heads") a.kv_heads = std::atoi(v);
    else if (k == "--page") a.page = std::atoi(v);
    else if (k == "--reps") a.reps = std::atoi(v);
    else if (k == "--type") {
      const std::string t = v;
      a.type = t == "f32" ? DType::F32 : t == "bf16" ? DType::BF16 : DType::F16;
    } else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of attention_bench.cpp)\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Kernel {
  const char* name;
  cpu::AttentionFn fn;
  std::vector<double> seconds;   // CPU seconds per repetition (all layers)
  std::vector<float> out;        // last layer's output of the last repetition
};

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const int64_t row = static_cast<int64_t>(a.head_dim) * a.kv_heads;
  std::vector<KvComponentSpec> comps;
  for (int l = 0; l < a.layers; ++l) {
    comps.push_back({"blk." + std::to_string(l) + ".k", a.type, row, l});
    comps.push_back({"blk." + std::to_string(l) + ".v", a.type, row, l});
  }
  const int32_t n_rows = a.depth + a.tokens;
  KvCache kv(comps, a.page, static_cast<uint32_t>(n_rows), 1);
  kv.reserve_batch(n_rows);

  // Every row of every component, random in [-1, 1), written in the cache's row type.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> vals(static_cast<size_t>(row) * n_rows);
  std::vector<uint8_t> bytes(row_bytes(a.type, row) * n_rows);
  auto fill = [&](int32_t first, int32_t n) {
    for (size_t c = 0; c < comps.size(); ++c) {
      for (int64_t i = 0; i < row * n; ++i) vals[i] = dist(rng);
      for (int32_t r = 0; r < n; ++r)
        traits(a.type).from_f32(vals.data() + r * row, bytes.data() + r * row_bytes(a.type, row), row);
      kv.write_rows(0, c, first, n, bytes.data());
    }
  };
  std::vector<int32_t> seq(n_rows, 0), pos(n_rows);
  for (int32_t i = 0; i < n_rows; ++i) pos[i] = i;
  kv.begin_batch(a.depth, seq.data(), pos.data());
  fill(0, a.depth);
  kv.begin_batch(a.tokens, seq.data(), pos.data() + a.depth);
  fill(a.depth, a.tokens);

  std::vector<float> scratch(static_cast<size_t>(n_rows) * (a.heads / a.kv_heads) * kAttentionTokenTile);
  kv.view()->scratch = scratch.data();
  kv.view()->scratch_stride = static_cast<int64_t>(scratch.size());

  auto cpu_backend = make_cpu_backend(false);
  Graph g;
  Tensor* q = g.input(DType::F32, a.head_dim, a.heads, a.tokens);
  std::vector<Tensor*> nodes;
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  for (int l = 0; l < a.layers; ++l) {
    nodes.push_back(g.attention(q, nullptr, kv.view(), 2 * l, 2 * l + 1, a.kv_heads, scale));
    g.mark_output(nodes.back());
  }
  Schedule s(g, {cpu_backend.get()});
  std::vector<uint8_t> arena(s.arena_bytes() + 64);
  s.bind(arena.data());
  for (int64_t i = 0; i < q->n_elements(); ++i) q->as<float>()[i] = dist(rng);

  std::vector<Kernel> kernels;
  for (const auto& [name, fn] : cpu::attention_kernels(*nodes[0])) kernels.push_back({name, fn, {}, {}});
  for (int r = 0; r < a.reps; ++r)
    for (Kernel& k : kernels) {
      const double t0 = thread_cpu_seconds();
      for (Tensor* n : nodes) k.fn(n, 0, 1);
      k.seconds.push_back(thread_cpu_seconds() - t0);
      const Tensor* last = nodes.back();
      k.out.assign(last->as<float>(), last->as<float>() + last->n_elements());
    }
  for (Kernel& k : kernels) {
    std::sort(k.seconds.begin(), k.seconds.end());
    double diff = 0;
    for (size_t i = 0; i < k.out.size(); ++i)
      diff = std::max(diff, static_cast<double>(std::fabs(k.out[i] - kernels[0].out[i])));
    const double per_tok = 1e3 / a.tokens;
    std::printf("{\"kernel\": \"%s\", \"type\": \"%s\", \"depth\": %d, \"tokens\": %d, \"layers\": %d, "
                "\"ms_per_token_min\": %.3f, \"ms_per_token_median\": %.3f, "
                "\"ns_per_row_layer_min\": %.2f, \"max_abs_diff_vs_%s\": %.3g}\n",
                k.name, type_name(a.type), a.depth, a.tokens, a.layers, k.seconds.front() * per_tok,
                k.seconds[k.seconds.size() / 2] * per_tok,
                k.seconds.front() * 1e9 / (static_cast<double>(a.tokens) * a.layers * n_rows), kernels[0].name,
                diff);
  }
  return 0;
}

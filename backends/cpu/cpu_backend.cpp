#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <new>
#include <thread>

#include <unistd.h>

#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/fast_attention.h"
#include "backends/cpu/fast_elementwise.h"
#include "backends/cpu/gemm_kernels.h"
#include "backends/cpu/ref_kernels.h"
#include "lib/core/kv_view.h"
#include "lib/core/error.h"
#include "lib/core/threadpool.h"

namespace v4 {
namespace {

struct NodeJob {
  cpu::KernelFn fn;
  const Tensor* node;
};

void run_node_job(void* ctx, int ith, int nth) {
  const auto* job = static_cast<const NodeJob*>(ctx);
  job->fn(job->node, ith, nth);
}

// Ops whose work is too small to be worth waking other threads (estimated in
// multiply-adds; waking a thread costs about as much as a few thousand of them).
bool single_threaded(const Tensor& node) {
  constexpr int64_t kMinWork = 1 << 16;
  switch (node.op) {
    case Op::mul_mat: return node.n_elements() * node.src[0]->ne[0] < kMinWork;
    case Op::attention: return node.n_elements() * 64 < kMinWork;
    default: return node.n_elements() < kMinWork / 4;
  }
}

// Fast matrix multiplication: activations are first quantised to Q8_0 rows in the work
// buffer (when the weight type's kernel wants that), then each thread takes a contiguous
// range of weight rows and multiplies each against every activation row, kMaxCols at a
// time, so a weight row is read from memory once per step.
// With many activation rows (prefill) a GEMM kernel, when the type has one, computes
// register tiles of several weight rows x several activation rows instead.
using QuantizeFn = void (*)(const float* x, uint8_t* out, int64_t k);

struct MatmulJob {
  const Tensor* node;
  const cpu::DotKernel* kernel;
  const cpu::GemmKernel* gemm;  // nullptr: the matvec kernel
  const uint8_t* x;   // activations in the kernel's format
  size_t x_stride;    // bytes per activation row
  QuantizeFn quantize;  // f32 row -> the kernel's format (nullptr: f32 activations)
};

void quantize_rows_job(void* ctx, int ith, int nth) {
  const auto* job = static_cast<const MatmulJob*>(ctx);
  const Tensor* x = job->node->src[1];
  const int64_t m = x->n_rows(), k = x->ne[0];
  for (int64_t r = m * ith / nth; r < m * (ith + 1) / nth; ++r)
    job->quantize(
        reinterpret_cast<const float*>(static_cast<const uint8_t*>(x->data) + r * x->nb[1]),
        const_cast<uint8_t*>(job->x) + r * job->x_stride, k);
}

void matmul_job(void* ctx, int ith, int nth) {
  const auto* job = static_cast<const MatmulJob*>(ctx);
  const Tensor* node = job->node;
  const Tensor* w = node->src[0];
  const int64_t k = w->ne[0], n_out = w->ne[1], m = node->src[1]->n_rows();
  float res[cpu::kMaxCols];
  for (int64_t n = n_out * ith / nth; n < n_out * (ith + 1) / nth; ++n) {
    const auto* wrow = static_cast<const uint8_t*>(w->data) + n * w->nb[1];
    for (int64_t j = 0; j < m; j += cpu::kMaxCols) {
      const int nc = static_cast<int>(std::min<int64_t>(cpu::kMaxCols, m - j));
      job->kernel->dot(wrow, job->x + j * job->x_stride, job->x_stride, nc, k, res);
      for (int c = 0; c < nc; ++c)
        reinterpret_cast<float*>(static_cast<uint8_t*>(node->data) + (j + c) * node->nb[1])[n] = res[c];
    }
  }
}

// Each thread takes a contiguous range of weight rows, split at multiples of 16 rows so
// that no two threads write the same 64-byte line of an output row.
void gemm_job(void* ctx, int ith, int nth) {
  const auto* job = static_cast<const MatmulJob*>(ctx);
  const Tensor* node = job->node;
  const Tensor* w = node->src[0];
  const int64_t n_out = w->ne[1], units = (n_out + 15) / 16;
  cpu::GemmArgs a;
  a.w = static_cast<const uint8_t*>(w->data);
  a.w_stride = w->nb[1];
  a.x = job->x;
  a.x_stride = job->x_stride;
  a.out = static_cast<float*>(node->data);
  a.out_stride = node->nb[1] / sizeof(float);
  a.k = w->ne[0];
  a.m = node->src[1]->n_rows();
  a.row_begin = std::min(n_out, units * ith / nth * 16);
  a.row_end = std::min(n_out, units * (ith + 1) / nth * 16);
  if (a.row_begin < a.row_end) job->gemm->gemm(a);
}

// The GEMM kernel for a matmul node, or nullptr where the matvec kernel runs.
const cpu::GemmKernel* gemm_for(const Tensor& node) {
  if (node.src[1]->n_rows() < cpu::kGemmMinCols || node.nb[1] % sizeof(float) != 0) return nullptr;
  return cpu::find_gemm_kernel(node.src[0]->type);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(bool reference_only) : reference_only_(reference_only) {}
  const char* name() const override { return "cpu"; }

  std::vector<DeviceInfo> devices() const override {
    DeviceInfo d;
    d.name = "CPU";
    d.kind = "cpu";
    const long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
    const long page = sysconf(_SC_PAGESIZE);
    d.memory_total = pages > 0 ? static_cast<uint64_t>(pages) * page : 0;
    d.memory_free = avail > 0 ? static_cast<uint64_t>(avail) * page : 0;
    return {d};
  }

  bool supports(const Tensor& node) const override {
    return node.op == Op::view || cpu::reference_kernel(node) != nullptr;
  }


  void prepare(Tensor* const* nodes, size_t n) override {
    size_t need = 0;
    for (size_t i = 0; i < n; ++i) {
      const Tensor* t = nodes[i];
      if (t->op != Op::mul_mat) continue;
      const cpu::DotKernel* k = cpu::find_dot_kernel(t->src[0]->type);
      if (k && k->act != cpu::ActFormat::f32)
        need = std::max(need, cpu::act_row_bytes(k->act, t->src[1]->ne[0]) * t->src[1]->n_rows());
      const cpu::GemmKernel* g = k ? gemm_for(*t) : nullptr;
      if (g && g->quantize_row)
        need = std::max(need, g->act_row_bytes(t->src[1]->ne[0]) * t->src[1]->n_rows());
    }
    if (need > work_.size()) work_.resize(need);
    quantized_ = ActKey{};
  }

  // Which kernel each weight type's matmuls and the attention take (`v4 info --plan`).
  std::string describe_kernels(const Tensor* const* nodes, size_t n,
                               const std::string& indent) const override {
    std::map<std::string, std::string> lines;  // by weight type: sorted, each once
    for (size_t i = 0; i < n; ++i) {
      const Tensor* t = nodes[i];
      if (t->op == Op::mul_mat) {
        const DType wt = t->src[0]->type;
        const cpu::DotKernel* k = reference_only_ ? nullptr : cpu::find_dot_kernel(wt);
        const cpu::GemmKernel* g = k ? cpu::find_gemm_kernel(wt) : nullptr;
        lines[type_name(wt)] =
            k ? fmt::format("matvec {} ({} activations), prefill {}", k->isa, cpu::act_format_name(k->act),
                            g ? fmt::format("GEMM {}", g->isa) : std::string("by the matvec"))
              : std::string("reference kernel");
      } else if (t->op == Op::attention) {
        const cpu::AttentionFn f = reference_only_ ? nullptr : cpu::fast_attention_kernel(*t);
        std::string name = "reference kernel";
        for (const auto& [label, fn] : cpu::attention_kernels(*t))
          if (fn == f) name = label;
        lines["attention"] = name;
      }
    }
    std::string out;
    for (const auto& [what, how] : lines) out += fmt::format("{}kernel {}: {}\n", indent, what, how);
    return out;
  }

  bool compute(Tensor* const* nodes, size_t n, const ComputeEnv& env) override {
    quantized_ = ActKey{};
    for (size_t i = 0; i < n; ++i) {
      if (env.abort && env.abort(env.abort_user)) return false;
      const Tensor* node = nodes[i];
      if (node->op == Op::view) continue;
      if (node->op == Op::mul_mat && run_fast_matmul(node, env)) continue;
      quantized_ = ActKey{};
      if (node->op == Op::attention || node->op == Op::kv_store) check_host_kv(*node);
      if (node->op == Op::attention) make_resident(*node);
      NodeJob job{cpu::reference_kernel(*node), node};
      if (node->op == Op::attention && !reference_only_)
        if (const cpu::AttentionFn fast = cpu::fast_attention_kernel(*node)) job.fn = fast;
      if (node->op == Op::swiglu && !reference_only_)
        if (const cpu::ElementwiseFn fast = cpu::fast_elementwise_kernel(*node)) job.fn = fast;
      if (!job.fn) fail(Status::unsupported, "cpu: no kernel for op {}", op_name(node->op));
      const int n_threads = single_threaded(*node) ? 1 : env.n_threads;
      env.pool->run(run_node_job, &job, n_threads);
    }
    return true;
  }

 private:
  // KV pages in a device backend's memory are that backend's to read (never a crash).
  static void check_host_kv(const Tensor& node) {
    if (static_cast<const KvView*>(node.pparam)->on_device)
      fail(Status::unsupported, "cpu: {} reads KV pages that live in device memory; the device "
           "backend must run it (use --backend cpu to keep KV pages on the host)", node.name);
  }

  // Tiered KV caches page the layer's blocks in before its attention reads them.
  static void make_resident(const Tensor& node) {
    const KvView& kv = *static_cast<const KvView*>(node.pparam);
    if (kv.residency) kv.residency->ensure_resident(kv.comps[node.iparam[0]].group);
  }

  bool run_fast_matmul(const Tensor* node, const ComputeEnv& env) {
    const Tensor* x = node->src[1];
    const cpu::DotKernel* kernel = cpu::find_dot_kernel(node->src[0]->type);
    if (reference_only_ || !kernel || !x->is_contiguous()) return false;
    const cpu::GemmKernel* gemm = gemm_for(*node);
    MatmulJob job{node, kernel, gemm, static_cast<const uint8_t*>(x->data), x->nb[1], nullptr};
    if (kernel->act != cpu::ActFormat::f32) {
      job.quantize = gemm ? gemm->quantize_row : cpu::act_quantizer(kernel->act);
      job.x_stride = gemm ? gemm->act_row_bytes(x->ne[0]) : cpu::act_row_bytes(kernel->act, x->ne[0]);
      job.x = work_.data();
      const ActKey key{x->data, x->n_rows(), x->ne[0], job.quantize};
      if (!(key == quantized_)) {
        const int q_threads = x->n_rows() >= 4 * env.n_threads ? env.n_threads : 1;
        env.pool->run(quantize_rows_job, &job, q_threads);
        quantized_ = key;
      }
    }
    env.pool->run(gemm ? gemm_job : matmul_job, &job, single_threaded(*node) ? 1 : env.n_threads);
    if (overlaps(*node, quantized_)) quantized_ = ActKey{};
    return true;
  }

  // What work_ holds: the rows of one f32 activation tensor in one kernel format. The q, k
  // and v projections read the same normed rows, and so do gate and up: they quantise them
  // once (measured: under 0.5% of a decode token, so a small saving, but free). The key
  // holds only while no other node runs in between (a later node may rewrite the rows in
  // place or reuse their memory): compute() forgets it at every other node.
  struct ActKey {
    const void* data = nullptr;
    int64_t rows = 0, k = 0;
    QuantizeFn quantize = nullptr;
    bool operator==(const ActKey&) const = default;
  };

  // A matmul whose output memory overlaps the cached rows invalidates them.
  static bool overlaps(const Tensor& out, const ActKey& key) {
    if (!key.data) return false;
    const auto* o = static_cast<const uint8_t*>(out.data);
    const auto* d = static_cast<const uint8_t*>(key.data);
    const size_t src_bytes = static_cast<size_t>(key.rows * key.k) * sizeof(float);
    return o < d + src_bytes && d < o + out.nbytes();
  }

  bool reference_only_;
  std::vector<uint8_t> work_;  // quantised activations, sized by prepare()
  ActKey quantized_;           // what work_ holds now
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(bool reference_only) {
  return std::make_unique<CpuBackend>(reference_only);
}

}  // namespace v4

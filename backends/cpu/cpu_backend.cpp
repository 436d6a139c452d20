#include "backends/cpu/cpu_backend.h"

#include <cstdlib>
#include <new>
#include <thread>

#include <unistd.h>

#include "backends/cpu/ref_kernels.h"
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

class CpuBackend final : public Backend {
 public:
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

  void* alloc(size_t bytes, size_t align) override {
    void* p = nullptr;
    if (posix_memalign(&p, align, bytes == 0 ? align : bytes) != 0)
      fail(Status::out_of_memory, "cpu: cannot allocate {} bytes", bytes);
    return p;
  }
  void free(void* ptr) override { std::free(ptr); }

  bool compute(Tensor* const* nodes, size_t n, const ComputeEnv& env) override {
    for (size_t i = 0; i < n; ++i) {
      if (env.abort && env.abort(env.abort_user)) return false;
      const Tensor* node = nodes[i];
      if (node->op == Op::view) continue;
      NodeJob job{cpu::reference_kernel(*node), node};
      if (!job.fn) fail(Status::unsupported, "cpu: no kernel for op {}", op_name(node->op));
      const int n_threads = single_threaded(*node) ? 1 : env.n_threads;
      env.pool->run(run_node_job, &job, n_threads);
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace v4

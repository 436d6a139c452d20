// The seam between the executor and the hardware. A backend says which ops it can run,
// owns the memory it computes on, and runs a contiguous run of graph nodes (a split).
// The CPU backend is always present and is the numeric reference for every other one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/tensor.h"

namespace v4 {

class ThreadPool;
class KvTier;  // lib/kv/kv_tier.h

struct DeviceInfo {
  std::string name;
  std::string kind;        // "cpu", "gpu", ...
  uint64_t memory_total = 0;
  uint64_t memory_free = 0;
  std::string details;     // backend-specific: memory heaps, probed features
};

// Tensors a device backend moves around one split (views resolved to the tensor that
// owns the bytes): `in` are copied from host memory before the split's nodes run, `out`
// back to host memory after them. Decided once per schedule by the executor.
struct SplitCopies {
  std::vector<const Tensor*> in, out;
};

// Everything a split needs from its caller while it runs.
struct ComputeEnv {
  ThreadPool* pool = nullptr;
  int n_threads = 1;
  bool (*abort)(void* user) = nullptr;  // checked between nodes
  void* abort_user = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual std::vector<DeviceInfo> devices() const = 0;
  // Whether this backend can compute `node` with its current source types.
  virtual bool supports(const Tensor& node) const = 0;
  // Called once per schedule with the nodes assigned to this backend, before any run:
  // size per-graph scratch here so that running allocates nothing.
  virtual void prepare(Tensor* const* nodes, size_t n) {
    (void)nodes;
    (void)n;
  }
  // Memory for the executor's arena, aligned to `align`. Host memory for every backend: a
  // device backend mirrors the arena on its device (bind_arena). Throws out_of_memory.
  virtual void* alloc(size_t bytes, size_t align);
  virtual void free(void* ptr);
  // Computes nodes[0..n) in order. Returns false if the abort callback fired (the
  // remaining nodes were not run). Throws v4::Error on failure.
  virtual bool compute(Tensor* const* nodes, size_t n, const ComputeEnv& env) = 0;
  virtual void synchronize() {}

  // ---- Device backends (GPUs) ------------------------------------------------------
  // False for a backend that computes in its own memory: the executor then uploads the
  // weights its nodes read and inserts copies where data crosses to or from the host.
  virtual bool uses_host_memory() const { return true; }
  // Makes a weight leaf resident on the device (once; repeated calls are cheap).
  virtual void upload_weight(const Tensor& weight) { (void)weight; }
  // Intermediates keep the offsets the memory plan gave them in the host arena `host`
  // (`bytes` long) inside a device arena of the same size, so one plan serves both.
  virtual void bind_arena(const uint8_t* host, size_t bytes) {
    (void)host;
    (void)bytes;
  }
  // Called once per split of a schedule, before any run (the default: prepare()).
  virtual void prepare_split(Tensor* const* nodes, size_t n, const SplitCopies& copies) {
    (void)copies;
    prepare(nodes, n);
  }
  // The schedule that owned this split is being destroyed.
  virtual void release_split(Tensor* const* nodes, size_t n) {
    (void)nodes;
    (void)n;
  }
  // A few lines on the kernels this backend would run the split's nodes with (for `v4 info
  // --plan`), each starting with `indent`; empty when there is nothing to add.
  virtual std::string describe_kernels(const Tensor* const* nodes, size_t n,
                                       const std::string& indent) const {
    (void)nodes;
    (void)n;
    (void)indent;
    return {};
  }
  // Bytes of weights resident in device memory (for `v4 info --plan`).
  virtual size_t device_weight_bytes() const { return 0; }
  // The KV cache's hot tier in this backend's memory: `n_slots` slots of `slot_bytes`
  // whose address_base() this backend's kv_store and attention read (docs/KV_TIERS.md).
  // Returns nullptr (the default) when it does not run both ops over pages of `type` with
  // heads of `head_dim` values: the cache then keeps host pages, read by the CPU.
  virtual std::unique_ptr<KvTier> make_kv_tier(DType type, int64_t head_dim, uint32_t n_slots,
                                               size_t slot_bytes);
};

}  // namespace v4

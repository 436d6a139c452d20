// The device's copy of what kernels need from a KvView besides the pages themselves: each
// batch token's sequence and position and the logical page tables of the batch's sequences,
// flattened into one array, uploaded once per compute() through a pinned staging buffer (every
// layer reads the same view); and each group's slot table (logical page -> pool slot), uploaded
// at every use because residency may move a group's blocks between layers. The pages must
// already be device memory (a device KV tier); CudaBackend::supports() checks that and leaves
// host-memory KV on the CPU.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <unordered_map>

#include "backends/cuda/cuda_memory_pool.h"
#include "backends/cuda/cuda_stream.h"
#include "backends/cuda/kernels.h"
#include "lib/core/kv_view.h"

namespace v4::cuda {

class KvMirror {
 public:
  explicit KvMirror(MemoryPool& pool) : pool_(pool) {}
  ~KvMirror();
  KvMirror(const KvMirror&) = delete;
  KvMirror& operator=(const KvMirror&) = delete;

  // Forgets the last upload (call at the start of each compute: the view's contents change
  // between runs even though its address does not).
  void invalidate() { uploaded_ = nullptr; }
  // Uploads kv's batch positions and page tables unless this compute already did.
  void upload(const KvView& kv, cudaStream_t s);
  // The device view of components kc (K) and vc (V) after upload(); enqueues the upload of
  // their groups' current slot tables on `s`.
  DevKvView view(const KvView& kv, int kc, int vc, cudaStream_t s);
  // Rows the longest sequence of the batch attends to (max position + 1).
  int32_t max_rows() const { return max_rows_; }

 private:
  MemoryPool& pool_;
  const KvView* uploaded_ = nullptr;
  std::unique_ptr<PinnedBuffer> staging_;
  void* device_ = nullptr;
  size_t device_bytes_ = 0;
  int32_t stride_ = 0;
  int32_t max_rows_ = 0;
  struct SlotTable {
    void* device = nullptr;
    size_t bytes = 0;
  };
  // Device copy of group g's slot table (uploaded at each use).
  const uint32_t* group_slots(const KvView& kv, int32_t group, cudaStream_t s);
  std::unordered_map<int32_t, SlotTable> slots_;
};

}  // namespace v4::cuda

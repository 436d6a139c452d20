#include "backends/cuda/cuda_kv_tier.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "backends/cuda/cuda_check.h"

namespace v4::cuda {
namespace {

class CudaKvTier final : public KvTier {
 public:
  CudaKvTier(int device, uint32_t n_slots, size_t slot_bytes)
      : device_(device), n_slots_(n_slots), slot_bytes_(slot_bytes) {
    V4_CUDA_CHECK(cudaSetDevice(device_));
    V4_CUDA_CHECK(cudaMalloc(&base_, std::max<size_t>(1, size_t{n_slots} * slot_bytes)));
  }
  ~CudaKvTier() override {
    cudaSetDevice(device_);
    cudaDeviceSynchronize();
    cudaFree(base_);
  }

  const char* name() const override { return "device"; }
  uint32_t n_slots() const override { return n_slots_; }
  size_t slot_bytes() const override { return slot_bytes_; }
  uint8_t* slot_data(uint32_t) override { return nullptr; }
  uint8_t* address_base() override { return static_cast<uint8_t*>(base_); }
  void write_slot(uint32_t slot, const void* src) override {
    pending_.push_back({slot, src, nullptr});
  }
  void read_slot(uint32_t slot, void* dst) override { pending_.push_back({slot, nullptr, dst}); }

  void wait() override {
    if (pending_.empty()) return;
    V4_CUDA_CHECK(cudaSetDevice(device_));
    // Kernels queued before (the previous layer's attention) may still read these slots.
    V4_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<Copy> todo;
    todo.swap(pending_);
    for (const Copy& c : todo) {
      uint8_t* slot = static_cast<uint8_t*>(base_) + size_t{c.slot} * slot_bytes_;
      if (c.src)
        V4_CUDA_CHECK(cudaMemcpy(slot, c.src, slot_bytes_, cudaMemcpyHostToDevice));
      else
        V4_CUDA_CHECK(cudaMemcpy(c.dst, slot, slot_bytes_, cudaMemcpyDeviceToHost));
    }
  }

 private:
  struct Copy {
    uint32_t slot;
    const void* src;  // write_slot
    void* dst;        // read_slot
  };
  int device_;
  uint32_t n_slots_;
  size_t slot_bytes_;
  void* base_ = nullptr;
  std::vector<Copy> pending_;
};

}  // namespace

std::unique_ptr<KvTier> make_cuda_kv_tier(int device, uint32_t n_slots, size_t slot_bytes) {
  return std::make_unique<CudaKvTier>(device, n_slots, slot_bytes);
}

}  // namespace v4::cuda

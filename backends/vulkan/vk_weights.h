// Weights on the device: each weight tensor the executor places here is uploaded once,
// from wherever the model keeps it (mmap or read memory) through a staging ring, into
// large device-local blocks, and found again by its host address. The ring has two slots:
// the host fills one (reading the mmap) while the device copies the other, and small
// tensors share a slot, so loading a model costs a few submissions, not one per tensor.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backends/vulkan/vk_buffer.h"
#include "backends/vulkan/vk_commands.h"

namespace v4::vk {

struct Location {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
};

class WeightStore {
 public:
  WeightStore(const Device& dev, Commands& cmds);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;
  // Queues the upload of `bytes` at `host` unless already there; flush() completes it.
  void upload(const void* host, size_t bytes);
  // Waits until every queued upload is in device memory (before a run reads weights).
  void flush();
  // Where a weight's bytes live; `host` may point inside an uploaded weight.
  bool find(const void* host, Location* out) const;
  size_t bytes() const { return bytes_; }
  size_t count() const { return where_.size(); }
  // Size of one of the store's blocks (0 if `b` is not one).
  VkDeviceSize block_size(VkBuffer b) const;

 private:
  struct Entry {
    size_t block, offset, bytes;
  };
  const Device& dev_;
  Commands& cmds_;
  std::vector<Buffer> blocks_;
  size_t block_used_ = 0;
  std::unordered_map<const void*, Entry> where_;
  size_t bytes_ = 0;

  // One slot of the staging ring: its part of `staging_`, command buffer and fence.
  struct Slot {
    VkCommandBuffer cb = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    size_t used = 0;         // bytes filled
    bool recording = false;  // cb is recording this slot's copies
    bool in_flight = false;  // submitted, fence not yet waited for
  };
  void start_slot(Slot& s);
  void submit_slot();
  void wait_slot(Slot& s);
  Buffer staging_;
  Slot slots_[2];
  size_t cur_ = 0;  // the slot being filled
};

}  // namespace v4::vk

// Weights on the device: each weight tensor the executor places here is uploaded once,
// from wherever the model keeps it (mmap or read memory) through a staging buffer, into
// large device-local blocks, and found again by its host address.
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
  WeightStore(const Device& dev, Commands& cmds) : dev_(dev), cmds_(cmds) {}
  // Uploads `bytes` at `host` unless already there.
  void upload(const void* host, size_t bytes);
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
  Buffer staging_;
};

}  // namespace v4::vk

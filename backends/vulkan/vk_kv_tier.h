// The KV cache's hot tier in Vulkan device memory (docs/KV_TIERS.md): one device-local
// buffer of slots, read and written by the kv_store and attention shaders. The cache
// addresses slots by pointer (KvView), so each pool also reserves an inaccessible host
// address range of its size: kernels' "addresses" are inside it, and the backend turns
// one into (buffer, offset) the way it maps arena addresses. Blocks move in and out
// through a host-visible staging buffer with queued copies (KvTier::write_slot/read_slot).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/vulkan/vk_commands.h"
#include "backends/vulkan/vk_device.h"
#include "lib/kv/kv_tier.h"

namespace v4::vk {

// The device KV pools alive on one backend.
class KvPools {
 public:
  struct Range {
    const uint8_t* base = nullptr;  // the reserved host range standing for the buffer
    size_t bytes = 0;
    VkBuffer buffer = VK_NULL_HANDLE;
  };
  void add(const Range& r) { ranges_.push_back(r); }
  void remove(const uint8_t* base);
  // The pool holding address p, or nullptr.
  const Range* find(const void* p) const;

 private:
  std::vector<Range> ranges_;
};

// `n_slots` slots of `slot_bytes` (the caller checks the size against the device's
// binding limit). The tier must be destroyed before `dev`, `cmds` and `pools`.
std::unique_ptr<KvTier> make_vulkan_kv_tier(const Device& dev, Commands& cmds, KvPools& pools,
                                            uint32_t n_slots, size_t slot_bytes);

}  // namespace v4::vk

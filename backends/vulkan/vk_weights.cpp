#include "backends/vulkan/vk_weights.h"

#include <algorithm>
#include <cstring>

namespace v4::vk {
namespace {
constexpr size_t kBlockBytes = size_t{256} << 20;   // fewer, larger allocations
constexpr size_t kStagingBytes = size_t{16} << 20;  // upload chunk
constexpr size_t kAlign = 256;                      // >= any minStorageBufferOffsetAlignment
}  // namespace

void WeightStore::upload(const void* host, size_t bytes) {
  if (where_.count(host)) return;
  const size_t size = (bytes + kAlign - 1) / kAlign * kAlign;
  if (blocks_.empty() || block_used_ + size > blocks_.back().size()) {
    blocks_.emplace_back(dev_, std::max(kBlockBytes, size), Buffer::Kind::device);
    block_used_ = 0;
  }
  const Entry e{blocks_.size() - 1, block_used_, bytes};
  block_used_ += size;
  if (!staging_) staging_ = Buffer(dev_, kStagingBytes, Buffer::Kind::staging);
  VkCommandBuffer cb = cmds_.allocate();
  for (size_t done = 0; done < bytes; done += kStagingBytes) {
    const size_t n = std::min(kStagingBytes, bytes - done);
    std::memcpy(staging_.mapped(), static_cast<const uint8_t*>(host) + done, n);
    begin(cb, true);
    VkBufferCopy region{0, e.offset + done, n};
    vkCmdCopyBuffer(cb, staging_.handle(), blocks_[e.block].handle(), 1, &region);
    end(cb);
    cmds_.submit_wait(cb);
  }
  cmds_.release(cb);
  where_.emplace(host, e);
  bytes_ += bytes;
}

bool WeightStore::find(const void* host, Location* out) const {
  auto it = where_.find(host);
  if (it == where_.end()) return false;
  out->buffer = blocks_[it->second.block].handle();
  out->offset = it->second.offset;
  return true;
}

VkDeviceSize WeightStore::block_size(VkBuffer b) const {
  for (const Buffer& blk : blocks_)
    if (blk.handle() == b) return blk.size();
  return 0;
}

}  // namespace v4::vk

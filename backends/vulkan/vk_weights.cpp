#include "backends/vulkan/vk_weights.h"

#include <algorithm>
#include <cstring>

namespace v4::vk {
namespace {
constexpr size_t kBlockBytes = size_t{256} << 20;   // fewer, larger allocations
constexpr size_t kSlotBytes = size_t{16} << 20;     // one slot of the staging ring
constexpr size_t kSlots = 2;
constexpr size_t kAlign = 256;                      // >= any minStorageBufferOffsetAlignment
}  // namespace

WeightStore::WeightStore(const Device& dev, Commands& cmds) : dev_(dev), cmds_(cmds) {
  for (Slot& s : slots_) {
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check(vkCreateFence(dev.handle(), &fi, nullptr, &s.fence), "vkCreateFence");
    s.cb = cmds.allocate();
  }
}

WeightStore::~WeightStore() {
  for (Slot& s : slots_) {
    // No throwing here: a lost device still frees its objects.
    if (s.in_flight) vkWaitForFences(dev_.handle(), 1, &s.fence, VK_TRUE, UINT64_MAX);
    cmds_.release(s.cb);
    vkDestroyFence(dev_.handle(), s.fence, nullptr);
  }
}

void WeightStore::upload(const void* host, size_t bytes) {
  if (where_.count(host)) return;
  const size_t size = (bytes + kAlign - 1) / kAlign * kAlign;
  if (blocks_.empty() || block_used_ + size > blocks_.back().size()) {
    blocks_.emplace_back(dev_, std::max(kBlockBytes, size), Buffer::Kind::device);
    block_used_ = 0;
  }
  const Entry e{blocks_.size() - 1, block_used_, bytes};
  block_used_ += size;
  if (!staging_) staging_ = Buffer(dev_, kSlots * kSlotBytes, Buffer::Kind::staging);
  const auto* src = static_cast<const uint8_t*>(host);
  for (size_t done = 0; done < bytes;) {
    Slot& s = slots_[cur_];
    if (!s.recording) start_slot(s);
    const size_t n = std::min(kSlotBytes - s.used, bytes - done);
    const size_t at = cur_ * kSlotBytes + s.used;
    std::memcpy(staging_.mapped() + at, src + done, n);
    VkBufferCopy region{at, e.offset + done, n};
    vkCmdCopyBuffer(s.cb, staging_.handle(), blocks_[e.block].handle(), 1, &region);
    s.used += n;
    done += n;
    if (s.used == kSlotBytes) submit_slot();  // the device copies it while the other fills
  }
  where_.emplace(host, e);
  bytes_ += bytes;
}

void WeightStore::flush() {
  if (slots_[cur_].recording) submit_slot();
  for (Slot& s : slots_)
    if (s.in_flight) wait_slot(s);
}

void WeightStore::start_slot(Slot& s) {
  if (s.in_flight) wait_slot(s);  // the device may still read its staging bytes
  begin(s.cb, true);
  s.used = 0;
  s.recording = true;
}

void WeightStore::submit_slot() {
  Slot& s = slots_[cur_];
  end(s.cb);
  cmds_.submit(s.cb, s.fence);
  s.recording = false;
  s.in_flight = true;
  cur_ = (cur_ + 1) % kSlots;
}

void WeightStore::wait_slot(Slot& s) {
  check(vkWaitForFences(dev_.handle(), 1, &s.fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  check(vkResetFences(dev_.handle(), 1, &s.fence), "vkResetFences");
  s.in_flight = false;
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

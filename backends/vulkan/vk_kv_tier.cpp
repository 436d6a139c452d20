#include "backends/vulkan/vk_kv_tier.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "backends/vulkan/vk_buffer.h"
#include "lib/core/error.h"

namespace v4::vk {

void KvPools::remove(const uint8_t* base) {
  std::erase_if(ranges_, [&](const Range& r) { return r.base == base; });
}

const KvPools::Range* KvPools::find(const void* p) const {
  const auto* b = static_cast<const uint8_t*>(p);
  for (const Range& r : ranges_)
    if (b >= r.base && b < r.base + r.bytes) return &r;
  return nullptr;
}

namespace {

class VulkanKvTier final : public KvTier {
 public:
  VulkanKvTier(const Device& dev, Commands& cmds, KvPools& pools, uint32_t n_slots,
               size_t slot_bytes)
      : dev_(dev), cmds_(cmds), pools_(pools), n_slots_(n_slots), slot_bytes_(slot_bytes) {
    const size_t bytes = std::max<size_t>(1, size_t{n_slots} * slot_bytes);
    // Addresses only: PROT_NONE, never touched, no memory committed.
    void* r = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
      fail(Status::out_of_memory,
           "vulkan: cannot reserve {} bytes of address space for the KV "
           "pool; use a smaller context",
           bytes);
    reserved_ = static_cast<uint8_t*>(r);
    reserved_bytes_ = bytes;
    try {
      pool_ = Buffer(dev, bytes, Buffer::Kind::device);
    } catch (...) {
      munmap(reserved_, reserved_bytes_);
      throw;
    }
    pools_.add({reserved_, bytes, pool_.handle()});
  }

  ~VulkanKvTier() override {
    vkDeviceWaitIdle(dev_.handle());
    pools_.remove(reserved_);
    cmds_.release(cb_);
    munmap(reserved_, reserved_bytes_);
  }

  const char* name() const override { return "device"; }
  uint32_t n_slots() const override { return n_slots_; }
  size_t slot_bytes() const override { return slot_bytes_; }
  uint8_t* slot_data(uint32_t) override { return nullptr; }
  uint8_t* address_base() override { return reserved_; }
  void write_slot(uint32_t slot, const void* src) override {
    pending_.push_back({slot, static_cast<const uint8_t*>(src), nullptr});
  }
  void read_slot(uint32_t slot, void* dst) override {
    pending_.push_back({slot, nullptr, static_cast<uint8_t*>(dst)});
  }

  // Everything queued goes in one command buffer: host bytes into staging, staging <->
  // pool copies, then a barrier so later compute reads (and host reads) see the bytes.
  void wait() override {
    if (pending_.empty()) return;
    const size_t need = pending_.size() * slot_bytes_;
    if (staging_.size() < need) staging_ = Buffer(dev_, need, Buffer::Kind::staging);
    if (!cb_) cb_ = cmds_.allocate();
    begin(cb_, true);
    for (size_t i = 0; i < pending_.size(); ++i) {
      const Copy& c = pending_[i];
      const VkDeviceSize at = i * slot_bytes_, slot = VkDeviceSize{c.slot} * slot_bytes_;
      if (c.src) {
        std::memcpy(staging_.mapped() + at, c.src, slot_bytes_);
        VkBufferCopy region{at, slot, slot_bytes_};
        vkCmdCopyBuffer(cb_, staging_.handle(), pool_.handle(), 1, &region);
      } else {
        VkBufferCopy region{slot, at, slot_bytes_};
        vkCmdCopyBuffer(cb_, pool_.handle(), staging_.handle(), 1, &region);
      }
    }
    barrier(cb_, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cb_, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb,
                         0, nullptr, 0, nullptr);
    end(cb_);
    cmds_.submit_wait(cb_);
    for (size_t i = 0; i < pending_.size(); ++i)
      if (pending_[i].dst)
        std::memcpy(pending_[i].dst, staging_.mapped() + i * slot_bytes_, slot_bytes_);
    pending_.clear();
  }

 private:
  struct Copy {
    uint32_t slot;
    const uint8_t* src;  // write_slot
    uint8_t* dst;        // read_slot
  };
  const Device& dev_;
  Commands& cmds_;
  KvPools& pools_;
  uint32_t n_slots_;
  size_t slot_bytes_;
  uint8_t* reserved_ = nullptr;
  size_t reserved_bytes_ = 0;
  Buffer pool_;
  Buffer staging_;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  std::vector<Copy> pending_;
};

}  // namespace

std::unique_ptr<KvTier> make_vulkan_kv_tier(const Device& dev, Commands& cmds, KvPools& pools,
                                            uint32_t n_slots, size_t slot_bytes) {
  return std::make_unique<VulkanKvTier>(dev, cmds, pools, n_slots, slot_bytes);
}

}  // namespace v4::vk

// A VkBuffer with its own memory: device-local (compute data) or host-visible and
// persistently mapped (staging). Owns both; movable, not copyable.
#pragma once

#include <cstddef>

#include "backends/vulkan/vk_device.h"

namespace v4::vk {

class Buffer {
 public:
  enum class Kind { device, staging };
  Buffer() = default;
  Buffer(const Device& dev, VkDeviceSize bytes, Kind kind);
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  VkDeviceSize size() const { return size_; }
  // Host pointer of a staging buffer (nullptr for device buffers).
  uint8_t* mapped() const { return mapped_; }
  explicit operator bool() const { return buffer_ != VK_NULL_HANDLE; }
  void reset();

 private:
  VkDevice device_ = VK_NULL_HANDLE;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  VkDeviceSize size_ = 0;
  uint8_t* mapped_ = nullptr;
};

}  // namespace v4::vk

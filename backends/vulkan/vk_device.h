// Vulkan instance and device: enumeration with memory heaps, feature probing, choice of
// a device by index or name, and a debug-utils messenger that counts validation errors
// (so tests can fail on them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/vulkan/vk_loader.h"

namespace v4::vk {

// What the shaders may use on this device. Probed once; every use has a fallback.
struct Features {
  bool storage_16bit = false;    // 16-bit values in storage buffers
  bool float16_math = false;     // shaderFloat16
  bool storage_8bit = false;     // 8-bit values in storage buffers
  bool int8_math = false;        // shaderInt8
  bool subgroup_arith = false;   // subgroupAdd/Max in compute shaders
  bool integer_dot = false;      // VK_KHR_shader_integer_dot_product
  uint32_t subgroup_size = 0;
  // Weights read as 8- and 16-bit elements instead of unpacked from 32-bit words.
  bool small_storage() const { return storage_8bit && storage_16bit; }
};

struct Heap {
  uint64_t size = 0;
  bool device_local = false;
};

struct PhysicalInfo {
  uint32_t index = 0;
  std::string name;
  std::string type;          // "discrete-gpu", "integrated-gpu", "virtual-gpu", "cpu", "other"
  bool is_cpu = false;       // a software rasteriser such as Mesa's lavapipe
  uint32_t api_version = 0;
  Features features;
  std::vector<Heap> heaps;
  uint64_t device_local_bytes() const;
};

class Instance {
 public:
  // The process-wide instance (created on first use, kept to the end). Throws v4::Error
  // (no_device) when the loader is missing or no driver is installed.
  static std::shared_ptr<Instance> get();
  ~Instance();
  VkInstance handle() const { return instance_; }
  const std::vector<VkPhysicalDevice>& physical() const { return physical_; }
  const std::vector<PhysicalInfo>& infos() const { return infos_; }
  // Validation-layer errors reported through the messenger since start.
  static uint64_t validation_errors();

 private:
  Instance();
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  std::vector<VkPhysicalDevice> physical_;
  std::vector<PhysicalInfo> infos_;
};

// Picks a device: "" or "auto" (the best GPU, else a CPU device), a number (the index
// in `v4 info --devices`), or a case-insensitive part of the name. Throws (no_device)
// with the list of devices when nothing matches or the device is too old.
uint32_t choose_device(const Instance& inst, const std::string& spec);

// A logical device with one compute queue.
class Device {
 public:
  Device(std::shared_ptr<Instance> inst, uint32_t index);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  VkDevice handle() const { return device_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return family_; }
  const PhysicalInfo& info() const { return inst_->infos()[index_]; }
  const VkPhysicalDeviceLimits& limits() const { return limits_; }
  const VkPhysicalDeviceProperties& properties() const { return props_; }
  // A memory type index with all of `want` among `type_bits`, or throws.
  uint32_t memory_type(uint32_t type_bits, VkMemoryPropertyFlags want,
                       VkMemoryPropertyFlags fallback) const;

 private:
  std::shared_ptr<Instance> inst_;
  uint32_t index_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t family_ = 0;
  VkPhysicalDeviceLimits limits_{};
  VkPhysicalDeviceProperties props_{};
  VkPhysicalDeviceMemoryProperties mem_{};
};

}  // namespace v4::vk

// Compute pipelines, built once per shader variant on first use and cached for the life
// of the device (and the driver's compiled code across processes: vk_pipeline_cache.h). Every pipeline shares one layout: four storage-buffer bindings (three
// sources, one destination) and a 104-byte push-constant block (shaders/common.glsl).
#pragma once

#include <string>
#include <unordered_map>

#include "backends/vulkan/vk_device.h"
#include "backends/vulkan/vk_pipeline_cache.h"

namespace v4::vk {

// Mirrors `Params` in shaders/common.glsl.
struct PushConstants {
  uint32_t off[4] = {};
  uint32_t ne0 = 0, nrows = 0, ne1 = 0, ne2 = 0;
  uint32_t stride[4] = {};
  uint32_t nrows_b = 0;
  uint32_t op = 0;
  uint32_t i[4] = {};
  float f[8] = {};
};
static_assert(sizeof(PushConstants) == 104);

constexpr uint32_t kBindings = 4;

class Pipelines {
 public:
  explicit Pipelines(const Device& dev);
  ~Pipelines();
  Pipelines(const Pipelines&) = delete;
  Pipelines& operator=(const Pipelines&) = delete;

  VkPipeline get(const std::string& name);
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }
  size_t count() const { return cache_.size(); }
  const PipelineCache& disk_cache() const { return disk_; }

 private:
  const Device& dev_;
  PipelineCache disk_;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  std::unordered_map<std::string, VkPipeline> cache_;
};

}  // namespace v4::vk

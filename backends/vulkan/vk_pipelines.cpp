#include "backends/vulkan/vk_pipelines.h"

#include "backends/vulkan/vk_shaders.h"
#include "lib/core/error.h"

namespace v4::vk {

Pipelines::Pipelines(const Device& dev) : dev_(dev), disk_(dev) {
  VkDescriptorSetLayoutBinding b[kBindings];
  for (uint32_t i = 0; i < kBindings; ++i)
    b[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  li.bindingCount = kBindings;
  li.pBindings = b;
  check(vkCreateDescriptorSetLayout(dev.handle(), &li, nullptr, &set_layout_),
        "vkCreateDescriptorSetLayout");
  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(PushConstants)};
  VkPipelineLayoutCreateInfo pi{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pi.setLayoutCount = 1;
  pi.pSetLayouts = &set_layout_;
  pi.pushConstantRangeCount = 1;
  pi.pPushConstantRanges = &range;
  check(vkCreatePipelineLayout(dev.handle(), &pi, nullptr, &layout_), "vkCreatePipelineLayout");
}

Pipelines::~Pipelines() {
  for (auto& [name, p] : cache_) vkDestroyPipeline(dev_.handle(), p, nullptr);
  vkDestroyPipelineLayout(dev_.handle(), layout_, nullptr);
  vkDestroyDescriptorSetLayout(dev_.handle(), set_layout_, nullptr);
}

VkPipeline Pipelines::get(const std::string& name) {
  auto it = cache_.find(name);
  if (it != cache_.end()) return it->second;
  const EmbeddedShader* s = find_shader(name.c_str());
  if (!s) fail(Status::internal, "vulkan: no embedded shader named '{}'", name);
  VkShaderModuleCreateInfo mi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  mi.codeSize = s->bytes;
  mi.pCode = s->code;
  VkShaderModule module = VK_NULL_HANDLE;
  check(vkCreateShaderModule(dev_.handle(), &mi, nullptr, &module), "vkCreateShaderModule");
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = module;
  ci.stage.pName = "main";
  ci.layout = layout_;
  VkPipeline p = VK_NULL_HANDLE;
  const VkResult r = vkCreateComputePipelines(dev_.handle(), disk_.handle(), 1, &ci, nullptr, &p);
  vkDestroyShaderModule(dev_.handle(), module, nullptr);
  check(r, "vkCreateComputePipelines");
  cache_.emplace(name, p);
  return p;
}

}  // namespace v4::vk

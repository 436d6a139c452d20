#include "backends/vulkan/vk_commands.h"

#include <cstdint>

namespace v4::vk {

Commands::Commands(const Device& dev) : dev_(dev) {
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = dev.queue_family();
  check(vkCreateCommandPool(dev.handle(), &pi, nullptr, &pool_), "vkCreateCommandPool");
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check(vkCreateFence(dev.handle(), &fi, nullptr, &fence_), "vkCreateFence");
}

Commands::~Commands() {
  vkDestroyFence(dev_.handle(), fence_, nullptr);
  vkDestroyCommandPool(dev_.handle(), pool_, nullptr);
}

VkCommandBuffer Commands::allocate() {
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  check(vkAllocateCommandBuffers(dev_.handle(), &ai, &cb), "vkAllocateCommandBuffers");
  return cb;
}

void Commands::release(VkCommandBuffer cb) {
  if (cb) vkFreeCommandBuffers(dev_.handle(), pool_, 1, &cb);
}

void Commands::submit_wait(const VkCommandBuffer* cbs, uint32_t n) {
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = n;
  si.pCommandBuffers = cbs;
  check(vkQueueSubmit(dev_.queue(), 1, &si, fence_), "vkQueueSubmit");
  check(vkWaitForFences(dev_.handle(), 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  check(vkResetFences(dev_.handle(), 1, &fence_), "vkResetFences");
}

void Commands::submit(VkCommandBuffer cb, VkFence fence) {
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb;
  check(vkQueueSubmit(dev_.queue(), 1, &si, fence), "vkQueueSubmit");
}

void begin(VkCommandBuffer cb, bool one_time) {
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = one_time ? VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT : 0;
  check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
}

void end(VkCommandBuffer cb) { check(vkEndCommandBuffer(cb), "vkEndCommandBuffer"); }

void barrier(VkCommandBuffer cb, VkPipelineStageFlags src, VkPipelineStageFlags dst) {
  // Access masks must match the stages (validation checks that).
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  if (src & VK_PIPELINE_STAGE_TRANSFER_BIT) mb.srcAccessMask |= VK_ACCESS_TRANSFER_WRITE_BIT;
  if (src & VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT) mb.srcAccessMask |= VK_ACCESS_SHADER_WRITE_BIT;
  if (dst & VK_PIPELINE_STAGE_TRANSFER_BIT)
    mb.dstAccessMask |= VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  if (dst & VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT)
    mb.dstAccessMask |= VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  vkCmdPipelineBarrier(cb, src, dst, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

}  // namespace v4::vk

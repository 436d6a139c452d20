// Command pool, fence and the barriers the backend records: one place for the
// submit-and-wait pattern used by weight uploads and by every graph split.
#pragma once

#include "backends/vulkan/vk_device.h"

namespace v4::vk {

class Commands {
 public:
  explicit Commands(const Device& dev);
  ~Commands();
  Commands(const Commands&) = delete;
  Commands& operator=(const Commands&) = delete;

  VkCommandBuffer allocate();
  void release(VkCommandBuffer cb);
  // Submits and waits for completion (the executor runs splits in order).
  void submit_wait(VkCommandBuffer cb) { submit_wait(&cb, 1); }
  // Several command buffers in one submission, in order.
  void submit_wait(const VkCommandBuffer* cbs, uint32_t n);
  // Submits without waiting; `fence` (unsignalled) signals completion.
  void submit(VkCommandBuffer cb, VkFence fence);

 private:
  const Device& dev_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
};

void begin(VkCommandBuffer cb, bool one_time);
void end(VkCommandBuffer cb);
// Makes writes of earlier commands (`src`: transfer and/or compute) visible to later ones.
void barrier(VkCommandBuffer cb, VkPipelineStageFlags src, VkPipelineStageFlags dst);

}  // namespace v4::vk

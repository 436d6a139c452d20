// A VkPipelineCache persisted in the user's cache directory, so shader compilation by the
// driver happens once per device and driver, not once per process. The file is named
// after the device's pipelineCacheUUID (which drivers change with each build); drivers
// also check the data's header themselves and ignore data from another device.
//   V4_VULKAN_CACHE_DIR=DIR: use DIR; "off" (or empty): keep the cache in memory only.
//   Otherwise $XDG_CACHE_HOME/v4engine, else $HOME/.cache/v4engine.
#pragma once

#include <string>

#include "backends/vulkan/vk_device.h"

namespace v4::vk {

class PipelineCache {
 public:
  explicit PipelineCache(const Device& dev);
  ~PipelineCache();  // writes the file back (best effort: a cache must never fail a run)
  PipelineCache(const PipelineCache&) = delete;
  PipelineCache& operator=(const PipelineCache&) = delete;

  VkPipelineCache handle() const { return cache_; }
  const std::string& path() const { return path_; }  // "" when not persisted

 private:
  const Device& dev_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::string path_;
};

}  // namespace v4::vk

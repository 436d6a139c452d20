#include "backends/vulkan/vk_pipeline_cache.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <fmt/format.h>

namespace v4::vk {
namespace {

std::string cache_dir() {
  if (const char* d = std::getenv("V4_VULKAN_CACHE_DIR"))
    return std::string(d) == "off" ? std::string() : std::string(d);
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/v4engine";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/v4engine";
  return {};
}

std::string file_name(const VkPhysicalDeviceProperties& p) {
  std::string uuid;
  for (uint8_t b : p.pipelineCacheUUID) uuid += fmt::format("{:02x}", b);
  return fmt::format("vulkan-{:04x}-{:04x}-{}.cache", p.vendorID, p.deviceID, uuid);
}

}  // namespace

PipelineCache::PipelineCache(const Device& dev) : dev_(dev) {
  const std::string dir = cache_dir();
  std::vector<char> data;
  if (!dir.empty()) {
    path_ = dir + "/" + file_name(dev.properties());
    std::ifstream in(path_, std::ios::binary);
    if (in) data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  ci.initialDataSize = data.size();
  ci.pInitialData = data.empty() ? nullptr : data.data();
  if (vkCreatePipelineCache(dev.handle(), &ci, nullptr, &cache_) != VK_SUCCESS) {
    ci.initialDataSize = 0;  // unusable data: start empty
    ci.pInitialData = nullptr;
    check(vkCreatePipelineCache(dev.handle(), &ci, nullptr, &cache_), "vkCreatePipelineCache");
  }
}

PipelineCache::~PipelineCache() {
  if (!path_.empty()) {
    size_t n = 0;
    std::vector<char> data;
    if (vkGetPipelineCacheData(dev_.handle(), cache_, &n, nullptr) == VK_SUCCESS && n > 0) {
      data.resize(n);
      if (vkGetPipelineCacheData(dev_.handle(), cache_, &n, data.data()) != VK_SUCCESS) data.clear();
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
    // Written beside and renamed: a concurrent reader sees the old file or the new one.
    const std::string tmp = fmt::format("{}.{}.tmp", path_, static_cast<const void*>(this));
    if (!data.empty() && !ec) {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
      out.close();
      if (out) std::filesystem::rename(tmp, path_, ec);
      if (!out || ec) std::filesystem::remove(tmp, ec);
    }
  }
  vkDestroyPipelineCache(dev_.handle(), cache_, nullptr);
}

}  // namespace v4::vk

#include "backends/vulkan/vk_loader.h"

#include <dlfcn.h>

#include <mutex>

#include "lib/core/error.h"

namespace v4::vk {

#define V4_VK_DEFINE(name) PFN_##name name = nullptr;
V4_VK_GLOBAL_FUNCTIONS(V4_VK_DEFINE)
V4_VK_INSTANCE_FUNCTIONS(V4_VK_DEFINE)
#undef V4_VK_DEFINE

namespace {
PFN_vkGetInstanceProcAddr g_get_proc = nullptr;
}

bool load_loader(const char** why) {
  static std::once_flag once;
  static const char* error = nullptr;
  std::call_once(once, [] {
    void* lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = "the Vulkan loader (libvulkan.so.1) is not installed (Debian: libvulkan1)";
      return;
    }
    g_get_proc = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
    if (!g_get_proc) {
      error = "libvulkan.so.1 has no vkGetInstanceProcAddr";
      return;
    }
#define V4_VK_LOAD(name) name = reinterpret_cast<PFN_##name>(g_get_proc(nullptr, #name));
    V4_VK_GLOBAL_FUNCTIONS(V4_VK_LOAD)
#undef V4_VK_LOAD
    if (!vkCreateInstance) error = "the Vulkan loader lacks vkCreateInstance";
  });
  if (why) *why = error;
  return error == nullptr;
}

void load_instance_functions(VkInstance instance) {
#define V4_VK_LOAD(name) name = reinterpret_cast<PFN_##name>(g_get_proc(instance, #name));
  V4_VK_INSTANCE_FUNCTIONS(V4_VK_LOAD)
#undef V4_VK_LOAD
}

const char* result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    default: return "VkResult error";
  }
}

void check(VkResult r, const char* what) {
  if (r == VK_SUCCESS) return;
  const Status s = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                       ? Status::out_of_memory
                       : Status::internal;
  fail(s, "vulkan: {} failed: {} ({})", what, result_name(r), static_cast<int>(r));
}

}  // namespace v4::vk

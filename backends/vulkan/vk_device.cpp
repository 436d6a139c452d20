#include "backends/vulkan/vk_device.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "lib/core/error.h"

namespace v4::vk {
namespace {

std::atomic<uint64_t> g_validation_errors{0};

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                               VkDebugUtilsMessageTypeFlagsEXT,
                                               const VkDebugUtilsMessengerCallbackDataEXT* data,
                                               void*) {
  if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
    g_validation_errors.fetch_add(1);
    // The library never prints on its own, but a validation error is a bug in this
    // backend that only appears with the layer enabled by the developer: say it loudly.
    std::fprintf(stderr, "v4 vulkan validation error: %s\n", data->pMessage);
  }
  return VK_FALSE;
}

bool has_extension(const std::vector<VkExtensionProperties>& exts, const char* name) {
  return std::any_of(exts.begin(), exts.end(),
                     [&](const VkExtensionProperties& e) { return std::string(e.extensionName) == name; });
}

std::vector<VkExtensionProperties> device_extensions(VkPhysicalDevice pd) {
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> out(n);
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, out.data());
  return out;
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

// V4_VULKAN_DISABLE=subgroup,storage8,storage16,intdot hides features from the shader choice, so
// the fallback paths can be tested on a device that has everything (as V4_CPU=scalar).
void disable_features(Features& f) {
  const char* env = std::getenv("V4_VULKAN_DISABLE");
  if (!env) return;
  const std::string list = std::string(",") + env + ",";
  if (list.find(",subgroup,") != std::string::npos) f.subgroup_arith = false;
  if (list.find(",storage8,") != std::string::npos) f.storage_8bit = false;
  if (list.find(",storage16,") != std::string::npos) f.storage_16bit = false;
  if (list.find(",intdot,") != std::string::npos) f.integer_dot = false;
}

PhysicalInfo probe(VkPhysicalDevice pd, uint32_t index) {
  PhysicalInfo info;
  info.index = index;
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &sub};
  vkGetPhysicalDeviceProperties2(pd, &props);
  info.name = props.properties.deviceName;
  info.type = type_name(props.properties.deviceType);
  info.is_cpu = props.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  info.api_version = props.properties.apiVersion;
  Features& f = info.features;
  f.subgroup_size = sub.subgroupSize;
  f.subgroup_arith = (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                     (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
  if (info.api_version >= VK_API_VERSION_1_2) {
    const auto exts = device_extensions(pd);
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceVulkan12Features v12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features v11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &v12};
    // The instance asks for Vulkan 1.2, so a 1.3 device's core feature is reached through
    // the extension, which is also what Device enables.
    const bool dot_known = has_extension(exts, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    if (dot_known) v12.pNext = &dot;
    VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &v11};
    vkGetPhysicalDeviceFeatures2(pd, &feats);
    f.storage_16bit = v11.storageBuffer16BitAccess;
    f.float16_math = v12.shaderFloat16;
    f.storage_8bit = v12.storageBuffer8BitAccess;
    f.int8_math = v12.shaderInt8;
    f.integer_dot = dot_known && dot.shaderIntegerDotProduct;
  }
  disable_features(f);
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  for (uint32_t h = 0; h < mem.memoryHeapCount; ++h)
    info.heaps.push_back({mem.memoryHeaps[h].size,
                          (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0});
  return info;
}

int preference(const PhysicalInfo& i) {
  if (i.type == "discrete-gpu") return 0;
  if (i.type == "integrated-gpu") return 1;
  if (i.type == "virtual-gpu") return 2;
  if (i.is_cpu) return 4;
  return 3;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string device_list(const Instance& inst) {
  std::string out;
  for (const PhysicalInfo& i : inst.infos())
    out += fmt::format("{}{}: {} ({})", out.empty() ? "" : ", ", i.index, i.name, i.type);
  return out;
}

}  // namespace

uint64_t PhysicalInfo::device_local_bytes() const {
  uint64_t n = 0;
  for (const Heap& h : heaps)
    if (h.device_local) n += h.size;
  return n;
}

uint64_t Instance::validation_errors() { return g_validation_errors.load(); }

// Created once per process (probing devices costs tens of milliseconds, and every
// context with backend "auto" asks); a failure is remembered too.
std::shared_ptr<Instance> Instance::get() {
  static std::mutex mu;
  static std::shared_ptr<Instance> cached;
  static std::string error;
  std::lock_guard<std::mutex> lock(mu);
  if (cached) return cached;
  if (!error.empty()) fail(Status::no_device, "{}", error);
  try {
    cached.reset(new Instance());
  } catch (const Error& e) {
    error = e.what();
    throw;
  }
  return cached;
}

Instance::Instance() {
  const char* why = nullptr;
  if (!load_loader(&why)) fail(Status::no_device, "vulkan: {}", why);
  uint32_t n_ext = 0;
  vkEnumerateInstanceExtensionProperties(nullptr, &n_ext, nullptr);
  std::vector<VkExtensionProperties> exts(n_ext);
  vkEnumerateInstanceExtensionProperties(nullptr, &n_ext, exts.data());
  const bool debug_utils = has_extension(exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  std::vector<const char*> enable;
  if (debug_utils) enable.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "v4engine";
  app.pEngineName = "v4engine";
  app.apiVersion = VK_API_VERSION_1_2;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  ci.enabledExtensionCount = static_cast<uint32_t>(enable.size());
  ci.ppEnabledExtensionNames = enable.data();
  const VkResult r = vkCreateInstance(&ci, nullptr, &instance_);
  if (r != VK_SUCCESS)
    fail(Status::no_device, "vulkan: no usable driver (vkCreateInstance: {}); install a Vulkan "
         "driver (Debian: mesa-vulkan-drivers) or use --backend cpu", result_name(r));
  load_instance_functions(instance_);
  if (debug_utils && vkCreateDebugUtilsMessengerEXT) {
    VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
    mi.pfnUserCallback = on_debug_message;
    vkCreateDebugUtilsMessengerEXT(instance_, &mi, nullptr, &messenger_);
  }
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(instance_, &n, nullptr);
  physical_.resize(n);
  vkEnumeratePhysicalDevices(instance_, &n, physical_.data());
  for (uint32_t i = 0; i < n; ++i) infos_.push_back(probe(physical_[i], i));
}

Instance::~Instance() {
  if (messenger_) vkDestroyDebugUtilsMessengerEXT(instance_, messenger_, nullptr);
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

uint32_t choose_device(const Instance& inst, const std::string& spec) {
  const auto& infos = inst.infos();
  if (infos.empty())
    fail(Status::no_device, "vulkan: no Vulkan device found; install a driver (Debian: "
         "mesa-vulkan-drivers for lavapipe) or use --backend cpu");
  int64_t chosen = -1;
  if (spec.empty() || spec == "auto") {
    for (const PhysicalInfo& i : infos)
      if (i.api_version >= VK_API_VERSION_1_2 &&
          (chosen < 0 || preference(i) < preference(infos[chosen])))
        chosen = i.index;
  } else if (std::all_of(spec.begin(), spec.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    const unsigned long idx = std::stoul(spec);
    if (idx < infos.size()) chosen = static_cast<int64_t>(idx);
  } else {
    for (const PhysicalInfo& i : infos)
      if (lower(i.name).find(lower(spec)) != std::string::npos) {
        chosen = i.index;
        break;
      }
  }
  if (chosen < 0)
    fail(Status::no_device, "vulkan: no device matches '{}' (devices: {})", spec,
         device_list(inst));
  if (infos[chosen].api_version < VK_API_VERSION_1_2)
    fail(Status::no_device, "vulkan: device {} ({}) supports only Vulkan {}.{}; 1.2 is needed",
         chosen, infos[chosen].name, VK_API_VERSION_MAJOR(infos[chosen].api_version),
         VK_API_VERSION_MINOR(infos[chosen].api_version));
  return static_cast<uint32_t>(chosen);
}

Device::Device(std::shared_ptr<Instance> inst, uint32_t index) : inst_(std::move(inst)), index_(index) {
  VkPhysicalDevice pd = inst_->physical()[index];
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> fams(n);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, fams.data());
  bool found = false;
  for (uint32_t i = 0; i < n && !found; ++i)
    if (fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      family_ = i;
      found = true;
    }
  if (!found) fail(Status::no_device, "vulkan: device {} has no compute queue", info().name);
  const float prio = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = family_;
  qi.queueCount = 1;
  qi.pQueuePriorities = &prio;
  VkDeviceCreateInfo ci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  ci.queueCreateInfoCount = 1;
  ci.pQueueCreateInfos = &qi;
  // Small storage types are enabled when the shaders will use them (Features::small_storage).
  VkPhysicalDeviceVulkan12Features v12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features v11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &v12};
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &v11};
  if (info().features.small_storage()) {
    v11.storageBuffer16BitAccess = VK_TRUE;
    v12.storageBuffer8BitAccess = VK_TRUE;
    ci.pNext = &feats;
  }
  // Integer dot products (mul_mat_dot.comp) through VK_KHR_shader_integer_dot_product.
  VkPhysicalDeviceShaderIntegerDotProductFeatures dot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  const char* dot_ext = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
  if (info().features.integer_dot) {
    dot.shaderIntegerDotProduct = VK_TRUE;
    v12.pNext = &dot;
    ci.pNext = &feats;
    ci.enabledExtensionCount = 1;
    ci.ppEnabledExtensionNames = &dot_ext;
  }
  check(vkCreateDevice(pd, &ci, nullptr, &device_), "vkCreateDevice");
  vkGetDeviceQueue(device_, family_, 0, &queue_);
  vkGetPhysicalDeviceProperties(pd, &props_);
  limits_ = props_.limits;
  vkGetPhysicalDeviceMemoryProperties(pd, &mem_);
}

Device::~Device() {
  if (device_) {
    vkDeviceWaitIdle(device_);
    vkDestroyDevice(device_, nullptr);
  }
}

uint32_t Device::memory_type(uint32_t type_bits, VkMemoryPropertyFlags want,
                             VkMemoryPropertyFlags fallback) const {
  for (VkMemoryPropertyFlags flags : {want, fallback})
    for (uint32_t i = 0; i < mem_.memoryTypeCount; ++i)
      if ((type_bits & (1u << i)) && (mem_.memoryTypes[i].propertyFlags & flags) == flags) return i;
  fail(Status::no_device, "vulkan: device {} has no suitable memory type", info().name);
}

}  // namespace v4::vk

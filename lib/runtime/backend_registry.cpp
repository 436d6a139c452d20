#include "lib/runtime/backend_registry.h"

#include "backends/cpu/cpu_backend.h"
#include "lib/core/error.h"
#ifdef V4_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif
#ifdef V4_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace v4 {
namespace {

std::vector<DeviceInfo> cpu_devices(std::string*) { return make_cpu_backend()->devices(); }
std::unique_ptr<Backend> create_cpu(const std::string&, bool) { return make_cpu_backend(); }

#ifdef V4_HAVE_CUDA
std::vector<DeviceInfo> cuda_device_list(std::string* why) {
  const CudaProbe probe = probe_cuda();
  if (probe.device_count == 0) {
    if (why) *why = probe.reason;
    return {};
  }
  return cuda_devices();
}

// `device`: "" (the first), an index, or part of a device name.
std::unique_ptr<Backend> create_cuda(const std::string& device, bool) {
  if (device.empty()) return make_cuda_backend(0);
  if (device.find_first_not_of("0123456789") == std::string::npos && device.size() < 6)
    return make_cuda_backend(std::stoi(device));
  const std::vector<DeviceInfo> devs = cuda_devices();
  for (size_t i = 0; i < devs.size(); ++i)
    if (devs[i].name.find(device) != std::string::npos)
      return make_cuda_backend(static_cast<int>(i));
  fail(Status::no_device, "no CUDA device matches '{}' ({} device(s); see v4 info --devices)",
       device, devs.size());
}
#endif

}  // namespace

const std::vector<BackendFactory>& backend_factories() {
  static const std::vector<BackendFactory> factories = {
#ifdef V4_HAVE_CUDA
      {"cuda", cuda_device_list, create_cuda},
#endif
#ifdef V4_HAVE_VULKAN
      {"vulkan", vulkan_devices, make_vulkan_backend},
#endif
      {"cpu", cpu_devices, create_cpu},
  };
  return factories;
}

const BackendFactory* find_backend_factory(std::string_view name) {
  for (const BackendFactory& f : backend_factories())
    if (name == f.name) return &f;
  return nullptr;
}

std::string describe_devices() {
  std::string out;
  for (const BackendFactory& f : backend_factories()) {
    std::string why;
    const std::vector<DeviceInfo> devs = f.devices(&why);
    out += fmt::format("{}:{}\n", f.name, devs.empty() ? " no device (" + why + ")" : "");
    for (size_t i = 0; i < devs.size(); ++i) {
      const DeviceInfo& d = devs[i];
      out += fmt::format("  {}: {} ({}), {:.1f} GiB", i, d.name, d.kind,
                         d.memory_total / 1073741824.0);
      if (!d.details.empty()) out += "\n     " + d.details;
      out += "\n";
    }
  }
  return out;
}

std::unique_ptr<Backend> create_device_backend(const std::string& kind, const std::string& device,
                                               const Logger& log) {
  if (kind.empty() || kind == "auto") {
    std::string reasons;
    for (const BackendFactory& f : backend_factories()) {
      if (std::string_view(f.name) == "cpu") continue;
      try {
        // A device named explicitly is taken even when it is not a GPU.
        auto b = f.create(device, device.empty());
        log(LogLevel::info, "backend auto: {} on {}", f.name, b->devices().front().name);
        return b;
      } catch (const Error& e) {
        reasons += fmt::format("{}{}", reasons.empty() ? "" : "; ", e.what());
      }
    }
    log(LogLevel::info, "backend auto: running on the CPU ({})",
        reasons.empty() ? "no GPU backend in this build" : reasons);
    return nullptr;
  }
  if (kind == "cpu") return nullptr;
  const BackendFactory* f = find_backend_factory(kind);
  if (!f) {
    if (kind == "vulkan" || kind == "cuda")
      fail(Status::unsupported, "backend '{}' is not compiled into this build of v4engine "
           "(rebuild with -DV4_{}=ON)", kind, kind == "vulkan" ? "VULKAN" : "CUDA");
    fail(Status::invalid_arg, "unknown backend '{}' (expected auto, cpu, vulkan or cuda)", kind);
  }
  return f->create(device, false);
}

namespace {

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (item.empty())
      fail(Status::invalid_arg, "device list '{}' has an empty entry; give indices or names "
           "separated by commas, e.g. \"0,1\"", list);
    out.push_back(std::move(item));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::vector<std::unique_ptr<Backend>> create_all(const BackendFactory& f,
                                                 const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Backend>> out;
  for (const std::string& name : names) out.push_back(f.create(name, false));
  return out;
}

}  // namespace

std::vector<std::unique_ptr<Backend>> create_device_backends(const std::string& kind,
                                                             const std::string& devices,
                                                             const Logger& log) {
  const std::vector<std::string> names = split_list(devices);
  if (kind == "cpu")
    fail(Status::invalid_arg, "a device list ('{}') needs a device backend; choose --backend "
         "cuda or vulkan", devices);
  if (!kind.empty() && kind != "auto") {
    const BackendFactory* f = find_backend_factory(kind);
    if (!f) {
      create_device_backend(kind, names.front(), log);  // throws why
      fail(Status::invalid_arg, "unknown backend '{}'", kind);
    }
    return create_all(*f, names);
  }
  std::string reasons;
  for (const BackendFactory& f : backend_factories()) {
    if (std::string_view(f.name) == "cpu") continue;
    try {
      auto out = create_all(f, names);
      log(LogLevel::info, "backend auto: {} on devices {}", f.name, devices);
      return out;
    } catch (const Error& e) {
      reasons += fmt::format("{}{}", reasons.empty() ? "" : "; ", e.what());
    }
  }
  fail(Status::no_device, "no device backend can open devices {} ({})", devices,
       reasons.empty() ? "no GPU backend in this build" : reasons);
}

}  // namespace v4

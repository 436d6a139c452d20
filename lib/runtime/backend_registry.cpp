#include "lib/runtime/backend_registry.h"

#include <optional>
#include <utility>

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

namespace {

// The factory of a backend named explicitly (not auto or cpu), or a clear error.
const BackendFactory& named_factory(const std::string& kind) {
  if (const BackendFactory* f = find_backend_factory(kind)) return *f;
  if (kind == "vulkan" || kind == "cuda")
    fail(Status::unsupported, "backend '{}' is not compiled into this build of v4engine "
         "(rebuild with -DV4_{}=ON)", kind, kind == "vulkan" ? "VULKAN" : "CUDA");
  fail(Status::invalid_arg, "unknown backend '{}' (expected auto, cpu, vulkan or cuda)", kind);
}

// `--backend auto`: open(f) on each device backend in preference order; the first that
// succeeds wins. Otherwise an empty result, and *reasons says why each failed.
template <class Open>
auto first_device_backend(Open open, std::string* reasons) -> std::optional<decltype(open(
    std::declval<const BackendFactory&>()))> {
  for (const BackendFactory& f : backend_factories()) {
    if (std::string_view(f.name) == "cpu") continue;
    try {
      return open(f);
    } catch (const Error& e) {
      *reasons += fmt::format("{}{}", reasons->empty() ? "" : "; ", e.what());
    }
  }
  if (reasons->empty()) *reasons = "no GPU backend in this build";
  return std::nullopt;
}

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

std::unique_ptr<Backend> create_device_backend(const std::string& kind, const std::string& device,
                                               const Logger& log) {
  if (kind == "cpu") return nullptr;
  if (!kind.empty() && kind != "auto") return named_factory(kind).create(device, false);
  std::string reasons;
  auto b = first_device_backend(
      [&](const BackendFactory& f) {
        // A device named explicitly is taken even when it is not a GPU.
        auto one = f.create(device, device.empty());
        log(LogLevel::info, "backend auto: {} on {}", f.name, one->devices().front().name);
        return one;
      },
      &reasons);
  if (b) return std::move(*b);
  log(LogLevel::info, "backend auto: running on the CPU ({})", reasons);
  return nullptr;
}

std::vector<std::unique_ptr<Backend>> create_device_backends(const std::string& kind,
                                                             const std::string& devices,
                                                             const Logger& log) {
  const std::vector<std::string> names = split_list(devices);
  if (kind == "cpu")
    fail(Status::invalid_arg, "a device list ('{}') needs a device backend; choose --backend "
         "cuda or vulkan", devices);
  if (!kind.empty() && kind != "auto") return create_all(named_factory(kind), names);
  std::string reasons;
  auto out = first_device_backend(
      [&](const BackendFactory& f) {
        auto all = create_all(f, names);
        log(LogLevel::info, "backend auto: {} on devices {}", f.name, devices);
        return all;
      },
      &reasons);
  if (out) return std::move(*out);
  fail(Status::no_device, "no device backend can open devices {} ({})", devices, reasons);
}

}  // namespace v4

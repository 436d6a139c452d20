// The backends this build has, by kind, and the choice a context makes among them.
// Each kind is one factory: list its devices (with memory sizes) and create a backend on
// one of them. The CPU backend always exists and runs whatever a device backend cannot.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/backend.h"
#include "lib/core/log.h"

namespace v4 {

struct BackendFactory {
  const char* name;  // "cpu", "vulkan", "cuda"
  // Devices of this kind; empty with *why set when none is usable.
  std::vector<DeviceInfo> (*devices)(std::string* why);
  // A backend on `device` (index, part of a name, or "" for the best). `require_gpu`:
  // refuse devices that are not GPUs (used by "auto"). Throws v4::Error (no_device).
  std::unique_ptr<Backend> (*create)(const std::string& device, bool require_gpu);
};

// Every backend kind compiled in, device backends first (the order "auto" tries them),
// the CPU last.
const std::vector<BackendFactory>& backend_factories();
// The factory of that name, or nullptr (not compiled in or unknown).
const BackendFactory* find_backend_factory(std::string_view name);

// Every backend's devices in words (`v4 info --devices`), or why it has none.
std::string describe_devices();

// The device backend a context asked for: `kind` "cpu" gives none; "vulkan" / "cuda"
// give that backend or throw (no_device, unsupported when not compiled in); "auto" tries
// each device backend on a GPU and gives none, with one log line, when none works.
std::unique_ptr<Backend> create_device_backend(const std::string& kind, const std::string& device,
                                               const Logger& log);

// One backend per device of a comma-separated list ("0,1") for a layer split, all of one
// kind: "auto" takes the first device backend on which every listed device works. Throws
// v4::Error naming the device that failed (no_device), or invalid_arg for "cpu" or a bad
// list.
std::vector<std::unique_ptr<Backend>> create_device_backends(const std::string& kind,
                                                             const std::string& devices,
                                                             const Logger& log);

}  // namespace v4

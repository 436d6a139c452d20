// The Vulkan backend: runs the ops of backends/vulkan/vk_ops.h on one Vulkan 1.2 device
// (any vendor, or Mesa's lavapipe on the CPU), with weights uploaded once and
// intermediates in a device arena that mirrors the executor's memory plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/core/backend.h"

namespace v4 {

// `device`: "" / "auto" (the best device), an index, or part of a name. With
// `require_gpu`, a CPU-type device (lavapipe) is refused: the CPU backend is faster.
// Throws v4::Error (Status::no_device) with the reason when no usable device exists.
std::unique_ptr<Backend> make_vulkan_backend(const std::string& device, bool require_gpu);
// Every Vulkan device (with heaps and features in `details`); empty with `*why` set when
// there is no loader, driver or device.
std::vector<DeviceInfo> vulkan_devices(std::string* why);
// Validation-layer errors seen so far in this process (tests require 0).
uint64_t vulkan_validation_errors();
// Dispatches recorded so far in this process whose shader variant's name starts with
// `prefix` (tests check which kernel a node took, e.g. "mul_mat_dot_").
uint64_t vulkan_dispatches_recorded(const std::string& prefix);

}  // namespace v4

// Which graph ops the Vulkan backend runs, and how: each node becomes one dispatch of a
// shader variant with its push constants, bindings and workgroup counts. Buffers and
// their offsets are filled in when the split is recorded (vulkan_backend.cpp).
#pragma once

#include <string>

#include "backends/vulkan/vk_device.h"
#include "backends/vulkan/vk_pipelines.h"
#include "lib/core/tensor.h"

namespace v4::vk {

struct Dispatch {
  std::string shader;
  PushConstants pc;
  const Tensor* bind[kBindings] = {};  // sources 0..2 and the destination; null: unused
  bool raw[kBindings] = {};            // read as bytes (offset in bytes) vs 4-byte words
  uint32_t groups[3] = {1, 1, 1};
};

// Whether `node` (with its current source types and strides) has a shader.
bool op_supported(const Tensor& node);
// The dispatch for a supported node; `features` picks subgroup variants.
Dispatch plan_dispatch(const Tensor& node, const Features& features);

}  // namespace v4::vk

// Which graph ops the Vulkan backend runs, and how: each node becomes one dispatch of a
// shader variant with its push constants, bindings and workgroup counts. Buffers and
// their offsets are filled in when the split is recorded (vulkan_backend.cpp).
#pragma once

#include <string>
#include <vector>

#include "backends/vulkan/vk_device.h"
#include "backends/vulkan/vk_pipelines.h"
#include "lib/core/tensor.h"

namespace v4::vk {

// What a binding reads: a tensor (arena or weight), or, for the KV ops, the device KV
// pool, the per-run page table or the split's scratch buffer for the partial results of
// split decode attention (vk_kv_ops.h), which the backend resolves.
enum class Bind : uint8_t { tensor, kv_pool, kv_table, scratch };

struct Dispatch {
  std::string shader;
  Bind kind[kBindings] = {};
  PushConstants pc;
  const Tensor* bind[kBindings] = {};  // sources 0..2 and the destination; null: unused
  bool raw[kBindings] = {};            // read as bytes (offset in bytes) vs 4-byte words
  size_t extra[kBindings] = {};        // bytes added to a binding's tensor address
  uint32_t groups[3] = {1, 1, 1};
  uint32_t rows_per_group = 1;         // mul_mat: weight rows per workgroup in x
};

// Whether `node` (with its current source types and strides) has a shader.
bool op_supported(const Tensor& node);
// The dispatch for a supported node; `features` picks subgroup variants.
Dispatch plan_dispatch(const Tensor& node, const Features& features);
// Bytes of q8 activation rows a mul_mat needs in the split's scratch buffer when it runs
// the integer dot-product matvec (mul_mat_dot.comp), else 0. Its dispatch then reads
// Bind::scratch in binding 1 (Dispatch::extra[1]: where the rows are).
size_t mul_mat_dot_scratch_bytes(const Tensor& node, const Features& features);
// The pre-pass of such a mul_mat: its activation rows to q8 blocks in Bind::scratch
// (quantize_q8.comp; Dispatch::extra[3]: where), recorded before it with a barrier.
Dispatch plan_quantize_q8(const Tensor& node);
// A weight larger than one storage-buffer binding may address (maxStorageBufferRange:
// 128 MiB on lavapipe, 4 GiB on most GPUs) is read in row ranges, one dispatch each:
// mul_mat computes those output rows, get_rows copies the ids that fall in the range.
// Returns `d` alone when the weight fits in `max_bytes`.
std::vector<Dispatch> split_rows(const Tensor& node, const Dispatch& d, size_t max_bytes);

}  // namespace v4::vk

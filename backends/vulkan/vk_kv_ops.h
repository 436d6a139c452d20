// The KV ops on Vulkan: kv_store and attention over KV pages in device memory (the hot
// tier of lib/kv, made by VulkanBackend::make_kv_tier). Their dispatches read a small
// page table written by the host before each run (after the layer's blocks are
// resident), so the cache's page tables stay on the host and a step records nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/vulkan/vk_ops.h"
#include "lib/core/kv_view.h"

namespace v4::vk {

constexpr int64_t kMaxAttentionHeadDim = 256;  // MAX_HD in shaders/attention.comp

// Page types and head sizes the shaders handle (f32, f16, bf16 and FP8_KV pages).
bool kv_type_supported(DType type, int64_t head_dim);
// Whether `node` (kv_store or attention) can run on Vulkan: its view's pages are device
// memory of types the shaders read; FP8 pages only with their recent-row window ring in
// the same device pool (the ring is what makes the results the CPU's).
bool kv_op_supported(const Tensor& node);
// Words of the node's page table (the largest batch its graph runs).
size_t kv_table_words(const Tensor& node);
// Fills the table for the batch now in the view; `scratch` is reused between calls.
void fill_kv_table(const Tensor& node, uint32_t* table, size_t words,
                   std::vector<int32_t>& scratch);
// The dispatch; `k_off` / `v_off`: bytes from the pool buffer's start to the K / V
// component's rows in slot 0.
Dispatch plan_kv_dispatch(const Tensor& node, size_t k_off, size_t v_off);

// Split decode attention (flash decoding): an attention node of at most
// kSplitMaxTokens tokens over a context longer than one span runs as one workgroup per
// (head, token, span of 256 positions) writing partial states to scratch memory, then a
// merge pass. Returns the scratch bytes the node needs, 0 when it runs in one pass.
constexpr int64_t kSplitMaxTokens = 4;
size_t attention_split_bytes(const Tensor& node);
// The two dispatches (spans, merge) of a node with attention_split_bytes() > 0; their
// Bind::scratch bindings start at the node's scratch (Dispatch::extra is added by the caller).
std::vector<Dispatch> plan_attention_split(const Tensor& node, size_t k_off, size_t v_off);

}  // namespace v4::vk

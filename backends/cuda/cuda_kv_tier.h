// The KV cache's hot tier in CUDA device memory (docs/KV_TIERS.md): one cudaMalloc'd pool
// of slots whose device addresses the KV view hands to kv_store and attention (which then
// pass CudaBackend::supports). Blocks move in and out with copies that first wait for the
// device: the cache stages a layer's blocks (ensure_resident) while earlier kernels on the
// backend's stream may still read the staging slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "lib/kv/kv_tier.h"

namespace v4::cuda {

std::unique_ptr<KvTier> make_cuda_kv_tier(int device, uint32_t n_slots, size_t slot_bytes);

}  // namespace v4::cuda

// What the placement planner (lib/exec/placement.h) needs to know about a model: the bytes of
// each transformer layer's weights and KV cache, of the output layer, and of the token
// embedding, read from the GGUF tensor names (llama.cpp's: blk.N.*, output*, token_embd*).
#pragma once

#include <cstdint>
#include <vector>

#include "lib/exec/placement.h"
#include "lib/kv/kv_tier.h"
#include "lib/model/gguf.h"

namespace v4 {

// Tensors named blk.N.* count for layer N; output.weight and output_norm.weight for the output
// layer, and token_embd.weight too when there is no output.weight (tied embeddings: the output
// layer multiplies by it); token_embd.weight is also the embedding. Any other tensor (e.g.
// rope_freqs.weight, read by every layer) is counted with the output layer, on the safe side.
// KV: each component named blk.N.* costs n_ctx rows in layer N. Throws bad_format for a
// blk.N name with N outside [0, n_layer).
ModelFootprint model_footprint(const gguf::File& file, int32_t n_layer,
                               const std::vector<KvComponentSpec>& kv, uint32_t n_ctx);

}  // namespace v4

// Vectorised attention over KV pages (f32, f16, bf16 or FP8 rows, head size a multiple of 8).
#pragma once

#include "lib/core/tensor.h"

namespace v4::cpu {

// Whether attention_avx2 can run this node on this CPU.
bool fast_attention_supported(const Tensor& node);
void attention_avx2(const Tensor* node, int ith, int nth);

}  // namespace v4::cpu

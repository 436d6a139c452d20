// Vectorised attention over KV pages (f32, f16, bf16 or FP8 rows, head size a multiple of 8).
#pragma once

#include <utility>
#include <vector>

#include "lib/core/tensor.h"

namespace v4::cpu {

using AttentionFn = void (*)(const Tensor* node, int ith, int nth);

// The fastest vectorised attention kernel for this node on this CPU, or nullptr (the
// reference kernel runs).
AttentionFn fast_attention_kernel(const Tensor& node);
// Every vectorised attention kernel this CPU can run on this node, oldest first, by name
// (benchmarks and tests compare them).
std::vector<std::pair<const char*, AttentionFn>> attention_kernels(const Tensor& node);

// Limits of the AVX-512 kernel (larger nodes use the AVX2 one): a KV group's query heads,
// padded to a power of two, share one 16-lane vector, and each token of a tile keeps its
// group's queries, rearranged, on the stack.
constexpr int64_t kAvx512MaxGroup = 16;
constexpr int64_t kAvx512MaxHeadDim = 512;
constexpr int64_t kAvx512QueryFloats = 2048;

void attention_avx2(const Tensor* node, int ith, int nth);
void attention_avx512(const Tensor* node, int ith, int nth);

}  // namespace v4::cpu

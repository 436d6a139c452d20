// Fast dot products of weight rows with activation rows, chosen per weight type and
// CPU at run time. Quantised weights meet activations quantised to Q8_0 blocks (integer
// dot products); float weights meet f32 activations. A kernel computes one weight row
// against up to kMaxCols activation rows at once (reusing the unpacked weights), and
// every (row, column) result is bit-identical whatever the number of columns, so
// prefill and decode agree exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/core/dtype.h"

namespace v4::cpu {

constexpr int kMaxCols = 4;

enum class ActFormat { f32, q8_0 };

// out[c] = dot(w, x + c * x_stride) for c < nc (1 <= nc <= kMaxCols); k elements.
using DotFn = void (*)(const uint8_t* w, const uint8_t* x, size_t x_stride, int nc, int64_t k,
                       float* out);

struct DotKernel {
  ActFormat act;
  DotFn dot;
  const char* isa;
};

// The best kernel for a weight type on this CPU, or nullptr (use the reference kernel).
const DotKernel* find_dot_kernel(DType weight_type);

// Per-ISA tables (nullptr entries where the ISA has no kernel for the type).
const DotKernel* avx2_dot_kernel(DType weight_type);

}  // namespace v4::cpu

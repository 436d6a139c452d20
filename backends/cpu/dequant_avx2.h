// Vectorised dequantisers (AVX2) with the reference's results bit for bit, for the types
// whose fused-dequantisation kernel would otherwise be bound by the scalar reference.
#pragma once

#include <cstdint>

#include "lib/core/dtype.h"

namespace v4::cpu {

using DequantFn = void (*)(const void* src, float* dst, int64_t n);

// nullptr where the type has none (use traits(t).to_f32). Call only on AVX2 CPUs.
DequantFn avx2_dequantizer(DType t);

}  // namespace v4::cpu

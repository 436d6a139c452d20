// Vectorised element-wise kernels that replace a reference kernel where the CPU allows.
#pragma once

#include "lib/core/tensor.h"

namespace v4::cpu {

using ElementwiseFn = void (*)(const Tensor* node, int ith, int nth);

// The vectorised kernel for this node on this CPU, or nullptr (the reference kernel runs).
ElementwiseFn fast_elementwise_kernel(const Tensor& node);

void swiglu_avx512(const Tensor* node, int ith, int nth);

}  // namespace v4::cpu

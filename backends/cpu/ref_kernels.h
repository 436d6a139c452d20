// Reference kernels: plain loops with f32 accumulation. They define what each op
// computes; every faster kernel on every backend is tested against them. Each kernel
// computes the share (ith of nth) of a node's output rows; no reduction is ever split
// across threads, so results do not depend on the thread count.
#pragma once

#include "lib/core/tensor.h"

namespace v4::cpu {

using KernelFn = void (*)(const Tensor* node, int ith, int nth);

// The kernel for a node, or nullptr if the CPU cannot compute it.
KernelFn reference_kernel(const Tensor& node);

}  // namespace v4::cpu

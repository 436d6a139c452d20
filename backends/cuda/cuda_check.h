// Turns a CUDA runtime error code into v4::Error with the call that failed and CUDA's text.
#pragma once

#include <cuda_runtime.h>

#include "lib/core/error.h"

namespace v4::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  const Status s = err == cudaErrorMemoryAllocation ? Status::out_of_memory
                   : (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver)
                       ? Status::no_device
                       : Status::internal;
  fail(s, "cuda: {} failed: {} ({})", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

}  // namespace v4::cuda

#define V4_CUDA_CHECK(expr) ::v4::cuda::check((expr), #expr)

// Blocking copies between host memory and device memory of the CUDA backend, and raw
// device allocations.
#include <cuda_runtime.h>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_check.h"

namespace v4 {

void cuda_copy_to_host(void* dst, const void* device_src, size_t bytes) {
  V4_CUDA_CHECK(cudaMemcpy(dst, device_src, bytes, cudaMemcpyDeviceToHost));
}

void cuda_copy_to_device(void* device_dst, const void* src, size_t bytes) {
  V4_CUDA_CHECK(cudaMemcpy(device_dst, src, bytes, cudaMemcpyHostToDevice));
}

void* cuda_device_alloc(size_t bytes) {
  void* p = nullptr;
  V4_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  return p;
}

void cuda_device_free(void* device_ptr) { cudaFree(device_ptr); }

}  // namespace v4

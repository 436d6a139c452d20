// Blocking copies between host memory and device memory of the CUDA backend.
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

}  // namespace v4

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels.h"

namespace v4::cuda {

void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    fail(Status::internal, "cuda: launching kernel {} failed: {} ({})", kernel,
         cudaGetErrorString(err), cudaGetErrorName(err));
}

void fail_weight_type(DType t) {
  fail(Status::unsupported, "cuda: no kernel for weight type {}", type_name(t));
}

void fail_unsupported(const char* what) { fail(Status::unsupported, "cuda: {}", what); }

}  // namespace v4::cuda

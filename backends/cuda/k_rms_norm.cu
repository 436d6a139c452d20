// rms_norm: one block per row; the sum of squares is a block reduction.
#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

__global__ void rms_norm_kernel(DevTensor x, float eps, DevTensor out) {
  __shared__ float scratch[kWarp];
  const int64_t r = blockIdx.x, n = x.ne[0];
  const float* xr = frow(x, r);
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) ss += xr[j] * xr[j];
  ss = block_reduce<false>(ss, scratch);
  const float s = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  float* o = frow_mut(out, r);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) o[j] = s * xr[j];
}

}  // namespace

void launch_rms_norm(const DevTensor& x, float eps, const DevTensor& out, cudaStream_t s) {
  if (x.n_rows() == 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(x.n_rows()), 256, 0, s>>>(x, eps, out);
  check_launch("rms_norm");
}

}  // namespace v4::cuda

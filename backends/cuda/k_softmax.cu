// softmax of x * scale per row, optionally causal (row i of each matrix sees columns 0..i):
// one block per row; max and sum are block reductions, as the reference subtracts the max.
#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

__global__ void softmax_kernel(DevTensor x, float scale, int causal, DevTensor out) {
  __shared__ float scratch[kWarp];
  const int64_t r = blockIdx.x, n = x.ne[0];
  const int64_t visible = causal ? min(n, (r % x.ne[1]) + 1) : n;
  const float* xr = frow(x, r);
  float* o = frow_mut(out, r);
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < visible; j += blockDim.x) mx = fmaxf(mx, xr[j] * scale);
  mx = block_reduce<true>(mx, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < visible; j += blockDim.x) {
    const float e = expf(xr[j] * scale - mx);
    o[j] = e;
    sum += e;
  }
  sum = block_reduce<false>(sum, scratch);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) o[j] = j < visible ? o[j] / sum : 0.0f;
}

}  // namespace

void launch_softmax(const DevTensor& x, float scale, bool causal, const DevTensor& out,
                    cudaStream_t s) {
  if (x.n_rows() == 0) return;
  softmax_kernel<<<static_cast<unsigned>(x.n_rows()), 256, 0, s>>>(x, scale, causal ? 1 : 0, out);
  check_launch("softmax");
}

}  // namespace v4::cuda

// add, mul (src1 broadcast over rows when it has one row), scale, silu and swiglu: one thread
// per element, rows addressed through their byte stride as the reference kernels do.
#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

__device__ __forceinline__ float silu(float v) { return v * (1.0f / (1.0f + expf(-v))); }

template <EltOp kOp>
__global__ void eltwise_kernel(DevTensor a, DevTensor b, float f, DevTensor out, int64_t n) {
  const int64_t ne0 = out.ne[0];
  const bool bcast = b.data && b.ne[1] * b.ne[2] * b.ne[3] == 1;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / ne0, j = idx % ne0;
    const float x = frow(a, r)[j];
    float y = 0.0f;
    if constexpr (kOp == EltOp::add || kOp == EltOp::mul || kOp == EltOp::swiglu)
      y = frow(b, bcast ? 0 : r)[j];
    float o;
    if constexpr (kOp == EltOp::add)
      o = x + y;
    else if constexpr (kOp == EltOp::mul)
      o = x * y;
    else if constexpr (kOp == EltOp::scale)
      o = x * f;
    else if constexpr (kOp == EltOp::silu)
      o = silu(x);
    else
      o = silu(x) * y;
    frow_mut(out, r)[j] = o;
  }
}

template <EltOp kOp>
void launch(const DevTensor& a, const DevTensor& b, float f, const DevTensor& out, cudaStream_t s) {
  const int64_t n = out.ne[0] * out.n_rows();
  if (n == 0) return;
  const int64_t blocks = (n + 255) / 256;
  eltwise_kernel<kOp>
      <<<static_cast<unsigned>(blocks < 65535 ? blocks : 65535), 256, 0, s>>>(a, b, f, out, n);
}

}  // namespace

void launch_eltwise(EltOp op, const DevTensor& a, const DevTensor* b, float f, const DevTensor& out,
                    cudaStream_t s) {
  const DevTensor none;
  const DevTensor& bb = b ? *b : none;
  switch (op) {
    case EltOp::add:
      launch<EltOp::add>(a, bb, f, out, s);
      break;
    case EltOp::mul:
      launch<EltOp::mul>(a, bb, f, out, s);
      break;
    case EltOp::scale:
      launch<EltOp::scale>(a, bb, f, out, s);
      break;
    case EltOp::silu:
      launch<EltOp::silu>(a, bb, f, out, s);
      break;
    case EltOp::swiglu:
      launch<EltOp::swiglu>(a, bb, f, out, s);
      break;
  }
  check_launch("eltwise");
}

}  // namespace v4::cuda

// Rotary embedding, NORM (adjacent pairs) and NeoX (halves) pairings over the sub-range
// [dim_offset, dim_offset + n_dims) of each head, with linear/YaRN scaling and optional
// per-pair frequency factors; the reference's formulas (theta = pos / base^(2i/n_dims)).
// One thread per output element: it computes its own half of its pair, so no thread writes
// what another reads.
#include <algorithm>
#include <cmath>

#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

struct RopeArgs {
  RopeParams p;
  float corr0 = 0.0f, corr1 = 0.0f;  // YaRN correction dims (host-computed as the reference)
  float mscale_ext = 1.0f;
};

__device__ float yarn_ramp(float low, float high, int i0) {
  const float y = (static_cast<float>(i0) / 2.0f - low) / fmaxf(0.001f, high - low);
  return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

__global__ void rope_kernel(DevTensor x, const int32_t* pos, const float* factors, RopeArgs a,
                            DevTensor out, int64_t n) {
  const RopeParams& p = a.p;
  const int64_t head_dim = x.ne[0], n_head = x.ne[1];
  const int half = p.n_dims / 2;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = idx / head_dim, j = idx % head_dim;
    const float* xr = frow(x, row);
    float* o = frow_mut(out, row);
    const int64_t rel = j - p.dim_offset;
    if (rel < 0 || rel >= 2 * half) {
      o[j] = xr[j];
      continue;
    }
    const bool neox = p.mode == RopeMode::neox;
    const int i = static_cast<int>(neox ? rel % half : rel / 2);
    const int64_t ea = p.dim_offset + (neox ? i : 2 * i);
    const int64_t eb = ea + (neox ? half : 1);
    float freq = 1.0f / powf(p.freq_base, static_cast<float>(2 * i) / p.n_dims);
    if (factors) freq /= factors[i];
    const float theta_extrap = static_cast<float>(pos[row / n_head]) * freq;
    float theta = theta_extrap * p.freq_scale;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) {
      const float mix = yarn_ramp(a.corr0, a.corr1, 2 * i) * p.ext_factor;
      theta = theta * (1.0f - mix) + theta_extrap * mix;
      mscale *= a.mscale_ext;
    }
    const float c = cosf(theta) * mscale, s = sinf(theta) * mscale;
    const float v0 = xr[ea], v1 = xr[eb];
    o[j] = j == ea ? v0 * c - v1 * s : v0 * s + v1 * c;
  }
}

}  // namespace

void launch_rope(const DevTensor& x, const DevTensor& pos, const float* freq_factors,
                 const RopeParams& p, const DevTensor& out, cudaStream_t s) {
  RopeArgs a;
  a.p = p;
  if (p.ext_factor != 0.0f) {
    const auto corr = [&](float n_rot) {
      return static_cast<float>(p.n_dims) *
             std::log(static_cast<float>(p.n_ctx_orig) /
                      (n_rot * 2.0f * static_cast<float>(M_PI))) /
             (2.0f * std::log(p.freq_base));
    };
    a.corr0 = std::max(0.0f, std::floor(corr(p.beta_fast)));
    a.corr1 = std::min(static_cast<float>(p.n_dims - 1), std::ceil(corr(p.beta_slow)));
    a.mscale_ext = 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  }
  const int64_t n = x.ne[0] * x.n_rows();
  if (n == 0) return;
  const int64_t blocks = (n + 255) / 256;
  rope_kernel<<<static_cast<unsigned>(blocks < 65535 ? blocks : 65535), 256, 0, s>>>(
      x, static_cast<const int32_t*>(pos.data), freq_factors, a, out, n);
  check_launch("rope");
}

}  // namespace v4::cuda

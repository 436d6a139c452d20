// Decode matvec: out[n, c] = sum_k W[k, n] * X[k, c] for up to 8 activation columns per pass.
// One warp per weight row; each lane decodes 8 consecutive elements (inside one block for
// every block type: 32 and 256 are multiples of 8), so a warp reads 256 consecutive elements
// per step and every weight byte once per pass; a warp shuffle reduction sums the lanes.
#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

constexpr int kRowsPerBlock = 4;
constexpr int kPerLane = 8;

template <DType T, int kMaxCols>
__global__ void matvec_kernel(DevTensor w, DevTensor x, DevTensor out, int64_t col0, int nc) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= w.ne[1]) return;  // the whole warp leaves together
  const auto* wrow = static_cast<const uint8_t*>(w.data) + row * w.nb[1];
  const int64_t k = w.ne[0];
  float acc[kMaxCols];
#pragma unroll
  for (int c = 0; c < kMaxCols; ++c) acc[c] = 0.0f;
  for (int64_t base = lane * kPerLane; base < k; base += kWarp * kPerLane) {
    float wv[kPerLane];
    if (base + kPerLane <= k) {
      dm::decode8<T>(wrow, base, wv);  // block scales decoded once for the 8
    } else {                           // the tail of a plain-type row
#pragma unroll
      for (int e = 0; e < kPerLane; ++e)
        wv[e] = base + e < k ? dm::row_value(T, wrow, base + e) : 0.0f;
    }
#pragma unroll
    for (int c = 0; c < kMaxCols; ++c) {
      if (c >= nc) break;
      const float* xr = frow(x, col0 + c);
#pragma unroll
      for (int e = 0; e < kPerLane; ++e)
        if (base + e < k) acc[c] += wv[e] * xr[base + e];
    }
  }
#pragma unroll
  for (int c = 0; c < kMaxCols; ++c) {
    if (c >= nc) break;
    const float s = warp_sum(acc[c]);
    if (lane == 0) frow_mut(out, col0 + c)[row] = s;
  }
}

}  // namespace

bool weight_type_supported(DType t) { return dm::row_value_supported(t); }

void launch_matvec(const DevTensor& w, const DevTensor& x, const DevTensor& out, cudaStream_t s) {
  const int64_t m = x.n_rows();
  const dim3 grid(static_cast<unsigned>((w.ne[1] + kRowsPerBlock - 1) / kRowsPerBlock));
  const dim3 block(kRowsPerBlock * kWarp);
  with_weight_type(w.type, [&](auto tag) {
    constexpr DType T = decltype(tag)::value;
    if (m == 1) {
      matvec_kernel<T, 1><<<grid, block, 0, s>>>(w, x, out, 0, 1);
      return;
    }
    for (int64_t c0 = 0; c0 < m; c0 += 8)
      matvec_kernel<T, 8>
          <<<grid, block, 0, s>>>(w, x, out, c0, static_cast<int>(m - c0 < 8 ? m - c0 : 8));
  });
  check_launch("matvec");
}

}  // namespace v4::cuda

// Prefill matmul on tensor cores: a block computes a 32 (tokens) x 32 (weight rows) tile of
// the output with four warps, each one 16x16 WMMA accumulator (f16 inputs, f32 sums). Each
// step dequantises a 32x32 tile of weights and converts a 32x32 tile of activations to f16
// in shared memory; that works for every weight type, at the cost of f16 rounding of the
// activations (the parity threshold for this path is the quantised one, 5e-4).
#include <cuda_fp16.h>
#include <mma.h>

#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

namespace wmma = nvcuda::wmma;
constexpr int kTile = 32;
constexpr int kLd = kTile + 8;       // half elements per shared row (16-byte multiple, skews banks)
constexpr int kLdOut = kTile + 4;    // floats per row of the output tile
constexpr int kThreads = 4 * kWarp;  // one 8-element group of a 32x32 tile per thread
static_assert(kTile * kTile == kThreads * 8);

template <DType T>
__global__ void mma_kernel(DevTensor w, DevTensor x, DevTensor out) {
  __shared__ __align__(32) half ws[kTile * kLd];      // [weight row][k]
  __shared__ __align__(32) half xs[kTile * kLd];      // [token][k]
  __shared__ __align__(32) float cs[kTile * kLdOut];  // [token][weight row]
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t k_len = w.ne[0], n_rows = w.ne[1], n_tok = x.n_rows();
  const int warp = threadIdx.x / kWarp;
  const int wt = warp / 2, wr = warp % 2;  // this warp's 16x16: tokens wt*16.., rows wr*16..

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int64_t k0 = 0; k0 < k_len; k0 += kTile) {
    {  // each of the 128 threads fills 8 consecutive k of one weight row and one token
      const int r = threadIdx.x / 4, kk0 = (threadIdx.x % 4) * 8;
      const int64_t gk = k0 + kk0, row = row0 + r, tok = tok0 + r;
      const auto* wrow = static_cast<const uint8_t*>(w.data) + row * w.nb[1];
      float wv[8];
      if (row < n_rows && gk + 8 <= k_len) {
        dm::decode8<T>(wrow, gk, wv);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e)
          wv[e] = row < n_rows && gk + e < k_len ? dm::row_value(T, wrow, gk + e) : 0.0f;
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        ws[r * kLd + kk0 + e] = __float2half(wv[e]);
        xs[r * kLd + kk0 + e] =
            __float2half(tok < n_tok && gk + e < k_len ? frow(x, tok)[gk + e] : 0.0f);
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTile; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> b;
      wmma::load_matrix_sync(a, xs + wt * 16 * kLd + kk, kLd);
      wmma::load_matrix_sync(b, ws + wr * 16 * kLd + kk, kLd);  // B[k][n] = ws[n][k]
      wmma::mma_sync(acc, a, b, acc);
    }
    __syncthreads();
  }
  wmma::store_matrix_sync(cs + wt * 16 * kLdOut + wr * 16, acc, kLdOut, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < kTile * kTile; i += blockDim.x) {
    const int t = i / kTile, r = i % kTile;
    if (tok0 + t < n_tok && row0 + r < n_rows)
      frow_mut(out, tok0 + t)[row0 + r] = cs[t * kLdOut + r];
  }
}

}  // namespace

void launch_matmul_mma(const DevTensor& w, const DevTensor& x, const DevTensor& out,
                       cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((w.ne[1] + kTile - 1) / kTile),
                  static_cast<unsigned>((x.n_rows() + kTile - 1) / kTile));
  with_weight_type(w.type, [&](auto tag) {
    mma_kernel<decltype(tag)::value><<<grid, kThreads, 0, s>>>(w, x, out);
  });
  check_launch("matmul_mma");
}

}  // namespace v4::cuda

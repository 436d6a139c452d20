// AVX-512 VNNI dot kernels for Q4_K and Q5_K (the bulk of the common Q4_K_M / Q5_K_M files)
// with q8k activations. Before these, both types went through the fused-dequantisation
// kernel (the scalar reference dequantiser, then f32 FMAs), about 30x slower than Q4_0.
//
// A super-block of 256 values is 8 sub-blocks of 32 with their own 6-bit scale and minimum.
// The quant bytes unpack (low / high nibbles of 64 bytes) into four vectors holding sub-
// blocks (0|2), (1|3), (4|6), (5|7); the activations are stored in that order (q8k), so
// each vector is one vpdpbusd with unsigned weights, and its 16 int32 lanes take their
// sub-block's scale product (lanes 0-7 the first, 8-15 the second). The minimums do not
// depend on the weights' values: per (row, column) they are one 8-wide fma of dmin * m_j
// with the activations' block sums d_j * sum(q_j), which the quantiser stores.
//
// Result per (row, column): the 16-lane accumulator folded like the other kernels, minus
// the 8-lane minimum accumulator's sum. The matvec is the GEMM's 1 x nc tile, so every
// (row, column) gets the same operations whatever the tile or the number of columns, and
// prefill equals decode bit for bit.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backends/cpu/avx512_gemm_driver.h"
#include "backends/cpu/avx512_reduce.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/gemm_kernels.h"
#include "lib/core/quant/quant.h"

namespace v4::cpu {

namespace {

// Scales and minimums of one super-block as floats: d * sc_j and dmin * m_j. The 12 bytes
// are read as three 32-bit words (k4_scale_min's packing, four sub-blocks per word).
inline void k4_scales(const uint8_t* scales, uint16_t d, uint16_t dmin, __m256* sc, __m256* mn) {
  uint32_t u[3];
  std::memcpy(u, scales, sizeof u);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint64_t s = (u[0] & lo6) | static_cast<uint64_t>((u[2] & lo4) | (((u[0] >> 6) & lo2) << 4)) << 32;
  const uint64_t m = (u[1] & lo6) | static_cast<uint64_t>(((u[2] >> 4) & lo4) | (((u[1] >> 6) & lo2) << 4)) << 32;
  const auto floats = [](uint64_t bytes) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes))));
  };
  *sc = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(d)), floats(s));
  *mn = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(dmin)), floats(m));
}

// Register tiles of nr weight rows x nc activation columns (the GEMM driver's contract,
// avx512_gemm_driver.h); the matvec is the 1 x nc tile, so prefill equals decode.
template <bool kQ5>
struct K4Tiles {
  static constexpr int kRows = 4, kCols = 2;
  using Block = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;

  // Vector v of a super-block's unpacked values (sub-blocks kQ8kPairs[v]), unsigned.
  static __m512i unpack(const Block& b, int v) {
    const __m512i raw = _mm512_loadu_si512(b.qs + 64 * (v >> 1));
    const __m512i q = _mm512_and_si512((v & 1) ? _mm512_srli_epi16(raw, 4) : raw, _mm512_set1_epi8(0x0f));
    if constexpr (!kQ5) {
      return q;
    } else {
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)));
      const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << kQ8kPairs[v][0])),
                                             _mm256_set1_epi8(static_cast<char>(1 << kQ8kPairs[v][1])), 1);
      return _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh, bit), q, _mm512_set1_epi8(16));
    }
  }

  template <int nr, int nc>
  static void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k, float* out,
                   size_t os) {
    __m512 acc[nr][nc];
    __m256 accm[nr][nc];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) {
        acc[r][c] = _mm512_setzero_ps();
        accm[r][c] = _mm256_setzero_ps();
      }
    for (int64_t i = 0; i < k / 256; ++i) {
      const uint8_t* xi = x + i * 544;
      __m256 sc8[nr], mn8[nr];
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) {
        const Block& b = reinterpret_cast<const Block*>(w + r * ws)[i];
        k4_scales(b.scales, b.d, b.dmin, &sc8[r], &mn8[r]);
      }
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        // Lane l takes the scale of sub-block kQ8kPairs[v][l / 8].
        const __m512i pick =
            _mm512_inserti64x4(_mm512_set1_epi32(kQ8kPairs[v][0]), _mm256_set1_epi32(kQ8kPairs[v][1]), 1);
        __m512i q[nr];
        __m512 sw[nr];
#pragma GCC unroll 16
        for (int r = 0; r < nr; ++r) {
          q[r] = unpack(reinterpret_cast<const Block*>(w + r * ws)[i], v);
          sw[r] = _mm512_permutexvar_ps(pick, _mm512_castps256_ps512(sc8[r]));
        }
#pragma GCC unroll 16
        for (int c = 0; c < nc; ++c) {
          const __m512i xv = _mm512_loadu_si512(xi + c * xs + 64 * v);
          const __m512 dx = _mm512_loadu_ps(reinterpret_cast<const float*>(xi + c * xs + 256) + 16 * v);
#pragma GCC unroll 16
          for (int r = 0; r < nr; ++r) {
            const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[r], xv);
            acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(sw[r], dx), _mm512_cvtepi32_ps(dot), acc[r][c]);
          }
        }
      }
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) {
        const __m256 sums = _mm256_loadu_ps(reinterpret_cast<const float*>(xi + c * xs + 512));
#pragma GCC unroll 16
        for (int r = 0; r < nr; ++r) accm[r][c] = _mm256_fmadd_ps(mn8[r], sums, accm[r][c]);
      }
    }
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c)
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) out[c * os + r] = hsum256(fold512(acc[r][c])) - hsum256(accm[r][c]);
  }
};

template <bool kQ5>
void dot_k4(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { K4Tiles<kQ5>::template tile<1, decltype(n)::value>(w, 0, x, xs, k, out, 1); });
}

size_t q8k_bytes(int64_t k) { return q8k_row_bytes(k); }

const DotKernel kQ4_K{ActFormat::q8k, dot_k4<false>, "avx512-vnni"};
const DotKernel kQ5_K{ActFormat::q8k, dot_k4<true>, "avx512-vnni"};
const GemmKernel kQ4_K_Gemm{q8k_bytes, quantize_q8k_row, gemm_driver::gemm<K4Tiles<false>>, "avx512-vnni"};
const GemmKernel kQ5_K_Gemm{q8k_bytes, quantize_q8k_row, gemm_driver::gemm<K4Tiles<true>>, "avx512-vnni"};

}  // namespace

const DotKernel* avx512_k4_dot_kernel(DType t) {
  switch (t) {
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    default: return nullptr;
  }
}

const GemmKernel* avx512_k4_gemm_kernel(DType t) {
  switch (t) {
    case DType::Q4_K: return &kQ4_K_Gemm;
    case DType::Q5_K: return &kQ5_K_Gemm;
    default: return nullptr;
  }
}

}  // namespace v4::cpu

// AVX-512 VNNI kernels for the X16 layouts (Q4_0_X16, Q8_0_X16; lib/core/quant/repack.h)
// with q8x16 activations: the decode matvec and the prefill GEMM tiles are one template, so
// a (row, column) result is the same bits whichever of them computes it.
//
// Each 32-bit lane of a 64-byte vector holds 4 values of one block, so per super-group of
// 16 blocks (512 values) and (row, column) the work is 8 vpdpbusd that sum each block in
// its own lane, starting from the block's re-centring term (the weights enter unsigned:
// Q4_0 nibbles are q + 8, the Q8_0 bytes are stored as q + 128), then one conversion, one
// scale product and one fma for all 16 blocks. The R4 layouts (4 blocks per vector) need a
// conversion, product and fma per 4 blocks, which is where their GEMM spent its time
// (docs/DESIGN.md, "Prefill GEMM").
//
// Order of the float work, fixed per (row, column): acc[lane j] += (dw[j] * dx[j]) *
// float(isum[j]) for super-groups in order, then fold512 + hsum256.
#include <immintrin.h>

#include "backends/cpu/avx512_gemm_driver.h"
#include "backends/cpu/avx512_reduce.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/gemm_kernels.h"

namespace v4::cpu {
namespace {

template <bool kQ8>
struct X16Tiles {
  static constexpr int kRows = 4, kCols = 3;
  static constexpr size_t kGroupBytes = kQ8 ? 544 : 288;
  static constexpr int kShift = kQ8 ? 7 : 3;  // offset 128 or 8

  // Step s of row r's super-group (its 64 bytes of unsigned values).
  static __m512i step(const uint8_t* grp, int s) {
    if constexpr (kQ8) {
      return _mm512_loadu_si512(grp + 32 + 64 * s);
    } else {
      const __m512i raw = _mm512_loadu_si512(grp + 32 + 64 * (s >> 1));
      const __m512i v = (s & 1) ? _mm512_srli_epi16(raw, 4) : raw;
      return _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
    }
  }

  template <int nr, int nc>
  static void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k, float* out,
                   size_t os) {
    const int64_t groups = k / 512;
    __m512 acc[nr][nc];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* wg = w + g * kGroupBytes;
      const uint8_t* xg = x + g * 640;
      __m512i dot[nr][nc];
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) {
        const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(xg + c * xs + 512), kShift);
#pragma GCC unroll 16
        for (int r = 0; r < nr; ++r) dot[r][c] = corr;
      }
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        __m512i wv[nr];
#pragma GCC unroll 16
        for (int r = 0; r < nr; ++r) wv[r] = step(wg + r * ws, s);
#pragma GCC unroll 16
        for (int c = 0; c < nc; ++c) {
          const __m512i xv = _mm512_loadu_si512(xg + c * xs + 64 * s);
#pragma GCC unroll 16
          for (int r = 0; r < nr; ++r) dot[r][c] = _mm512_dpbusd_epi32(dot[r][c], wv[r], xv);
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) {
        const __m512 dw =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + r * ws)));
#pragma GCC unroll 16
        for (int c = 0; c < nc; ++c) {
          const __m512 dx = _mm512_loadu_ps(xg + c * xs + 576);
          acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(dot[r][c]), acc[r][c]);
        }
      }
    }
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c)
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) out[c * os + r] = hsum256(fold512(acc[r][c]));
  }
};

// Decode: one weight row against up to kMaxCols columns (one sequential weight stream per
// thread, which measured fastest for decode: docs/BENCHMARKS.md).
template <bool kQ8>
void dot_x16(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { X16Tiles<kQ8>::template tile<1, decltype(n)::value>(w, 0, x, xs, k, out, 1); });
}

size_t x16_act_bytes(int64_t k) { return q8x16_row_bytes(k); }

const DotKernel kQ4_0_X16{ActFormat::q8x16, dot_x16<false>, "avx512-vnni"};
const DotKernel kQ8_0_X16{ActFormat::q8x16, dot_x16<true>, "avx512-vnni"};
const GemmKernel kQ4_0_X16_Gemm{x16_act_bytes, quantize_q8x16_row, gemm_driver::gemm<X16Tiles<false>>,
                                "avx512-vnni"};
const GemmKernel kQ8_0_X16_Gemm{x16_act_bytes, quantize_q8x16_row, gemm_driver::gemm<X16Tiles<true>>,
                                "avx512-vnni"};

}  // namespace

const DotKernel* avx512_x16_dot_kernel(DType t) {
  switch (t) {
    case DType::Q4_0_X16: return &kQ4_0_X16;
    case DType::Q8_0_X16: return &kQ8_0_X16;
    default: return nullptr;
  }
}

const GemmKernel* avx512_x16_gemm_kernel(DType t) {
  switch (t) {
    case DType::Q4_0_X16: return &kQ4_0_X16_Gemm;
    case DType::Q8_0_X16: return &kQ8_0_X16_Gemm;
    default: return nullptr;
  }
}

}  // namespace v4::cpu

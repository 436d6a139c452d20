// AVX-512 VNNI GEMM for the regrouped weights (Q4_0_R4, Q8_0_R4) with q8r4x activations.
// This file alone (with dot_avx512.cpp) is compiled with AVX-512; it runs only after CPUID
// says the CPU has it.
//
// Register tile: kRows weight rows x kCols activation columns, one 16-lane f32 accumulator
// per (row, column). Per 128-value group the tile unpacks each row's weights once (two
// 64-byte halves and the block scales) and loads each column's activations once, then
// does two vpdpbusd, one scale product and one fma per (row, column). The matvec kernel
// (dot_r4_n in dot_avx512.cpp) spends about three times as many instructions per (row,
// column, group) rebuilding the per-lane scales and re-centring sums for every row.
//
// Bit-identity with the matvec kernel: per (row, column, group) both compute the same
// int32 lanes (the re-centring is the accumulator's start value here and a subtraction
// there: integer sums are exact), convert them, multiply the same two f32 scales into
// the lane's factor and fma into the lane's accumulator in group order; the final
// reduction is the same fold512 + hsum256. So the tile shape, panel and thread split
// never change a result.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "backends/cpu/avx512_reduce.h"
#include "backends/cpu/gemm_kernels.h"

namespace v4::cpu {
namespace {

constexpr int kRows = 4;
constexpr int kCols = 3;
// Activation columns per panel: sized so a panel stays in L2 (1 MiB per core on the
// machines we measure; half of it leaves room for the weight rows streaming through).
constexpr size_t kPanelBytes = 512 * 1024;

using TileFn = void (*)(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t groups,
                        float* out, size_t os);

// nr rows x nc columns (nr <= kRows, nc <= kCols) over all groups; out[c * os + r].
template <bool kQ8, int nr, int nc>
void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t groups, float* out,
          size_t os) {
  constexpr size_t kGroupBytes = kQ8 ? 136 : 72;
  const __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[nr][nc];
#pragma GCC unroll 16
  for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512i wa[nr], wb[nr];
    __m512 dw[nr];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r) {
      const uint8_t* grp = w + r * ws + g * kGroupBytes;
      const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(grp)));
      dw[r] = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(d4));
      if constexpr (kQ8) {
        wa[r] = _mm512_xor_si512(_mm512_loadu_si512(grp + 8), flip);
        wb[r] = _mm512_xor_si512(_mm512_loadu_si512(grp + 72), flip);
      } else {
        const __m512i raw = _mm512_loadu_si512(grp + 8);
        wa[r] = _mm512_and_si512(raw, nib);
        wb[r] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), nib);
      }
    }
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xg = x + c * xs + g * 256;
      const __m512i xa = _mm512_loadu_si512(xg);
      const __m512i xb = _mm512_loadu_si512(xg + 64);
      const __m512i corr = _mm512_loadu_si512(xg + 128);
      const __m512 dx = _mm512_loadu_ps(xg + 192);
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) {
        __m512i dot = _mm512_dpbusd_epi32(corr, wa[r], xa);
        dot = _mm512_dpbusd_epi32(dot, wb[r], xb);
        acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(dot), acc[r][c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < nc; ++c)
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r) out[c * os + r] = hsum256(fold512(acc[r][c]));
}

// tiles[(nr - 1) * kCols + nc - 1] computes an nr x nc tile.
template <bool kQ8, int... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::integer_sequence<int, I...>) {
  return {&tile<kQ8, I / kCols + 1, I % kCols + 1>...};
}

template <bool kQ8>
void gemm_r4(const GemmArgs& a) {
  static constexpr auto tiles = make_tiles<kQ8>(std::make_integer_sequence<int, kRows * kCols>{});
  const int64_t groups = a.k / 128;
  // Loop order: a panel of columns stays in L2 while this thread's rows stream through it
  // kRows at a time; a row tile's weights (a few KiB) stay in L1 across the panel's columns.
  const int64_t panel = std::max<int64_t>(
      kCols, static_cast<int64_t>(kPanelBytes / std::max<size_t>(a.x_stride, 1)) / kCols * kCols);
  for (int64_t c0 = 0; c0 < a.m; c0 += panel) {
    const int64_t c1 = std::min(a.m, c0 + panel);
    for (int64_t r = a.row_begin; r < a.row_end; r += kRows) {
      const int nr = static_cast<int>(std::min<int64_t>(kRows, a.row_end - r));
      const uint8_t* w = a.w + r * a.w_stride;
      for (int64_t c = c0; c < c1; c += kCols) {
        const int nc = static_cast<int>(std::min<int64_t>(kCols, c1 - c));
        tiles[(nr - 1) * kCols + nc - 1](w, a.w_stride, a.x + c * a.x_stride, a.x_stride, groups,
                                         a.out + c * a.out_stride + r, a.out_stride);
      }
    }
  }
}

size_t r4x_bytes(int64_t k) { return q8r4x_row_bytes(k); }
void quantize_for_q4(const float* x, uint8_t* out, int64_t k) { quantize_q8r4x_row(x, out, k, 3); }
void quantize_for_q8(const float* x, uint8_t* out, int64_t k) { quantize_q8r4x_row(x, out, k, 7); }

const GemmKernel kQ4_0_R4{r4x_bytes, quantize_for_q4, gemm_r4<false>, "avx512-vnni"};
const GemmKernel kQ8_0_R4{r4x_bytes, quantize_for_q8, gemm_r4<true>, "avx512-vnni"};

}  // namespace

const GemmKernel* avx512_gemm_kernel(DType t) {
  return t == DType::Q4_0_R4 ? &kQ4_0_R4 : t == DType::Q8_0_R4 ? &kQ8_0_R4 : nullptr;
}

}  // namespace v4::cpu

// AVX-512 VNNI GEMM kernels: the regrouped weights (Q4_0_R4, Q8_0_R4) with q8r4x
// activations, and plain Q4_0 / Q8_0 weights (mmap'd files) with q8 activations. Compiled
// with AVX-512 like dot_avx512.cpp; runs only after CPUID says the CPU has it.
//
// (The X16 layouts have their own tiles: dot_avx512_x16.cpp.)
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
// never change a result. The plain-block tiles mirror dot_q8_n the same way (two blocks per
// 512-bit step, a 256-bit tail block, the same scale products).
#include <immintrin.h>

#include "backends/cpu/avx512_blocks.h"
#include "backends/cpu/avx512_float_loads.h"
#include "backends/cpu/avx512_gemm_driver.h"
#include "backends/cpu/avx512_reduce.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/gemm_kernels.h"

namespace v4::cpu {
namespace {

constexpr int kTileRows = 4;
constexpr int kTileCols = 3;

// The tile kernels of one weight format are a class template's static member templates, so
// one table builder (make_tiles) serves every format. tile<nr, nc> computes nr rows x nc
// columns (nr <= kRows, nc <= kCols) over all k values.
template <bool kQ8>
struct R4Tiles {
  static constexpr int kRows = kTileRows, kCols = kTileCols;
  template <int nr, int nc>
  static void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k, float* out,
                   size_t os);
};
template <class T>
struct Q8Tiles {
  static constexpr int kRows = kTileRows, kCols = kTileCols;
  template <int nr, int nc>
  static void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k, float* out,
                   size_t os);
};

template <bool kQ8>
template <int nr, int nc>
void R4Tiles<kQ8>::tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k,
                        float* out, size_t os) {
  constexpr size_t kGroupBytes = kQ8 ? 136 : 72;
  const int64_t groups = k / 128;
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

// Plain Q4_0 / Q8_0 blocks (T: Q4_0Loader or Q8_0Loader) against q8 activations: nr rows x
// nc columns, the arithmetic of dot_q8_n per (row, column). The sign of the weights moves
// to the activations (vpdpbusd takes unsigned weights) once per (row, column) step; each
// row's absolute values, sign mask and scales once per tile step.
template <class T>
template <int nr, int nc>
void Q8Tiles<T>::tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k,
                      float* out, size_t os) {
  using Block = typename T::Block;
  const int64_t nb = k / 32;
  const size_t so = q8_scales_offset(k);
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[nr][nc];
#pragma GCC unroll 16
  for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    __m512i aw[nr];
    __mmask64 neg[nr];
    __m512 dw[nr];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r) {
      const auto* wb = reinterpret_cast<const Block*>(w + r * ws) + i;
      const __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(T::load(wb[0])), T::load(wb[1]), 1);
      neg[r] = _mm512_movepi8_mask(wq);
      aw[r] = _mm512_abs_epi8(wq);
      dw[r] = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(wb[0].d)), _mm256_set1_ps(_cvtsh_ss(wb[1].d)), 1);
    }
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xr = x + c * xs;
      const float* xd = reinterpret_cast<const float*>(xr + so) + i;
      const __m512i qx = _mm512_loadu_si512(xr + i * 32);
      const __m512 dx = _mm512_insertf32x8(_mm512_set1_ps(xd[0]), _mm256_set1_ps(xd[1]), 1);
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) {
        const __m512i sx = _mm512_mask_sub_epi8(qx, neg[r], zero, qx);
        const __m512i dot = _mm512_dpbusd_epi32(zero, aw[r], sx);
        acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(dot), acc[r][c]);
      }
    }
  }
  __m256 tail[nr][nc];
#pragma GCC unroll 16
  for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c) tail[r][c] = _mm256_setzero_ps();
  if (i < nb) {
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r) {
      const Block& b = reinterpret_cast<const Block*>(w + r * ws)[i];
      const __m256i wq = T::load(b);
      const float d0 = _cvtsh_ss(b.d);
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) {
        const uint8_t* xr = x + c * xs;
        const float xd = reinterpret_cast<const float*>(xr + so)[i];
        const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + i * 32));
        tail[r][c] = _mm256_mul_ps(_mm256_set1_ps(d0 * xd), _mm256_cvtepi32_ps(dot_i8x32(wq, qx)));
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < nc; ++c)
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r) out[c * os + r] = hsum256(_mm256_add_ps(fold512(acc[r][c]), tail[r][c]));
}

// Float weights (F32, F16, BF16; L converts 16 at a time) against f32 activations: the
// arithmetic of dot_float512_n (dot_avx512.cpp) per (row, column), two accumulators taking
// alternate 16-value steps, so a tile's result equals the matvec's bit for bit. The matvec
// reuses a converted weight vector for up to 8 columns but streams every column from L2
// for every row; the tile keeps 4 rows' steps in registers for 3 columns at a time and the
// driver keeps a panel of columns in L2 while the rows stream through once.
template <class L>
struct FloatTiles {
  static constexpr int kRows = kTileRows, kCols = kTileCols;
  template <int nr, int nc>
  static void step(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t j,
                   __m512 (&acc)[nr][nc]) {
    __m512 wv[nr];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r) wv[r] = L::load(w + r * ws, j);
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c) {
      const __m512 xv = _mm512_loadu_ps(reinterpret_cast<const float*>(x + c * xs) + j);
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }

  template <int nr, int nc>
  static void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k, float* out,
                   size_t os) {
    __m512 a0[nr][nc], a1[nr][nc];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) a0[r][c] = a1[r][c] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= k; j += 32) {
      step<nr, nc>(w, ws, x, xs, j, a0);
      step<nr, nc>(w, ws, x, xs, j + 16, a1);
    }
    for (; j + 16 <= k; j += 16) step<nr, nc>(w, ws, x, xs, j, a0);
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c)
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r)
        out[c * os + r] = float_dot_finish<L>(a0[r][c], a1[r][c], w + r * ws,
                                              reinterpret_cast<const float*>(x + c * xs), j, k);
  }
};

using gemm_driver::gemm;

size_t r4x_bytes(int64_t k) { return q8r4x_row_bytes(k); }
void quantize_for_q4(const float* x, uint8_t* out, int64_t k) { quantize_q8r4x_row(x, out, k, 3); }
void quantize_for_q8(const float* x, uint8_t* out, int64_t k) { quantize_q8r4x_row(x, out, k, 7); }
size_t q8_bytes(int64_t k) { return q8_row_bytes(k); }

const GemmKernel kQ4_0_R4{r4x_bytes, quantize_for_q4, gemm<R4Tiles<false>>, "avx512-vnni"};
const GemmKernel kQ8_0_R4{r4x_bytes, quantize_for_q8, gemm<R4Tiles<true>>, "avx512-vnni"};
size_t f32_bytes(int64_t k) { return static_cast<size_t>(k) * sizeof(float); }
// Float kernels read the activation rows as they are: no quantiser.
const GemmKernel kF32{f32_bytes, nullptr, gemm<FloatTiles<F32Load>>, "avx512"};
const GemmKernel kF16{f32_bytes, nullptr, gemm<FloatTiles<F16Load>>, "avx512"};
const GemmKernel kBF16{f32_bytes, nullptr, gemm<FloatTiles<BF16Load>>, "avx512"};
const GemmKernel kQ4_0{q8_bytes, quantize_q8_row, gemm<Q8Tiles<Q4_0Loader>>, "avx512-vnni"};
const GemmKernel kQ8_0{q8_bytes, quantize_q8_row, gemm<Q8Tiles<Q8_0Loader>>, "avx512-vnni"};

}  // namespace

const GemmKernel* avx512_gemm_kernel(DType t) {
  switch (t) {
    case DType::Q4_0_R4: return &kQ4_0_R4;
    case DType::Q8_0_R4: return &kQ8_0_R4;
    case DType::Q4_0: return &kQ4_0;
    case DType::Q8_0: return &kQ8_0;
    case DType::F32: return &kF32;
    case DType::F16: return &kF16;
    case DType::BF16: return &kBF16;
    case DType::Q4_K:
    case DType::Q5_K: return avx512_k4_gemm_kernel(t);
    case DType::Q6_K: return avx512_q6_k_gemm_kernel();
    default: return avx512_x16_gemm_kernel(t);
  }
}

}  // namespace v4::cpu

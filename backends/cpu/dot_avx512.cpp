// AVX-512 (F, BW, VL) + VNNI dot kernels: two Q8 blocks per 512-bit step, with integer
// dot products (vpdpbusd). This file alone is compiled with those instruction sets; it
// runs only after CPUID says they exist.
#include <immintrin.h>

#include "backends/cpu/avx512_blocks.h"
#include "backends/cpu/avx512_float_loads.h"
#include "backends/cpu/avx512_gemm_driver.h"
#include "backends/cpu/avx512_reduce.h"
#include "backends/cpu/dot_kernels.h"
#include "lib/core/dtype.h"

namespace v4::cpu {
namespace {

inline float half(uint16_t h) { return _cvtsh_ss(h); }

template <class T, int nc>
void dot_q8_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out) {
  const auto* wb = reinterpret_cast<const typename T::Block*>(w);
  const int64_t nb = k / 32;
  const size_t so = q8_scales_offset(k);
  __m512 acc[kMaxCols];
  for (int c = 0; c < nc; ++c) acc[c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(T::load(wb[i])), T::load(wb[i + 1]), 1);
    const float d0 = half(wb[i].d), d1 = half(wb[i + 1].d);
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xr = x + c * xs;
      const float* xd = reinterpret_cast<const float*>(xr + so) + i;
      const __m512i qx = _mm512_loadu_si512(xr + i * 32);
      const __m512 s = _mm512_insertf32x8(_mm512_set1_ps(d0 * xd[0]), _mm256_set1_ps(d1 * xd[1]), 1);
      acc[c] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dot_i8x64(wq, qx)), acc[c]);
    }
  }
  __m256 tail[kMaxCols];
  for (int c = 0; c < nc; ++c) tail[c] = _mm256_setzero_ps();
  if (i < nb) {
    const __m256i wq = T::load(wb[i]);
    const float d0 = half(wb[i].d);
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xr = x + c * xs;
      const float xd = reinterpret_cast<const float*>(xr + so)[i];
      const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + i * 32));
      tail[c] = _mm256_mul_ps(_mm256_set1_ps(d0 * xd), _mm256_cvtepi32_ps(dot_i8x32(wq, qx)));
    }
  }
  for (int c = 0; c < nc; ++c) out[c] = hsum256(_mm256_add_ps(fold512(acc[c]), tail[c]));
}

template <class T>
void dot_q8(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { dot_q8_n<T, decltype(n)::value>(w, x, xs, k, out); });
}

const DotKernel kQ4_0{ActFormat::q8, dot_q8<Q4_0Loader>, "avx512-vnni"};
const DotKernel kQ8_0{ActFormat::q8, dot_q8<Q8_0Loader>, "avx512-vnni"};

}  // namespace

const DotKernel* avx512_r4_dot_kernel(DType t);
const DotKernel* avx512_k_dot_kernel(DType t);
const DotKernel* avx512_float_dot_kernel(DType t);

const DotKernel* avx512_dot_kernel(DType t) {
  if (const DotKernel* k = avx512_float_dot_kernel(t)) return k;
  if (const DotKernel* k = avx512_r4_dot_kernel(t)) return k;
  if (const DotKernel* k = avx512_x16_dot_kernel(t)) return k;
  if (const DotKernel* k = avx512_k_dot_kernel(t)) return k;
  switch (t) {
    case DType::Q4_0: return &kQ4_0;
    case DType::Q8_0: return &kQ8_0;
    default: return nullptr;
  }
}

}  // namespace v4::cpu

// ---- Regrouped weights (Q4_0_R4, Q8_0_R4) with q8r4 activations ------------------------
namespace v4::cpu {
namespace {

// Weights enter vpdpbusd unsigned: Q4_0 nibbles as they are (true value q - 8), Q8_0
// values xor 0x80 (true value u - 128). The offset times each block's activation sum is
// subtracted once per block (lane 4b of the 16 int32 lanes).
// NC is a compile-time column count so the accumulators live in registers (a runtime
// count kept them on the stack: decode was 15% slower); with_cols picks the instance.
template <bool kQ8, int NC>
void dot_r4_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out) {
  constexpr int nc = NC;
  constexpr size_t kGroupBytes = kQ8 ? 136 : 72;
  constexpr int kShift = kQ8 ? 7 : 3;  // offset 128 or 8
  const int64_t groups = k / 128;
  const __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[kMaxCols];
  for (int c = 0; c < nc; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* grp = w + g * kGroupBytes;
    const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(grp)));
    __m512i wa, wb;
    if constexpr (kQ8) {
      wa = _mm512_xor_si512(_mm512_loadu_si512(grp + 8), flip);
      wb = _mm512_xor_si512(_mm512_loadu_si512(grp + 72), flip);
    } else {
      const __m512i raw = _mm512_loadu_si512(grp + 8);
      wa = _mm512_and_si512(raw, nib);
      wb = _mm512_and_si512(_mm512_srli_epi16(raw, 4), nib);
    }
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xr = x + c * xs;
      const __m512i xa = _mm512_loadu_si512(xr + g * 128);
      const __m512i xb = _mm512_loadu_si512(xr + g * 128 + 64);
      __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa, xa);
      dot = _mm512_dpbusd_epi32(dot, wb, xb);
      const __m128i sums = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + groups * 144 + g * 16));
      const __m512i corr = _mm512_maskz_permutexvar_epi32(0x1111, lanes, _mm512_castsi128_si512(sums));
      dot = _mm512_sub_epi32(dot, _mm512_slli_epi32(corr, kShift));
      const __m128 dx = _mm_loadu_ps(reinterpret_cast<const float*>(xr + groups * 128) + g * 4);
      const __m512 s = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(_mm_mul_ps(dw, dx)));
      acc[c] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(dot), acc[c]);
    }
  }
  for (int c = 0; c < nc; ++c) out[c] = hsum256(fold512(acc[c]));
}

template <bool kQ8>
void dot_r4(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { dot_r4_n<kQ8, decltype(n)::value>(w, x, xs, k, out); });
}

const DotKernel kQ4_0_R4{ActFormat::q8r4, dot_r4<false>, "avx512-vnni"};
const DotKernel kQ8_0_R4{ActFormat::q8r4, dot_r4<true>, "avx512-vnni"};

}  // namespace

const DotKernel* avx512_r4_dot_kernel(DType t) {
  switch (t) {
    case DType::Q4_0_R4: return &kQ4_0_R4;
    case DType::Q8_0_R4: return &kQ8_0_R4;
    default: return nullptr;
  }
}

}  // namespace v4::cpu

// ---- Q6_K with q8 activations ------------------------------------------------------------
#include "lib/core/quant/quant.h"

namespace v4::cpu {
namespace {

// Q6_K as register tiles of nr weight rows x nc activation columns (the GEMM driver's
// contract, avx512_gemm_driver.h); the matvec is the 1 x nc tile, so prefill equals decode.
// Per 64-value quarter and (row, column): one vpdpbusd of the unsigned 6-bit values, started
// from the q8q activations' -32 x sums (so the lanes hold sum (q - 32) x, 4 lanes per
// 16-value sub-block), one product of the row's per-lane sub-block scales with the
// column's per-lane block scales, one conversion and one fma.
struct Q6KTiles {
  static constexpr int kRows = 4, kCols = 2;

  template <int nr, int nc>
  static void tile(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k, float* out,
                   size_t os) {
    const __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i nib = _mm512_set1_epi8(0x0f), two = _mm512_set1_epi8(0x03);
    // Per 16-bit lane shift counts: the first 32 bytes take one pair of qh bits, the last 32
    // bytes the next pair.
    const __m512i sh_lo = _mm512_setr_epi64(0, 0, 0, 0, 0x0002000200020002, 0x0002000200020002,
                                            0x0002000200020002, 0x0002000200020002);
    const __m512i sh_hi = _mm512_add_epi16(sh_lo, _mm512_set1_epi16(4));
    __m512 acc[nr][nc];
#pragma GCC unroll 16
    for (int r = 0; r < nr; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < nc; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / 256; ++i) {
      for (int half = 0; half < 2; ++half) {
#pragma GCC unroll 2
        for (int part = 0; part < 2; ++part) {  // the low, then the high nibbles' quarter
          const uint8_t* xq = x + (4 * i + 2 * half + part) * 192;  // this quarter, column 0
          __m512i q[nr];
          __m512 sw[nr];
#pragma GCC unroll 16
          for (int r = 0; r < nr; ++r) {
            const BlockQ6_K& b = reinterpret_cast<const BlockQ6_K*>(w + r * ws)[i];
            const __m512i ql = _mm512_loadu_si512(b.ql + 64 * half);
            const __m512i qh = _mm512_broadcast_i64x4(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half)));
            const __m512i low = part ? _mm512_srli_epi16(ql, 4) : ql;
            q[r] = _mm512_or_si512(_mm512_and_si512(low, nib),
                                   _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, part ? sh_hi : sh_lo), two), 4));
            // The 4 sub-block scales of this quarter, each over its 4 lanes.
            const __m128i sc = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 8 * half));
            const __m128 sw4 = _mm_mul_ps(_mm_set1_ps(_cvtsh_ss(b.d)),
                                          _mm_cvtepi32_ps(_mm_cvtepi8_epi32(part ? _mm_srli_si128(sc, 4) : sc)));
            sw[r] = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(sw4));
          }
#pragma GCC unroll 16
          for (int c = 0; c < nc; ++c) {
            const uint8_t* xc = xq + c * xs;
            const __m512i xv = _mm512_loadu_si512(xc);
            const __m512i start = _mm512_loadu_si512(xc + 64);
            const __m512 dx = _mm512_loadu_ps(reinterpret_cast<const float*>(xc + 128));
#pragma GCC unroll 16
            for (int r = 0; r < nr; ++r) {
              const __m512i dot = _mm512_dpbusd_epi32(start, q[r], xv);
              acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(sw[r], dx), _mm512_cvtepi32_ps(dot), acc[r][c]);
            }
          }
        }
      }
    }
#pragma GCC unroll 16
    for (int c = 0; c < nc; ++c)
#pragma GCC unroll 16
      for (int r = 0; r < nr; ++r) out[c * os + r] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

void dot_q6_k(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { Q6KTiles::tile<1, decltype(n)::value>(w, 0, x, xs, k, out, 1); });
}

const DotKernel kQ6_K{ActFormat::q8q, dot_q6_k, "avx512-vnni"};

}  // namespace

const DotKernel* avx512_k4_dot_kernel(DType t);
const DotKernel* avx512_k_dot_kernel(DType t) { return t == DType::Q6_K ? &kQ6_K : avx512_k4_dot_kernel(t); }

namespace {
size_t q8q_bytes(int64_t k) { return q8q_row_bytes(k); }
const GemmKernel kQ6_K_Gemm{q8q_bytes, quantize_q8q_row, gemm_driver::gemm<Q6KTiles>, "avx512-vnni"};
}  // namespace
const GemmKernel* avx512_q6_k_gemm_kernel() { return &kQ6_K_Gemm; }

}  // namespace v4::cpu

// ---- Float weights (F32, F16, BF16) with f32 activations, 16 lanes -----------------------
namespace v4::cpu {
namespace {

// L converts 16 weights to f32 (avx512_float_loads.h); two accumulators per column hide the
// FMA latency. The float GEMM tiles (dot_avx512_gemm.cpp) repeat this order exactly.
template <class L, int nc>
void dot_float512_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out) {
  __m512 a0[kMaxCols], a1[kMaxCols];
  for (int c = 0; c < nc; ++c) a0[c] = a1[c] = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= k; j += 32) {
    const __m512 w0 = L::load(w, j), w1 = L::load(w, j + 16);
    for (int c = 0; c < nc; ++c) {
      const float* xc = reinterpret_cast<const float*>(x + c * xs);
      a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xc + j), a0[c]);
      a1[c] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xc + j + 16), a1[c]);
    }
  }
  for (; j + 16 <= k; j += 16) {
    const __m512 w0 = L::load(w, j);
    for (int c = 0; c < nc; ++c) {
      const float* xc = reinterpret_cast<const float*>(x + c * xs);
      a0[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xc + j), a0[c]);
    }
  }
  for (int c = 0; c < nc; ++c) {
    const float* xc = reinterpret_cast<const float*>(x + c * xs);
    out[c] = float_dot_finish<L>(a0[c], a1[c], w, xc, j, k);
  }
}

template <class L>
void dot_float512(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { dot_float512_n<L, decltype(n)::value>(w, x, xs, k, out); });
}

const DotKernel kF32_512{ActFormat::f32, dot_float512<F32Load>, "avx512"};
const DotKernel kF16_512{ActFormat::f32, dot_float512<F16Load>, "avx512"};
const DotKernel kBF16_512{ActFormat::f32, dot_float512<BF16Load>, "avx512"};
}  // namespace

const DotKernel* avx512_float_dot_kernel(DType t) {
  switch (t) {
    case DType::F32: return &kF32_512;
    case DType::F16: return &kF16_512;
    case DType::BF16: return &kBF16_512;
    default: return nullptr;
  }
}

}  // namespace v4::cpu

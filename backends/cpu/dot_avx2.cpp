// AVX2 + FMA + F16C dot kernels. This file alone is compiled with those instruction sets
// enabled; it is only called after CPUID says they exist.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "backends/cpu/dequant_avx2.h"
#include "backends/cpu/dot_kernels.h"
#include "lib/core/dtype.h"
#include "lib/core/quant/quant.h"

namespace v4::cpu {
namespace {

inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// Signed 8-bit dot product of 32 pairs, as 8 float partial sums.
inline __m256 dot_i8(__m256i a, __m256i b) {
  const __m256i ax = _mm256_sign_epi8(a, a);
  const __m256i sb = _mm256_sign_epi8(b, a);
  const __m256i p16 = _mm256_maddubs_epi16(ax, sb);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Q4_0 nibbles as signed bytes: elements 0..15 from the low nibbles, 16..31 from the high.
inline __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(b, m);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

template <int nc, class Unpack, class Block>
inline void dot_blocks_q8_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out,
                            Unpack unpack) {
  const auto* wb = reinterpret_cast<const Block*>(w);
  const int64_t nb = k / 32;
  const size_t so = q8_scales_offset(k);
  __m256 acc[kMaxCols];
  for (int c = 0; c < nc; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const __m256i qw = unpack(wb[i].qs);
    const float dw = half(wb[i].d);
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xr = x + c * xs;
      const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + i * 32));
      const __m256 d = _mm256_set1_ps(dw * reinterpret_cast<const float*>(xr + so)[i]);
      acc[c] = _mm256_fmadd_ps(d, dot_i8(qw, qx), acc[c]);
    }
  }
  for (int c = 0; c < nc; ++c) out[c] = hsum(acc[c]);
}

template <class Unpack, class Block>
inline void dot_blocks_q8(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k,
                          float* out, Unpack unpack) {
  with_cols(nc, [&](auto n) {
    dot_blocks_q8_n<decltype(n)::value, Unpack, Block>(w, x, xs, k, out, unpack);
  });
}

void dot_q4_0(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  dot_blocks_q8<decltype(unpack_q4_0), BlockQ4_0>(w, x, xs, nc, k, out, unpack_q4_0);
}

void dot_q8_0(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  const auto unpack = [](const int8_t* qs) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
  };
  dot_blocks_q8<decltype(unpack), BlockQ8_0>(w, x, xs, nc, k, out, unpack);
}

// Q4_K / Q5_K against q8s activations. Sub-block j of a super-block is q8 block 8i + j; its
// 32 unsigned values (a nibble, plus 16 for Q5_K's fifth bit) meet the block's int8 values in
// one maddubs + madd, scaled by d * sc_j * dx; the minimums meet the blocks' sums (8-wide fma
// per super-block). The same operations for any number of columns: prefill equals decode.
template <bool kQ5, int nc>
void dot_k4_avx2_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out) {
  using Block = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;
  const auto* wb = reinterpret_cast<const Block*>(w);
  const size_t so = q8_scales_offset(k), ss = q8_row_bytes(k);
  const __m256i nib = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  __m256 acc[kMaxCols], accm[kMaxCols];
  for (int c = 0; c < nc; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k / 256; ++i) {
    const Block& b = wb[i];
    const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
    alignas(32) float sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      uint8_t a, m;
      k4_scale_min(j, b.scales, &a, &m);
      sc[j] = d * static_cast<float>(a);
      mn[j] = dmin * static_cast<float>(m);
    }
    const __m256 mn8 = _mm256_load_ps(mn);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kQ5) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    for (int j = 0; j < 8; ++j) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * (j / 2)));
      __m256i q = _mm256_and_si256((j & 1) ? _mm256_srli_epi16(raw, 4) : raw, nib);
      if constexpr (kQ5) {
        const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << j));
        q = _mm256_add_epi8(q, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit),
                                                _mm256_set1_epi8(16)));
      }
      for (int c = 0; c < nc; ++c) {
        const uint8_t* xr = x + c * xs;
        const int64_t blk = 8 * i + j;
        const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + 32 * blk));
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(q, qx), ones);
        const __m256 s = _mm256_set1_ps(sc[j] * reinterpret_cast<const float*>(xr + so)[blk]);
        acc[c] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(dot), acc[c]);
      }
    }
    for (int c = 0; c < nc; ++c)
      accm[c] = _mm256_fmadd_ps(mn8, _mm256_loadu_ps(reinterpret_cast<const float*>(x + c * xs + ss) + 8 * i), accm[c]);
  }
  for (int c = 0; c < nc; ++c) out[c] = hsum(acc[c]) - hsum(accm[c]);
}

template <bool kQ5>
void dot_k4_avx2(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { dot_k4_avx2_n<kQ5, decltype(n)::value>(w, x, xs, k, out); });
}

// Float weights: Load converts 8 weights to f32. Two accumulators per column.
template <int nc, class Load, class Scalar>
inline void dot_float_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out,
                        Load load, Scalar scalar) {
  __m256 a0[kMaxCols], a1[kMaxCols];
  for (int c = 0; c < nc; ++c) a0[c] = a1[c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m256 w0 = load(w, j), w1 = load(w, j + 8);
    for (int c = 0; c < nc; ++c) {
      const float* xc = reinterpret_cast<const float*>(x + c * xs);
      a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xc + j), a0[c]);
      a1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xc + j + 8), a1[c]);
    }
  }
  for (; j + 8 <= k; j += 8) {
    const __m256 w0 = load(w, j);
    for (int c = 0; c < nc; ++c) {
      const float* xc = reinterpret_cast<const float*>(x + c * xs);
      a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xc + j), a0[c]);
    }
  }
  for (int c = 0; c < nc; ++c) {
    const float* xc = reinterpret_cast<const float*>(x + c * xs);
    float s = hsum(_mm256_add_ps(a0[c], a1[c]));
    for (int64_t t = j; t < k; ++t) s += scalar(w, t) * xc[t];
    out[c] = s;
  }
}

template <class Load, class Scalar>
inline void dot_float(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out,
                      Load load, Scalar scalar) {
  with_cols(nc, [&](auto n) { dot_float_n<decltype(n)::value>(w, x, xs, k, out, load, scalar); });
}

void dot_f32(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  const auto* wf = reinterpret_cast<const float*>(w);
  dot_float(w, x, xs, nc, k, out, [wf](const uint8_t*, int64_t j) { return _mm256_loadu_ps(wf + j); },
            [wf](const uint8_t*, int64_t j) { return wf[j]; });
}

void dot_f16(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  const auto* wh = reinterpret_cast<const uint16_t*>(w);
  dot_float(w, x, xs, nc, k, out,
            [wh](const uint8_t*, int64_t j) {
              return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wh + j)));
            },
            [wh](const uint8_t*, int64_t j) { return half(wh[j]); });
}

void dot_bf16(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  const auto* wb = reinterpret_cast<const uint16_t*>(w);
  dot_float(w, x, xs, nc, k, out,
            [wb](const uint8_t*, int64_t j) {
              const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + j)));
              return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
            },
            [wb](const uint8_t*, int64_t j) {
              const uint32_t u = static_cast<uint32_t>(wb[j]) << 16;
              float f;
              __builtin_memcpy(&f, &u, 4);
              return f;
            });
}

// Any other type: a dequantiser fills 256 floats on the stack, which are then multiplied
// with every activation row (fused dequantisation; the weights are still read from memory
// once). The K-quants have AVX2 dequantisers (dot_avx2_dequant.cpp); the others use the
// reference's.
template <DType T, int nc>
void dot_dequant_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out) {
  const TypeTraits& tt = traits(T);
  static const DequantFn to_f32 = avx2_dequantizer(T) ? avx2_dequantizer(T) : tt.to_f32;
  alignas(32) float tmp[256];
  const int64_t chunk = std::max<int64_t>(tt.block_size, 256 / tt.block_size * tt.block_size);
  // Two accumulators per column (even and odd 8-value steps): one chain of dependent FMAs
  // was the limit in decode.
  __m256 acc[kMaxCols], acc2[kMaxCols];
  for (int c = 0; c < nc; ++c) acc[c] = acc2[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < k; j += chunk) {
    const int64_t n = std::min(chunk, k - j);  // whole blocks, a multiple of 8 values
    to_f32(w + (j / tt.block_size) * tt.block_bytes, tmp, n);
    for (int c = 0; c < nc; ++c) {
      const float* xc = reinterpret_cast<const float*>(x + c * xs) + j;
      int64_t e = 0;
      for (; e + 16 <= n; e += 16) {
        acc[c] = _mm256_fmadd_ps(_mm256_load_ps(tmp + e), _mm256_loadu_ps(xc + e), acc[c]);
        acc2[c] = _mm256_fmadd_ps(_mm256_load_ps(tmp + e + 8), _mm256_loadu_ps(xc + e + 8), acc2[c]);
      }
      for (; e < n; e += 8)
        acc[c] = _mm256_fmadd_ps(_mm256_load_ps(tmp + e), _mm256_loadu_ps(xc + e), acc[c]);
    }
  }
  for (int c = 0; c < nc; ++c) out[c] = hsum(_mm256_add_ps(acc[c], acc2[c]));
}

template <DType T>
void dot_dequant(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { dot_dequant_n<T, decltype(n)::value>(w, x, xs, k, out); });
}

const DotKernel kQ4_0{ActFormat::q8, dot_q4_0, "avx2"};
const DotKernel kQ8_0{ActFormat::q8, dot_q8_0, "avx2"};
const DotKernel kF32{ActFormat::f32, dot_f32, "avx2"};
const DotKernel kF16{ActFormat::f32, dot_f16, "avx2"};
const DotKernel kBF16{ActFormat::f32, dot_bf16, "avx2"};
template <DType T>
const DotKernel kDequant{ActFormat::f32, dot_dequant<T>, "avx2-dequant"};
const DotKernel kQ4_K{ActFormat::q8s, dot_k4_avx2<false>, "avx2"};
const DotKernel kQ5_K{ActFormat::q8s, dot_k4_avx2<true>, "avx2"};

}  // namespace

void quantize_q8_row_avx2(const float* x, uint8_t* out, int64_t k) {
  auto* q = reinterpret_cast<int8_t*>(out);
  auto* d = reinterpret_cast<float*>(out + q8_scales_offset(k));
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* xb = x + b * 32;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float dm = _mm_cvtss_f32(m) / 127.0f;
    const float id = dm != 0.0f ? 1.0f / dm : 0.0f;
    d[b] = dm;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i i32[4];
    for (int j = 0; j < 4; ++j) i32[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], vid));
    // Pack 32 int32 -> 32 int8 and undo the lane interleaving of the packs.
    const __m256i p16a = _mm256_packs_epi32(i32[0], i32[1]);
    const __m256i p16b = _mm256_packs_epi32(i32[2], i32[3]);
    __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), p8);
  }
}

const DotKernel* avx2_dot_kernel(DType t) {
  switch (t) {
    case DType::Q4_0: return &kQ4_0;
    case DType::Q8_0: return &kQ8_0;
    case DType::F32: return &kF32;
    case DType::F16: return &kF16;
    case DType::BF16: return &kBF16;
    case DType::Q4_1: return &kDequant<DType::Q4_1>;
    case DType::Q5_0: return &kDequant<DType::Q5_0>;
    case DType::Q5_1: return &kDequant<DType::Q5_1>;
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    case DType::Q6_K: return &kDequant<DType::Q6_K>;
    case DType::FP8_B32: return &kDequant<DType::FP8_B32>;
    default: return nullptr;
  }
}

}  // namespace v4::cpu

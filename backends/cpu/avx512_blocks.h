// Q4_0 / Q8_0 blocks as signed int8 vectors and signed int8 dot products with vpdpbusd,
// shared by the AVX-512 matvec and GEMM kernels (the same instructions, so the same
// results). Include only from files compiled with AVX-512 VNNI enabled.
#pragma once

#include <immintrin.h>

#include "lib/core/dtype.h"

namespace v4::cpu {

// Signed 8-bit dot products of 64 pairs: 16 int32 lanes (8 per 32-element block).
inline __m512i dot_i8x64(__m512i w, __m512i x) {
  const __mmask64 neg = _mm512_movepi8_mask(w);
  const __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sx);
}
inline __m256i dot_i8x32(__m256i w, __m256i x) {
  const __mmask32 neg = _mm256_movepi8_mask(w);
  const __m256i sx = _mm256_mask_sub_epi8(x, neg, _mm256_setzero_si256(), x);
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), sx);
}

inline __m256i q4_0_signed(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0f);
  const __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
  return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

struct Q4_0Loader {
  using Block = BlockQ4_0;
  static __m256i load(const Block& b) { return q4_0_signed(b.qs); }
};
struct Q8_0Loader {
  using Block = BlockQ8_0;
  static __m256i load(const Block& b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  }
};

}  // namespace v4::cpu

// Horizontal sums in one fixed order, shared by the AVX-512 matvec and GEMM kernels: a
// (row, column) result must not depend on which kernel computed it. Include only from
// files compiled with AVX-512 enabled.
#pragma once

#include <immintrin.h>

namespace v4::cpu {

// The two 256-bit halves of v added.
inline __m256 fold512(__m512 v) {
  return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}
// The 8 lanes of v summed.
inline float hsum256(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4);
}

}  // namespace v4::cpu
